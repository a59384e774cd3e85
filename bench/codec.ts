// Codec benchmark: this codec against fastcgi-stream (the usual Node parser) in one run.
// Decoding a request means what a server needs: records, and params as name/value strings.
//   npm run bench:codec [-- --quick] [-- --json results.json]
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  createDecoder,
  createParamsDecoder,
  encodeBeginRequest,
  encodeParams,
  encodeRecord,
  encodeStream,
  FCGI_KEEP_CONN,
  FCGI_PARAMS,
  FCGI_RESPONDER,
  FCGI_STDIN,
  MAX_RECORD_CONTENT,
} from '../src/protocol/index.js';
import { formatRate, jsonTarget, opsPerSecond, printTable } from './lib/measure.js';

const require = createRequire(import.meta.url);
interface TheirRecordClass {
  new (...args: unknown[]): object;
  roles: { RESPONDER: number };
  flags: { KEEP_CONN: number };
}
const { FastCGIStream, records } = require('fastcgi-stream') as {
  FastCGIStream: new (
    s: EventEmitter,
  ) => EventEmitter & { writeRecord(requestId: number, record: object): boolean };
  records: Record<'BeginRequest' | 'Params' | 'StdIn', TheirRecordClass>;
};

// What nginx's fastcgi_params sends for a typical browser request, plus the usual headers.
const NGINX_PARAMS: Record<string, string> = {
  SCRIPT_FILENAME: '/var/www/html/index.php',
  QUERY_STRING: 'page=2&sort=desc',
  REQUEST_METHOD: 'GET',
  CONTENT_TYPE: '',
  CONTENT_LENGTH: '',
  SCRIPT_NAME: '/index.php',
  REQUEST_URI: '/index.php?page=2&sort=desc',
  DOCUMENT_URI: '/index.php',
  DOCUMENT_ROOT: '/var/www/html',
  SERVER_PROTOCOL: 'HTTP/1.1',
  REQUEST_SCHEME: 'http',
  GATEWAY_INTERFACE: 'CGI/1.1',
  SERVER_SOFTWARE: 'nginx/1.22.1',
  REMOTE_ADDR: '192.0.2.15',
  REMOTE_PORT: '53422',
  SERVER_ADDR: '192.0.2.1',
  SERVER_PORT: '80',
  SERVER_NAME: 'example.com',
  REDIRECT_STATUS: '200',
  HTTP_HOST: 'example.com',
  HTTP_CONNECTION: 'keep-alive',
  HTTP_USER_AGENT:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  HTTP_ACCEPT: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  HTTP_ACCEPT_ENCODING: 'gzip, deflate, br',
  HTTP_ACCEPT_LANGUAGE: 'en-US,en;q=0.9,de;q=0.8',
  HTTP_COOKIE: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=yes',
  HTTP_REFERER: 'https://example.com/index.php?page=1',
  HTTP_UPGRADE_INSECURE_REQUESTS: '1',
  HTTP_SEC_FETCH_DEST: 'document',
  HTTP_SEC_FETCH_MODE: 'navigate',
  HTTP_CACHE_CONTROL: 'max-age=0',
};

function typicalRequest(id: number): Buffer {
  return Buffer.concat([
    encodeBeginRequest(id, FCGI_RESPONDER, FCGI_KEEP_CONN),
    ...encodeParams(id, NGINX_PARAMS),
    encodeRecord(FCGI_STDIN, id),
  ]);
}

const body = Buffer.alloc(1024 * 1024, 0x61);
// Params first, as on the wire, so the STDIN records do not line up with the socket's reads.
const bodyRecords = Buffer.concat([
  encodeBeginRequest(1, FCGI_RESPONDER, 0),
  ...encodeParams(1, NGINX_PARAMS),
  ...encodeStream(FCGI_STDIN, 1, body),
  encodeRecord(FCGI_STDIN, 1),
]);
const typical = typicalRequest(1);
const many = Buffer.concat(Array.from({ length: 1000 }, (_, i) => typicalRequest((i % 65535) + 1)));

// Ours: records, params decoded into a name → value object per request.
function oursDecode(bytes: Buffer): number {
  let requests = 0;
  let params = createParamsDecoder();
  const decoder = createDecoder((r) => {
    if (r.type === FCGI_PARAMS) {
      if (r.content.length > 0) params.push(r.content);
      else {
        params.end();
        params = createParamsDecoder();
        requests++;
      }
    }
  });
  decoder.push(bytes);
  return requests;
}

// As a socket delivers it: 64 KiB reads, so most records straddle two reads and are copied once.
const SOCKET_READ = 65536;
function oursStdin(bytes: Buffer, fragments: boolean): number {
  let total = 0;
  const decoder = createDecoder(
    (r) => {
      total += r.content.length;
    },
    { fragments },
  );
  for (let at = 0; at < bytes.length; at += SOCKET_READ) decoder.push(bytes.subarray(at, at + SOCKET_READ));
  return total;
}

