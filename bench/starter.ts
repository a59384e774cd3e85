// Starter benchmark, one run: the same SDK worker under fcgi-prefork, Debian's fcgistarter
// and spawn-fcgi: start-up to the first served request, steady req/s behind the same nginx
// (equal within noise: the starter is not on the request path; php-cgi too), respawn latency
// after kill -9 and requests lost during SIGHUP reloads under load (only fcgi-prefork does either).
//   npm run bench:starter [-- --quick] [-- --json results.json]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../src/client/index.js';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { startNginxHttp } from '../test/helpers/nginx.js';
import { findProgram } from '../test/helpers/peers.js';
import { childrenOf } from '../test/helpers/processes.js';
import { jsonTarget, printTable } from './lib/measure.js';
import { requirePeers } from './lib/peers.js';
import {
  buildOnce,
  PEERS_DIR,
  QUICK,
  sdkWorkerScript,
  seconds,
  sleep,
  startDetached,
  startPool,
  stopEverything,
} from './lib/setup.js';
import { wrk } from './lib/wrk.js';

const STARTERS = ['fcgi-prefork', 'fcgistarter', 'spawn-fcgi'] as const;
type Starter = (typeof STARTERS)[number];
const WORKERS = 2;
/** Rounds of the steady req/s, alternating the order of starters; the best of each counts. */
const STEADY_ROUNDS = 3;
const duration = seconds(4);
const params = {
  REQUEST_METHOD: 'GET',
  REQUEST_URI: '/',
  SCRIPT_FILENAME: join(PEERS_DIR, 'hello.php'),
  SERVER_PROTOCOL: 'HTTP/1.1',
};

async function served(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = createClient(
      { host: '127.0.0.1', port },
      { keepConn: false, multiplex: false, connectTimeout: 1000 },
    );
    try {
      if ((await client.requestAll({ params })).status === 200) return;
    } catch {
      if (Date.now() > deadline) throw new Error('never served');
      await sleep(5);
    } finally {
      client.close();
    }
  }
}

interface Worker {
  readonly name: string;
  /** Under fcgi-prefork: as a user runs it (a .mjs worker gets the starter's IPC channel). */
  readonly prefork: string[];
  /** fcgistarter runs a command without arguments. */
  readonly plain: string;
  readonly env: NodeJS.ProcessEnv;
}

/** A pool of WORKERS under one starter; resolves once the port accepts. */
async function startUnder(starter: Starter, worker: Worker, port: number): Promise<() => Promise<void>> {
  const env = { ...process.env, ...worker.env };
  const p = String(port);
  const n = String(WORKERS);
  if (starter === 'fcgi-prefork') {
    // Detached as the others are: in a session of its own, so the kernel's autogroup
    // scheduling treats every starter's workers alike (sharing this benchmark's session with
    // nginx and wrk cost fcgi-prefork's workers about 7% of their rate, starter or not).
    const pool = startPool(['-p', p, '-N', n, '--allow-root', '--', ...worker.prefork], {
      env,
      detached: true,
    });
    return async () => {
      await pool.stop();
    };
  }
  const pool =
    starter === 'fcgistarter'
      ? await startDetached(
          findProgram('fcgistarter')!,
          ['-c', worker.plain, '-p', p, '-i', '127.0.0.1', '-N', n],
          env,
        )
      : await startDetached(
          findProgram('spawn-fcgi')!,
          ['-p', p, '-a', '127.0.0.1', '-F', n, '--', worker.plain],
          env,
        );
  return pool.stop;
}

