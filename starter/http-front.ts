import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { buildCgiParams, pairsFromRawHeaders } from '../src/client/cgi-params.js';
import { createClient } from '../src/client/client.js';
import type { Target } from '../src/client/connection.js';
import { FastCgiClientError } from '../src/client/errors.js';
import { describeErrno, UserError } from '../src/net/errors.js';

export interface HttpFrontOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly upstream: Target;
  /** SCRIPT_FILENAME for every request (php-cgi needs one). */
  readonly scriptFilename?: string;
  /** DOCUMENT_ROOT; SCRIPT_FILENAME is the root joined with the path when no scriptFilename. */
  readonly documentRoot?: string;
  /** Milliseconds from forwarding to the response head before a 504 (default 60 s). */
  readonly timeout?: number;
  /** Largest request body; more is 413 (default 100 MiB). */
  readonly maxBodyLength?: number;
}

export interface HttpFront {
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

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

/**
 * A small HTTP front for development and simple deployments: each request becomes a
 * FastCGI request to the pool, bodies streamed both ways with backpressure. Production
 * belongs behind nginx, Apache or lighttpd (see the README).
 */
export async function startHttpFront(options: HttpFrontOptions): Promise<HttpFront> {
  const client = createClient(options.upstream, { responseTimeout: options.timeout ?? 60_000 });
  const maxBody = options.maxBodyLength ?? 100 * 1024 * 1024;

  const server = http.createServer(async (req, res) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      plain(res, 413, 'Payload Too Large\n');
      req.resume();
      return;
    }
    const params = buildCgiParams({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
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
      const headers: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(response.headers))
        if (!HOP_BY_HOP.has(name)) headers[name] = value;
      res.writeHead(response.status, response.statusText || undefined, headers);
      await pipeline(response.body, res);
    } catch (err) {
      if (received > maxBody) plain(res, 413, 'Payload Too Large\n');
      else if (err instanceof FastCgiClientError && err.code === 'TIMEOUT')
        plain(res, 504, 'Gateway Timeout\n');
      else if (err instanceof FastCgiClientError && err.code === 'ABORTED') res.destroy();
      else plain(res, 502, 'Bad Gateway\n');
    }
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new UserError(`HTTP address ${options.listen.host}:${options.listen.port} ${describeErrno(e.code)}`),
      ),
    );
    server.listen(options.listen.port, options.listen.host, resolve);
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
