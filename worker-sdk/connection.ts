import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Transport, TransportEvents } from '../src/net/index.js';
import {
  createPairSpans,
  createParamsDecoder,
  createRecordReader,
  decodeNameValuePairs,
  encodeEndRequest,
  encodeGetValuesResult,
  encodeStream,
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
  FCGI_UNKNOWN_ROLE,
  isProtocolError,
  type ParamsDecoder,
  recordTypeName,
} from '../src/protocol/index.js';
import { type Deadline, type DeadlineState, deadlineOf, expiryMessage, timeoutOf } from './deadlines.js';
import { closeExchange, emitDrain, type FcgiIncomingMessage, openExchange } from './http-exchange.js';
import type { ResolvedOptions } from './options.js';
import { OUTPUT_HIGH_WATER, OUTPUT_LOW_WATER, type OutputOwner, OutputQueue } from './output-queue.js';
import { RequestParams } from './request-params.js';
import { type RequestSink, RequestSocket } from './request-socket.js';

export type { FcgiIncomingMessage, FcgiRequestExtras } from './http-exchange.js';

/** What a connection needs from its server. */
export interface ConnectionContext {
  readonly options: ResolvedOptions;
  /** Runs the request listeners; reports a throw or a rejection to `onError`. */
  dispatch(req: FcgiIncomingMessage, res: ServerResponse, onError: (err: unknown) => void): void;
  /** Requests in progress across all connections, for FCGI_MAX_REQS. */
  active(): number;
  requestStarted(): void;
  requestEnded(): void;
  /**
   * Takes params bytes from what the worker's requests in progress may hold. Past that, the
   * connections holding the most are closed to make room; false when `connection` is itself
   * the one holding the most.
   */
  takeParams(bytes: number, connection: Connection): boolean;
  /** Gives them back: their request ended. */
  giveParams(bytes: number): void;
  /** The server is stopping: finish what is in flight, take nothing new. */
  draining(): boolean;
  connectionClosed(connection: Connection): void;
}

interface Request {
  readonly id: number;
  readonly role: 1 | 2 | 3;
  readonly keepConn: boolean;
  readonly startedAt: number;
  /** Until the empty PARAMS record. */
  params: ParamsDecoder | null;
  /** PARAMS bytes it holds of the connection's and the worker's allowance. */
  paramsBytes: number;
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

/** Unread request body, summed over a connection's requests, above which we stop reading it. */
const READ_HIGH_WATER = 4 * 1024 * 1024;
/** How long a stopping server waits for the first request of a just-accepted connection. */
const FRESH_GRACE_MS = 2000;
/**
 * Where the pairs of a params stream lie in its text: one for the process, each use runs from
 * a scan to the end of reading the pairs without a break.
 */
const spans = createPairSpans();

/**
 * One transport connection from the front: records in, demultiplexed by request id into
 * node:http request/response pairs (http-exchange.ts); responses out through a bounded queue
 * (output-queue.ts) as STDOUT records and END_REQUEST. The state machine is one switch on the
 * record type, as in Go's net/http/fcgi, but strict. What a peer can make it hold is bounded:
 * params (per request, per connection, per worker), unread bodies and unread output (reading
 * stops), and time (deadlines.ts).
 */
export class Connection implements RequestSink, TransportEvents, OutputOwner, DeadlineState {
  readonly transport: Transport;
  private readonly context: ConnectionContext;
  private readonly options: ResolvedOptions;
  private readonly requests = new Map<number, Request>();
  private readonly decoder;
  private readonly output: OutputQueue;
  private closeAfterFlush = false;
  /** transport.end() called: nothing more is read or written. */
  private ending = false;
  /** A request ended before its input did: bytes of it may still come. */
  private inputLeft = false;
  private closed = false;
  /** fail() dropped it: the close is on its way. */
  private failed = false;
  private readPaused = false;
  /** PARAMS bytes held by this connection's requests in progress. */
  paramsHeld = 0;
  private readonly waitingDrain = new Set<Request>();
  private deadline: Deadline = 'none';
  /** When the deadline's time is up, as Date.now(). */
  private deadlineAt = 0;
  /** A body record came since the deadline was set. */
  private bodyProgress = false;
  // DeadlineState
  outputStalled = false;
  paramsPending = 0;
  bodyPending = 0;
  bodyPaused = false;
  served = 0;

