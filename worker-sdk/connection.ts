import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Transport, TransportEvents } from '../src/net/index.js';
import { IncomingMessage, kNeedDrain, ServerResponse } from '../src/node-internals.js';
import {
  createPairSpans,
  createParamsDecoder,
  createRecordReader,
  decodeNameValuePairs,
  encodeEndRequest,
  encodeGetValuesResult,
  encodeStream,
  encodeUnknownType,
  FCGI_ABORT_REQUEST,
  FCGI_AUTHORIZER,
  FCGI_BEGIN_REQUEST,
  FCGI_DATA,
  FCGI_FILTER,
  FCGI_GET_VALUES,
  FCGI_KEEP_CONN,
  FCGI_MAX_CONNS,
  FCGI_MAX_REQS,
  FCGI_MAXTYPE,
  FCGI_MPXS_CONNS,
  FCGI_NULL_REQUEST_ID,
  FCGI_OVERLOADED,
  FCGI_PARAMS,
  FCGI_REQUEST_COMPLETE,
  FCGI_STDERR,
  FCGI_STDIN,
  FCGI_STDOUT,
  FCGI_UNKNOWN_ROLE,
  isProtocolError,
  type Params,
  type ParamsDecoder,
  pairsFromText,
  paramsFromPairs,
  RESPONSE_END_LENGTH,
  recordRoom,
  recordTypeName,
  textRecordRoom,
  writeRecord,
  writeResponseEnd,
  writeTextRecord,
} from '../src/protocol/index.js';
import { cgiResponse } from './cgi-head.js';
import type { ResolvedOptions } from './options.js';
import { buildRequestHead, setRawHeaders } from './request-head.js';
import { type RequestSink, RequestSocket } from './request-socket.js';

/** What FastCGI adds to a node:http request: own properties, so they survive Express's prototype swap. */
export interface FcgiRequestExtras {
  /** Every FastCGI param the front sent (SCRIPT_FILENAME, REMOTE_ADDR, HTTP_*, …). */
  readonly params: Params;
  /** The same params under a name no framework takes: Express replaces req.params with its route params. */
  readonly fcgiParams: Params;
  readonly requestId: number;
  /** 'responder', 'authorizer' or 'filter'. */
  readonly role: 'responder' | 'authorizer' | 'filter';
  /** FILTER role: the file to filter (FCGI_DATA), as a second stream. Null for other roles. */
  readonly data: Readable | null;
}

export type FcgiIncomingMessage = IncomingMessage & FcgiRequestExtras;

/** What a connection needs from its server. */
export interface ConnectionContext {
  readonly options: ResolvedOptions;
  /** Runs the request listeners; reports a throw or a rejection to `onError`. */
  dispatch(req: FcgiIncomingMessage, res: ServerResponse, onError: (err: unknown) => void): void;
  /** Requests in progress across all connections, for FCGI_MAX_REQS. */
  active(): number;
  requestStarted(): void;
  requestEnded(): void;
  /** The server is stopping: finish what is in flight, take nothing new. */
  draining(): boolean;
  connectionClosed(connection: Connection): void;
}

const ROLE_NAMES = { 1: 'responder', 2: 'authorizer', 3: 'filter' } as const;

interface Request {
  readonly id: number;
  readonly role: 1 | 2 | 3;
  readonly keepConn: boolean;
  readonly startedAt: number;
  /** Until the empty PARAMS record. */
  params: ParamsDecoder | null;
  socket: RequestSocket | null;
  req: FcgiIncomingMessage | null;
  res: ServerResponse | null;
  data: Readable | null;
  stdinDone: boolean;
  bodyBytes: number;
  /** Body went over the limit: the rest is dropped. */
  rejected: boolean;
  ended: boolean;
  appStatus: number;
}

/** Bytes queued for the socket above which a response's write() returns false. */
const WRITE_HIGH_WATER = 256 * 1024;
/** Unread request body, summed over a connection's requests, above which we stop reading it. */
const READ_HIGH_WATER = 4 * 1024 * 1024;
/** How long a stopping server waits for the first request of a just-accepted connection. */
const FRESH_GRACE_MS = 2000;
/** Responses smaller than this go out as one copied buffer; larger ones as views (writev). */
const COPY_LIMIT = 16 * 1024;
/**
 * Size of a connection's buffer for small records: some short responses. Under 4 KiB, so it
 * is a slice of node's Buffer pool, not an allocation of its own.
 */
