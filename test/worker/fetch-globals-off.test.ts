import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { createFetchListener, createServer, type FcgiServer } from '../../worker-sdk/index.js';
import { GET, rawConnect, requestRecords, responseOf } from '../helpers/fcgi-raw.js';

// A file of its own: the globals, once replaced by a fetch listener, stay replaced in its process.
const UndiciRequest = globalThis.Request;
const UndiciResponse = globalThis.Response;
const undiciFetch = globalThis.fetch;

const servers: FcgiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(null)))));
});

it('with overrideGlobalObjects: false, leaves the globals alone and gives undici’s Request in full', async () => {
  let seen: unknown;
  const server = createServer(
    createFetchListener(
      async (request) => {
        const copy = new Request(request);
        seen = {
          undici: Object.getPrototypeOf(Object.getPrototypeOf(request)) === UndiciRequest.prototype,
          url: request.url,
          header: request.headers.get('x-test'),
          signal: request.signal.aborted,
          copy: `${copy.method} ${copy.url}`,
        };
        return new Response('plain', { headers: { 'X-One': '1' } });
      },
      { overrideGlobalObjects: false },
    ),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  expect([globalThis.Request, globalThis.Response, globalThis.fetch]).toEqual([
    UndiciRequest,
    UndiciResponse,
    undiciFetch,
  ]);
  const conn = await rawConnect({ port: (server.address() as AddressInfo).port });
  conn.send(...requestRecords(1, GET('/p?q=1', { HTTP_X_TEST: 'yes' })));
  expect((await responseOf(conn, 1)).stdout).toBe(
    'Status: 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\nx-one: 1\r\nContent-Length: 5\r\n\r\nplain',
  );
  conn.close();
  expect(seen).toEqual({
    undici: true,
    url: 'http://example.test/p?q=1',
    header: 'yes',
    signal: false,
    copy: 'GET http://example.test/p?q=1',
  });
});
