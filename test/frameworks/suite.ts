import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { type Nginx, startNginx } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';
import { sleep } from '../helpers/processes.js';

/**
 * One contract every framework app implements the framework's own way, so each test file
 * proves the same things: the app, written as for node:http, runs unchanged on the worker SDK
 * behind a real nginx. Routes:
 *   GET  /hello            text "hello from <name>"
 *   GET  /users/:id?tag=   JSON { id, tag, header: the x-test request header or null }
 *   POST /echo             JSON body parsed by the framework, sent back as { received, contentType }
 *   GET  /stream           X-Accel-Buffering: no; "chunk-0\n", then waits for `streamGate()`,
 *                          then "chunk-1\n".."chunk-4\n" a few ms apart
 *   GET  /teapot           throws an error carrying status 418 (framework's error handler answers)
 *   GET  /boom             throws a plain Error (framework's error handler answers 500)
 *   GET  /cookies          two Set-Cookie headers: a=1; Path=/ and b=2 with HttpOnly
 *   GET  /fcgi             JSON { software, uri }: the FastCGI params SERVER_SOFTWARE and
 *                          REQUEST_URI, read the way that framework reaches the raw request
 * anything else           the framework's own 404
 */
export interface AppHooks {
  /** Resolves when the test has read chunk-0: proves the response streams through, unbuffered. */
  streamGate(): Promise<void>;
}

/** Starts the app on 127.0.0.1:port and returns how to stop it. */
export type StartApp = (hooks: AppHooks, port: number) => Promise<() => Promise<void>>;

export const STREAM_CHUNKS = 5;

/** The chunks of /stream after the gate, written a few ms apart so they leave as separate records. */
export async function* laterChunks(): AsyncGenerator<string> {
  for (let i = 1; i < STREAM_CHUNKS; i++) {
    await sleep(10);
    yield `chunk-${i}\n`;
  }
}

/** fetch, failing after 5 s: a response nginx waits on (a short body) must not hang the file. */
function request(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(5000), ...init });
}

/** The promise's value, or an error saying `what` after ms. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const nginxPeer = peer('nginx', 'nginx-light');

export function frameworkSuite(name: string, startApp: StartApp): void {
  describe.skipIf(nginxPeer.skipReason)(`${name} on the worker SDK behind nginx`, () => {
    let port: number;
    let stopApp: (() => Promise<void>) | undefined;
    let openGate = () => {};
    let gate = Promise.resolve();
    const hooks: AppHooks = { streamGate: () => gate };

    beforeAll(async () => {
      port = await freePort();
      stopApp = await startApp(hooks, port);
    });

    afterAll(async () => {
      openGate();
      await stopApp?.();
    });

    // nginx's default (a FastCGI connection per request) and what production uses (kept
    // connections carrying request after request).
    describe.each([
      { label: 'fastcgi_keep_conn off', keepConn: false },
      { label: 'fastcgi_keep_conn on, upstream keepalive', keepConn: true },
    ])('$label', ({ keepConn }) => {
      let nginx: Nginx;
      beforeAll(async () => {
        nginx = await startNginx({
          fastcgi: { host: '127.0.0.1', port },
          ...(keepConn ? { keepConn: true, keepalive: 4 } : {}),
        });
      });
      afterAll(async () => {
        await nginx?.stop();
      });

      it('routes two paths with params, query and headers', async () => {
        const hello = await request(`${nginx.url}/hello`);
        expect(hello.status).toBe(200);
        expect(hello.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(await hello.text()).toBe(`hello from ${name}`);

        const user = await request(`${nginx.url}/users/42?tag=a%20b`, { headers: { 'X-Test': 'yes' } });
        expect(user.status).toBe(200);
        expect(user.headers.get('content-type')).toMatch(/^application\/json/);
        expect(await user.json()).toEqual({ id: '42', tag: 'a b', header: 'yes' });
      });

      it("answers an unknown path with the framework's 404", async () => {
        const response = await request(`${nginx.url}/no/such/path`);
        expect(response.status).toBe(404);
        await response.arrayBuffer();
      });

      it('parses a JSON body and echoes it', async () => {
        const body = { name: 'fcgi-prefork', list: [1, 2, 3], nested: { ü: 'ñ✓' }, long: 'x'.repeat(70_000) };
        const response = await request(`${nginx.url}/echo`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json; charset=utf-8' },
          body: JSON.stringify(body),
        });
        expect(response.status).toBe(200);
        const echoed = (await response.json()) as { received: unknown; contentType: string };
        expect(echoed.received).toEqual(body);
        expect(echoed.contentType).toBe('application/json; charset=utf-8');
      });

      it('streams a response: the first chunk arrives before the rest is written', async () => {
        gate = new Promise<void>((resolve) => {
          openGate = resolve;
        });
        // The app writes nothing more until the gate opens, so the head and chunk-0 can only
        // arrive if they went through the SDK and nginx without waiting for the end of the response.
        const held = 'did not arrive while the response was still open (held back until its end?)';
        const response = await within(5000, request(`${nginx.url}/stream`), `the head of /stream ${held}`);
        expect(response.status).toBe(200);
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        const first = await within(5000, reader.read(), `chunk-0 ${held}`);
        let text = decoder.decode(first.value, { stream: true });
        expect(text).toBe('chunk-0\n');
        openGate();
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
          text += decoder.decode(chunk.value, { stream: true });
        expect(text).toBe(Array.from({ length: STREAM_CHUNKS }, (_, i) => `chunk-${i}\n`).join(''));
      });

      it("turns a thrown error with status 418 into the framework's 418", async () => {
        const response = await request(`${nginx.url}/teapot`);
        expect(response.status).toBe(418);
        expect(await response.text()).toMatch(/teapot/i);
      });

      it("turns a thrown plain error into the framework's 500", async () => {
        const response = await request(`${nginx.url}/boom`);
        expect(response.status).toBe(500);
        await response.arrayBuffer();
      });

      it('sends two Set-Cookie headers, both arrive', async () => {
        const response = await request(`${nginx.url}/cookies`);
        expect(response.status).toBe(200);
        // Attribute spelling and order are the framework's own; what matters is two separate headers.
        const cookies = response.headers.getSetCookie();
        expect(cookies).toHaveLength(2);
        expect(cookies[0]).toMatch(/^a=1; path=\/$/i);
        expect(cookies[1]).toMatch(/^b=2;.*\bhttponly\b/i);
        await response.arrayBuffer();
      });

      it('reaches the FastCGI params nginx sent', async () => {
        const response = await request(`${nginx.url}/fcgi?x=1`);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({
          software: expect.stringMatching(/^nginx\/\d/),
          uri: '/fcgi?x=1',
        });
      });

      it('keeps serving after all of the above', async () => {
        const responses = await Promise.all(
          Array.from({ length: 20 }, (_, i) => request(`${nginx.url}/users/${i}?tag=t${i}`)),
        );
        const bodies = await Promise.all(responses.map((r) => r.json()));
        expect(bodies).toEqual(
          Array.from({ length: 20 }, (_, i) => ({ id: String(i), tag: `t${i}`, header: null })),
        );
      });
    });
  });
}
