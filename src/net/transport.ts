import type net from 'node:net';
import { readIntoSharedBuffer } from './shared-reads.js';

/** What a transport tells the connection using it. */
export interface TransportEvents {
  /** Bytes 0..length of buffer arrived. With `sharedReads`, they are valid only until this returns. */
  onData(buffer: Buffer, length: number): void;
  /** The peer sends no more. It may still read: what is in progress can be answered. */
  onEnd(): void;
  /** The bytes queued have gone to the kernel. */
  onDrain(): void;
  /** Closed, for whatever reason; the last event. */
  onClose(): void;
}

/**
 * An accepted stream connection as a server's connection uses it: bytes in, bytes out, one
 * close. Either a net.Socket (socketTransport) or, where this Node allows, the libuv stream
 * handle under it with no net.Socket at all (stream-handle.ts).
 */
export interface Transport {
  /** Reads land in one buffer shared by the process: bytes kept past onData must be copied. */
  readonly sharedReads: boolean;
  /** Bytes queued and not yet taken by the kernel. */
  readonly writableLength: number;
  /** Events go to `events`, and reading starts (on a later turn of the event loop). */
  start(events: TransportEvents): void;
  /** Queues bytes; false when enough wait that the writer should wait for onDrain. */
  write(data: Buffer): boolean;
  /** Several buffers, in one system call where the kernel takes them all. */
  writev(data: Buffer[]): boolean;
  pause(): void;
  resume(): void;
  /** FIN after what is queued; reads go on until the peer closes too. */
  end(): void;
  /** Closes now; what is queued may be lost. */
  destroy(): void;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
}

/** A net.Socket as a Transport: where the stream handle cannot be used, and for tests. */
export function socketTransport(socket: net.Socket): Transport {
  let sharedReads = false;
  return {
    get sharedReads() {
      return sharedReads;
    },
    get writableLength() {
      return socket.writableLength;
    },
    start(events) {
      sharedReads = readIntoSharedBuffer(socket, (length, buffer) => events.onData(buffer, length));
      if (!sharedReads) socket.on('data', (chunk: Buffer) => events.onData(chunk, chunk.length));
      socket.on('end', () => events.onEnd());
      socket.on('close', () => events.onClose());
      socket.on('error', () => {}); // 'close' follows; a reset peer is not our error
      socket.on('drain', () => events.onDrain());
    },
    write: (data) => socket.write(data),
    writev(data) {
      let ok = true;
      socket.cork();
      for (const buf of data) ok = socket.write(buf);
      socket.uncork();
      return ok;
    },
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    end: () => void socket.end(),
    destroy: () => void socket.destroy(),
    get remoteAddress() {
      return socket.remoteAddress;
    },
    get remotePort() {
      return socket.remotePort;
    },
    get localAddress() {
      return socket.localAddress;
    },
    get localPort() {
      return socket.localPort;
    },
  };
}
