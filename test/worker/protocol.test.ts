import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeNameValuePairs,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeGetValues,
  encodeParams,
  encodeRecord,
  FCGI_AUTHORIZER,
  FCGI_DATA,
  FCGI_FILTER,
  FCGI_GET_VALUES_RESULT,
  FCGI_OVERLOADED,
  FCGI_REQUEST_COMPLETE,
  FCGI_STDIN,
  FCGI_UNKNOWN_ROLE,
  FCGI_UNKNOWN_TYPE,
  parseUnknownTypeBody,
} from '../../src/protocol/index.js';
import {
  createFetchListener,
  createServer,
  type FcgiServer,
  type RequestListener,
  type WorkerOptions,
} from '../../worker-sdk/index.js';
import { GET, rawConnect, requestRecords, responseOf } from '../helpers/fcgi-raw.js';

const servers: FcgiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(null)))));
});

async function serve(
  handler: RequestListener,
  options: WorkerOptions = {},
): Promise<{ port: number; logs: string[] }> {
  const logs: string[] = [];
  const server = createServer(handler, { log: (m) => logs.push(m), ...options });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, logs };
}

const hello: RequestListener = (req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(`hello ${req.method} ${req.url}`);
};

describe('worker: responder', () => {
  it('answers with CGI headers, Status and END_REQUEST, and closes without KEEP_CONN', async () => {
    const { port } = await serve((req, res) => {
      res.statusCode = 404;
      res.setHeader('X-Test', 'yes');
      res.end(
        `not here: ${req.url} ${req.headers.host} ${req.socket.remoteAddress}:${req.socket.remotePort} ${req.httpVersion}`,
      );
    });
    const conn = await rawConnect({ port });
    conn.send(...requestRecords(1, GET('/missing?q=1')));
    const response = await responseOf(conn, 1);
    expect(response.stdout).toBe(
      'Status: 404 Not Found\r\nX-Test: yes\r\nContent-Length: 55\r\n\r\nnot here: /missing?q=1 example.test 127.0.0.1:40000 1.1',
    );
    expect(response.protocolStatus).toBe(FCGI_REQUEST_COMPLETE);
    await conn.closed;
  });

  it('streams a request body and exposes every param', async () => {
    const { port } = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        res.end(
          `${Buffer.concat(chunks).length} ${req.headers['content-type']} ${req.params.SCRIPT_FILENAME} ` +
            `${req.socket.localAddress}:${req.socket.localPort} ${req.socket.remoteAddress}`,
        ),
      );
    });
    const conn = await rawConnect({ port });
    const body = Buffer.alloc(300_000, 1);
    conn.send(
      encodeBeginRequest(1, 1, 0),
      ...encodeParams(1, {
        ...GET('/up'),
        REQUEST_METHOD: 'POST',
        CONTENT_TYPE: 'application/octet-stream',
        CONTENT_LENGTH: '300000',
        SCRIPT_FILENAME: '/srv/app.js',
      }),
      ...[0, 100_000, 200_000].map((at) => encodeRecord(FCGI_STDIN, 1, body.subarray(at, at + 60_000))),
      ...[60_000, 160_000, 260_000].map((at) => encodeRecord(FCGI_STDIN, 1, body.subarray(at, at + 40_000))),
      encodeRecord(FCGI_STDIN, 1),
    );
    // req.socket: the local end of the front's connection; the remote one is the client's (REMOTE_ADDR).
    expect((await responseOf(conn, 1)).stdout).toMatch(
      new RegExp(
        `\r\n\r\n300000 application/octet-stream /srv/app.js 127.0.0.1:${port} ${GET().REMOTE_ADDR}$`,
      ),
    );
  });

  it('keeps the connection with FCGI_KEEP_CONN and serves the next request on it', async () => {
    const { port } = await serve(hello);
    const conn = await rawConnect({ port });
    conn.send(...requestRecords(1, GET('/a'), { keepConn: true }));
    expect((await responseOf(conn, 1)).stdout).toMatch(/hello GET \/a$/);
    conn.send(...requestRecords(1, GET('/b'), { keepConn: true }));
    await conn.waitFor(() => conn.records.filter((x) => x.type === 3).length === 2);
    expect(conn.records.filter((r) => r.type === 3)).toHaveLength(2);
    expect(conn.isClosed()).toBe(false);
    conn.close();
  });

  it('multiplexes requests on one connection; a slow one does not hold up the others', async () => {
    const { port } = await serve((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow'), 500);
      else res.end(`fast ${req.url}`);
    });
    const conn = await rawConnect({ port });
    const slow = requestRecords(1, GET('/slow'), { keepConn: true });
    const fast = requestRecords(2, GET('/fast'), { keepConn: true });
    // Interleave the two requests' records.
    conn.send(slow[0]!, fast[0]!, ...slow.slice(1, -1), ...fast.slice(1), slow[slow.length - 1]!);
    const started = Date.now();
    expect((await responseOf(conn, 2)).stdout).toMatch(/fast \/fast$/);
    expect(Date.now() - started).toBeLessThan(400);
    expect((await responseOf(conn, 1)).stdout).toMatch(/slow$/);
    conn.close();
  });

  it('keeps serving other requests while one request’s body is not read', async () => {
    const { port } = await serve((req, res) => {
      if (req.url === '/ignore-body') return; // never reads, never answers
      res.end('ok');
    });
    const conn = await rawConnect({ port });
    conn.send(encodeBeginRequest(1, 1, 1), ...encodeParams(1, GET('/ignore-body')));
    for (let i = 0; i < 20; i++) conn.send(encodeRecord(FCGI_STDIN, 1, Buffer.alloc(60_000)));
    conn.send(...requestRecords(2, GET('/other'), { keepConn: true }));
    expect((await responseOf(conn, 2)).stdout).toMatch(/ok$/);
    conn.close();
  });

  it('closes at once after the last response, but never with a body still coming: an early answer is not reset', async () => {
    const { port } = await serve((_req, res) => {
      res.end('early');
    });
    // Read to its end: the worker closes without waiting for the front.
    const plain = await rawConnect({ port });
    plain.send(...requestRecords(1, GET('/')));
    expect((await responseOf(plain, 1)).stdout).toMatch(/early$/);
    await plain.closed;
    // Answered while 4 MB of body is still on its way: a close(2) now would reset the
    // connection (ECONNRESET here; a front could lose the response). The worker half-closes
    // and reads the rest.
    const early = await rawConnect({ port });
    const errors: Error[] = [];
    early.socket.on('error', (err) => errors.push(err));
    early.send(encodeBeginRequest(1, 1, 0), ...encodeParams(1, { ...GET(), REQUEST_METHOD: 'POST' }));
    for (let i = 0; i < 64; i++) early.send(encodeRecord(FCGI_STDIN, 1, Buffer.alloc(65_528)));
    early.send(encodeRecord(FCGI_STDIN, 1));
    expect((await responseOf(early, 1)).stdout).toMatch(/early$/);
    await early.closed;
    expect(errors).toEqual([]);
  });

  it('answers GET_VALUES with the names asked for', async () => {
    const { port } = await serve(hello, { maxConns: 50, maxReqs: 200 });
    const conn = await rawConnect({ port });
    conn.send(encodeGetValues(['FCGI_MPXS_CONNS', 'FCGI_MAX_REQS', 'NOT_A_VARIABLE']));
    const result = await conn.waitFor((r) => r.type === FCGI_GET_VALUES_RESULT);
    expect(result.requestId).toBe(0);
    expect({ ...decodeNameValuePairs(result.content) }).toEqual({
      FCGI_MPXS_CONNS: '1',
      FCGI_MAX_REQS: '200',
    });
    conn.close();
  });

  it('replies UNKNOWN_TYPE to an unknown record type and goes on', async () => {
    const { port } = await serve(hello);
    const conn = await rawConnect({ port });
    conn.send(encodeRecord(77, 0, Buffer.from('future')), ...requestRecords(1, GET('/after')));
    const unknown = await conn.waitFor((r) => r.type === FCGI_UNKNOWN_TYPE);
    expect(parseUnknownTypeBody(unknown.content)).toBe(77);
    expect((await responseOf(conn, 1)).stdout).toMatch(/hello GET \/after$/);
  });

  it('aborts a request on ABORT_REQUEST and sends END_REQUEST', async () => {
    let events = '';
    const { port } = await serve((req, res) => {
      req.on('aborted', () => {
        events += 'aborted ';
      });
      res.on('close', () => {
        events += `close(finished=${res.writableFinished})`;
      });
    });
    const conn = await rawConnect({ port });
    conn.send(encodeBeginRequest(1, 1, 1), ...encodeParams(1, GET('/long')));
    await new Promise((r) => setTimeout(r, 100));
    conn.send(encodeAbortRequest(1));
    const response = await responseOf(conn, 1);
    expect(response.protocolStatus).toBe(FCGI_REQUEST_COMPLETE);
    expect(events).toBe('aborted close(finished=false)');
    conn.close();
  });
});