  /** Made as the connection is accepted, before its first read. */
  constructor(transport: Transport, context: ConnectionContext) {
    this.transport = transport;
    this.context = context;
    this.options = context.options;
    this.output = new OutputQueue(transport, this);
    this.decoder = createRecordReader(
      (type, requestId, buf, start, end) => this.onRecord(type, requestId, buf, start, end),
      { fragments: true },
    );
    transport.start(this);
    this.updateDeadline();
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
    // needs a deadline at all.
    this.checkOutput();
    this.updateDeadline();
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

  onDrain(): void {
    this.checkOutput();
    this.wakeWriters();
  }

  onClose(): void {
    this.closed = true;
    this.output.closed = true;
    this.deadline = 'none';
    for (const request of [...this.requests.values()]) this.abort(request);
    this.context.connectionClosed(this);
  }

  /**
   * A protocol violation or a limit passed: log one line, drop this connection, nothing else.
   * Its params go back to the worker at once: the close that ends its requests comes later.
   */
  fail(message: string): void {
    if (this.closed || this.failed) return;
    this.failed = true;
    this.options.log(`fcgi worker: closing connection from ${this.peerName()}: ${message}`);
    for (const request of this.requests.values()) this.giveParams(request);
    this.transport.destroy();
  }

  /** For a log line: a unix socket's peer has no address, nor has a TCP peer once it is gone. */
  private peerName(): string {
    return this.remoteAddress
      ? `${this.remoteAddress}:${this.remotePort}`
      : 'an unnamed peer (unix socket, or gone)';
  }

  private giveParams(request: Request): void {
    this.paramsHeld -= request.paramsBytes;
    this.context.giveParams(request.paramsBytes);
    request.paramsBytes = 0;
  }

  // Records ------------------------------------------------------------------------------

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
        if (end > start) {
          this.takeParams(request, end - start);
          request.params.push(buf, start, end);
        } else this.paramsComplete(request, request.params.endText(spans));
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
      this.output.unknownType(type);
      return;
    }
    const asked = decodeNameValuePairs(content, this.options.maxParamsLength);
    // A Map: the names are the peer's, and `constructor` must not find Object's.
    const known = new Map([
      [FCGI_MAX_CONNS, String(this.options.maxConns)],
      [FCGI_MAX_REQS, String(this.options.maxReqs)],
      [FCGI_MPXS_CONNS, '1'],
    ]);
    const answer: [string, string][] = [];
    for (const name of Object.keys(asked)) {
      const value = known.get(name);
      if (value !== undefined) answer.push([name, value]);
    }
    this.output.push([encodeGetValuesResult(answer)]);
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
      paramsBytes: 0,
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
    this.output.push([encodeEndRequest(id, 0, protocolStatus)]);
    if (!keepConn) this.closeAfterFlush = true;
  }

  // Params are held as long as their request runs: what a peer can make the worker hold is
  // bounded by connection and by worker, not only by request.
  private takeParams(request: Request, bytes: number): void {
    const limit = this.options.maxConnectionParamsLength;
    if (this.paramsHeld + bytes > limit)
      throw new Error(`params of the requests on this connection over the limit of ${limit} bytes`);
    if (!this.context.takeParams(bytes, this))
      throw new Error(
        `params of all requests in progress over the limit of ${this.options.maxWorkerParamsLength} bytes, the most of them here`,
      );
    this.paramsHeld += bytes;
    request.paramsBytes += bytes;
  }

  private paramsComplete(request: Request, text: string): void {
    request.params = null;
    this.paramsPending--;
    const params = new RequestParams(text);
    const socket = new RequestSocket(this, request.id, false, params);
    const exchange = openExchange(params, spans, socket, request.role);
    request.socket = socket;
    request.req = exchange.req;
    request.res = exchange.res;
    request.data = exchange.data;
    if (request.role === FCGI_AUTHORIZER) request.stdinDone = true;
    else this.bodyPending++;
    if (Number(exchange.contentLength ?? 0) > this.options.maxBodyLength) {
      request.rejected = true;
      this.tooLarge(request);
      return;
    }
    this.context.dispatch(exchange.req, exchange.res, (err) => this.handlerError(request, err));
  }

