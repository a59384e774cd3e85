import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { responseBodySource } from '../src/node-internals.js';
import type { Params } from '../src/protocol/index.js';
import type { FcgiIncomingMessage } from './connection.js';
import type { WorkerOptions } from './options.js';
import { requestParams } from './request-params.js';
import { createServer, type FcgiServer, type ListenOptions, type RequestListener } from './server.js';

export interface FetchInfo {
  /** The node:http request underneath, with the FastCGI params. */
  readonly req: FcgiIncomingMessage;
  readonly params: Params;
}

export type FetchHandler = (request: Request, info: FetchInfo) => Response | Promise<Response>;

/**
 * The Request a fetch handler gets: its signal is made when first read, and aborted when the
 * front aborts the request or the connection drops. Handing undici's Request a signal to follow
 * costs a WeakRef and a FinalizationRegistry entry per request, and the garbage collection
 * they bring was most of a fetch handler's cost: 42-50 µs per request with it, 28-29 without,
 * in-process. The class is made on first use, not at load: extending the global Request loads
 * undici, 9 MiB that a createServer worker never needs.
 */
function makeRequestClass() {
  class FastCgiRequest extends Request {
    #controller: AbortController | undefined;
    #aborted = false;

    /** The front aborted the request or the connection dropped. */
    static abort(request: FastCgiRequest): void {
      request.#aborted = true;
      request.#controller?.abort();
    }

    static signalOf(request: FastCgiRequest): AbortSignal {
      if (!request.#controller) {
        request.#controller = new AbortController();
        if (request.#aborted) request.#controller.abort();
      }
      return request.#controller.signal;
    }
  }
  // Request declares signal as a property, which a subclass may not redeclare as an accessor.
  Object.defineProperty(FastCgiRequest.prototype, 'signal', {
    get(this: FastCgiRequest) {
      return FastCgiRequest.signalOf(this);
    },
    enumerable: true,
    configurable: true,
  });
  return FastCgiRequest;
}

type FastCgiRequestClass = ReturnType<typeof makeRequestClass>;
type FastCgiRequest = InstanceType<FastCgiRequestClass>;
let requestClass: FastCgiRequestClass | null = null;

/** A host (and port) that cannot change where a path joined to it begins. */
const PLAIN_HOST = /^[\w.:[\]-]+$/;

function toRequest(req: FcgiIncomingMessage): FastCgiRequest {
  const headers = new Headers();
  const raw = req.rawHeaders;
  // The host from the raw headers: reading req.headers would have node:http build it first.
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === 'host') host = raw[i + 1];
    try {
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // a header value fetch refuses (control chars): leave it out rather than fail the request
    }
  }
  host ||= requestParams(req).value('SERVER_NAME') || 'localhost';
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  // The usual path and host join as text, for the Request to parse once (a URL object it would
  // turn back into text and parse again); anything else is resolved as a URL first.
  const path = req.url ?? '/';
  let url: string;
  if (path.startsWith('/') && PLAIN_HOST.test(host)) url = `${scheme}://${host}${path}`;
  else {
    try {
      url = new URL(path, `${scheme}://${host}`).href;
    } catch {
      url = new URL(path, `${scheme}://localhost`).href;
    }
  }
  const method = req.method ?? 'GET';
  const body =
    method === 'GET' || method === 'HEAD' ? null : (Readable.toWeb(req) as ReadableStream<Uint8Array>);
  requestClass ??= makeRequestClass();
  return new requestClass(url, { method, headers, body, duplex: 'half' } as RequestInit);
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

async function sendResponse(response: Response, res: ServerResponse, head: boolean): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) if (name !== 'set-cookie') res.setHeader(name, value);
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
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

/**
 * A node:http listener around a fetch-style handler: Request in, Response out, bodies as web
 * streams. `request.signal` aborts when the front aborts the request or the connection drops.
 */
export function createFetchListener(handler: FetchHandler): RequestListener {
  return async (req, res) => {
    const request = toRequest(req);
    const abort = () => requestClass?.abort(request);
    req.once('aborted', abort);
    res.once('close', () => {
      if (!res.writableFinished) abort();
    });
    const response = await handler(request, {
      req,
      get params() {
        return req.fcgiParams;
      },
    });
    if (!(response instanceof Response)) throw new TypeError('the fetch handler did not return a Response');
    await sendResponse(response, res, req.method === 'HEAD');
  };
}

/** Serves a fetch-style handler: on fd 0 by default (under a starter), or where `options` says. */
export function serve(handler: FetchHandler, options: WorkerOptions & ListenOptions = {}): FcgiServer {
  const server = createServer(createFetchListener(handler), options);
  if (options.fd === undefined && options.port === undefined && options.path === undefined) server.listen();
  else server.listen(options);
  return server;
}