describe('worker: a fetch handler’s request.signal', () => {
  // The handler waits on its request's signal; `read` says when it first reads it.
  async function signalled(read: 'before' | 'after'): Promise<{ port: number; aborted: Promise<string> }> {
    let done: (why: string) => void = () => {};
    const aborted = new Promise<string>((resolve) => {
      done = resolve;
    });
    const { port } = await serve(
      createFetchListener(async (request) => {
        if (read === 'after') await new Promise((r) => setTimeout(r, 150));
        const signal = request.signal;
        if (signal.aborted) done('aborted already');
        else signal.addEventListener('abort', () => done('abort event'));
        await new Promise((r) => setTimeout(r, 2000));
        return new Response('late');
      }),
    );
    // Not aborted within 3 s: fail then, not at the test's timeout.
    const late = new Promise<string>((resolve) => setTimeout(resolve, 3000, 'no abort').unref());
    return { port, aborted: Promise.race([aborted, late]) };
  }

  it('aborts on ABORT_REQUEST, read before it or after it', async () => {
    for (const read of ['before', 'after'] as const) {
      const { port, aborted } = await signalled(read);
      const conn = await rawConnect({ port });
      conn.send(...requestRecords(1, GET('/long'), { keepConn: true }));
      await new Promise((r) => setTimeout(r, 50));
      conn.send(encodeAbortRequest(1));
      expect(await aborted).toBe(read === 'before' ? 'abort event' : 'aborted already');
      expect((await responseOf(conn, 1)).protocolStatus).toBe(FCGI_REQUEST_COMPLETE);
      conn.close();
    }
  });

  it('aborts when the connection drops', async () => {
    const { port, aborted } = await signalled('before');
    const conn = await rawConnect({ port });
    conn.send(...requestRecords(1, GET('/long'), { keepConn: true }));
    await new Promise((r) => setTimeout(r, 50));
    conn.close();
    expect(await aborted).toBe('abort event');
  });

  it('has the url of the path and host sent, whatever the host holds', async () => {
    const urls: string[] = [];
    const { port } = await serve(
      createFetchListener((request) => {
        urls.push(request.url);
        return new Response('ok');
      }),
    );
    const cases: [string, string][] = [
      ['example.test:8080', '/a/b?c=1#x'],
      ['[::1]:80', '/v6'],
      ['x?y', '/q'],
      ['evil/x', '/p'],
      ['exa mple', '/bad-host'],
    ];
    const conn = await rawConnect({ port });
    for (const [i, [host, uri]] of cases.entries()) {
      conn.send(...requestRecords(i + 1, GET(uri, { HTTP_HOST: host }), { keepConn: true }));
      await responseOf(conn, i + 1);
    }
    conn.close();
    expect(urls).toEqual([
      'http://example.test:8080/a/b?c=1#x',
      'http://[::1]/v6',
      'http://x/q',
      'http://evil/p',
      'http://localhost/bad-host',
    ]);
  });

  it('is a Request’s, and not aborted while the request runs', async () => {
    let seen = '';
    const { port } = await serve(
      createFetchListener((request) => {
        seen = `${request instanceof Request} ${request.signal instanceof AbortSignal} ${request.signal.aborted}`;
        return new Response('ok');
      }),
    );
    const conn = await rawConnect({ port });
    conn.send(...requestRecords(1, GET('/')));
    expect((await responseOf(conn, 1)).stdout).toMatch(/ok$/);
    expect(seen).toBe('true true false');
    conn.close();
  });
});