const TAIL_SIZE = 2048;
/**
 * The first one is smaller: a connection the front does not keep uses it once, for one short
 * response, and every pool used up is 8 KiB more for the garbage collector to sweep.
 */
const FIRST_TAIL_SIZE = 256;
/**
 * Where the pairs of a params stream lie in its text: one for the process, each use runs from
 * a scan to the end of reading the pairs without a break.
 */
const spans = createPairSpans();
const EMPTY_TAIL = Buffer.alloc(0);

/**
 * One transport connection from the front: records in, demultiplexed by request id into
 * node:http request/response pairs; responses out as STDOUT records and END_REQUEST. The
 * state machine is one switch on the record type, as in Go's net/http/fcgi, but strict.
 */
export class Connection implements RequestSink, TransportEvents {
  readonly transport: Transport;
  private readonly context: ConnectionContext;
  private readonly options: ResolvedOptions;
  private readonly requests = new Map<number, Request>();
  private readonly decoder;
  private out: Buffer[] = [];
  /** Bytes in `out` and in the tail, not yet written. */
  private outBytes = 0;
  private tail: Buffer = EMPTY_TAIL;
  /** The tail's bytes from tailStart to tailEnd are records not yet in `out`. */
  private tailStart = 0;
  private tailEnd = 0;
  private flushScheduled = false;
  private closeAfterFlush = false;
  /** transport.end() called: nothing more is read or written. */
  private ending = false;
  /** A request ended before its input did: bytes of it may still come. */
  private inputLeft = false;
  private closed = false;
  private paused = false;
  private paramsPending = 0;
  private served = 0;
  private timerMode: 'header' | 'idle' | 'none' = 'none';
  /** When the current mode's time is up, as Date.now(). */
  private deadline = 0;
  private readonly waitingDrain = new Set<Request>();

  /** Made as the connection is accepted, before its first read. */
  constructor(transport: Transport, context: ConnectionContext) {
    this.transport = transport;
    this.context = context;
    this.options = context.options;
    this.decoder = createRecordReader(
      (type, requestId, buf, start, end) => this.onRecord(type, requestId, buf, start, end),
      { fragments: true },
    );
    transport.start(this);
    this.updateTimer();
  }

  // Read when asked: each is a getpeername/getsockname system call, and most requests never ask.
  get remoteAddress(): string | undefined {
    return this.transport.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.transport.remotePort;
  }

  get localAddress(): string | undefined {
    return this.transport.localAddress;
  }

  get localPort(): number | undefined {
    return this.transport.localPort;
  }

  /** Requests in progress on this connection. */
  get activeRequests(): number {
    return this.requests.size;
  }

  /**
   * Server stopping: close after the last response. An idle kept-alive connection closes now;
   * a fresh one was accepted for a request that is on its way, so it gets that request
   * answered first (or a short grace for it to arrive).
   */
  drain(): void {
    if (this.requests.size > 0 || this.served === 0) {
      this.closeAfterFlush = true;
      if (this.requests.size === 0)
        setTimeout(() => this.requests.size === 0 && this.close(), FRESH_GRACE_MS).unref();
    } else this.close();
  }

  // TransportEvents ---------------------------------------------------------------------

  onData(chunk: Buffer, length: number): void {
    try {
      this.decoder.push(chunk, length);
    } catch (err) {
      // A ProtocolError from the decoder, or a violation found in onRecord.
      this.fail(isProtocolError(err) ? `${err.code}: ${err.message}` : (err as Error).message);
      return;
    }
    // Once per read, not per record: a request whose records all came in this read never
    // needs the params deadline at all.
    this.updateTimer();
  }

