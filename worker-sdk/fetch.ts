import type { ServerResponse } from 'node:http';
import { responseBodySource } from '../src/node-internals.js';
import type { Params } from '../src/protocol/index.js';
import type { FcgiIncomingMessage } from './connection.js';
import {
  abortRequest,
  eagerRequests,
  type LazyRequests,
  lazyRequests,
  type RequestFactory,
} from './fetch-request.js';
import { keptResponses, type ResponseClass, type ResponseHead } from './fetch-response.js';
import type { WorkerOptions } from './options.js';
import { createServer, type FcgiServer, type ListenOptions, type RequestListener } from './server.js';

export interface FetchInfo {
  /** The node:http request underneath, with the FastCGI params. */
  readonly req: FcgiIncomingMessage;
  readonly params: Params;
}

export type FetchHandler = (request: Request, info: FetchInfo) => Response | Promise<Response>;

/** Options of serve() and createFetchListener(). */
export interface FetchOptions {
  /**
   * Replace the global Request and Response with lazy ones (default true), as
   * @hono/node-server does: a handler's Request is made of the node request only as far as it
   * is read, and a Response of a string or bytes is written as it is, without undici's objects
   * and their body streams. `instanceof Request`/`Response` hold for undici's own as well, and
   * fetch() takes a lazy Request. false: undici's classes, each request made in full.
   */
  readonly overrideGlobalObjects?: boolean;
}

interface Lazy {
  readonly requests: LazyRequests;
  readonly responses: ResponseClass;
}

let lazy: Lazy | null = null;
let eager: RequestFactory | null = null;

function eagerOnce(): RequestFactory {
  eager ??= eagerRequests();
  return eager;
}

function setGlobal(name: 'Request' | 'Response' | 'fetch', value: unknown): void {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

/** The lazy Request and Response, installed as the globals once per process. */
function installLazy(): Lazy {
  if (lazy) return lazy;
  const requests = lazyRequests();
  const responses = keptResponses();
  const undiciFetch = globalThis.fetch;
  setGlobal('Request', requests.GlobalRequest);
  setGlobal('Response', responses.GlobalResponse);
  setGlobal('fetch', function fetch(input: ConstructorParameters<typeof Request>[0], init?: RequestInit) {
    return undiciFetch(requests.unwrap(input), init);
  });
  lazy = { requests, responses };
  return lazy;
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

function setHeaders(res: ServerResponse, headers: Headers | readonly [string, string][]): void {
  const cookies: string[] = [];
  for (const [name, value] of headers) {
    if (name === 'set-cookie') cookies.push(value);
    else res.setHeader(name, value);
  }
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
}

/** A kept Response (fetch-response.ts): its string or bytes written at once. */
function sendKept(kept: ResponseHead, res: ServerResponse, head: boolean): void {
  res.statusCode = kept.status;
  if (kept.statusText) res.statusMessage = kept.statusText;
  setHeaders(res, kept.headers);
  if (kept.body === null || head) res.end();
  else res.end(kept.body);
}

async function sendResponse(response: Response, res: ServerResponse, head: boolean): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  setHeaders(res, response.headers);
  if (!response.body || head) {
    await response.body?.cancel();
    res.end();
    return;
  }
  // undici's Response keeps the string or bytes it was made from: such a body is written at
  // once, without a reader and the promises of its reads (most of a fetch response's cost).
  const source = responseBodySource(response);
  if (source !== null) {
    res.end(source);
    return;
  }
  const reader = response.body.getReader();
  const first = await reader.read();
  if (first.done) {
    res.end();
    return;
  }
  // A string or buffer body is one chunk and then the end, both ready at once: one write, with
  // Content-Length. A streamed body may wait long for its second chunk (SSE, long polling):
  // the head and the first chunk must not wait with it.
  const pending = reader.read();
  const ready = await Promise.race([pending, new Promise<null>((resolve) => setImmediate(resolve, null))]);
  if (ready?.done) {
    res.end(first.value);
    return;
  }
  res.write(first.value);
  let chunk: Awaited<ReturnType<typeof reader.read>> = ready ?? (await pending);
  while (!chunk.done) {
    if (res.destroyed) {
      await reader.cancel();
      return;
    }
    if (!res.write(chunk.value)) await waitDrain(res);
    chunk = await reader.read();
  }
  res.end();
}

// A class, not an object literal with a getter: such a literal defines its accessor anew for
// each object, and its closure kept each request alive past the young generation's
// collections, until a full one (most of a fetch handler's garbage collection).
class Info implements FetchInfo {
  constructor(readonly req: FcgiIncomingMessage) {}

  get params(): Params {
    return this.req.fcgiParams;
  }
}

/** The request's signal aborts when the front aborts the request or the connection drops. */
function followAbort(request: Request, req: FcgiIncomingMessage, res: ServerResponse): void {
  const abort = () => abortRequest(request);
  req.once('aborted', abort);
  res.once('close', () => {
    if (!res.writableFinished) abort();
  });
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | null)?.then === 'function';
}

/**
 * A node:http listener around a fetch-style handler: Request in, Response out, bodies as web
 * streams. `request.signal` aborts when the front aborts the request or the connection drops.
 */
export function createFetchListener(handler: FetchHandler, options: FetchOptions = {}): RequestListener {
  const requests = options.overrideGlobalObjects === false ? eagerOnce() : installLazy().requests;
  const send = (response: Response, req: FcgiIncomingMessage, res: ServerResponse) => {
    if (!(response instanceof Response)) throw new TypeError('the fetch handler did not return a Response');
    return sendResponse(response, res, req.method === 'HEAD');
  };
  return (req, res) => {
    let result: Response | Promise<Response>;
    let request: Request;
    try {
      request = requests.make(req);
      result = handler(request, new Info(req));
    } catch (err) {
      return Promise.reject(err);
    }
    // A kept Response, ready at once, is written before anything could abort the request.
    const kept = isPromise(result) ? null : lazy?.responses.kept(result);
    if (kept) return sendKept(kept, res, req.method === 'HEAD');
    followAbort(request, req, res);
    if (!isPromise(result)) return send(result, req, res);
    return result.then((response) => {
      const kept = lazy?.responses.kept(response);
      return kept ? sendKept(kept, res, req.method === 'HEAD') : send(response, req, res);
    });
  };
}

/** Serves a fetch-style handler: on fd 0 by default (under a starter), or where `options` says. */
export function serve(
  handler: FetchHandler,
  options: WorkerOptions & ListenOptions & FetchOptions = {},
): FcgiServer {
  const server = createServer(createFetchListener(handler, options), options);
  if (options.fd === undefined && options.port === undefined && options.path === undefined) server.listen();
  else server.listen(options);
  return server;
}