describe('worker: authorizer and filter roles', () => {
  it('passes an authorizer’s 200 with Variable- headers, and its 403 as a denial', async () => {
    const { port } = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer good') {
        res.setHeader('Variable-User', 'alice');
        res.end();
      } else {
        res.statusCode = 403;
        res.end('denied');
      }
    });
    const conn = await rawConnect({ port });
    conn.send(
      ...requestRecords(1, GET('/', { HTTP_AUTHORIZATION: 'Bearer good' }), {
        role: FCGI_AUTHORIZER,
        keepConn: true,
      }),
    );
    expect((await responseOf(conn, 1)).stdout).toMatch(/^Status: 200 OK\r\nVariable-User: alice\r\n/);
    conn.send(
      ...requestRecords(2, GET('/', { HTTP_AUTHORIZATION: 'Bearer bad' }), { role: FCGI_AUTHORIZER }),
    );
    expect((await responseOf(conn, 2)).stdout).toMatch(/^Status: 403 Forbidden\r\n.*denied$/s);
  });

  it('gives a filter FCGI_DATA as a second stream', async () => {
    const { port } = await serve((req, res) => {
      const parts: Buffer[] = [];
      req.data!.on('data', (c: Buffer) => parts.push(c));
      req.data!.on('end', () =>
        res.end(
          `${req.role}: ${Buffer.concat(parts).toString().toUpperCase()} (${req.params.FCGI_DATA_LENGTH})`,
        ),
      );
    });
    const conn = await rawConnect({ port });
    conn.send(
      encodeBeginRequest(1, FCGI_FILTER, 0),
      ...encodeParams(1, { ...GET('/file.txt'), FCGI_DATA_LENGTH: '11', FCGI_DATA_LAST_MOD: '0' }),
      encodeRecord(FCGI_STDIN, 1),
      encodeRecord(FCGI_DATA, 1, Buffer.from('hello ')),
      encodeRecord(FCGI_DATA, 1, Buffer.from('world')),
      encodeRecord(FCGI_DATA, 1),
    );
    expect((await responseOf(conn, 1)).stdout).toMatch(/filter: HELLO WORLD \(11\)$/);
  });

  it('answers UNKNOWN_ROLE for a role it does not serve', async () => {
    const { port } = await serve(hello, { roles: ['responder'] });
    const conn = await rawConnect({ port });
    conn.send(
      ...requestRecords(1, GET(), { role: FCGI_FILTER, keepConn: true }),
      ...requestRecords(2, GET(), { role: 9 }),
    );
    expect((await responseOf(conn, 1)).protocolStatus).toBe(FCGI_UNKNOWN_ROLE);
    expect((await responseOf(conn, 2)).protocolStatus).toBe(FCGI_UNKNOWN_ROLE);
  });
});

