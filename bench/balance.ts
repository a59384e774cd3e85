// Balance benchmark: how evenly N SDK workers share the load, and what waking them costs, with
// one shared listening socket (every worker's epoll waits on it: each connection wakes them
// all) and with --reuseport (a socket per worker; the kernel hashes each connection to one),
// its sockets made with Node's own SO_REUSEPORT flag and, as on Node before 22.12, by the perl
// helper (the flag hidden: FCGI_HIDE_INTERNALS=reusePort, in the starter only).
// nginx (keep-conn off, so every request is a new FastCGI connection to accept) driven by wrk.
//   npm run bench:balance [-- --quick] [-- --json results.json]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { queryStatus } from '../starter/control.js';
import type { PoolStatus } from '../starter/pool.js';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { startNginxHttp } from '../test/helpers/nginx.js';
import { ROOT, sleep, startCli, stopAll } from '../test/helpers/processes.js';
import { jsonTarget, printTable } from './lib/measure.js';
import { runWrk } from './lib/wrk.js';

type Mode = 'shared' | 'reuseport' | 'reuseport-perl';

interface Row {
  mode: Mode;
  workers: number;
  rps: number;
  /** Requests each worker served during the run, by slot. */
  perWorker: number[];
  /** Jain's fairness index of perWorker: 1 = perfectly even, 1/n = one worker took all. */
  jain: number;
  /** Context switches of the workers' main threads per request served. */
  cswPerRequest: number;
}

const quick = process.argv.includes('--quick');
const duration = Number(process.env.BENCH_DURATION ?? (quick ? 2 : 5));
const CONNECTIONS = 32;
const WORKER_COUNTS = [1, 2, 4, 8];
/** The SDK sends its request count once a second: wait that long plus a margin before reading it. */
const STATS_SETTLE_MS = 1300;
const SDK_HELLO = join(ROOT, 'bench', 'peers', 'sdk-hello.mjs');

/** (Σx)² / (n·Σx²). */
function jainIndex(xs: readonly number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const squares = xs.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 0 : (sum * sum) / (xs.length * squares);
}

/** Voluntary + involuntary context switches of a process's main thread (its event loop). */
function contextSwitches(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const voluntary = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const involuntary = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return voluntary + involuntary;
}

function requestsBySlot(status: PoolStatus, workers: number): number[] {
  const counts = new Array<number>(workers).fill(0);
  for (const w of status.workers) counts[w.slot - 1] = w.requests ?? 0;
  return counts;
}

async function measure(mode: Mode, workers: number): Promise<Row> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-balance-'));
  const control = join(dir, 'ctl.sock');
  const args = ['-p', String(port), '-N', String(workers), '--allow-root', '--control', control];
  if (mode !== 'shared') args.push('--reuseport');
  // The workers get the starter's environment: only the starter is told to hide the flag.
  const pool =
    mode === 'reuseport-perl'
      ? startCli([...args, '-e', 'FCGI_HIDE_INTERNALS=', SDK_HELLO], {
          env: { ...process.env, FCGI_HIDE_INTERNALS: 'reusePort' },
        })
      : startCli([...args, SDK_HELLO]);
  const front = await freePort();
  const nginx = await startNginxHttp(
    `upstream app { server 127.0.0.1:${port}; }
server { listen 127.0.0.1:${front}; location / { include /etc/nginx/fastcgi_params; fastcgi_pass app; } }`,
    front,
  );
  try {
    await pool.waitFor(/listening on/);
    await waitForListen({ host: '127.0.0.1', port });
    runWrk(`${nginx.url}/`, 1, CONNECTIONS); // warm-up: JIT, connection paths
    await sleep(STATS_SETTLE_MS);
    const before = await queryStatus(control);
    if (before.workers.length !== workers)
      throw new Error(`${before.workers.length} of ${workers} workers up`);
    const pids = before.workers.map((w) => w.pid);
    const cswBefore = pids.map(contextSwitches);
    const run = runWrk(`${nginx.url}/`, duration, CONNECTIONS);
    const cswAfter = pids.map(contextSwitches);
    await sleep(STATS_SETTLE_MS);
    const after = await queryStatus(control);
    if (after.workers.some((w) => !pids.includes(w.pid)))
      throw new Error('a worker was replaced during the run');
    const start = requestsBySlot(before, workers);
    const perWorker = requestsBySlot(after, workers).map((n, i) => n - start[i]!);
    const served = perWorker.reduce((a, b) => a + b, 0);
    const switches = cswAfter.reduce((a, b, i) => a + b - cswBefore[i]!, 0);
    if (run.errors > 0) process.stderr.write(`  ${mode} N=${workers}: ${run.errors} errors from wrk\n`);
    return {
      mode,
      workers,
      rps: run.rps,
      perWorker,
      jain: jainIndex(perWorker),
      cswPerRequest: served === 0 ? 0 : switches / served,
    };
  } finally {
    await nginx.stop();
    await pool.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const load = loadavg()[0]!.toFixed(2);
  const notes = [
    `${cpus().length} cores (${cpus()[0]?.model}), Linux ${release()}, Node ${process.version}; load average ${load} at start`,
    `nginx (1 process, fastcgi_keep_conn off: a new FastCGI connection per request) + wrk -t2 -c${CONNECTIONS} -d${duration}s on the same machine; SDK hello world (bench/peers/sdk-hello.mjs)`,
    'perWorker: requests per slot from the starter status (SDK request counts); cswPerRequest: voluntary + nonvoluntary context switches of the workers’ main threads (/proc/<pid>/status) during the run, per request served',
  ];
  const rows: Row[] = [];
  for (const mode of ['shared', 'reuseport', 'reuseport-perl'] as const) {
    for (const workers of WORKER_COUNTS) {
      process.stderr.write(`measuring ${mode}, ${workers} workers…\n`);
      try {
        rows.push(await measure(mode, workers));
      } catch (e) {
        const why = `${mode} N=${workers} not measured: ${(e as Error).message.split('\n')[0]}`;
        process.stderr.write(`  ${why}\n`);
        notes.push(why);
      }
    }
  }
  await stopAll();
  console.log(`\n${notes[0]}\n${notes[1]}\n`);
  const table = [['mode', 'workers', 'req/s', 'requests per worker', 'Jain', 'csw/request']];
  for (const r of rows)
    table.push([
      r.mode,
      String(r.workers),
      r.rps.toFixed(0),
      r.perWorker.join(' '),
      r.jain.toFixed(3),
      r.cswPerRequest.toFixed(2),
    ]);
  printTable(table);
  const json = jsonTarget();
  if (json) writeFileSync(json, `${JSON.stringify({ bench: 'balance', rows, notes }, null, 2)}\n`);
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
