// A FastCGI worker that breaks the response framing on purpose, as a compromised app could:
// built on the codec alone (no SDK, which would not let it), accepting on fd 0 under the
// starter. It writes `saw <REQUEST_URI>` to stderr for each request; what it answers depends on
// the last segment of the decoded path (DOCUMENT_URI):
//   /params       200, the params it got as JSON
//   /cl-long      Content-Length: 11 with a 104-byte body that carries a second response
//   /cl-huge      Content-Length: 11 with a 4 MiB body
//   /cl-short     Content-Length: 100 with a 10-byte body
//   /cl-dup       two Content-Length headers that disagree
//   /cl-bad       Content-Length: 1x
//   /status-100   Status: 100 Continue as the final status; /status-101 the same with 101
//   anything else 200 "ok <path>\n" with a correct Content-Length
import net from 'node:net';
import {
  createDecoder,
  createParamsDecoder,
  encodeEndRequest,
  encodeGetValuesResult,
  encodeRecord,
  encodeStream,
  FCGI_BEGIN_REQUEST,
  FCGI_GET_VALUES,
  FCGI_KEEP_CONN,
  FCGI_PARAMS,
  FCGI_REQUEST_COMPLETE,
  FCGI_STDIN,
  FCGI_STDOUT,
  type Params,
  parseBeginRequestBody,
} from '../../src/protocol/index.js';
import { openStarterLink } from '../../worker-sdk/link.js';

// 11 bytes declared; the rest is a whole second response a desynchronised client would read
// as the answer to its next request.
const SMUGGLED = 'hello world';
const SECOND = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: yes\r\n\r\nsmuggled';
const LONG_BODY = SMUGGLED + SECOND.padEnd(104 - SMUGGLED.length, ' ');

function reply(params: Params): string {
  const path = params.DOCUMENT_URI ?? '';
  process.stderr.write(`saw ${JSON.stringify(params.REQUEST_URI)}\n`);
  switch (path.slice(path.lastIndexOf('/'))) {
    case '/params': {
      const body = JSON.stringify(params);
      return `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    }
    case '/cl-long':
      return `Content-Type: text/plain\r\nContent-Length: 11\r\n\r\n${LONG_BODY}`;
    case '/cl-huge':
      return `Content-Type: text/plain\r\nContent-Length: 11\r\n\r\n${'x'.repeat(4 * 1024 * 1024)}`;
    case '/cl-short':
      return 'Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789';
    case '/cl-dup':
      return 'Content-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\nok';
    case '/cl-bad':
      return 'Content-Type: text/plain\r\nContent-Length: 1x\r\n\r\nok';
    case '/status-100':
      return 'Status: 100 Continue\r\nContent-Type: text/plain\r\n\r\nnot final';
    case '/status-101':
      return 'Status: 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
    default: {
      const body = `ok ${path}\n`;
      return `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    }
  }
}

function handle(socket: net.Socket): void {
  const requests = new Map<
    number,
    { keep: boolean; params: ReturnType<typeof createParamsDecoder>; got: Params | null }
  >();
  const decoder = createDecoder((record) => {
    const request = requests.get(record.requestId);
    if (record.type === FCGI_GET_VALUES) {
      socket.write(encodeGetValuesResult({ FCGI_MPXS_CONNS: '0' }));
    } else if (record.type === FCGI_BEGIN_REQUEST) {
      const { flags } = parseBeginRequestBody(record.content);
      requests.set(record.requestId, {
        keep: (flags & FCGI_KEEP_CONN) !== 0,
        params: createParamsDecoder(),
        got: null,
      });
    } else if (record.type === FCGI_PARAMS && request) {
      if (record.content.length > 0) request.params.push(record.content);
      else request.got = request.params.end();
    } else if (record.type === FCGI_STDIN && record.content.length === 0 && request?.got) {
      socket.write(
        Buffer.concat([
          ...encodeStream(FCGI_STDOUT, record.requestId, Buffer.from(reply(request.got))),
          encodeRecord(FCGI_STDOUT, record.requestId),
          encodeEndRequest(record.requestId, 0, FCGI_REQUEST_COMPLETE),
        ]),
      );
      requests.delete(record.requestId);
      if (!request.keep) socket.end();
    }
  });
  socket.on('data', (chunk) => {
    try {
      decoder.push(chunk);
    } catch {
      socket.destroy();
    }
  });
  socket.on('error', () => {});
}

const server = net.createServer(handle);
server.listen({ fd: 0 }, Number(process.env.FCGI_BACKLOG ?? 511));
const link = openStarterLink(
  () => {},
  () => process.exit(0),
);
server.on('listening', () => link?.send({ type: 'fcgi-prefork:ready' }));
// Nothing it serves is worth waiting for: the tests stop it at once.
process.on('SIGTERM', () => process.exit(0));
