// The worker's own cost per request, without sockets, the kernel or nginx: one keep-conn
// connection fed nginx's request for "/" over and over, answered by a hello-world handler, each
// response written to a stream that drops it. node:http's own server is fed the same over
// HTTP/1.1, and so is @hono/node-server's listener (the same fetch handler over node:http). CPU time per request, each kind in a process of its own, rounds alternated, the
// median kept: far steadier than req/s behind nginx, so a change of 0.1 µs shows.
//   npm run bench:hotpath [-- --quick] [-- --rounds N] [-- --count N] [-- --json file]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Transport } from '../src/net/index.js';
import { ROOT } from '../test/helpers/processes.js';
import { argValue, jsonTarget, printTable } from './lib/measure.js';
import { buildOnce, QUICK } from './lib/setup.js';

const KINDS = [
  'SDK createServer',
  'SDK createServer + access log',
  'SDK serve (fetch)',
  'node:http',
  '@hono/node-server',
] as const;
type Kind = (typeof KINDS)[number];

// What nginx sends for GET / with Debian's fastcgi_params, as in the workers benchmark.
const NGINX_PARAMS: [string, string][] = [
  ['QUERY_STRING', ''],
  ['REQUEST_METHOD', 'GET'],
  ['CONTENT_TYPE', ''],
  ['CONTENT_LENGTH', ''],
  ['SCRIPT_NAME', '/'],
  ['REQUEST_URI', '/'],
  ['DOCUMENT_URI', '/'],
  ['DOCUMENT_ROOT', '/usr/share/nginx/html'],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['REQUEST_SCHEME', 'http'],
  ['GATEWAY_INTERFACE', 'CGI/1.1'],
  ['SERVER_SOFTWARE', 'nginx/1.22.1'],
  ['REMOTE_ADDR', '127.0.0.1'],
  ['REMOTE_PORT', '43210'],
  ['SERVER_ADDR', '127.0.0.1'],
  ['SERVER_PORT', '8080'],
  ['SERVER_NAME', ''],
  ['REDIRECT_STATUS', '200'],
  ['SCRIPT_FILENAME', '/var/www/html/index.php'],
  ['HTTP_HOST', '127.0.0.1:8080'],
];
const HTTP_REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\n\r\n';

/** A socket's stand-in: what is pushed is read, what is written is dropped and counted. */
function nullSocket(onWrite: () => void): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
      onWrite();
    },
    writev(_chunks, callback) {
      callback();
      onWrite();
    },
  });
}

/** The worker's transport stand-in (as its stream-handle transport): writes dropped and counted. */
function nullTransport(onWrite: () => void): Transport {
  const written = () => {
    onWrite();
    return true;
  };
  return {
    sharedReads: false,
    writableLength: 0,
    start() {},
    write: written,
    writev: written,
    pause() {},
    resume() {},
    end() {},
    destroy() {},
    remoteAddress: '127.0.0.1',
    remotePort: 9000,
    localAddress: '127.0.0.1',
    localPort: 9000,
  };
}

/** Feeds `count` requests one after another; each waits for its response's write. */
async function drive(feed: () => void, hook: (done: () => void) => void, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => {
      hook(resolve);
      feed();
    });
  }
}

