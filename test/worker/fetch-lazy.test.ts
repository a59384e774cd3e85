import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAbortRequest } from '../../src/protocol/index.js';
import { plainUrl } from '../../worker-sdk/fetch-url.js';
import {
  createFetchListener,
  createServer,
  type FcgiServer,
  type FetchHandler,
} from '../../worker-sdk/index.js';
import { GET, rawConnect, requestRecords, responseOf } from '../helpers/fcgi-raw.js';

// undici's classes, before the first fetch listener replaces the globals (overrideGlobalObjects).
const UndiciRequest = globalThis.Request;
const UndiciResponse = globalThis.Response;
const undiciFetch = globalThis.fetch;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function listen(server: FcgiServer | http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** One request to a fetch handler over FastCGI: the CGI response as sent. */
async function exchange(handler: FetchHandler, params = GET('/'), body?: string): Promise<string> {
  const port = await listen(createServer(createFetchListener(handler)));
  const conn = await rawConnect({ port });
  conn.send(...requestRecords(1, params, body === undefined ? {} : { body }));
  const { stdout } = await responseOf(conn, 1);
  conn.close();
  return stdout;
}

const POST = (uri: string, type: string, length: number) =>
  GET(uri, { REQUEST_METHOD: 'POST', CONTENT_TYPE: type, CONTENT_LENGTH: String(length) });

describe('fetch: the lazy Request', () => {
  it('replaces the globals: Request and Response stand for undici’s, which still pass instanceof', () => {
    createFetchListener(() => new Response('x'));
    expect(globalThis.Request).not.toBe(UndiciRequest);
    expect(globalThis.Response).not.toBe(UndiciResponse);
    expect(new UndiciRequest('http://x/') instanceof Request).toBe(true);
    expect(new UndiciResponse('x') instanceof Response).toBe(true);
    expect(new Response('x') instanceof UndiciResponse).toBe(true);
    class Mine extends Response {}
    expect(new Mine('x') instanceof Mine).toBe(true);
    expect(new Response('x') instanceof Mine).toBe(false);
  });

  it('has the url, method and headers of the request, as undici’s Request would', async () => {
    let seen: unknown;
    await exchange(
      (request) => {
        const headers = request.headers;
        seen = {
          instance: request instanceof Request && request instanceof UndiciRequest,
          url: request.url,
          method: request.method,
          test: headers.get('x-test'),
          same: request.headers === headers,
          names: [...headers.keys()],
          cache: request.cache,
        };
        return new Response('ok');
      },
      GET('/a/b?c=1', { HTTP_X_TEST: 'yes', HTTP_ACCEPT: 'text/html' }),
    );
    expect(seen).toEqual({
      instance: true,
      url: 'http://example.test/a/b?c=1',
      method: 'GET',
      test: 'yes',
      same: true,
      names: ['accept', 'host', 'x-test'],
      cache: 'default',
    });
  });

  it('normalizes or refuses an unusual method or url as the Request constructor does', async () => {
    const urls: string[] = [];
    const handler: FetchHandler = (request) => {
      urls.push(`${request.method} ${request.url}`);
      return new Response('ok');
    };
    await exchange(handler, GET('/x/../y', { REQUEST_METHOD: 'delete', HTTP_HOST: 'Example.TEST:80' }));
    await exchange(handler, GET("/q?a='b'", { HTTP_HOST: '127.1:08080' }));
    expect(urls).toEqual(['DELETE http://example.test/y', 'GET http://127.0.0.1:8080/q?a=%27b%27']);
    // TRACE is refused by undici's Request, before the handler runs.
    expect(await exchange(handler, GET('/', { REQUEST_METHOD: 'TRACE' }))).toMatch(/^Status: 500/);
    expect(urls).toHaveLength(2);
  });

  it('reads the body as text, JSON or bytes, and clones with headers changed before', async () => {
    const payload = JSON.stringify({ a: 1 });
    let seen: unknown;
    await exchange(
      async (request) => {
        request.headers.set('x-added', '1');
        const copy = request.clone();
        const json = await request.json();
        seen = {
          json,
          used: request.bodyUsed,
          copyText: await copy.text(),
          copyAdded: copy.headers.get('x-added'),
          copyMethod: copy.method,
          again: await request.text().catch((err: Error) => err.name),
        };
        return new Response('ok');
      },
      POST('/echo', 'application/json', payload.length),
      payload,
    );
    expect(seen).toEqual({
      json: { a: 1 },
      used: true,
      copyText: payload,
      copyAdded: '1',
      copyMethod: 'POST',
      again: 'TypeError',
    });
  });

  it('makes a new Request of it, as input or as init', async () => {
    let seen: unknown;
    await exchange(
      async (request) => {
        // Each takes the body, as of any Request: the second one is made of the first.
        const copy = new Request(request);
        const moved = new Request('http://other.test/z', copy);
        seen = [
          copy.url,
          copy.method,
          request.bodyUsed,
          moved.url,
          moved.headers.get('x-test'),
          await moved.text(),
        ];
        return new Response('ok');
      },
      { ...POST('/in', 'text/plain', 4), HTTP_X_TEST: 't' },
      'body',
    );
    expect(seen).toEqual(['http://example.test/in', 'POST', true, 'http://other.test/z', 't', 'body']);
  });

  it('aborts its signal on ABORT_REQUEST after its body was read', async () => {
    let aborted: (why: string) => void = () => {};
    const outcome = new Promise<string>((resolve) => {
      aborted = resolve;
    });
    const port = await listen(
      createServer(
        createFetchListener(async (request) => {
          await request.text();
          request.signal.addEventListener('abort', () => aborted('abort event'));
          await new Promise((r) => setTimeout(r, 2000));
          return new Response('late');
        }),
      ),
    );
    const conn = await rawConnect({ port });
    conn.send(...requestRecords(1, POST('/long', 'text/plain', 2), { body: 'hi', keepConn: true }));
    await new Promise((r) => setTimeout(r, 100));
    conn.send(encodeAbortRequest(1));
    const late = new Promise<string>((resolve) => setTimeout(resolve, 3000, 'no abort').unref());
    expect(await Promise.race([outcome, late])).toBe('abort event');
    conn.close();
  });

  it('is taken by fetch(), method, headers and body', async () => {
    const upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c;
      });
      req.on('end', () => res.end(`${req.method} ${req.url} ${req.headers['x-test']} ${body}`));
    });
    const up = await listen(upstream);
    // The request's own url points at the upstream: fetch(request) sends it there as it is.
    const out = await exchange(
      async (request) => {
        const first = await fetch(request.clone());
        const again = await fetch(request);
        return new Response(`${await first.text()} | ${await again.text()}`);
      },
      { ...POST('/in', 'text/plain', 4), HTTP_X_TEST: 'proxied', HTTP_HOST: `127.0.0.1:${up}` },
      'data',
    );
    expect(out).toMatch(/\r\n\r\nPOST \/in proxied data \| POST \/in proxied data$/);
    expect(globalThis.fetch).not.toBe(undiciFetch);
  });
});

