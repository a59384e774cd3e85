import net from 'node:net';
import { Readable } from 'node:stream';
import {
  createDecoder,
  decodeNameValuePairs,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeGetValues,
  encodeParams,
  encodeRecord,
  encodeStream,
  FCGI_CANT_MPX_CONN,
  FCGI_DATA,
  FCGI_END_REQUEST,
  FCGI_GET_VALUES_RESULT,
  FCGI_KEEP_CONN,
  FCGI_OVERLOADED,
  FCGI_STDERR,
  FCGI_STDIN,
  FCGI_STDOUT,
  FCGI_UNKNOWN_ROLE,
  FCGI_UNKNOWN_TYPE,
  type FcgiRecord,
  type PairsInput,
  type Params,
  parseEndRequestBody,
} from '../protocol/index.js';
import { type CgiHead, findHeadEnd, parseCgiHead } from './cgi-response.js';
import { FastCgiClientError } from './errors.js';

export type Target = { readonly host: string; readonly port: number } | { readonly path: string };

export function describeTarget(target: Target): string {
  if ('path' in target) return target.path;
  return net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

export type Body = string | Uint8Array | Readable | AsyncIterable<Uint8Array | string>;

export interface ExchangeOptions {
  readonly params: PairsInput;
  readonly role: number;
  readonly keepConn: boolean;
  readonly body?: Body | undefined;
  readonly data?: Body | undefined;
}

/** What one request gets back, as records arrive. */
export interface Exchange {
  /** Resolves with the parsed CGI head, once it has arrived. */
  readonly head: Promise<CgiHead>;
  /** The response body after the head. */
  readonly body: Readable;
  /** Everything the application wrote to FCGI_STDERR. */
  readonly stderr: Promise<string>;
  /** Resolves with END_REQUEST's statuses; rejects on a reset or a refusing protocol status. */
  readonly end: Promise<{ appStatus: number; protocolStatus: number }>;
  /** Sends FCGI_ABORT_REQUEST (the caller's signal fired). */
  abort(reason: FastCgiClientError): void;
}

interface Pending {
  readonly id: number;
  headBuf: Buffer[] | null;
  headBytes: number;
  body: Readable;
  stderr: Buffer[];
  resolveHead(head: CgiHead): void;
  rejectHead(err: Error): void;
  resolveStderr(text: string): void;
  resolveEnd(value: { appStatus: number; protocolStatus: number }): void;
  rejectEnd(err: Error): void;
  failed: Error | null;
}

/** The most header bytes accepted before the blank line. */
const MAX_HEAD = 256 * 1024;

/** One transport connection to a FastCGI server: requests out, records demultiplexed by id. */
export class ClientConnection {
  readonly socket: net.Socket;
  readonly target: Target;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder;
  private nextId = 1;
  private valuesWaiter: ((values: Params) => void) | null = null;
  closed = false;
  /** No new requests: the server will close it (no keep-conn) or it failed. */
  retired = false;
  private paused = false;

  private constructor(socket: net.Socket, target: Target) {
    this.socket = socket;
    this.target = target;
    this.decoder = createDecoder((record) => this.onRecord(record), { fragments: true });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.failAll(
          new FastCgiClientError(
            'PROTOCOL_ERROR',
            `bad response from ${describeTarget(target)}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.retired = true;
      this.failAll(
        new FastCgiClientError(
          'CONNECTION_RESET',
          `connection to ${describeTarget(target)} closed before the response ended`,
        ),
      );
    });
  }

  static connect(target: Target, timeoutMs: number): Promise<ClientConnection> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? net.connect(target.path) : net.connect(target.port, target.host);
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new FastCgiClientError(
            'TIMEOUT',
            `connecting to ${describeTarget(target)} timed out after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ClientConnection(socket, target));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why =
          err.code === 'ECONNREFUSED'
            ? 'connection refused'
            : err.code === 'ENOENT'
              ? 'no such socket'
              : (err.code ?? err.message);
        reject(
          new FastCgiClientError('CONNECT_FAILED', `cannot connect to ${describeTarget(target)}: ${why}`, {
            cause: err,
          }),
        );
      });
    });
  }

  get active(): number {
    return this.pending.size;
  }

  /** GET_VALUES on this connection; resolves with what the server answered. */
  getValues(names: readonly string[], timeoutMs: number): Promise<Params> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.valuesWaiter = null;
        reject(
          new FastCgiClientError('TIMEOUT', `no FCGI_GET_VALUES_RESULT from ${describeTarget(this.target)}`),
        );
      }, timeoutMs);
      this.valuesWaiter = (values) => {
        clearTimeout(timer);
        resolve(values);
      };
      if (this.closed) {
        this.valuesWaiter = null;
        clearTimeout(timer);
        resolve({});
        return;
      }
      this.socket.write(encodeGetValues(names));
    });
  }

  private allocateId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new FastCgiClientError('OVERLOADED', 'no free request id on the connection');
  }

  start(options: ExchangeOptions): Exchange {
    if (this.closed) {
      throw new FastCgiClientError(
        'CONNECTION_RESET',
        `connection to ${describeTarget(this.target)} closed before the request`,
      );
    }
    const id = this.allocateId();
    let resolveHead!: (head: CgiHead) => void;
    let rejectHead!: (err: Error) => void;
    let resolveStderr!: (text: string) => void;
    let resolveEnd!: (value: { appStatus: number; protocolStatus: number }) => void;
    let rejectEnd!: (err: Error) => void;
    const head = new Promise<CgiHead>((res, rej) => {
      resolveHead = res;
      rejectHead = rej;
    });
    const stderr = new Promise<string>((res) => {
      resolveStderr = res;
    });
    const end = new Promise<{ appStatus: number; protocolStatus: number }>((res, rej) => {
      resolveEnd = res;
      rejectEnd = rej;
    });
    // Callers that only read the body must not see unhandled rejections from these.
    head.catch(() => {});
    end.catch(() => {});
    const body = new Readable({
      read: () => {
        if (this.paused) {
          this.paused = false;
          this.socket.resume();
        }
      },
    });
    const pending: Pending = {
      id,
      headBuf: [],
      headBytes: 0,
      body,
      stderr: [],
      resolveHead,
      rejectHead,
      resolveStderr,
      resolveEnd,
      rejectEnd,
      failed: null,
    };
    this.pending.set(id, pending);
    if (!options.keepConn) this.retired = true;
    this.socket.cork();
    this.socket.write(encodeBeginRequest(id, options.role, options.keepConn ? FCGI_KEEP_CONN : 0));
    for (const buf of encodeParams(id, options.params)) this.socket.write(buf);
    this.socket.uncork();
    void this.sendStreams(id, options.body, options.data);
    return {
      head,
      body,
      stderr,
      end,
      abort: (reason) => {
        if (!this.pending.has(id)) return;
        if (!this.closed) this.socket.write(encodeAbortRequest(id));
        this.fail(pending, reason);
      },
    };
  }

  private async sendStreams(id: number, body: Body | undefined, data: Body | undefined): Promise<void> {
    try {
      await this.sendStream(FCGI_STDIN, id, body);
      if (data !== undefined) await this.sendStream(FCGI_DATA, id, data);
    } catch (err) {
      const pending = this.pending.get(id);
      if (pending) this.fail(pending, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async sendStream(type: number, id: number, body: Body | undefined): Promise<void> {
    if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = body === undefined ? null : typeof body === 'string' ? Buffer.from(body) : body;
      this.socket.cork();
      if (bytes && bytes.length > 0) for (const buf of encodeStream(type, id, bytes)) this.socket.write(buf);
      this.socket.write(encodeRecord(type, id));
      this.socket.uncork();
      return;
    }
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      if (this.closed || !this.pending.has(id)) return;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (bytes.length === 0) continue;
      let ok = true;
      for (const buf of encodeStream(type, id, bytes)) ok = this.socket.write(buf);
      if (!ok)
        await new Promise<void>((resolve) => {
          const done = () => {
            this.socket.off('drain', done);
            this.socket.off('close', done);
            resolve();
          };
          this.socket.on('drain', done);
          this.socket.on('close', done);
        });
    }
    if (!this.closed && this.pending.has(id)) this.socket.write(encodeRecord(type, id));
  }

  private onRecord(record: FcgiRecord): void {
    if (record.type === FCGI_GET_VALUES_RESULT) {
      const waiter = this.valuesWaiter;
      this.valuesWaiter = null;
      waiter?.(decodeNameValuePairs(record.content));
      return;
    }
    if (record.type === FCGI_UNKNOWN_TYPE) return;
    const pending = this.pending.get(record.requestId);
    if (!pending) return; // aborted by us, or unknown: ignore as the spec says
    switch (record.type) {
      case FCGI_STDOUT:
        this.onStdout(pending, record.content);
        return;
      case FCGI_STDERR:
        if (record.content.length > 0) pending.stderr.push(Buffer.from(record.content));
        return;
      case FCGI_END_REQUEST:
        this.onEnd(pending, record.content);
        return;
      default:
        throw new Error(`unexpected ${record.type} record for request ${record.requestId}`);
    }
  }

  private onStdout(pending: Pending, content: Buffer): void {
    if (content.length === 0) return; // end of STDOUT; END_REQUEST follows
    if (pending.headBuf === null) {
      if (!pending.body.push(content) && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      return;
    }
    pending.headBuf.push(content);
    pending.headBytes += content.length;
    const joined = pending.headBuf.length === 1 ? content : Buffer.concat(pending.headBuf, pending.headBytes);
    const at = findHeadEnd(joined);
    if (at < 0) {
      if (pending.headBytes > MAX_HEAD) throw new Error(`response headers over ${MAX_HEAD} bytes`);
      if (pending.headBuf.length > 1) pending.headBuf = [joined];
      return;
    }
    pending.headBuf = null;
    pending.resolveHead(parseCgiHead(joined.toString('latin1', 0, at)));
    if (at < joined.length) pending.body.push(joined.subarray(at));
  }

  private onEnd(pending: Pending, content: Buffer): void {
    this.pending.delete(pending.id);
    const { appStatus, protocolStatus } = parseEndRequestBody(content);
    pending.resolveStderr(Buffer.concat(pending.stderr).toString('utf8'));
    const refused =
      protocolStatus === FCGI_OVERLOADED
        ? new FastCgiClientError('OVERLOADED', 'the application is overloaded (FCGI_OVERLOADED)')
        : protocolStatus === FCGI_CANT_MPX_CONN
          ? new FastCgiClientError('CANT_MPX_CONN', 'the application cannot multiplex (FCGI_CANT_MPX_CONN)')
          : protocolStatus === FCGI_UNKNOWN_ROLE
            ? new FastCgiClientError(
                'UNKNOWN_ROLE',
                'the application does not serve this role (FCGI_UNKNOWN_ROLE)',
              )
            : null;
    if (refused) {
      this.fail(pending, refused);
      return;
    }
    if (pending.headBuf !== null) {
      // Output without a blank line: all of it is headers (a CGI response may have no body).
      const text = Buffer.concat(pending.headBuf, pending.headBytes).toString('latin1');
      pending.headBuf = null;
      pending.resolveHead(parseCgiHead(text));
    }
    pending.body.push(null);
    pending.resolveEnd({ appStatus, protocolStatus });
  }

  private fail(pending: Pending, err: Error): void {
    this.pending.delete(pending.id);
    if (pending.failed) return;
    pending.failed = err;
    pending.rejectHead(err);
    pending.rejectEnd(err);
    pending.resolveStderr(Buffer.concat(pending.stderr).toString('utf8'));
    if (pending.headBuf === null) pending.body.destroy(err);
    else pending.body.destroy();
  }

  private failAll(err: Error): void {
    for (const pending of [...this.pending.values()]) this.fail(pending, err);
    const waiter = this.valuesWaiter;
    this.valuesWaiter = null;
    if (waiter) waiter({});
  }

  close(): void {
    this.retired = true;
    this.socket.destroy();
  }
}
