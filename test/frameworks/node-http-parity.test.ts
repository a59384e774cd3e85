import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../worker-sdk/index.js';
import { freePort } from '../helpers/net.js';
import { type Nginx, startNginx } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';

/**
 * Frameworks call node:http's req/res in many small ways (string bodies in any encoding, head
 * and body in one write, flushHeaders, rawHeaders). The same handler runs on node:http and on
 * the worker SDK behind nginx; what a client sees must be the same bytes.
 */
/** Resolved when the response of a /held request closes: `closes[...]` is per test. */
const closes: Array<() => void> = [];

const handler = (req: IncomingMessage, res: ServerResponse): void => {
  switch (req.url) {
    case '/held':
      // A response that never ends (an SSE feed, a long poll) until the client goes away.
      res.setHeader('X-Accel-Buffering', 'no');
      res.write('first\n');
      res.on('close', () => closes.shift()?.());
      return;
    case '/end-utf8':
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('ñ✓ — unicode 🚀');
      return;
    case '/write-utf8':
      res.write('ñ');
      res.write('✓');
      res.end('🚀');
      return;
    case '/hex':
      res.end('c3b1e29c93', 'hex');
      return;
    case '/latin1':
      res.setHeader('Content-Type', 'text/plain; charset=iso-8859-1');
      res.end('ÿé', 'latin1');
      return;
    case '/base64-write':
      res.write('w7E=', 'base64');
      res.end();
      return;
    case '/write-head':
      res.writeHead(201, { 'Content-Type': 'text/plain; charset=utf-8' }).end('créé ✓');
      return;
    case '/flush-headers':
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.flushHeaders();
      setTimeout(() => res.end('après ✓'), 10);
      return;
    case '/big': {
      // 8 MiB in 64 KiB writes, waiting for 'drain' whenever write() says so.
      let sent = 0;
      const pump = () => {
        while (sent < 128) {
          const chunk = Buffer.alloc(64 * 1024, sent % 251);
          sent++;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    case '/no-content':
      res.statusCode = 204;
      res.end();
      return;
    case '/request-view': {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.on('end', () => {
        const raw = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        res.setHeader('Content-Type', 'application/json');
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            httpVersion: req.httpVersion,
            // The client's address: nginx passes it on as REMOTE_ADDR/REMOTE_PORT.
            remoteAddress: req.socket.remoteAddress,
            remotePortIsNumber: Number.isInteger(req.socket.remotePort),
            contentType: req.headers['content-type'],
            contentLength: req.headers['content-length'],
            xTest: req.headers['x-test'],
            // node:http has each request header once in rawHeaders; a fetch Request or
            // @hono/node-server built from rawHeaders would otherwise see "a, a".
            contentTypeLines: raw.filter((n) => n === 'content-type').length,
            contentLengthLines: raw.filter((n) => n === 'content-length').length,
            bytes,
          }),
        );
      });
      return;
    }
    default:
      res.statusCode = 404;
      res.end('not found');
  }
};

/** Small bodies as hex (a readable diff), large ones as length and SHA-256. */
function bodyView(body: Buffer): { body?: string; bytes?: number; sha256?: string } {
  if (body.length <= 1024) return { body: body.toString('hex') };
  return { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

function jsonOf(view: { body?: string }): unknown {
  return JSON.parse(Buffer.from(view.body ?? '', 'hex').toString());
}

const nginxPeer = peer('nginx', 'nginx-light');

describe.skipIf(nginxPeer.skipReason)(
  'the same node:http handler on node:http and on the SDK behind nginx',
  () => {
    let direct: http.Server;
    let directUrl: string;
    let sdk: ReturnType<typeof createServer>;
    let nginx: Nginx;

    beforeAll(async () => {
      direct = http.createServer(handler);
      await new Promise<void>((resolve) => direct.listen(0, '127.0.0.1', resolve));
      directUrl = `http://127.0.0.1:${(direct.address() as AddressInfo).port}`;
      const port = await freePort();
      sdk = createServer(handler);
      await new Promise<void>((resolve) => sdk.listen(port, '127.0.0.1', resolve));
      nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
    });

    afterAll(async () => {
      await nginx?.stop();
      await new Promise<void>((resolve) => sdk?.close(() => resolve()));
      await new Promise<void>((resolve) => direct?.close(() => resolve()));
    });

    async function both(path: string, init?: RequestInit) {
      const [a, b] = await Promise.all([fetch(directUrl + path, init), fetch(nginx.url + path, init)]);
      const view = async (r: Response) => ({
        status: r.status,
        contentType: r.headers.get('content-type'),
        contentLength: r.headers.get('content-length'),
        ...bodyView(Buffer.from(await r.arrayBuffer())),
      });
      return { node: await view(a), sdk: await view(b) };
    }

    it.each([
      '/end-utf8',
      '/write-utf8',
      '/hex',
      '/latin1',
      '/base64-write',
      '/write-head',
      '/flush-headers',
      '/no-content',
      '/nowhere',
    ])('%s: same status, type and body bytes', async (path) => {
      const { node, sdk } = await both(path);
      expect(sdk).toEqual(node);
    });

    it('/big: 8 MiB written with backpressure arrives byte for byte', async () => {
      const { node, sdk } = await both('/big');
      expect(node).toMatchObject({ bytes: 8 * 1024 * 1024 });
      expect(sdk).toEqual(node);
    });

    it.each(['/end-utf8', '/hex', '/write-head'])(
      'HEAD %s: same status, type and length, no body',
      async (path) => {
        const { node, sdk } = await both(path, { method: 'HEAD' });
        expect(node).toMatchObject({ body: '' });
        expect(sdk).toEqual(node);
      },
    );

    it.each(['node', 'sdk'] as const)(
      'a client going away mid-response closes the response on the %s side',
      async (side) => {
        const closed = new Promise<void>((resolve) => closes.push(resolve));
        const controller = new AbortController();
        const response = await fetch(`${side === 'node' ? directUrl : nginx.url}/held`, {
          signal: controller.signal,
        });
        const reader = response.body!.getReader();
        expect(new TextDecoder().decode((await reader.read()).value)).toBe('first\n');
        controller.abort();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          closed,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("res 'close' did not fire within 5 s")), 5000);
          }),
        ]).finally(() => clearTimeout(timer));
      },
    );

    it('a POST looks the same to the handler: one content-type, one content-length, the body', async () => {
      const body = JSON.stringify({ hello: 'wörld' });
      const init = { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Test': 'yes' }, body };
      const { node, sdk } = await both('/request-view', init);
      expect(jsonOf(node)).toMatchObject({
        contentTypeLines: 1,
        contentLengthLines: 1,
        bytes: Buffer.byteLength(body),
      });
      expect(jsonOf(sdk)).toEqual(jsonOf(node));
    });
  },
);
