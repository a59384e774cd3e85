import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { getDefaultHighWaterMark } from 'node:stream';
import { httpHeadToCgi, NODE_WRITES_CGI_HEADS } from './cgi-head.js';
import type { RequestParams } from './request-params.js';

/** What a request's socket needs from its connection. */
export interface RequestSink {
  /** Queues response bytes (or text) as FCGI_STDOUT of this request; false = the connection is congested. */
  stdout(requestId: number, data: string | Uint8Array, encoding?: BufferEncoding): boolean;
  /** The consumer read some body: the connection may read more. */
  wantsBody(): void;
  /** The response is finished or the request destroyed: END_REQUEST and cleanup. */
  release(requestId: number): void;
  /** The real connection's address, for req.socket. */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
}

/** net.Socket's default, which an IncomingMessage's body stream then has too. */
const READABLE_HIGH_WATER_MARK = getDefaultHighWaterMark(false);

/**
 * The socket a request's IncomingMessage and ServerResponse see. node:http writes to it as it
 * would to a TCP socket; it turns the HTTP head into CGI headers and the rest into STDOUT
 * records of its request, multiplexed with the other requests of the real connection. A class,
 * because node:http needs an object shaped like net.Socket, events and all.
 */
export class RequestSocket extends EventEmitter {
  // net.Socket's surface, as far as node:http uses it.
  readable = true;
  writable = true;
  destroyed = false;
  encrypted: boolean;
  _httpMessage: ServerResponse | null = null;
  readonly _writableState = { corked: 0 };
  /** node:http calls it when the consumer of the request body wants more. */
  readonly requestId: number;
  private readonly sink: RequestSink;
  /** The request's params: the client's address is read from them when asked. */
  private readonly params: RequestParams;
  private headSent = false;
  private client: { remoteAddress: string | undefined; remotePort: number | undefined } | null = null;

  constructor(sink: RequestSink, requestId: number, encrypted: boolean, params: RequestParams) {
    super();
    this.sink = sink;
    this.requestId = requestId;
    this.encrypted = encrypted;
    this.params = params;
  }

  // The HTTP client's address (REMOTE_ADDR, REMOTE_PORT), not the front's: what req.ip and
  // loggers want. Read on first use: most requests never ask.
  private remote(): { remoteAddress: string | undefined; remotePort: number | undefined } {
    this.client ??= { remoteAddress: this.params.remoteAddress, remotePort: this.params.remotePort };
    return this.client;
  }

  get remoteAddress(): string | undefined {
    return this.remote().remoteAddress;
  }

  set remoteAddress(value: string | undefined) {
    this.remote().remoteAddress = value;
  }

  get remotePort(): number | undefined {
    return this.remote().remotePort;
  }

  set remotePort(value: number | undefined) {
    this.remote().remotePort = value;
  }

  get localAddress(): string | undefined {
    return this.sink.localAddress;
  }

  get localPort(): number | undefined {
    return this.sink.localPort;
  }

  // IncomingMessage takes its own high-water mark from its socket's; from Node 24 on it keeps an
  // undefined one, and Readable.toWeb (a fetch handler's request body) refuses that stream.
  get readableHighWaterMark(): number {
    return READABLE_HIGH_WATER_MARK;
  }

  get writableLength(): number {
    return 0;
  }

  get bufferSize(): number {
    return 0;
  }

  write(
    data: string | Uint8Array,
    encoding?: BufferEncoding | ((err?: Error | null) => void) | null,
    callback?: (err?: Error | null) => void,
  ): boolean {
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (this.destroyed) {
      if (callback) process.nextTick(callback);
      return false;
    }
    if (!this.headSent) {
      this.headSent = true;
      // Where node:http builds the head as CGI (cgiResponse), it is sent as it is.
      if (!NODE_WRITES_CGI_HEADS) data = this.convertHead(data);
    }
    const ok = data.length === 0 ? true : this.sink.stdout(this.requestId, data, encoding ?? undefined);
    // Accepted into the connection's queue: the write is done as far as the response goes.
    if (callback) process.nextTick(callback);
    return ok;
  }

  // Elsewhere, the first write begins with node:http's HTTP head (res._header), alone or with body text.
  private convertHead(data: string | Uint8Array): string | Uint8Array {
    const res = this._httpMessage as
      | (ServerResponse & { _header: string | null; _contentLength?: number; _hasBody?: boolean })
      | null;
    const head = res?._header;
    if (!res || !head) return data;
    const length = res._hasBody && typeof res._contentLength === 'number' ? res._contentLength : undefined;
    const cgi = httpHeadToCgi(head, length);
    // node:http joins a utf8/latin1 string body to the head; the CGI head is ASCII either way.
    if (typeof data === 'string') return data.length > head.length ? cgi + data.slice(head.length) : cgi;
    // The head came alone as bytes.
    return Buffer.from(cgi, 'latin1');
  }

  end(
    data?: string | Uint8Array | (() => void),
    encoding?: BufferEncoding | (() => void),
    callback?: () => void,
  ): this {
    if (typeof data === 'function') callback = data;
    else if (data !== undefined) this.write(data, typeof encoding === 'string' ? encoding : undefined);
    if (typeof encoding === 'function') callback = encoding;
    if (callback) process.nextTick(callback);
    return this;
  }

  cork(): void {}
  uncork(): void {}
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address?: string; port?: number } {
    return { address: this.localAddress, port: this.localPort } as { address?: string; port?: number };
  }

  /** IncomingMessage calls this when its consumer wants more body. */
  resume(): this {
    this.sink.wantsBody();
    return this;
  }

  pause(): this {
    return this;
  }

  /** The response finished: END_REQUEST. */
  release(): void {
    this.sink.release(this.requestId);
  }

  /** Called by res.destroy() and by the connection when the request is aborted or lost. */
  destroy(_error?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.readable = false;
    this.writable = false;
    this.sink.release(this.requestId);
    // node:http's onServerResponseClose: res 'close'.
    this.emit('close', false);
    return this;
  }

  destroySoon(): void {
    this.destroy();
  }
}
