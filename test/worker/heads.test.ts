import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createPairSpans, encodeNameValuePairs, scanPairs } from '../../src/protocol/index.js';
import { cgiResponse, httpHeadToCgi, NODE_WRITES_CGI_HEADS } from '../../worker-sdk/cgi-head.js';
import { buildRequestHead, setRawHeaders } from '../../worker-sdk/request-head.js';
import { RequestParams } from '../../worker-sdk/request-params.js';
import { type RequestSink, RequestSocket } from '../../worker-sdk/request-socket.js';

describe('response head: node:http HTTP head → CGI head', () => {
  it('turns the status line into Status and drops node:http’s own Connection line', () => {
    expect(
      httpHeadToCgi('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n', 10),
    ).toBe('Status: 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n');
  });

  it('keeps an application Content-Length, and adds none without a known length or for 204/304', () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n';
    expect(httpHeadToCgi(head, 3)).toBe('Status: 200 OK\r\nContent-Length: 3\r\n\r\n');
    expect(httpHeadToCgi('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', undefined)).toBe(
      'Status: 200 OK\r\n\r\n',
    );
    expect(httpHeadToCgi('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n', 0)).toBe(
      'Status: 204 No Content\r\n\r\n',
    );
    expect(httpHeadToCgi('HTTP/1.1 304 Not Modified\r\n\r\n', 0)).toBe('Status: 304 Not Modified\r\n\r\n');
  });

  it('drops hop-by-hop headers wherever the application put them, in any case', () => {
    const head =
      'HTTP/1.1 200 OK\r\nkeep-alive: timeout=5\r\nX-A: 1\r\nTRANSFER-ENCODING: chunked\r\nSet-Cookie: a=1\r\nconnection: upgrade\r\n\r\n';
    expect(httpHeadToCgi(head, 2)).toBe(
      'Status: 200 OK\r\nX-A: 1\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n\r\n',
    );
  });

  it('leaves headers that only look like hop-by-hop ones', () => {
    const head =
      'HTTP/1.1 200 OK\r\nX-Connection: close\r\nX-Note: connection: no\r\nConnection: close\r\n\r\n';
    expect(httpHeadToCgi(head, undefined)).toBe(
      'Status: 200 OK\r\nX-Connection: close\r\nX-Note: connection: no\r\n\r\n',
    );
  });

  it('converts the head node:http itself writes for a response told not to keep the connection', () => {
    const res = new ServerResponse({ method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1 } as never);
    res.sendDate = false;
    res.shouldKeepAlive = false;
    res.useChunkedEncodingByDefault = false;
    res.setHeader('Content-Type', 'text/html');
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.writeHead(201, 'Made');
    const head = (res as unknown as { _header: string })._header;
    expect(head).toMatch(/Connection: close\r\n\r\n$/);
    expect(httpHeadToCgi(head, 5)).toBe(
      'Status: 201 Made\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\n',
    );
  });
});