  onEnd(): void {
    // The front closed its side. Closing the transport is how a front aborts the requests it
    // sent on it (spec 3.5), and Go's net/http/fcgi takes it so too: what is queued goes out,
    // then the connection closes, and requests still running are aborted.
    try {
      this.decoder.end();
    } catch (err) {
      this.fail((err as Error).message);
      return;
    }
    this.close();
  }

  /** A protocol violation: log one line, drop this connection, nothing else. */
  private fail(message: string): void {
    if (this.closed) return;
    const peer = this.remoteAddress ? `${this.remoteAddress}:${this.remotePort}` : 'unix socket';
    this.options.log(`fcgi worker: closing connection from ${peer}: ${message}`);
    this.transport.destroy();
  }

  // A record's content is bytes start..end of buf, only until this returns.
  private onRecord(type: number, requestId: number, buf: Buffer, start: number, end: number): void {
    if (type === FCGI_GET_VALUES || type > FCGI_MAXTYPE || type === 0) {
      this.onManagement(type, requestId, buf.subarray(start, end));
      return;
    }
    if (requestId === FCGI_NULL_REQUEST_ID) throw new Error(`${recordTypeName(type)} with request id 0`);
    const request = this.requests.get(requestId);
    switch (type) {
      case FCGI_BEGIN_REQUEST:
        if (request) throw new Error(`FCGI_BEGIN_REQUEST for request ${requestId}, which is in progress`);
        this.begin(requestId, (buf[start]! << 8) | buf[start + 1]!, buf[start + 2]!);
        return;
      case FCGI_ABORT_REQUEST:
        if (request) this.abort(request);
        return;
      case FCGI_PARAMS:
        // Records of an inactive request id are ignored (spec 3.3): it may have ended early.
        if (!request) return;
        if (!request.params) throw new Error(`FCGI_PARAMS for request ${requestId} after its end`);
        if (end > start) request.params.push(buf, start, end);
        else this.paramsComplete(request, request.params.endText(spans));
        return;
      case FCGI_STDIN:
        // An authorizer gets no body (spec 6.3): a STDIN the front sends anyway is ignored.
        if (!request || request.role === FCGI_AUTHORIZER) return;
        if (request.params) throw new Error(`FCGI_STDIN for request ${requestId} before its params ended`);
        if (request.stdinDone) throw new Error(`FCGI_STDIN for request ${requestId} after its end`);
        this.body(request, buf, start, end);
        return;
      case FCGI_DATA:
        if (!request) return;
        if (request.role !== FCGI_FILTER) throw new Error(`FCGI_DATA for request ${requestId}, not a filter`);
        if (request.params) throw new Error(`FCGI_DATA for request ${requestId} before its params ended`);
        if (request.data) {
          if (end > start) request.data.push(this.keep(buf, start, end));
          else request.data.push(null);
        }
        return;
      default:
        // END_REQUEST, STDOUT, STDERR, GET_VALUES_RESULT, UNKNOWN_TYPE go to the front, not from it.
        throw new Error(`${recordTypeName(type)} sent to an application`);
    }
  }

  private onManagement(type: number, requestId: number, content: Buffer): void {
    if (requestId !== FCGI_NULL_REQUEST_ID) {
      throw new Error(`management record ${recordTypeName(type)} with request id ${requestId}`);
    }
    if (type !== FCGI_GET_VALUES) {
      this.queue(encodeUnknownType(type));
      return;
    }
    const asked = decodeNameValuePairs(content, this.options.maxParamsLength);
    const known: Record<string, string> = {
      [FCGI_MAX_CONNS]: String(this.options.maxConns),
      [FCGI_MAX_REQS]: String(this.options.maxReqs),
      [FCGI_MPXS_CONNS]: '1',
    };
    const answer: [string, string][] = [];
    for (const name of Object.keys(asked)) {
      const value = known[name];
      if (value !== undefined) answer.push([name, value]);
    }
    this.queue(encodeGetValuesResult(answer));
  }