async function main(): Promise<void> {
  requirePeers(['wrk', 'nginx', 'php-cgi', 'fcgistarter', 'spawn-fcgi']);
  buildOnce();
  const php = findProgram('php-cgi')!;
  const sdk: Worker = {
    name: 'SDK createServer',
    prefork: [join(PEERS_DIR, 'sdk-hello.mjs')],
    plain: sdkWorkerScript(),
    env: {},
  };
  const phpCgi: Worker = {
    name: 'php-cgi',
    prefork: [php],
    plain: php,
    env: { PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '0' },
  };

  // 1. Start-up to the first served request, N=2, SDK worker.
  const startupMs: Record<string, number> = {};
  for (const starter of STARTERS) {
    const port = await freePort();
    const t = performance.now();
    const stop = await startUnder(starter, sdk, port);
    await served(port);
    startupMs[starter] = performance.now() - t;
    await stop();
  }

  // 2. Respawn latency: kill -9 the only worker; a request waits in the backlog for its replacement.
  const port2 = await freePort();
  const pool2 = startPool(['-p', String(port2), '-N', '1', '--allow-root', ...sdk.prefork]);
  await served(port2);
  const respawnSamples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [worker] = await childrenOf(pool2.pid);
    const t = performance.now();
    process.kill(worker!, 'SIGKILL');
    await served(port2);
    respawnSamples.push(performance.now() - t);
    await sleep(300);
  }
  const respawnMs = [...respawnSamples].sort((a, b) => a - b)[2]!;

  // 3. Requests lost during SIGHUP reloads under load (direct FastCGI, 8 at a time).
  const reloads = QUICK ? 2 : 5;
  let sent = 0;
  let lost = 0;
  let loading = true;
  const client = createClient(
    { host: '127.0.0.1', port: port2 },
    { keepConn: false, multiplex: false, connections: 8 },
  );
  pool2.child.kill('SIGTTIN');
  await sleep(1500);
  const load = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (loading) {
        sent++;
        try {
          if ((await client.requestAll({ params })).status !== 200) lost++;
        } catch {
          lost++;
        }
      }
    }),
  );
  for (let i = 0; i < reloads; i++) {
    const before = await childrenOf(pool2.pid);
    pool2.child.kill('SIGHUP');
    for (;;) {
      const now = await childrenOf(pool2.pid);
      if (now.length === 2 && now.every((p) => !before.includes(p))) break;
      await sleep(50);
    }
  }
  loading = false;
  await load;
  client.close();
  await pool2.stop();

  // 4. Steady req/s: the same pool under each starter behind the same nginx, alternating
  // rounds so drift on a noisy machine hits all alike; every run is kept, for the noise.
  const steady: { worker: string; starter: Starter; runs: number[] }[] = [];
  for (const worker of [sdk, phpCgi])
    for (const starter of STARTERS) steady.push({ worker: worker.name, starter, runs: [] });
  for (let round = 0; round < STEADY_ROUNDS; round++) {
    for (const worker of [sdk, phpCgi]) {
      for (const starter of round % 2 === 0 ? STARTERS : [...STARTERS].reverse()) {
        const port = await freePort();
        const stop = await startUnder(starter, worker, port);
        await waitForListen({ host: '127.0.0.1', port });
        const front = await freePort();
        const nginx = await startNginxHttp(
          `server { listen 127.0.0.1:${front}; location / { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME ${join(PEERS_DIR, 'hello.php')}; fastcgi_pass 127.0.0.1:${port}; } }`,
          front,
        );
        try {
          wrk(`${nginx.url}/`, { connections: 16, seconds: 1 }); // warm-up
          const r = wrk(`${nginx.url}/`, { connections: 16, seconds: duration });
          steady.find((s) => s.worker === worker.name && s.starter === starter)!.runs.push(r.rps);
        } finally {
          await nginx.stop();
          await stop();
        }
      }
    }
  }

  const rows: string[][] = [['measure', ...STARTERS]];
  rows.push([
    'start → first served request (N=2, SDK)',
    ...STARTERS.map((s) => `${startupMs[s]!.toFixed(0)} ms`),
  ]);
  rows.push([
    'respawn after kill -9 → served (median of 5)',
    `${respawnMs.toFixed(0)} ms`,
    'no respawn',
    'no respawn',
  ]);
  rows.push([
    `requests lost during ${reloads} reloads under load`,
    `${lost} of ${sent}`,
    'cannot reload',
    'cannot reload',
  ]);
  for (const worker of [sdk, phpCgi])
    rows.push([
      `${worker.name} ×${WORKERS} behind nginx, req/s (runs)`,
      ...STARTERS.map((s) =>
        steady
          .find((x) => x.worker === worker.name && x.starter === s)!
          .runs.map((r) => r.toFixed(0))
          .join(' / '),
      ),
    ]);
  printTable(rows);
  const json = jsonTarget();
  if (json)
    writeFileSync(
      json,
      `${JSON.stringify(
        {
          bench: 'starter',
          wrk: `wrk -t2 -c16 -d${duration}s --latency http://<nginx>/`,
          workers: WORKERS,
          startupMs,
          respawnMs,
          respawnSamples,
          reload: { reloads, sent, lost },
          steady,
        },
        null,
        2,
      )}\n`,
    );
}

main().catch(async (err) => {
  console.error(err);
  await stopEverything();
  process.exit(1);
});
