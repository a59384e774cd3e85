// Starter benchmark, one run: start-up to first served request, respawn latency after
// kill -9, requests lost during SIGHUP reloads under load, and a php-cgi pool's rate under
// fcgi-prefork and under Debian's fcgistarter behind the same nginx (should be equal: the
// starter is not on the request path).
//   npm run bench:starter [-- --json results.json]
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../src/client/index.js';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { startNginxHttp } from '../test/helpers/nginx.js';
import { findProgram } from '../test/helpers/peers.js';
import { childrenOf, ROOT, start, stopAll } from '../test/helpers/processes.js';
import { jsonTarget, printTable } from './lib/measure.js';

const peers = join(ROOT, 'bench', 'peers');
const work = join(ROOT, '.tmp', 'bench');
mkdirSync(work, { recursive: true });
// The starter as installed: built JavaScript, no tsx start-up in the figures.
const startCli = (args: string[], options: Parameters<typeof start>[2] = {}) =>
  start(process.execPath, [join(ROOT, 'dist', 'starter', 'cli.js'), ...args], options);
const params = {
  REQUEST_METHOD: 'GET',
  REQUEST_URI: '/',
  SCRIPT_FILENAME: join(peers, 'hello.php'),
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
      await new Promise((r) => setTimeout(r, 5));
    } finally {
      client.close();
    }
  }
}

function wrkRate(url: string, seconds: number): number {
  const out = execFileSync('wrk', ['-t2', '-c16', `-d${seconds}s`, url], { encoding: 'utf8' });
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const results: Record<string, number> = {};
  const rows: string[][] = [['measure', 'fcgi-prefork', 'fcgistarter', 'note']];
  // A wrapper, because fcgistarter runs its command without arguments.
  const sdkWorker = join(work, 'sdk-worker.sh');
  writeFileSync(sdkWorker, `#!/bin/sh\nexec ${process.execPath} ${join(peers, 'sdk-hello.mjs')}\n`);
  chmodSync(sdkWorker, 0o755);

  // 1. Start-up to the first served request, N=2, SDK worker (built).
  const port1 = await freePort();
  let t = performance.now();
  startCli(['-p', String(port1), '-N', '2', '--allow-root', sdkWorker]);
  await served(port1);
  results.startupMs = performance.now() - t;
  const fcgistarter = findProgram('fcgistarter');
  let fcgistarterStartup = Number.NaN;
  if (fcgistarter) {
    const port = await freePort();
    t = performance.now();
    start(fcgistarter, ['-c', sdkWorker, '-p', String(port), '-i', '127.0.0.1', '-N', '2'], {
      detached: true,
    });
    await served(port);
    fcgistarterStartup = performance.now() - t;
    execFileSync('pkill', ['-f', 'sdk-hello.mjs']);
  }
  results.fcgistarterStartupMs = fcgistarterStartup;
  rows.push([
    'start → first served request (N=2, SDK)',
    `${results.startupMs.toFixed(0)} ms`,
    `${fcgistarterStartup.toFixed(0)} ms`,
    'fcgi-prefork builds its socket with a one-shot helper process',
  ]);
  await stopAll();

  // 2. Respawn latency: kill -9 the only worker; a request waits in the backlog for its replacement.
  const port2 = await freePort();
  const pool2 = startCli(['-p', String(port2), '-N', '1', '--allow-root', sdkWorker]);
  await served(port2);
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [worker] = await childrenOf(pool2.pid);
    t = performance.now();
    process.kill(worker!, 'SIGKILL');
    await served(port2);
    latencies.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 300));
  }
  results.respawnMs = latencies.sort((a, b) => a - b)[2]!;
  rows.push([
    'respawn after kill -9 → served (median of 5)',
    `${results.respawnMs.toFixed(0)} ms`,
    'no respawn',
    '',
  ]);

  // 3. Requests lost during 5 SIGHUP reloads under load (direct FastCGI, 8 at a time).
  let sent = 0;
  let failed = 0;
  let loading = true;
  const client = createClient(
    { host: '127.0.0.1', port: port2 },
    { keepConn: false, multiplex: false, connections: 8 },
  );
  pool2.child.kill('SIGTTIN');
  await new Promise((r) => setTimeout(r, 1500));
  const load = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (loading) {
        sent++;
        try {
          if ((await client.requestAll({ params })).status !== 200) failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  for (let i = 0; i < 5; i++) {
    const before = await childrenOf(pool2.pid);
    pool2.child.kill('SIGHUP');
    for (;;) {
      const now = await childrenOf(pool2.pid);
      if (now.length === 2 && now.every((p) => !before.includes(p))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  loading = false;
  await load;
  client.close();
  results.reloadSent = sent;
  results.reloadLost = failed;
  rows.push([
    'requests lost during 5 reloads under load',
    `${failed} of ${sent}`,
    'cannot reload',
    'target 0',
  ]);
  await stopAll();

  // 4. The same php-cgi pool (N=2) under each starter, behind the same nginx: req/s.
  const php = findProgram('php-cgi');
  if (php && fcgistarter) {
    const env = { ...process.env, PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '0' };
    const rates: Record<string, number> = { 'fcgi-prefork': 0, fcgistarter: 0 };
    // Alternating, twice each, so drift on a noisy machine hits both alike; the best run counts.
    for (const which of ['fcgi-prefork', 'fcgistarter', 'fcgi-prefork', 'fcgistarter']) {
      const port = await freePort();
      if (which === 'fcgi-prefork') startCli(['-p', String(port), '-N', '2', '--allow-root', php], { env });
      else
        start(fcgistarter, ['-c', php, '-p', String(port), '-i', '127.0.0.1', '-N', '2'], {
          env,
          detached: true,
        });
      await waitForListen({ host: '127.0.0.1', port });
      const front = await freePort();
      const nginx = await startNginxHttp(
        `server { listen 127.0.0.1:${front}; location / { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME ${join(peers, 'hello.php')}; fastcgi_pass 127.0.0.1:${port}; } }`,
        front,
      );
      wrkRate(`${nginx.url}/`, 1);
      rates[which] = Math.max(rates[which]!, wrkRate(`${nginx.url}/`, 5));
      await nginx.stop();
      if (which === 'fcgistarter') execFileSync('pkill', ['-f', `${php}`]);
      await stopAll();
    }
    results.phpRatePrefork = rates['fcgi-prefork']!;
    results.phpRateFcgistarter = rates.fcgistarter!;
    rows.push([
      'php-cgi ×2 behind nginx, req/s',
      rates['fcgi-prefork']!.toFixed(0),
      rates.fcgistarter!.toFixed(0),
      `ratio ${(rates['fcgi-prefork']! / rates.fcgistarter!).toFixed(2)} (equal within noise expected)`,
    ]);
  }
  printTable(rows);
  const json = jsonTarget();
  if (json)
    writeFileSync(json, `${JSON.stringify({ bench: 'starter', node: process.version, results }, null, 2)}\n`);
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