describe('fetch: plainUrl is what the URL parser gives back, or null', () => {
  const hosts = [
    'example.test',
    'a-b.c9.test',
    '127.0.0.1',
    '127.1',
    'EXAMPLE.test',
    'x:8080',
    'x:80',
    'x:0080',
    'x:99999',
    'xn--nxasmq6b.test',
    '0x7f.1',
    'a.1',
    '[::1]',
    'host.',
    'a..b',
    '-a.test',
  ];
  const targets = [
    '/',
    '/a/b?c=1&d=%20',
    "/q?x='y'",
    '/a/./b',
    '/a/%2e%2e/b',
    '/%7Efoo',
    '/a b',
    '/a#f',
    '/a\\b',
    '/é',
    '/a?b?c',
    '/a|b',
    '/a^b',
    '/[x]',
    '//double',
    '/a/..',
    '/~user/;p=1:2@x',
  ];
  it.each(['http', 'https'] as const)('for %s', (scheme) => {
    for (const host of hosts)
      for (const target of targets) {
        const text = plainUrl(scheme, host, target);
        if (text === null) continue;
        expect([host, target, text]).toEqual([host, target, new URL(`${scheme}://${host}${target}`).href]);
      }
    expect(plainUrl(scheme, '127.0.0.1:8080', '/')).toBe(`${scheme}://127.0.0.1:8080/`);
  });
});

