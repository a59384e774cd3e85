import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Params } from '../src/protocol/index.js';
import type { FcgiIncomingMessage } from './connection.js';
import type { WorkerOptions } from './options.js';
import { createServer, type FcgiServer, type ListenOptions, type RequestListener } from './server.js';

export interface FetchInfo {
  /** The node:http request underneath, with the FastCGI params. */
  readonly req: FcgiIncomingMessage;
  readonly params: Params;
}

export type FetchHandler = (request: Request, info: FetchInfo) => Response | Promise<Response>;

function toRequest(req: FcgiIncomingMessage, signal: AbortSignal): Request {
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
  host ||= req.fcgiParams.SERVER_NAME || 'localhost';
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  let url: URL;
  try {
    url = new URL(req.url ?? '/', `${scheme}://${host}`);
  } catch {
    url = new URL(req.url ?? '/', `${scheme}://localhost`);
  }
  const method = req.method ?? 'GET';
  const body =
    method === 'GET' || method === 'HEAD' ? null : (Readable.toWeb(req) as ReadableStream<Uint8Array>);
  return new Request(url, { method, headers, body, signal, duplex: 'half' } as RequestInit);
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
    const controller = new AbortController();
    const abort = () => controller.abort();
    req.once('aborted', abort);
    res.once('close', () => {
      if (!res.writableFinished) abort();
    });
    const request = toRequest(req, controller.signal);
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
