// Worker benchmark: every worker kind, 2 workers under the same starter (fcgi-prefork), behind
// the same nginx, driven by wrk, in one run. Only ratios between rows of one run mean anything.
//   npm run bench:workers [-- --quick] [-- --json results.json] [-- --only sdk,libfcgi]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { findProgram } from '../test/helpers/peers.js';
import { childrenOf, type Running, start } from '../test/helpers/processes.js';
import { argValue, jsonTarget, printTable } from './lib/measure.js';
import { requirePeers } from './lib/peers.js';
import {
  buildGoPeer,
  buildLibfcgiPeer,
  buildOnce,
  nginxInFront,
  PEERS_DIR as peers,
  seconds,
  sleep,
  startPool,
  stopEverything,
} from './lib/setup.js';
import { wrk as runWrk, type WrkResult, wrkArgs } from './lib/wrk.js';

const duration = seconds(3);
/**
 * Every point is measured once per round; every other round runs the kinds in reverse order.
 * Five: rounds on this kind of machine spread by up to a quarter, and with three, one lucky
 * round of one kind decided a close comparison.
 */
const ROUNDS = 5;
const CONNECTIONS = 32;

interface Kind {
  readonly name: string;
  readonly command: string[];
  /** Plain HTTP (proxy_pass) rather than FastCGI. */
  readonly http?: boolean;
  readonly env?: Record<string, string>;
}

function buildPeers(): Kind[] {
  return [
    { name: 'SDK createServer', command: [join(peers, 'sdk-hello.mjs')] },
    { name: 'SDK serve (fetch)', command: [join(peers, 'sdk-fetch-hello.mjs')] },
    { name: 'node-fastcgi', command: [process.execPath, join(peers, 'node-fastcgi-hello.cjs')] },
    { name: 'Go net/http/fcgi', command: [buildGoPeer()] },
    { name: 'libfcgi C', command: [buildLibfcgiPeer()] },
    {
      name: 'php-cgi',
      command: [findProgram('php-cgi')!],
      env: { PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '0' },
    },
    {
      name: 'node:http cluster (proxy_pass)',
      command: [process.execPath, join(peers, 'node-http-cluster.mjs')],
      http: true,
    },
  ];
}

const wrk = (url: string): WrkResult => runWrk(url, { connections: CONNECTIONS, seconds: duration });

function rssOfTree(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kib;
}

interface Row {
  kind: string;
  keepConn: boolean;
  path: string;
  /** The best round's figures (interference only ever slows a point down); every round's req/s in runs. */
  rps: number;
  runs: number[];
  p50: number;
  p99: number;
  errors: number;
  rssPerWorkerMiB: number;
}

async function measure(kind: Kind): Promise<Row[]> {
  const rows: Row[] = [];
  const port = await freePort();
  let pool: Running;
  let workerPids: () => Promise<number[]>;
  if (kind.http) {
    pool = start(kind.command[0]!, kind.command.slice(1), { env: { ...process.env, PORT: String(port) } });
    workerPids = () => childrenOf(pool.pid);
  } else {
    pool = startPool(['-p', String(port), '-N', '2', '--allow-root', '--', ...kind.command], {
      env: { ...process.env, ...kind.env },
    });
    workerPids = () => childrenOf(pool.pid);
  }
  await waitForListen({ host: '127.0.0.1', port });
  await sleep(1500);
  for (const keepConn of [false, true]) {
    const nginx = await nginxInFront(port, { keepConn, ...(kind.http ? { http: true } : {}) });
    try {
      for (const path of ['/', '/64k']) {
        runWrk(`${nginx.url}${path}`, { connections: CONNECTIONS, seconds: 1 }); // warm-up
        const r = wrk(`${nginx.url}${path}`);
        const pids = await workerPids();
        rows.push({
          kind: kind.name,
          keepConn,
          path,
          ...r,
          runs: [r.rps],
          rssPerWorkerMiB: rssOfTree(pids) / 1024 / Math.max(1, pids.length),
        });
      }
    } finally {
      await nginx.stop();
    }
  }
  await pool.stop();
  return rows;
}

async function main(): Promise<void> {
  requirePeers(['wrk', 'nginx', 'go', 'gcc', 'php-cgi']);
  buildOnce();
  // --only: a comma list of name fragments, to measure a few kinds while working on one.
  const only = argValue('--only')?.toLowerCase().split(',');
  const kinds = buildPeers().filter(
    (kind) => !only || only.some((part) => kind.name.toLowerCase().includes(part)),
  );
  // Rounds in alternating order, so drift on a busy machine hits the first and last kinds alike;
  // each point keeps its best round and lists them all.
  const rows: Row[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
      process.stderr.write(`measuring ${kind.name} (round ${round + 1} of ${ROUNDS})…\n`);
      for (const row of await measure(kind)) {
        const seen = rows.find(
          (r) => r.kind === row.kind && r.keepConn === row.keepConn && r.path === row.path,
        );
        if (!seen) rows.push(row);
        else if (row.rps > seen.rps) Object.assign(seen, row, { runs: [...seen.runs, row.rps] });
        else seen.runs.push(row.rps);
      }
    }
  }
  await stopEverything();
  console.log(
    `\nwrk ${wrkArgs('<nginx>', { connections: CONNECTIONS, seconds: duration }).join(' ')}; 2 workers each; best of ${ROUNDS} rounds (req/s of each in runs)\n`,
  );
  const table = [
    ['worker', 'keep-conn', 'path', 'req/s', 'runs', 'p50 ms', 'p99 ms', 'errors', 'RSS/worker MiB'],
  ];
  for (const r of rows)
    table.push([
      r.kind,
      r.keepConn ? 'on' : 'off',
      r.path,
      r.rps.toFixed(0),
      r.runs.map((n) => n.toFixed(0)).join(' / '),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      String(r.errors),
      r.rssPerWorkerMiB.toFixed(1),
    ]);
  printTable(table);
  const json = jsonTarget();
  if (json)
    writeFileSync(
      json,
      `${JSON.stringify({ bench: 'workers', wrk: `wrk ${wrkArgs('http://<nginx>/<path>', { connections: CONNECTIONS, seconds: duration }).join(' ')}, best of ${ROUNDS} rounds`, duration, connections: CONNECTIONS, rows }, null, 2)}\n`,
    );
}

main().catch(async (err) => {
  console.error(err);
  await stopEverything();
  process.exit(1);
});