async function child(kind: Kind, count: number): Promise<number> {
  let done: () => void = () => {};
  const hook = (d: () => void) => {
    done = d;
  };
  let feed: () => void;
  const hello = () => new Response('Hello, world!\n', { headers: { 'Content-Type': 'text/plain' } });
  if (kind === 'node:http' || kind === '@hono/node-server') {
    const socket = nullSocket(() => done());
    const server = http.createServer(
      kind === 'node:http'
        ? (_req, res) => {
            res.setHeader('Content-Type', 'text/plain');
            res.end('Hello, world!\n');
          }
        : (await import('@hono/node-server')).getRequestListener(hello),
    );
    server.emit('connection', socket);
    const bytes = Buffer.from(HTTP_REQUEST);
    feed = () => socket.push(bytes);
  } else {
    // The built package, as workers run it.
    const dist = join(ROOT, 'dist');
    const { Connection } = await import(join(dist, 'worker-sdk', 'connection.js'));
    const { resolveOptions } = await import(join(dist, 'worker-sdk', 'options.js'));
    const { createFetchListener } = await import(join(dist, 'worker-sdk', 'fetch.js'));
    const p = await import(join(dist, 'src', 'protocol', 'index.js'));
    // --access-log: each request's line written to a file, as a worker writes it (its cost is
    // what the kind adds to SDK createServer).
    const observe =
      kind === 'SDK createServer + access log'
        ? (await import(join(dist, 'worker-sdk', 'access-log.js'))).openAccessLog(
            join(mkdtempSync(join(tmpdir(), 'hotpath-')), 'access.log'),
            () => {},
          ).observe
        : null;
    const listener =
      kind === 'SDK serve (fetch)'
        ? createFetchListener(hello)
        : (_req: IncomingMessage, res: ServerResponse) => {
            res.setHeader('Content-Type', 'text/plain');
            res.end('Hello, world!\n');
          };
    const context = {
      options: resolveOptions({}),
      dispatch(req: IncomingMessage, res: ServerResponse, onError: (err: unknown) => void) {
        observe?.(req, res);
        try {
          const result = listener(req, res);
          if (result instanceof Promise) result.catch(onError);
        } catch (err) {
          onError(err);
        }
      },
      active: () => 0,
      requestStarted() {},
      requestEnded() {},
      takeParams: () => true,
      giveParams() {},
      draining: () => false,
      connectionClosed() {},
    };
    const connection = new Connection(
      nullTransport(() => done()),
      context,
    ) as {
      onData(chunk: Buffer, length: number): void;
    };
    const bytes: Buffer = Buffer.concat([
      p.encodeBeginRequest(1, p.FCGI_RESPONDER, p.FCGI_KEEP_CONN),
      ...p.encodeParams(1, NGINX_PARAMS),
      p.encodeRecord(p.FCGI_STDIN, 1),
    ]);
    // The connection's read path, as a read of the socket calls it.
    feed = () => connection.onData(bytes, bytes.length);
  }
  await drive(feed, hook, Math.max(1000, count / 10)); // warm-up: the JIT settles
  const before = process.cpuUsage();
  await drive(feed, hook, count);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

async function main(): Promise<void> {
  const childKind = argValue('--child');
  if (childKind) {
    const micros = await child(childKind as Kind, Number(argValue('--count')));
    process.stdout.write(`${micros}\n`);
    return;
  }
  buildOnce();
  const count = Number(argValue('--count') ?? (QUICK ? 20_000 : 200_000));
  const rounds = Number(argValue('--rounds') ?? (QUICK ? 1 : 5));
  const runs = new Map<Kind, number[]>(KINDS.map((k) => [k, []]));
  const self = fileURLToPath(import.meta.url);
  for (let round = 0; round < rounds; round++) {
    for (const kind of round % 2 ? [...KINDS].reverse() : KINDS) {
      process.stderr.write(`measuring ${kind} (round ${round + 1} of ${rounds})…\n`);
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', self, '--child', kind, '--count', String(count)],
        { cwd: ROOT, encoding: 'utf8' },
      );
      runs.get(kind)!.push(Number(out.trim()));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = KINDS.map((kind) => ({ kind, micros: median(runs.get(kind)!), runs: runs.get(kind)! }));
  const micros = (kind: Kind) => rows.find((r) => r.kind === kind)!.micros;
  const reference = micros('node:http');
  const sdk = micros('SDK createServer');
  console.log(
    `\n${count} keep-conn requests in one process, no sockets; CPU µs per request, median of ${rounds}\n`,
  );
  printTable([
    ['handler', 'µs/request', 'runs', 'vs node:http', 'speed vs SDK createServer'],
    ...rows.map((r) => [
      r.kind,
      r.micros.toFixed(2),
      r.runs.map((x) => x.toFixed(2)).join(' / '),
      `${(r.micros / reference).toFixed(2)}x`,
      `${(sdk / r.micros).toFixed(2)}x`,
    ]),
  ]);
  const json = jsonTarget();
  if (json) writeFileSync(json, `${JSON.stringify({ bench: 'hotpath', count, rounds, rows }, null, 2)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
