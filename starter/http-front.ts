import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { buildCgiParams, pairsFromRawHeaders } from '../src/client/cgi-params.js';
import { type ClientResponse, createClient } from '../src/client/client.js';
import type { Target } from '../src/client/connection.js';
import { FastCgiClientError } from '../src/client/errors.js';
import { describeErrno, UserError } from '../src/net/errors.js';
import { requestPath } from './front-path.js';
import { copyFramedBody, responseFraming } from './front-response.js';

export interface HttpFrontOptions {
  readonly listen: { readonly host: string; readonly port: number } | { readonly fd: number };
  readonly upstream: Target;
  /** SCRIPT_FILENAME for every request (php-cgi needs one). */
  readonly scriptFilename?: string;
  /** DOCUMENT_ROOT; SCRIPT_FILENAME is the root joined with the path when no scriptFilename. */
  readonly documentRoot?: string;
  /** Milliseconds from forwarding to the response head before a 504 (default 60 s). */
  readonly timeout?: number;
  /** Largest request body; more is 413 (default 100 MiB). */
  readonly maxBodyLength?: number;
  /** Client connections at once; more are closed as they come (default: defaultMaxConnections()). */
  readonly maxConnections?: number;
  /** Milliseconds a client gets to send a request's head before a 408 (default 60 s). */
  readonly headersTimeout?: number;
  /** One line about a worker's response the front had to refuse or cut (default: stderr). */
  readonly log?: (line: string) => void;
}

export interface HttpFront {
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** nginx's worker_connections default, less where RLIMIT_NOFILE is low: half of it stays for the rest. */
export function defaultMaxConnections(openFilesLimit: number | undefined): number {
  if (openFilesLimit === undefined) return 512;
  return Math.max(1, Math.min(512, Math.floor(openFilesLimit / 2)));
}

/** The soft RLIMIT_NOFILE of this process, from /proc (Linux), or undefined. */
export function openFilesLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line && line[1] !== 'unlimited' ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Ends the client's connection once what is queued on it is written: it cannot carry another response. */
function closeAfterFlush(socket: Socket): void {
  socket.once('finish', () => socket.destroy());
  socket.end();
}

/**
 * Passes a worker's response on, framed as nginx frames an upstream's: a head it cannot
 * frame is 502; a body longer than its Content-Length is cut there and a shorter one ends
 * the connection, which then never carries another response (a keep-alive client would read
 * the excess as the answer to its next request, or wait for bytes that never come).
 */
async function forwardResponse(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  response: ClientResponse,
  abort: () => void,
  log: (line: string) => void,
): Promise<void> {
  const what = `${req.method} ${req.url}`;
  const framing = responseFraming(response.status, response.headers);
  if (!framing.ok) {
    abort();
    log(`http: refused a worker's response to ${what}: ${framing.reason}`);
    plain(res, 502, 'Bad Gateway\n');
    return;
  }
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(response.headers))
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  res.writeHead(response.status, response.statusText || undefined, headers);
  // No body goes out for HEAD, 204 and 304 (node:http drops it), so a length cannot disagree.
  const bodyless = req.method === 'HEAD' || response.status === 204 || response.status === 304;
  const declared = bodyless ? undefined : framing.contentLength;
  const socket = req.socket;
  const outcome = await copyFramedBody(response.body, res, declared);
  if (outcome === 'exact') {
    res.end();
    return;
  }
  abort();
  log(
    `http: a worker's body for ${what} is ${outcome === 'long' ? 'longer' : 'shorter'} than its ` +
      `Content-Length ${declared}: ${outcome === 'long' ? 'cut there' : 'sent short'}, client connection closed`,
  );
  if (outcome === 'long') res.end();
  closeAfterFlush(socket);
}

/**
 * A small HTTP front for development and simple deployments: each request becomes a
 * FastCGI request to the pool, bodies streamed both ways with backpressure. Production
 * belongs behind nginx, Apache or lighttpd (see the README).
 */
export async function startHttpFront(options: HttpFrontOptions): Promise<HttpFront> {
  const client = createClient(options.upstream, { responseTimeout: options.timeout ?? 60_000 });
  const maxBody = options.maxBodyLength ?? 100 * 1024 * 1024;
  const log = options.log ?? ((line: string) => process.stderr.write(`fcgi-prefork: ${line}\n`));

  // node:http looks for requests past headersTimeout every connectionsCheckingInterval.
  const checking = options.headersTimeout !== undefined ? Math.min(30_000, options.headersTimeout) : 30_000;
  const server = http.createServer({ connectionsCheckingInterval: checking }, async (req, res) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      plain(res, 413, 'Payload Too Large\n');
      req.resume();
      return;
    }
    const url = req.url ?? '/';
    const path = requestPath(url);
    if (!path.ok) {
      res.shouldKeepAlive = false;
      plain(res, 400, 'Bad Request\n');
      req.resume();
      return;
    }
    const params = buildCgiParams({
      method: req.method ?? 'GET',
      url,
      path: path.path,
      httpVersion: req.httpVersion,
      headers: pairsFromRawHeaders(req.rawHeaders),
      remoteAddress: req.socket.remoteAddress,
      remotePort: req.socket.remotePort,
      serverAddress: req.socket.localAddress,
      serverPort: req.socket.localPort,
      scriptFilename: options.scriptFilename,
      documentRoot: options.documentRoot,
    });
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    let received = 0;
    const body = hasBody
      ? (async function* () {
          for await (const chunk of req) {
            received += (chunk as Buffer).length;
            if (received > maxBody) throw new FastCgiClientError('ABORTED', 'request body over the limit');
            yield chunk as Buffer;
          }
        })()
      : undefined;
    try {
      const response = await client.request({ params, ...(body ? { body } : {}), signal: controller.signal });
      await forwardResponse(req, res, response, () => controller.abort(), log);
    } catch (err) {
      if (received > maxBody) plain(res, 413, 'Payload Too Large\n');
      else if (err instanceof FastCgiClientError && err.code === 'TIMEOUT')
        plain(res, 504, 'Gateway Timeout\n');
      else if (err instanceof FastCgiClientError && err.code === 'ABORTED') res.destroy();
      else plain(res, 502, 'Bad Gateway\n');
    }
  });
  server.keepAliveTimeout = 5000;
  server.maxConnections = options.maxConnections ?? defaultMaxConnections(openFilesLimit());
  if (options.headersTimeout !== undefined) {
    server.headersTimeout = options.headersTimeout;
    server.requestTimeout = Math.max(server.requestTimeout, options.headersTimeout);
  }

  const where =
    'fd' in options.listen ? `fd ${options.listen.fd}` : `${options.listen.host}:${options.listen.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new UserError(`HTTP address ${where} ${describeErrno(e.code)}`)),
    );
    if ('fd' in options.listen) server.listen({ fd: options.listen.fd }, resolve);
    else server.listen(options.listen.port, options.listen.host, resolve);
  });
  const address = server.address() as { address: string; port: number };
  return {
    address: { host: address.address, port: address.port },
    close: () =>
      new Promise<void>((resolve) => {
        client.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