  private body(request: Request, buf: Buffer, start: number, end: number): void {
    this.bodyProgress = true;
    if (end === start) {
      request.stdinDone = true;
      this.bodyPending--;
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

  private handlerError(request: Request, err: unknown): void {
    const req = request.req;
    const what = `${req?.method ?? '?'} ${req?.url ?? '?'}`;
    const message = err instanceof Error ? err.message : String(err);
    this.options.log(
      `fcgi worker: handler failed on ${what}: ${err instanceof Error ? (err.stack ?? message) : message}`,
    );
    if (request.ended) return;
    this.output.push(
      encodeStream(FCGI_STDERR, request.id, Buffer.from(`handler failed on ${what}: ${message}\n`)),
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

  // Reading -----------------------------------------------------------------------------

  // One request's unread body must not stall the others: read on until the connection as a
  // whole holds too much, then pause until a consumer reads.
  private checkReadPressure(): void {
    if (this.bodyPaused || this.unreadBody() <= READ_HIGH_WATER) return;
    this.bodyPaused = true;
    this.updateReading();
  }

  wantsBody(): void {
    if (!this.bodyPaused || this.unreadBody() > READ_HIGH_WATER / 2) return;
    this.bodyPaused = false;
    this.updateReading();
    this.updateDeadline();
  }

  /** Request body bytes received on this connection and not yet read by a handler. */
  private unreadBody(): number {
    let bytes = 0;
    for (const request of this.requests.values()) bytes += request.req?.readableLength ?? 0;
    return bytes;
  }

  // A peer that never reads what it asked for (unknown types, GET_VALUES, responses) must not
  // grow the worker: past the high-water mark no more is read until the queue is down to the
  // low one.
  private checkOutput(): void {
    const queued = this.output.queued;
    if (this.outputStalled ? queued > OUTPUT_LOW_WATER : queued <= OUTPUT_HIGH_WATER) return;
    this.outputStalled = !this.outputStalled;
    this.updateReading();
    this.updateDeadline();
  }

  private updateReading(): void {
    const pause = this.bodyPaused || this.outputStalled;
    if (pause === this.readPaused) return;
    this.readPaused = pause;
    if (pause) this.transport.pause();
    else this.transport.resume();
  }

  // RequestSink -------------------------------------------------------------------------

  stdout(requestId: number, data: string | Uint8Array, encoding?: BufferEncoding): boolean {
    const request = this.requests.get(requestId);
    if (!request || request.ended || this.closed) return false;
    this.output.stdout(requestId, data, encoding);
    if (this.output.queued < OUTPUT_HIGH_WATER) return true;
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
    else if (!request.stdinDone) this.bodyPending--;
    this.giveParams(request);
    this.context.requestEnded();
    this.served++;
    if (!this.closed) this.output.end(requestId, request.appStatus, FCGI_REQUEST_COMPLETE);
    const { req, res, socket } = request;
    if (req && res && socket) closeExchange(req, res, socket);
    if (!request.keepConn || this.context.draining()) this.closeAfterFlush = true;
    // Answered before the front sent all of it (a 413, an early reply; a filter's data stream
    // is not tracked): more may be on its way.
    if (!request.stdinDone || request.role === FCGI_FILTER) this.inputLeft = true;
    this.updateDeadline();
    // The last request in flight: its response goes out now, in one write with its end, without
    // waiting for the scheduled flush. With others in flight, that flush gathers them all.
    if (this.requests.size === 0 && this.output.scheduled) this.output.flush();
  }

  // Output -------------------------------------------------------------------------------

  /** The queue wrote what it had (OutputOwner). */
  flushed(ok: boolean): void {
    if (ok && this.waitingDrain.size > 0) this.wakeWriters();
    this.checkOutput();
    if (this.closeAfterFlush && this.requests.size === 0) this.close();
  }

  private wakeWriters(): void {
    if (this.waitingDrain.size === 0) return;
    const waiting = [...this.waitingDrain];
    this.waitingDrain.clear();
    for (const request of waiting) if (request.res) emitDrain(request.res, request.socket);
  }

  /** Ends the connection after whatever is queued: a response waiting for its flush still goes out first. */
  private close(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.output.pending) this.output.flush();
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

  // Deadlines ---------------------------------------------------------------------------

  // The server checks every connection's deadline now and then (checkDeadline), as node:http
  // does, instead of a timer each: a connection the front does not keep would make and clear one
  // for every request. A body's deadline starts again with each of its records.
  private updateDeadline(): void {
    const deadline = this.closed ? 'none' : deadlineOf(this);
    if (deadline === this.deadline && !(deadline === 'body' && this.bodyProgress)) return;
    this.bodyProgress = false;
    this.deadline = deadline;
    if (deadline !== 'none') this.deadlineAt = Date.now() + timeoutOf(deadline, this.options);
  }

  /** The server's periodic check: a connection past its deadline is dropped (or, idle, closed). */
  checkDeadline(now: number): void {
    const deadline = this.deadline;
    if (deadline === 'none' || this.closed || now < this.deadlineAt) return;
    this.deadline = 'none';
    const message = expiryMessage(deadline, this.options);
    if (message) this.fail(message);
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