function theirsDecode(bytes: Buffer, chunk = bytes.length): number {
  const source = new EventEmitter();
  let records = 0;
  new FastCGIStream(source).on('record', () => {
    records++;
  });
  for (let at = 0; at < bytes.length; at += chunk) source.emit('data', bytes.subarray(at, at + chunk));
  return records;
}

// Encoding: what a client (or nginx) sends, records ready for socket.write, into a sink.
const PAIRS = Object.entries(NGINX_PARAMS);
function oursEncodeTypical(write: (b: Buffer) => void): void {
  write(encodeBeginRequest(1, FCGI_RESPONDER, FCGI_KEEP_CONN));
  for (const b of encodeParams(1, NGINX_PARAMS)) write(b);
  write(encodeRecord(FCGI_STDIN, 1));
}
function oursEncodeBody(write: (b: Buffer) => void): void {
  for (const b of encodeStream(FCGI_STDIN, 1, body)) write(b);
}
const theirSink = Object.assign(new EventEmitter(), { write: (_: Buffer) => true });
const theirs = new FastCGIStream(theirSink);
function theirsEncodeTypical(): void {
  theirs.writeRecord(
    1,
    new records.BeginRequest(records.BeginRequest.roles.RESPONDER, records.BeginRequest.flags.KEEP_CONN),
  );
  theirs.writeRecord(1, new records.Params(PAIRS));
  theirs.writeRecord(1, new records.Params([]));
  theirs.writeRecord(1, new records.StdIn());
}
function theirsEncodeBody(): void {
  for (let at = 0; at < body.length; at += MAX_RECORD_CONTENT)
    theirs.writeRecord(1, new records.StdIn(body.subarray(at, at + MAX_RECORD_CONTENT)));
}
const sink = (_: Buffer) => {};

/** Milliseconds per measured case; --quick is for checking the suite, not for figures. */
const MS = process.argv.includes('--quick') ? 300 : 1000;
const target = Buffer.alloc(body.length);
const rows: string[][] = [['case', 'fcgi-prefork', 'fastcgi-stream', 'ratio', 'note']];
const results: { case: string; unit: string; ours: number; theirs: number | null; note: string }[] = [];
function row(name: string, ours: number, theirs: number | null, unit: string, note = ''): void {
  results.push({ case: name, unit, ours, theirs, note });
  rows.push([
    name,
    `${formatRate(ours)} ${unit}`,
    theirs === null ? '-' : `${formatRate(theirs)} ${unit}`,
    theirs === null ? '-' : `${(ours / theirs).toFixed(2)}x`,
    note,
  ]);
}

const aOurs = opsPerSecond(() => oursDecode(typical), MS);
const aTheirs = opsPerSecond(() => theirsDecode(typical), MS);
row('decode typical nginx request', aOurs, aTheirs, 'req/s', 'target ≥ 3x');

const bOurs = opsPerSecond(() => oursStdin(bodyRecords, true), MS);
const bCopy = opsPerSecond(() => oursStdin(bodyRecords, false), MS);
const bTheirs = opsPerSecond(() => theirsDecode(bodyRecords, SOCKET_READ), MS);
const memcpy = opsPerSecond(() => body.copy(target), MS);
row(
  'decode 1 MiB STDIN in 64 KiB reads',
  bOurs,
  bTheirs,
  'MiB/s',
  `pieces as views (as the SDK reads); whole records copied: ${formatRate(bCopy)} MiB/s = ${((bCopy / memcpy) * 100).toFixed(0)}% of memcpy ${formatRate(memcpy)} MiB/s`,
);

const cOurs = opsPerSecond(() => oursDecode(many), MS) * 1000;
const cTheirs = opsPerSecond(() => theirsDecode(many), 2 * MS) * 1000;
row(
  'decode 1000 requests in one chunk',
  cOurs,
  cTheirs,
  'req/s',
  `per request vs one: ours ${(cOurs / aOurs).toFixed(2)}, theirs ${(cTheirs / aTheirs).toFixed(2)}`,
);

row(
  'encode typical nginx request',
  opsPerSecond(() => oursEncodeTypical(sink), MS),
  opsPerSecond(theirsEncodeTypical, MS),
  'req/s',
);
row(
  'encode 1 MiB STDIN',
  opsPerSecond(() => oursEncodeBody(sink), MS),
  opsPerSecond(theirsEncodeBody, MS),
  'MiB/s',
  'ours: headers + views of the body; theirs: a copy per record',
);

console.log(`node ${process.version}, ${process.platform} ${process.arch}`);
printTable(rows);
const json = jsonTarget();
if (json) writeFileSync(json, `${JSON.stringify({ bench: 'codec', rows: results }, null, 2)}\n`);
