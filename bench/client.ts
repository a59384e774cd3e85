// The starter's HTTP front and the FastCGI client, one run:
//  - `fcgi-prefork --http` in front of an SDK pool against nginx in front of the same pool (wrk);
//  - requests/s of this package's client (fcgi-prefork/client) against a php-cgi pool and an
//    SDK pool, beside the npm `fastcgi-client` package doing the same requests.
//   npm run bench:client [-- --quick] [-- --json results.json]
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createClient } from '../src/client/index.js';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { startNginx } from '../test/helpers/nginx.js';
import { findProgram } from '../test/helpers/peers.js';
import { jsonTarget, printTable } from './lib/measure.js';
import { requirePeers } from './lib/peers.js';
import { buildOnce, PEERS_DIR, seconds, sleep, startPool, stopEverything } from './lib/setup.js';
import { wrk, wrkArgs } from './lib/wrk.js';

const require = createRequire(import.meta.url);
interface TheirRequest {
  stdin: NodeJS.WritableStream;
  stdout: NodeJS.ReadableStream;
  getExitStatus(): number | Error | null;
}
interface TheirClient {
  on(event: 'ready', listener: () => void): void;
  request(params: Record<string, string>, cb: (err: Error | null, req: TheirRequest) => void): void;
}
const fastcgiClient = require('fastcgi-client') as (options: Record<string, unknown>) => TheirClient;

const duration = seconds(4);
const CONNECTIONS = 32;
/** Requests in flight from the client benchmarks. */
const IN_FLIGHT = 16;
const params = {
  REQUEST_METHOD: 'GET',
  REQUEST_URI: '/',
  SCRIPT_FILENAME: join(PEERS_DIR, 'hello.php'),
  SCRIPT_NAME: '/hello.php',
  SERVER_PROTOCOL: 'HTTP/1.1',
  GATEWAY_INTERFACE: 'CGI/1.1',
};

/** IN_FLIGHT loops, each sending the next request when its last one is answered, for `seconds`. */
async function drive(
  one: () => Promise<boolean>,
  seconds = duration,
): Promise<{ rps: number; errors: number }> {
  let done = 0;
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        if (await one().catch(() => false)) done++;
        else errors++;
      }
    }),
  );
  return { rps: (done * 1000) / (performance.now() - start), errors };
}

function ours(port: number, keepConn: boolean) {
  const client = createClient({ host: '127.0.0.1', port }, { keepConn, connections: IN_FLIGHT });
  return {
    one: async () => (await client.requestAll({ params })).status === 200,
    close: () => client.close(),
  };
}

async function theirs(port: number) {
  // skipCheckServer: no FCGI_GET_VALUES first; one connection per request, as ours with keep-conn off.
  const client = fastcgiClient({ host: '127.0.0.1', port, skipCheckServer: true, maxConns: IN_FLIGHT * 2 });
  await new Promise<void>((resolve) => client.on('ready', resolve));
  return {
    one: () =>
      new Promise<boolean>((resolve, reject) => {
        client.request(params, (err, req) => {
          if (err) return reject(err);
          let head = '';
          req.stdout.on('data', (chunk: Buffer) => {
            if (head.length < 64) head += chunk.toString('latin1');
          });
          req.stdout.on('end', () => resolve(req.getExitStatus() === 0 && !/^Status: [^2]/.test(head)));
          req.stdin.end();
        });
      }),
    close: () => {},
  };
}

interface ClientRow {
  client: string;
  target: string;
  keepConn: boolean;
  rps: number;
  errors: number;
}

async function main(): Promise<void> {
  requirePeers(['wrk', 'nginx', 'php-cgi']);
  buildOnce();
  const sdk = join(PEERS_DIR, 'sdk-hello.mjs');

  // 1. The --http front against nginx (fastcgi_keep_conn on, upstream keepalive), same pool.
  const port = await freePort();
  const http = await freePort();
  const pool = startPool(['--http', `127.0.0.1:${http}`, '-p', String(port), '-N', '2', '--allow-root', sdk]);
  await waitForListen({ host: '127.0.0.1', port: http });
  await sleep(1000);
  const nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port }, keepConn: true, keepalive: 32 });
  const front: Record<string, ReturnType<typeof wrk>> = {};
  for (const [name, url] of [
    ['fcgi-prefork --http', `http://127.0.0.1:${http}/`],
    ['nginx (keep-conn, keepalive 32)', `${nginx.url}/`],
  ] as const) {
    wrk(url, { connections: CONNECTIONS, seconds: 1 }); // warm-up
    front[name] = wrk(url, { connections: CONNECTIONS, seconds: duration });
  }
  await nginx.stop();

  // 2. FastCGI clients against the same SDK pool, then against a php-cgi pool.
  const clients: ClientRow[] = [];
  const measureClients = async (target: string, targetPort: number, keepConnToo: boolean) => {
    const runs: [string, boolean, () => Promise<{ one: () => Promise<boolean>; close: () => void }>][] = [
      ['fcgi-prefork/client', false, async () => ours(targetPort, false)],
      ['fastcgi-client (npm)', false, () => theirs(targetPort)],
    ];
    // php-cgi serves one connection at a time until it closes: pooled keep-conn connections
    // beyond the worker count would wait forever, so keep-conn is measured on the SDK pool only.
    if (keepConnToo) runs.push(['fcgi-prefork/client', true, async () => ours(targetPort, true)]);
    for (const [client, keepConn, make] of runs) {
      const c = await make();
      await drive(c.one, 1); // warm-up
      const r = await drive(c.one);
      c.close();
      clients.push({ client, target, keepConn, ...r });
    }
  };
  await measureClients('SDK pool', port, true);
  await pool.stop();
  const phpPort = await freePort();
  const php = startPool(['-p', String(phpPort), '-N', '2', '--allow-root', findProgram('php-cgi')!], {
    env: { ...process.env, PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '0' },
  });
  await waitForListen({ host: '127.0.0.1', port: phpPort });
  await measureClients('php-cgi pool', phpPort, false);
  await php.stop();

  const table = [['HTTP front', 'req/s', 'p50 ms', 'p99 ms', 'errors']];
  for (const [name, r] of Object.entries(front))
    table.push([name, r.rps.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), String(r.errors)]);
  printTable(table);
  console.log('');
  const table2 = [['FastCGI client', 'target', 'keep-conn', 'req/s', 'errors']];
  for (const r of clients)
    table2.push([r.client, r.target, r.keepConn ? 'on' : 'off', r.rps.toFixed(0), String(r.errors)]);
  printTable(table2);
  const json = jsonTarget();
  if (json)
    writeFileSync(
      json,
      `${JSON.stringify(
        {
          bench: 'client',
          wrk: `wrk ${wrkArgs('http://<front>/', { connections: CONNECTIONS, seconds: duration }).join(' ')}`,
          inFlight: IN_FLIGHT,
          duration,
          front: Object.entries(front).map(([name, r]) => ({ front: name, ...r })),
          clients,
        },
        null,
        2,
      )}\n`,
    );
}

main()
  .then(stopEverything)
  .catch(async (err) => {
    console.error(err);
    await stopEverything();
    process.exit(1);
  });