describe('worker: limits and bad input', () => {
  it('closes connections from addresses not in FCGI_WEB_SERVER_ADDRS before reading a record', async () => {
    let handled = 0;
    const { port, logs } = await serve(
      (_req, res) => {
        handled++;
        res.end('ok');
      },
      { webServerAddrs: ['127.0.0.2'] },
    );
    const refused = await rawConnect({ port });
    refused.send(...requestRecords(1, GET()));
    await refused.closed;
    expect(refused.records).toEqual([]);
    expect(handled).toBe(0);
    expect(logs.join('\n')).toMatch(/refused connection from 127\.0\.0\.1: not in FCGI_WEB_SERVER_ADDRS/);
    const allowed = await rawConnect({ port, localAddress: '127.0.0.2' });
    allowed.send(...requestRecords(1, GET()));
    expect((await responseOf(allowed, 1)).stdout).toMatch(/ok$/);
  });

  it('answers 413 to a body over the limit (declared or streamed)', async () => {
    const { port } = await serve(
      (req, res) => {
        req.resume();
        req.on('end', () => res.end('read it all'));
      },
      { maxBodyLength: 1000 },
    );
    const declared = await rawConnect({ port });
    declared.send(
      ...requestRecords(
        1,
        { ...GET(), REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5000' },
        { body: Buffer.alloc(5000) },
      ),
    );
    expect((await responseOf(declared, 1)).stdout).toMatch(/^Status: 413 Payload Too Large/);
    const streamed = await rawConnect({ port });
    streamed.send(...requestRecords(1, { ...GET(), REQUEST_METHOD: 'POST' }, { body: Buffer.alloc(5000) }));
    expect((await responseOf(streamed, 1)).stdout).toMatch(/^Status: 413 Payload Too Large/);
  });

  it('closes a connection whose params never complete (header timeout) and one idle too long', async () => {
    const { port, logs } = await serve(hello, { headerTimeout: 300, keepAliveTimeout: 300 });
    const slow = await rawConnect({ port });
    slow.send(encodeBeginRequest(1, 1, 1), encodeRecord(4, 1, Buffer.from([4, 1, 65, 66, 67, 68])));
    const started = Date.now();
    await slow.closed;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(logs.join('\n')).toMatch(/no complete request within 300 ms/);
    const idle = await rawConnect({ port });
    idle.send(...requestRecords(1, GET(), { keepConn: true }));
    await responseOf(idle, 1);
    await idle.closed;
  });

  it('times a kept connection’s next request by the header timeout, not the longer idle one', async () => {
    // The idle timer armed after the first response must not hold off the shorter deadline of
    // a second request whose params stall.
    const { port, logs } = await serve(hello, { headerTimeout: 300, keepAliveTimeout: 10_000 });
    const kept = await rawConnect({ port });
    kept.send(...requestRecords(1, GET(), { keepConn: true }));
    expect((await responseOf(kept, 1)).stdout).toMatch(/hello GET/);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    kept.send(encodeBeginRequest(2, 1, 1), encodeRecord(4, 2, Buffer.from([4, 1, 65, 66, 67, 68])));
    await kept.closed;
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(logs.join('\n')).toMatch(/no complete request within 300 ms/);
    // And a connection that keeps sending requests in time is never cut by a deadline it met.
    const busy = await rawConnect({ port });
    for (let id = 1; id <= 8; id++) {
      busy.send(...requestRecords(id, GET(), { keepConn: true }));
      await responseOf(busy, id);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(busy.isClosed()).toBe(false);
    busy.close();
  });

  it('closes a connection that sends params over the limit, and one that sends garbage; others go on', async () => {
    const { port, logs } = await serve(hello, { maxParamsLength: 1000 });
    const healthy = await rawConnect({ port });
    healthy.send(encodeBeginRequest(1, 1, 1));
    const big = await rawConnect({ port });
    big.send(encodeBeginRequest(1, 1, 0), ...encodeParams(1, { ...GET(), HTTP_X: 'x'.repeat(2000) }));
    await big.closed;
    const garbage = await rawConnect({ port });
    garbage.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await garbage.closed;
    const twice = await rawConnect({ port });
    twice.send(encodeBeginRequest(1, 1, 1), encodeBeginRequest(1, 1, 1));
    await twice.closed;
    healthy.send(...encodeParams(1, GET('/still')), encodeRecord(FCGI_STDIN, 1));
    expect((await responseOf(healthy, 1)).stdout).toMatch(/hello GET \/still$/);
    const text = logs.join('\n');
    expect(text).toMatch(/PARAMS_TOO_LARGE/);
    expect(text).toMatch(/BAD_VERSION/);
    expect(text).toMatch(/FCGI_BEGIN_REQUEST for request 1, which is in progress/);
    expect(text).not.toMatch(/\n\s+at /);
  });

  it('turns a throwing or rejecting handler into a 500 with a STDERR record, and keeps serving', async () => {
    const { port, logs } = await serve(async (req, res) => {
      if (req.url === '/throw') throw new Error('boom');
      if (req.url === '/reject') return Promise.reject(new Error('async boom'));
      res.end('fine');
    });
    const conn = await rawConnect({ port });
    conn.send(
      ...requestRecords(1, GET('/throw'), { keepConn: true }),
      ...requestRecords(2, GET('/reject'), { keepConn: true }),
    );
    const thrown = await responseOf(conn, 1);
    expect(thrown.stdout).toMatch(/^Status: 500 Internal Server Error/);
    expect(thrown.stderr).toMatch(/handler failed on GET \/throw: boom/);
    expect((await responseOf(conn, 2)).stderr).toMatch(/async boom/);
    conn.send(...requestRecords(3, GET('/ok')));
    expect((await responseOf(conn, 3)).stdout).toMatch(/fine$/);
    expect(logs.join('\n')).toMatch(/handler failed on GET \/throw: Error: boom/);
  });

  it('answers FCGI_OVERLOADED past maxReqs', async () => {
    const { port } = await serve(() => {}, { maxReqs: 2 });
    const conn = await rawConnect({ port });
    conn.send(
      ...requestRecords(1, GET(), { keepConn: true }),
      ...requestRecords(2, GET(), { keepConn: true }),
      ...requestRecords(3, GET(), { keepConn: true }),
    );
    expect((await responseOf(conn, 3)).protocolStatus).toBe(FCGI_OVERLOADED);
    conn.close();
  });

  it('applies backpressure: a reader that does not read does not make the worker buffer the response', async () => {
    const TOTAL = 64 * 1024 * 1024;
    let accepted = 0;
    let falses = 0;
    const { port } = await serve((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (accepted < TOTAL) {
          accepted += chunk.length;
          if (!res.write(chunk)) {
            falses++;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const conn = await rawConnect({ port });
    conn.socket.pause();
    conn.send(...requestRecords(1, GET()));
    await new Promise((r) => setTimeout(r, 500));
    // Kernel buffers and one high-water mark, not the whole 64 MiB.
    expect(accepted).toBeLessThan(24 * 1024 * 1024);
    expect(falses).toBeGreaterThan(0);
    conn.socket.resume();
    const response = await responseOf(conn, 1, 20_000);
    expect(response.stdout.length).toBeGreaterThan(TOTAL);
    expect(accepted).toBe(TOTAL);
  });
});
