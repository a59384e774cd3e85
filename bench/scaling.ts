// Scaling curve: req/s against wrk's concurrency (1 to 512 connections) for the SDK pool,
// node-fastcgi and Go's net/http/fcgi, 2 workers each under fcgi-prefork, behind the same
// nginx (fastcgi_keep_conn off), in one run.
//   npm run bench:scaling [-- --quick] [-- --json results.json]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { startNginxHttp } from '../test/helpers/nginx.js';
import { jsonTarget, printTable } from './lib/measure.js';
import { requirePeers } from './lib/peers.js';
import { buildGoPeer, buildOnce, PEERS_DIR, seconds, sleep, startPool, stopEverything } from './lib/setup.js';
import { wrk } from './lib/wrk.js';

const CONCURRENCY = [1, 8, 32, 128, 512] as const;
const duration = seconds(3);

interface Point {
  kind: string;
  connections: number;
  rps: number;
  p99: number;
  errors: number;
}

async function curve(kind: string, command: readonly string[]): Promise<Point[]> {
  const port = await freePort();
  const pool = startPool(['-p', String(port), '-N', '2', '--allow-root', '--', ...command]);
  const front = await freePort();
  const nginx = await startNginxHttp(
    `server { listen 127.0.0.1:${front}; location / { include /etc/nginx/fastcgi_params; fastcgi_pass 127.0.0.1:${port}; } }`,
    front,
  );
  try {
    await waitForListen({ host: '127.0.0.1', port });
    await sleep(1000);
    wrk(`${nginx.url}/`, { connections: 32, seconds: 1 }); // warm-up
    const points: Point[] = [];
    for (const connections of CONCURRENCY) {
      const r = wrk(`${nginx.url}/`, { connections, seconds: duration });
      points.push({ kind, connections, rps: r.rps, p99: r.p99, errors: r.errors });
      process.stderr.write(`  ${kind} -c${connections}: ${r.rps.toFixed(0)} req/s\n`);
    }
    return points;
  } finally {
    await nginx.stop();
    await pool.stop();
  }
}

async function main(): Promise<void> {
  requirePeers(['wrk', 'nginx', 'go']);
  buildOnce();
  const kinds: [string, string[]][] = [
    ['SDK createServer', [join(PEERS_DIR, 'sdk-hello.mjs')]],
    ['node-fastcgi', [process.execPath, join(PEERS_DIR, 'node-fastcgi-hello.cjs')]],
    ['Go net/http/fcgi', [buildGoPeer()]],
  ];
  const points: Point[] = [];
  for (const [kind, command] of kinds) points.push(...(await curve(kind, command)));
  const table = [['worker', ...CONCURRENCY.map((c) => `-c${c}`)]];
  for (const [kind] of kinds)
    table.push([
      kind,
      ...CONCURRENCY.map((c) => points.find((p) => p.kind === kind && p.connections === c)!.rps.toFixed(0)),
    ]);
  printTable(table);
  const json = jsonTarget();
  const command = `wrk -t<min(2,c)> -c<c> -d${duration}s --latency http://<nginx>/`;
  if (json)
    writeFileSync(json, `${JSON.stringify({ bench: 'scaling', wrk: command, duration, points }, null, 2)}\n`);
}

main().catch(async (err) => {
  console.error(err);
  await stopEverything();
  process.exit(1);
});