  /** FCGI_BEGIN_REQUEST's body: role and flags. */
  private begin(id: number, role: number, flags: number): void {
    const keepConn = (flags & FCGI_KEEP_CONN) !== 0;
    if (!this.options.roles.has(role) || (role !== 1 && role !== 2 && role !== 3)) {
      this.endUnstarted(id, FCGI_UNKNOWN_ROLE, keepConn);
      return;
    }
    // A stopping server still answers what reaches a connection it has: the front sent it
    // already, and a refusal would be a failed request. The connection closes after it.
    if (this.context.active() >= this.options.maxReqs) {
      this.endUnstarted(id, FCGI_OVERLOADED, keepConn);
      return;
    }
    const request: Request = {
      id,
      role,
      keepConn,
      startedAt: Date.now(),
      params: createParamsDecoder({ maxLength: this.options.maxParamsLength }),
      socket: null,
      req: null,
      res: null,
      data: null,
      stdinDone: false,
      bodyBytes: 0,
      rejected: false,
      ended: false,
      appStatus: 0,
    };
    this.requests.set(id, request);
    this.context.requestStarted();
    this.paramsPending++;
  }

  /** A request we will not run: END_REQUEST with the protocol status, the id stays inactive. */
  private endUnstarted(id: number, protocolStatus: number, keepConn: boolean): void {
    this.queue(encodeEndRequest(id, 0, protocolStatus));
    if (!keepConn) this.closeAfterFlush = true;
  }

  private paramsComplete(request: Request, text: string): void {
    request.params = null;
    this.paramsPending--;
    const head = buildRequestHead(text, spans);
    const socket = new RequestSocket(this, request.id, head.https, text);
    const req = new IncomingMessage(socket as unknown as Socket) as FcgiIncomingMessage;
    req.method = head.method;
    req.url = head.url;
    req.httpVersion = head.httpVersion;
    req.httpVersionMajor = head.httpVersionMajor;
    req.httpVersionMinor = head.httpVersionMinor;
    setRawHeaders(req, head.rawHeaders);
    attachParams(req, text);
    const extras = req as unknown as { requestId: number; role: string; data: Readable | null };
    extras.requestId = request.id;
    extras.role = ROLE_NAMES[request.role];
    const data = request.role === FCGI_FILTER ? new Readable({ read() {} }) : null;
    extras.data = data;
    request.data = data;
    const res = new ServerResponse(req);
    // node:http's HTTP framing is not ours.
    cgiResponse(res);
    res.assignSocket(socket as unknown as Socket);
    res.on('finish', onResponseFinish);
    request.socket = socket;
    request.req = req;
    request.res = res;
    if (request.role === FCGI_AUTHORIZER) {
      request.stdinDone = true;
      req.push(null);
      req.complete = true;
    }
    const declared = Number(head.contentLength ?? 0);
    if (declared > this.options.maxBodyLength) {
      request.rejected = true;
      this.tooLarge(request);
      return;
    }
    this.context.dispatch(req, res, (err) => this.handlerError(request, err));
  }

  private body(request: Request, buf: Buffer, start: number, end: number): void {
    if (end === start) {
      request.stdinDone = true;
      if (request.req && !request.rejected) {
        request.req.complete = true;
        request.req.push(null);
      }
      return;
    }
    if (request.rejected) return;
    request.bodyBytes += end - start;
    if (request.bodyBytes > this.options.maxBodyLength) {
      request.rejected = true;
      this.tooLarge(request);
      return;
    }
    if (request.req && !request.req.push(this.keep(buf, start, end))) this.checkReadPressure();
  }

  /** Body bytes that outlive this read: a view of the shared read buffer would be overwritten. */
  private keep(buf: Buffer, start: number, end: number): Buffer {
    if (!this.transport.sharedReads) return buf.subarray(start, end);
    const copy = Buffer.allocUnsafe(end - start);
    buf.copy(copy, 0, start, end);
    return copy;
  }

  private tooLarge(request: Request): void {
    const res = request.res;
    if (res && !res.headersSent) {
      res.writeHead(413, { 'Content-Type': 'text/plain' });
      res.end('Payload Too Large\n');
    } else if (request.socket) {
      request.appStatus = 1;
      request.socket.destroy();
    }
    request.req?.destroy();
  }

  // One request's unread body must not stall the others: read on until the connection as a
  // whole holds too much, then pause the socket until a consumer reads.
  private checkReadPressure(): void {
    if (this.unreadBody() > READ_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.transport.pause();
    }
  }

