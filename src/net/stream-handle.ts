import type net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { streamWrap } from '../node-internals.js';
import { sharedReadBuffer } from './shared-reads.js';
import type { Transport, TransportEvents } from './transport.js';

/**
 * Accepted connections as the libuv stream handles node's net.Socket is built on, with no
 * net.Socket. A FastCGI front that does not keep connections opens one per request, and making
 * and tearing down a net.Socket (a Duplex stream, its state objects, its destroy sequence) costs
 * a worker about 9 µs of CPU per connection here: more than the request. The handle's own
 * methods (readStart, writeBuffer, writev, shutdown, close) are what net.Socket calls itself,
 * with the write and shutdown request objects of node's `stream_wrap` binding, so the system
 * calls are the same.
 *
 * This rests on node internals (the stream_wrap binding, the handle's methods), as node:http's
 * own fast paths do, probed in node-internals.ts; where anything is missing (another Node, or
 * --pending-deprecation, under which process.binding warns), acceptStreamHandles returns false
 * and the caller keeps net.Socket.
 */

interface AddressOut {
  address?: string;
  port?: number;
}

interface WriteReq {
  handle: StreamHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  /** The bytes of a write the kernel has not taken yet: the handle does not hold on to them. */
  data: Uint8Array | Uint8Array[] | null;
  transport: HandleTransport;
}

interface ShutdownReq {
  handle: StreamHandle;
  oncomplete: (this: ShutdownReq, status: number) => void;
  transport: HandleTransport;
}

/** node's TCPWrap / PipeWrap, as far as used here. */
interface StreamHandle {
  onread: ((this: StreamHandle) => void) | null;
  readonly writeQueueSize: number;
  [kTransport]?: HandleTransport;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  writev(req: WriteReq, chunks: Uint8Array[], allBuffers: true): number;
  shutdown(req: ShutdownReq): number;
  close(callback: (this: StreamHandle) => void): void;
  setNoDelay?(on: boolean): number;
  getpeername?(out: AddressOut): number;
  getsockname?(out: AddressOut): number;
}

interface ServerHandle {
  onconnection: ((status: number, client?: StreamHandle) => void) | null;
}

const kTransport = Symbol('fcgi.transport');
/** libuv's end of stream, as a read's byte count. */
const UV_EOF = -4095;
/** Bytes waiting in libuv above which write() says to wait for onDrain, as net.Socket's high-water mark. */
const HIGH_WATER = 16 * 1024;
/** After our FIN, how long the peer has to close its side before the connection is dropped. */
const LINGER_MS = 5000;

const binding = streamWrap;

/** Whether this Node lets connections be taken as stream handles. */
export const STREAM_HANDLES = binding !== null;

/**
 * Takes over a listening server's accepted connections: each comes to onTransport as a
 * Transport over its stream handle, and the server emits no 'connection'. Call it when the
 * server is listening ('listening'), before the event loop polls for a connection. False (and
 * nothing changed) where this Node does not allow it.
 */
export function acceptStreamHandles(
  server: net.Server,
  onTransport: (transport: Transport) => void,
  onError: (err: NodeJS.ErrnoException) => void,
): boolean {
  const handle = (server as unknown as { _handle: ServerHandle | null })._handle;
  if (!binding || !handle || typeof handle.onconnection !== 'function') return false;
  handle.onconnection = (status, client) => {
    if (status < 0 || !client) {
      onError(uvError(status, 'accept'));
      return;
    }
    // As net.Server's noDelay does: a response's last record must not wait for an ACK.
    client.setNoDelay?.(true);
    onTransport(new HandleTransport(client));
  };
  return true;
}

function uvError(status: number, syscall: string): NodeJS.ErrnoException {
  const code = status < 0 ? getSystemErrorName(status) : 'EUNKNOWN';
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: status, syscall });
}

// One function each for every handle and request, not closures per connection: libuv calls them
// with the handle or the request as `this`.
function onStreamRead(this: StreamHandle): void {
  const transport = this[kTransport]!;
  const nread = binding!.streamBaseState[binding!.kReadBytesOrError]!;
  if (nread > 0) transport.events.onData(sharedReadBuffer(), nread);
  else if (nread === UV_EOF) transport.readEnded();
  else if (nread < 0) transport.destroy(); // ECONNRESET and the like: nothing to answer
}

function onWriteComplete(this: WriteReq, status: number): void {
  this.data = null;
  const transport = this.transport;
  if (transport.closing) return;
  if (status < 0) transport.destroy();
  else if (this.handle.writeQueueSize === 0) transport.events.onDrain();
}

function onShutdown(this: ShutdownReq, status: number): void {
  this.transport.shutDown(status);
}

function onHandleClose(this: StreamHandle): void {
  const transport = this[kTransport]!;
  transport.events.onClose();
}

const NO_EVENTS: TransportEvents = {
  onData() {},
  onEnd() {},
  onDrain() {},
  onClose() {},
};