describe('fetch: the kept Response', () => {
  it('has the status, headers and body undici’s would have', async () => {
    const inits: [ConstructorParameters<typeof Response>[0], ResponseInit | undefined][] = [
      ['text', undefined],
      ['text', { status: 201, statusText: 'Made', headers: { 'X-B': '2', 'x-a': '1' } }],
      ['text', { headers: { 'Content-Type': 'text/html' } }],
      [new Uint8Array([1, 2]), { headers: [['x-list', 'a']] }],
      [null, { status: 204 }],
      [undefined, undefined],
      ['text', { headers: { 'x-space': ' padded ' } }],
      ['text', { headers: new Headers({ 'x-h': 'h' }) }],
    ];
    for (const [body, init] of inits) {
      const kept = new Response(body, init);
      const undici = new UndiciResponse(body, init);
      expect([kept.status, kept.statusText, kept.ok, [...kept.headers]]).toEqual([
        undici.status,
        undici.statusText,
        undici.ok,
        [...undici.headers],
      ]);
      expect(await kept.arrayBuffer()).toEqual(await undici.arrayBuffer());
    }
    expect(() => new Response('x', { status: 204 })).toThrow(TypeError);
    expect(() => new Response('x', { status: 99 })).toThrow(RangeError);
    expect(() => new Response('x', { headers: { 'bad name': 'x' } })).toThrow(TypeError);
    for (const [data, init] of [
      [{ a: 1 }, undefined],
      [[1], { status: 202, headers: { 'content-type': 'application/vnd+json' } }],
    ] as const) {
      const kept = Response.json(data, init);
      const undici = UndiciResponse.json(data, init);
      expect([kept.status, [...kept.headers], await kept.text()]).toEqual([
        undici.status,
        [...undici.headers],
        await undici.text(),
      ]);
    }
    expect(() => Response.json(undefined)).toThrow(TypeError);
  });

  it('sends its head and body, with the headers the handler changed after making it', async () => {
    const out = await exchange(() => {
      const response = new Response('hello', { status: 201, headers: { 'X-One': '1' } });
      response.headers.append('set-cookie', 'a=1');
      response.headers.append('set-cookie', 'b=2');
      return response;
    });
    expect(out).toBe(
      'Status: 201 Created\r\ncontent-type: text/plain;charset=UTF-8\r\nx-one: 1\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 5\r\n\r\nhello',
    );
  });

  it('sends the bytes it was made of, not a later change to them', async () => {
    const out = await exchange(() => {
      const bytes = new Uint8Array([104, 105]);
      const response = new Response(bytes);
      bytes[0] = 120;
      return response;
    });
    expect(out).toMatch(/\r\n\r\nhi$/);
  });

  it('sends one whose body was read or cloned, and none for HEAD', async () => {
    const read = await exchange(async () => {
      const response = Response.json({ a: 1 });
      const copy = response.clone();
      expect(await copy.json()).toEqual({ a: 1 });
      return response;
    });
    expect(read).toMatch(/^Status: 200 OK\r\ncontent-type: application\/json\r\n.*\r\n\r\n\{"a":1\}$/s);
    const head = await exchange(() => new Response('body'), GET('/', { REQUEST_METHOD: 'HEAD' }));
    expect(head).toBe('Status: 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\n\r\n');
    const redirect = await exchange(() => Response.redirect('http://example.test/to', 301));
    expect(redirect).toMatch(/^Status: 301 Moved Permanently\r\nlocation: http:\/\/example.test\/to\r\n/);
  });

  it('passes a fetch() Response through, status, headers and body', async () => {
    const upstream = http.createServer((_req, res) => {
      res.setHeader('X-Up', 'yes');
      res.statusCode = 202;
      res.end('from upstream');
    });
    const up = await listen(upstream);
    const out = await exchange(async () => {
      const response = await fetch(`http://127.0.0.1:${up}/`);
      expect(response instanceof Response).toBe(true);
      return response;
    });
    expect(out).toMatch(/^Status: 202 Accepted\r\n(?:.*\r\n)*x-up: yes\r\n(?:.*\r\n)*\r\nfrom upstream$/);
  });
});
