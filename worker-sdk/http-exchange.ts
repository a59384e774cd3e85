import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { IncomingMessage, kNeedDrain, ServerResponse } from '../src/node-internals.js';
import type { PairSpans, Params } from '../src/protocol/index.js';
import { cgiResponse } from './cgi-head.js';
import { setRawHeaders } from './request-head.js';
import { attachParams, type RequestParams } from './request-params.js';
import type { RequestSocket } from './request-socket.js';

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

/** One request as node:http has it: the request, its response, and a filter's data stream. */
export interface HttpExchange {
  readonly req: FcgiIncomingMessage;
  readonly res: ServerResponse;
  readonly data: Readable | null;
  /** CONTENT_LENGTH as sent. */
  readonly contentLength: string | undefined;
}

const ROLE_NAMES = { 1: 'responder', 2: 'authorizer', 3: 'filter' } as const;

/**
 * node:http's request and response for a request whose params are complete; `spans` holds
 * where the pairs lie, from the scan the stream's end made. The response writes to `socket`.
 */
export function openExchange(
  params: RequestParams,
  spans: PairSpans,
  socket: RequestSocket,
  role: 1 | 2 | 3,
): HttpExchange {
  const head = params.head(spans);
  socket.encrypted = head.https;
  const req = new IncomingMessage(socket as unknown as Socket) as FcgiIncomingMessage;
  req.method = head.method;
  req.url = head.url;
  req.httpVersion = head.httpVersion;
  req.httpVersionMajor = head.httpVersionMajor;
  req.httpVersionMinor = head.httpVersionMinor;
  setRawHeaders(req, head.rawHeaders);
  attachParams(req, params);
  const extras = req as unknown as { requestId: number; role: string; data: Readable | null };
  extras.requestId = socket.requestId;
  extras.role = ROLE_NAMES[role];
  const data = role === 3 ? new Readable({ read() {} }) : null;
  extras.data = data;
  const res = new ServerResponse(req);
  // node:http's HTTP framing is not ours.
  cgiResponse(res);
  res.assignSocket(socket as unknown as Socket);
  res.on('finish', onResponseFinish);
  if (role === 2) {
    // An authorizer gets no body (spec 6.3).
    req.push(null);
    req.complete = true;
  }
  return { req, res, data, contentLength: head.contentLength };
}

/** The request is over: the response lets go of its socket and emits 'close'; an unread body is dropped. */
export function closeExchange(req: IncomingMessage, res: ServerResponse, socket: RequestSocket): void {
  if (!req.readableEnded && !req.destroyed && req.listenerCount('data') === 0) req.resume();
  res.detachSocket(socket as unknown as Socket);
  process.nextTick(emitClose, res);
}

/** The connection can take more output: a response that was told to wait may write again. */
export function emitDrain(res: ServerResponse, socket: RequestSocket | null): void {
  if (res.writableFinished) return;
  if (kNeedDrain) (res as ServerResponse & Record<symbol, unknown>)[kNeedDrain] = false;
  socket?.emit('drain');
  res.emit('drain');
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