describe('response head: node:http builds it as CGI (cgiResponse)', () => {
  // What a response sends through its request's socket, as one string.
  const sent = (method: string, respond: (res: ServerResponse) => void): string => {
    const out: string[] = [];
    const sink: RequestSink = {
      stdout: (_id, data) => {
        out.push(typeof data === 'string' ? data : Buffer.from(data).toString('latin1'));
        return true;
      },
      wantsBody() {},
      release() {},
      remoteAddress: undefined,
      remotePort: undefined,
      localAddress: undefined,
      localPort: undefined,
    };
    const socket = new RequestSocket(sink, 1, false, new RequestParams(''));
    const req = new IncomingMessage(socket as unknown as Socket);
    req.method = method;
    const res = new ServerResponse(req);
    cgiResponse(res);
    res.assignSocket(socket as unknown as Socket);
    respond(res);
    return out.join('');
  };

  it('is what this Node does (else heads are converted as they are written)', () => {
    expect(NODE_WRITES_CGI_HEADS).toBe(true);
  });

  it('gives the status as Status and the length node:http knows, with no Connection or Date', () => {
    expect(
      sent('GET', (res) => {
        res.setHeader('Content-Type', 'text/plain');
        res.end('Hello');
      }),
    ).toBe('Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nHello');
    // Bytes: their length as bytes. A head written before the body has no length to give.
    expect(sent('GET', (res) => res.end(Buffer.from('é')))).toBe(
      'Status: 200 OK\r\nContent-Length: 2\r\n\r\n\u00c3\u00a9',
    );
    expect(sent('GET', (res) => res.writeHead(404, 'Gone', { 'X-A': '1' }).end('x'))).toBe(
      'Status: 404 Gone\r\nX-A: 1\r\n\r\nx',
    );
  });

  it('frames a streamed body in no way at all: CGI ends it with the stream', () => {
    expect(
      sent('GET', (res) => {
        res.write('a');
        res.end('b');
      }),
    ).toBe('Status: 200 OK\r\n\r\nab');
  });

  it('drops hop-by-hop headers the application set, and does not chunk for its Transfer-Encoding', () => {
    expect(
      sent('GET', (res) => {
        res.writeHead(200, {
          Connection: 'close',
          'Transfer-Encoding': 'chunked',
          'Keep-Alive': 'x',
          'X-B': '2',
        });
        res.write('abc');
        res.end();
      }),
    ).toBe('Status: 200 OK\r\nX-B: 2\r\n\r\nabc');
    expect(
      sent('GET', (res) => {
        res.setHeader('keep-alive', 'timeout=5');
        res.end('x');
      }),
    ).toBe('Status: 200 OK\r\nContent-Length: 1\r\n\r\nx');
  });

  it('gives no length for HEAD, 204 and 304', () => {
    expect(sent('HEAD', (res) => res.end('xyz'))).toBe('Status: 200 OK\r\n\r\n');
    expect(sent('GET', (res) => res.writeHead(204).end())).toBe('Status: 204 No Content\r\n\r\n');
    expect(sent('GET', (res) => res.writeHead(304, 'Not Modified').end())).toBe(
      'Status: 304 Not Modified\r\n\r\n',
    );
  });
});