  wantsBody(): void {
    if (!this.paused) return;
    if (this.unreadBody() <= READ_HIGH_WATER / 2) {
      this.paused = false;
      this.transport.resume();
    }
  }

  /** Request body bytes received on this connection and not yet read by a handler. */
  private unreadBody(): number {
    let bytes = 0;
    for (const request of this.requests.values()) bytes += request.req?.readableLength ?? 0;
    return bytes;
  }

  private handlerError(request: Request, err: unknown): void {
    const req = request.req;
    const what = `${req?.method ?? '?'} ${req?.url ?? '?'}`;
    const message = err instanceof Error ? err.message : String(err);
    this.options.log(
      `fcgi worker: handler failed on ${what}: ${err instanceof Error ? (err.stack ?? message) : message}`,
    );
    if (request.ended) return;
    this.queue(
      ...encodeStream(FCGI_STDERR, request.id, Buffer.from(`handler failed on ${what}: ${message}\n`)),
    );
    const res = request.res;
    if (res && !res.headersSent && !res.writableEnded) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('Internal Server Error\n');
    } else {
      request.appStatus = 1;
      request.socket?.destroy();
    }
  }

  private abort(request: Request): void {
    // node:http's IncomingMessage emits 'aborted' itself when destroyed before its end.
    request.req?.destroy();
    request.data?.destroy();
    if (request.socket)
      request.socket.destroy(); // → release → END_REQUEST
    else this.release(request.id);
  }

  // RequestSink -------------------------------------------------------------------------

  stdout(requestId: number, data: string | Uint8Array, encoding?: BufferEncoding): boolean {
    const request = this.requests.get(requestId);
    if (!request || request.ended || this.closed) return false;
    if (typeof data === 'string') {
      // A string this short fits one record (at most 3 bytes a char), written in place.
      if (data.length <= COPY_LIMIT) {
        const tail = this.room(textRecordRoom(data, encoding));
        this.appended(writeTextRecord(tail, this.tailEnd, FCGI_STDOUT, requestId, data, encoding));
      } else this.queue(...encodeStream(FCGI_STDOUT, requestId, Buffer.from(data, encoding)));
    } else if (data.length <= COPY_LIMIT) {
      const tail = this.room(recordRoom(data.length));
      this.appended(writeRecord(tail, this.tailEnd, FCGI_STDOUT, requestId, data));
    } else this.queue(...encodeStream(FCGI_STDOUT, requestId, data));
    if (this.outBytes + this.transport.writableLength < WRITE_HIGH_WATER) return true;
    this.waitingDrain.add(request);
    return false;
  }

  release(requestId: number): void {
    const request = this.requests.get(requestId);
    if (!request || request.ended) return;
    request.ended = true;
    this.requests.delete(requestId);
    this.waitingDrain.delete(request);
    if (request.params) this.paramsPending--;
    this.context.requestEnded();
    this.served++;
    if (!this.closed) {
      const tail = this.room(RESPONSE_END_LENGTH);
      writeResponseEnd(tail, this.tailEnd, requestId, request.appStatus, FCGI_REQUEST_COMPLETE);
      this.appended(RESPONSE_END_LENGTH);
    }
    const { req, res, socket } = request;
    if (res && socket) {
      if (req && !req.readableEnded && !req.destroyed && req.listenerCount('data') === 0) req.resume();
      res.detachSocket(socket as unknown as Socket);
      process.nextTick(emitClose, res);
    }
    if (!request.keepConn || this.context.draining()) this.closeAfterFlush = true;
    // Answered before the front sent all of it (a 413, an early reply; a filter's data stream
    // is not tracked): more may be on its way.
    if (!request.stdinDone || request.role === FCGI_FILTER) this.inputLeft = true;
    this.updateTimer();
    // The last request in flight: its response goes out now, in one write with its end, without
    // waiting for the scheduled flush. With others in flight, that flush gathers them all.
    if (this.requests.size === 0 && this.flushScheduled) this.flush();
  }

  // Output -------------------------------------------------------------------------------

  private queue(...buffers: Buffer[]): void {
    this.sealTail();
    for (const buf of buffers) {
      this.out.push(buf);
      this.outBytes += buf.length;
    }
    this.scheduleFlush();
  }

  // Small records (most responses, every response's end) are written one after another into the
  // tail and go out as one view of it: no buffer of their own, no joining before the write. The
  // bytes handed out are never written again (the socket may still hold them); a full tail is
  // left to the views of it and a new one taken.
  private room(bytes: number): Buffer {
    if (this.tail.length - this.tailEnd < bytes) {
      this.sealTail();
      this.tail = Buffer.allocUnsafe(Math.max(this.tail === EMPTY_TAIL ? FIRST_TAIL_SIZE : TAIL_SIZE, bytes));
      this.tailStart = 0;
      this.tailEnd = 0;
    }
    return this.tail;
  }

  private appended(bytes: number): void {
    this.tailEnd += bytes;
    this.outBytes += bytes;
    this.scheduleFlush();
  }

  /** What the tail holds goes into `out`, behind what is there. */
  private sealTail(): void {
    if (this.tailEnd === this.tailStart) return;
    this.out.push(this.tail.subarray(this.tailStart, this.tailEnd));
    this.tailStart = this.tailEnd;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    scheduleFlushOf(this);
  }

  /** Writes what is queued: from flushAll after the turn's callbacks, or at once when a response ends. */
  flush(): void {
    if (this.flushScheduled) {
      this.flushScheduled = false;
      flushDone();
    } else if (this.out.length === 0 && this.tailEnd === this.tailStart) return;
    if (this.closed) return;
    this.sealTail();
    const out = this.out;
    let ok = true;
    if (out.length === 1) ok = this.transport.write(out[0]!);
    else if (out.length > 1) {
      if (this.outBytes <= COPY_LIMIT * 4) ok = this.transport.write(Buffer.concat(out, this.outBytes));
      else ok = this.transport.writev(out);
    }
    this.out = [];
    this.outBytes = 0;
    if (ok && this.waitingDrain.size > 0) this.onDrain();
    if (this.closeAfterFlush && this.requests.size === 0) this.close();
  }

  onDrain(): void {
    const waiting = [...this.waitingDrain];
    this.waitingDrain.clear();
    for (const request of waiting) {
      const res = request.res as (ServerResponse & Record<symbol, unknown>) | null;
      if (!res || res.writableFinished) continue;
      if (kNeedDrain) res[kNeedDrain] = false;
      request.socket?.emit('drain');
      res.emit('drain');
    }
  }

  /** Ends the connection after whatever is queued: a response waiting for its flush still goes out first. */
  private close(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.out.length > 0 || this.tailEnd > this.tailStart) this.flush();
    // Every request read to its end and every byte with the kernel: close(2) at once. The FIN
    // follows the response, and there is no shutdown and no waiting for the front's EOF (about
    // an eighth of a worker's CPU per request when the front does not keep connections). Otherwise
    // end(): a close with bytes still unread would reset the connection, and the front could
    // lose the response, so the rest is read and dropped until the front closes.
    if (
      !this.inputLeft &&
      this.requests.size === 0 &&
      this.decoder.buffered === 0 &&
      this.transport.writableLength === 0
    )
      this.transport.destroy();
    else this.transport.end();
  }

  onClose(): void {
    this.closed = true;
    this.timerMode = 'none';
    for (const request of [...this.requests.values()]) this.abort(request);
    this.context.connectionClosed(this);
  }

  // Timers ------------------------------------------------------------------------------

  // A deadline for params (a new connection, or a request whose params are not complete: slow
  // clients) or for idleness between kept-alive requests. The server checks every connection's
  // deadline now and then (checkDeadline), as node:http does, instead of a timer each: a
  // connection the front does not keep would make and clear one for every request.
  private updateTimer(): void {
    const mode =
      this.paramsPending > 0 || (this.requests.size === 0 && this.served === 0)
        ? 'header'
        : this.requests.size === 0
          ? 'idle'
          : 'none';
    if (mode === this.timerMode) return;
    this.timerMode = mode;
    if (mode !== 'none') this.deadline = Date.now() + this.timeoutOf(mode);
  }

  private timeoutOf(mode: 'header' | 'idle'): number {
    return mode === 'header' ? this.options.headerTimeout : this.options.keepAliveTimeout;
  }

  /** The server's periodic check: a connection past its deadline is dropped (params) or closed (idle). */
  checkDeadline(now: number): void {
    const mode = this.timerMode;
    if (mode === 'none' || this.closed || now < this.deadline) return;
    this.timerMode = 'none';
    if (mode === 'header') this.fail(`no complete request within ${this.timeoutOf(mode)} ms`);
    else this.close();
  }

  /** Age of the oldest request in progress, for the starter's --timeout. */
  oldestRequestStart(): number | undefined {
    let oldest: number | undefined;
    for (const request of this.requests.values())
      if (oldest === undefined || request.startedAt < oldest) oldest = request.startedAt;
    return oldest;
  }
}