/** A class, for one shape and prototype methods over thousands of short connections. */
class HandleTransport implements Transport {
  readonly sharedReads = true;
  events: TransportEvents = NO_EVENTS;
  closing = false;
  private readonly handle: StreamHandle;
  private reading = false;
  private paused = false;
  /** The peer sent its FIN. */
  private eof = false;
  /** end() called: our FIN is on its way once the queued writes are done. */
  private ending = false;
  /** Our FIN is sent. */
  private finSent = false;
  private linger: NodeJS.Timeout | null = null;
  private peer: AddressOut | null = null;
  private local: AddressOut | null = null;

  constructor(handle: StreamHandle) {
    this.handle = handle;
    handle[kTransport] = this;
  }

  get writableLength(): number {
    return this.closing ? 0 : this.handle.writeQueueSize;
  }

  start(events: TransportEvents): void {
    this.events = events;
    this.handle.onread = onStreamRead;
    this.handle.useUserBuffer(sharedReadBuffer());
    this.startReading();
  }

  write(data: Uint8Array): boolean {
    if (this.closing || this.ending) return false;
    const req = this.writeReq();
    const err = this.handle.writeBuffer(req, data);
    return this.written(req, err, data);
  }

  writev(data: Uint8Array[]): boolean {
    if (this.closing || this.ending) return false;
    const req = this.writeReq();
    const err = this.handle.writev(req, data, true);
    return this.written(req, err, data);
  }

  private writeReq(): WriteReq {
    const req = new binding!.WriteWrap() as WriteReq;
    req.handle = this.handle;
    req.oncomplete = onWriteComplete;
    req.data = null;
    req.transport = this;
    return req;
  }

  private written(req: WriteReq, err: number, data: Uint8Array | Uint8Array[]): boolean {
    if (err !== 0) {
      // EPIPE, ECONNRESET: the peer is gone, and with it whatever was to be answered.
      this.destroy();
      return false;
    }
    if (binding!.streamBaseState[binding!.kLastWriteWasAsync]) req.data = data;
    return this.handle.writeQueueSize < HIGH_WATER;
  }

  pause(): void {
    this.paused = true;
    if (this.reading) {
      this.reading = false;
      this.handle.readStop();
    }
  }

  resume(): void {
    this.paused = false;
    this.startReading();
  }

  private startReading(): void {
    if (this.reading || this.paused || this.eof || this.closing) return;
    const err = this.handle.readStart();
    if (err !== 0) this.destroy();
    else this.reading = true;
  }

  /** The peer's FIN: after ours, the connection is done; before it, the user decides. */
  readEnded(): void {
    this.eof = true;
    this.reading = false;
    if (!this.ending) this.events.onEnd();
    else if (this.finSent) this.destroy();
    // else the shutdown, waiting for queued writes, closes when they are done.
  }

  end(): void {
    if (this.ending || this.closing) return;
    this.ending = true;
    const req = new binding!.ShutdownWrap() as ShutdownReq;
    req.handle = this.handle;
    req.oncomplete = onShutdown;
    req.transport = this;
    const err = this.handle.shutdown(req);
    // 1: done at once; an error (ENOTCONN: no longer writable): nothing more to send, so close.
    if (err === 1) this.shutDown(0);
    else if (err !== 0) this.destroy();
  }

  /** Every queued write is done and our FIN sent. */
  shutDown(status: number): void {
    if (this.closing) return;
    if (status < 0 || this.eof) {
      this.destroy();
      return;
    }
    // Reads go on (the front may still be sending what we do not need) until its FIN, which
    // closes; a peer that never closes is dropped after a while.
    this.finSent = true;
    this.paused = false;
    this.startReading();
    this.linger = setTimeout(() => this.destroy(), LINGER_MS).unref();
  }

  destroy(): void {
    if (this.closing) return;
    this.closing = true;
    this.reading = false;
    if (this.linger) clearTimeout(this.linger);
    this.handle.close(onHandleClose);
  }

  get remoteAddress(): string | undefined {
    this.peer ??= this.addressOf('getpeername');
    return this.peer.address;
  }

  get remotePort(): number | undefined {
    this.peer ??= this.addressOf('getpeername');
    return this.peer.port;
  }

  get localAddress(): string | undefined {
    this.local ??= this.addressOf('getsockname');
    return this.local.address;
  }

  get localPort(): number | undefined {
    this.local ??= this.addressOf('getsockname');
    return this.local.port;
  }

  // A system call each: made when asked (most connections never are), and kept, as net.Socket
  // does. A unix socket's handle has neither call; a closed one answers nothing.
  private addressOf(call: 'getpeername' | 'getsockname'): AddressOut {
    const out: AddressOut = {};
    const get = this.handle[call];
    if (!this.closing && get) get.call(this.handle, out);
    return out;
  }
}