describe('request head: CGI params → node:http request fields', () => {
  const head = (pairs: [string, string][]) => {
    const text = encodeNameValuePairs(pairs).toString('latin1');
    const spans = createPairSpans();
    scanPairs(text, 1 << 20, spans);
    return buildRequestHead(text, spans);
  };

  it('reads method, url, version, address and headers, and ignores names that only look alike', () => {
    const h = head([
      ['REQUEST_SCHEME', 'http'],
      ['REQUEST_METHOD', 'POST'],
      ['REQUEST_URI', '/a?b=1'],
      ['REQUEST_URIX', '/wrong'],
      ['SERVER_PROTOCOL', 'HTTP/1.0'],
      ['SERVER_SOFTWARE', 'nginx'],
      ['SCRIPT_NAMF', 'x'],
      ['REMOTE_ADDR', '10.0.0.1'],
      ['REMOTE_PORT', '4321'],
      ['HTTP_ACCEPT_LANGUAGE', 'en'],
      ['HTTP_', 'nameless'],
      ['HTTP_CONTENT_TYPE', 'text/plain'],
      ['CONTENT_TYPE', 'application/json'],
      ['CONTENT_LENGTH', '2'],
      ['HTTPS', 'on'],
    ]);
    expect(h).toMatchObject({
      method: 'POST',
      url: '/a?b=1',
      httpVersion: '1.0',
      https: true,
      contentLength: '2',
    });
    expect(h.rawHeaders).toEqual([
      'accept-language',
      'en',
      'content-type',
      'application/json',
      'content-length',
      '2',
    ]);
  });

  it('is not fooled by a later name of the same length and the same chars where it looks', () => {
    // Each impostor has its name's length, second char and last char: the names are told
    // apart only by a full compare, and the real pair before it still gives the value.
    const h = head([
      ['REQUEST_METHOD', 'PUT'],
      ['REXXXXXXXXXXXD', 'GET'],
      ['REQUEST_URI', '/real'],
      ['REXXXXXXXXI', '/fake'],
      ['SERVER_PROTOCOL', 'HTTP/1.0'],
      ['SEXXXXXXXXXXXXL', 'HTTP/2.0'],
      ['CONTENT_LENGTH', '5'],
      ['COXXXXXXXXXXXH', ''],
      ['CONTENT_TYPE', 'text/plain'],
      ['COXXXXXXXXXE', ''],
    ]);
    expect(h).toMatchObject({ method: 'PUT', url: '/real', httpVersion: '1.0', contentLength: '5' });
    expect(h.rawHeaders).toEqual(['content-type', 'text/plain', 'content-length', '5']);
  });

  it('reads the client address from the params only when asked, last value winning', () => {
    const socketOf = (pairs: [string, string][]) =>
      new RequestSocket(
        {} as RequestSink,
        1,
        false,
        new RequestParams(encodeNameValuePairs(pairs).toString('latin1')),
      );
    const socket = socketOf([
      ['REMOTE_ADDR', '10.0.0.1'],
      ['REMOTE_PORT', '4321'],
      ['REMOTE_ADDR', '10.0.0.2'],
    ]);
    expect([socket.remoteAddress, socket.remotePort]).toEqual(['10.0.0.2', 4321]);
    expect([socketOf([]).remoteAddress, socketOf([['REMOTE_PORT', 'x']]).remotePort]).toEqual([
      undefined,
      undefined,
    ]);
  });

  it('builds the url from SCRIPT_NAME, PATH_INFO and QUERY_STRING without REQUEST_URI; last value wins', () => {
    const h = head([
      ['SCRIPT_NAME', '/app'],
      ['PATH_INFO', '/x'],
      ['QUERY_STRING', 'q=1'],
      ['HTTP_X_A', '1'],
      ['HTTP_X_A', '2'],
    ]);
    expect(h.url).toBe('/app/x?q=1');
    expect(h.method).toBe('GET');
    expect(h.rawHeaders).toEqual(['x-a', '2']);
  });

  it('keeps the last value of a header sent more than once, apart or not, as it does in the next request', () => {
    const pairs: [string, string][] = [
      ['HTTP_X_A', '1'],
      ['HTTP_X_B', 'b'],
      ['HTTP_X_A', '2'],
      ['HTTP_X_A', '3'],
    ];
    // Twice: the second head must not take the first head's names for its own repeats.
    for (let i = 0; i < 2; i++) expect(head(pairs).rawHeaders).toEqual(['x-b', 'b', 'x-a', '3']);
    expect(head([['HTTP_X_A', '4']]).rawHeaders).toEqual(['x-a', '4']);
  });

  it('reads headers past the names it remembers the same way', () => {
    // More distinct names than are remembered: later ones are read without the memory.
    const many: [string, string][] = [];
    for (let i = 0; i < 600; i++) many.push([`HTTP_X_MANY_${i}`, String(i)]);
    head(many);
    const h = head([
      ['HTTP_X_NEW_ONE', '1'],
      ['HTTP_X_OTHER', 'o'],
      ['HTTP_X_NEW_ONE', '2'],
    ]);
    expect(h.rawHeaders).toEqual(['x-other', 'o', 'x-new-one', '2']);
  });

  it('gives node:http the raw headers, from which it makes req.headers when read', () => {
    const req = new IncomingMessage(null as unknown as Socket);
    const raw = head([
      ['HTTP_HOST', 'example.com'],
      ['HTTP_X_A', '1'],
      ['CONTENT_TYPE', 'text/plain'],
    ]).rawHeaders;
    setRawHeaders(req, raw);
    expect(req.rawHeaders).toEqual(['host', 'example.com', 'x-a', '1', 'content-type', 'text/plain']);
    expect(req.headers).toEqual({ host: 'example.com', 'x-a': '1', 'content-type': 'text/plain' });
  });
});