// One setImmediate per turn of the event loop for every connection with output queued, not one
// per connection per response: it runs after the turn's 'finish' callbacks, so a whole response
// and its END_REQUEST still go out in one write. When every connection of the batch has flushed
// early (a response ended: the usual case), it is cleared again, so an idle worker's loop does
// not spin once more for nothing.
let flushBatch: Connection[] = [];
let flushImmediate: NodeJS.Immediate | null = null;
/** Connections with a flush scheduled. */
let flushWaiting = 0;

function scheduleFlushOf(connection: Connection): void {
  flushBatch.push(connection);
  flushWaiting++;
  flushImmediate ??= setImmediate(flushAll);
}

function flushDone(): void {
  flushWaiting--;
  if (flushWaiting === 0 && flushImmediate) {
    clearImmediate(flushImmediate);
    flushImmediate = null;
    flushBatch = [];
  }
}

function flushAll(): void {
  const batch = flushBatch;
  flushBatch = [];
  flushImmediate = null;
  // A connection flushed early has nothing left: flush() returns.
  for (const connection of batch) connection.flush();
}

// req.params and req.fcgiParams are built on first read: most handlers never read them, and an
// object of ~20 params costs more than decoding them. Own accessors, so they survive Express's
// prototype swap; assigning req.params (Express does, with its route params) replaces only it.
const kText = Symbol('fcgi.params.text');
const kParams = Symbol('fcgi.params');

type ParamsHolder = { [kText]: string; [kParams]?: Params };

function paramsOf(holder: ParamsHolder): Params {
  let params = holder[kParams];
  if (!params) {
    // The text was checked when the request began.
    params = paramsFromPairs(pairsFromText(holder[kText], Number.POSITIVE_INFINITY, spans));
    holder[kParams] = params;
  }
  return params;
}

const PARAMS: PropertyDescriptor = {
  get(this: ParamsHolder) {
    return paramsOf(this);
  },
  set(this: ParamsHolder, value: unknown) {
    Object.defineProperty(this, 'params', { value, writable: true, enumerable: true, configurable: true });
  },
  enumerable: true,
  configurable: true,
};

const FCGI_PARAMS_PROPERTY: PropertyDescriptor = {
  get(this: ParamsHolder) {
    return paramsOf(this);
  },
  enumerable: true,
  configurable: true,
};

function attachParams(req: IncomingMessage, text: string): void {
  (req as unknown as ParamsHolder)[kText] = text;
  // Two defineProperty calls cost half of one defineProperties.
  Object.defineProperty(req, 'params', PARAMS);
  Object.defineProperty(req, 'fcgiParams', FCGI_PARAMS_PROPERTY);
}

// One listener for every response, not a closure each: 'finish' comes once, with the request's
// socket still assigned (an aborted request released it already and has none).
function onResponseFinish(this: ServerResponse): void {
  const socket = this.socket as unknown as RequestSocket | null;
  socket?.release();
}

function emitClose(res: ServerResponse): void {
  const r = res as ServerResponse & { _closed?: boolean };
  if (r._closed) return;
  r._closed = true;
  (r as { destroyed: boolean }).destroyed = true;
  res.emit('close');
}
