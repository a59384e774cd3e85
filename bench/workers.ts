// Worker benchmark: every worker kind, 2 workers under the same starter (fcgi-prefork), behind
// the same nginx, driven by wrk, in one run. Only ratios between rows of one run mean anything.
//   npm run bench:workers [-- --quick] [-- --json results.json]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { startNginxHttp } from '../test/helpers/nginx.js';
import { findProgram } from '../test/helpers/peers.js';
import { childrenOf, ROOT, type Running, start, startCli, stopAll } from '../test/helpers/processes.js';
import { jsonTarget, printTable } from './lib/measure.js';

const quick = process.argv.includes('--quick');
const duration = Number(process.env.BENCH_DURATION ?? (quick ? 2 : 5));
const CONNECTIONS = 32;
const peers = join(ROOT, 'bench', 'peers');
const build = join(ROOT, '.tmp', 'bench');
mkdirSync(build, { recursive: true });

interface Kind {
  readonly name: string;
  readonly command: string[];
  /** Plain HTTP (proxy_pass) rather than FastCGI. */
  readonly http?: boolean;
  readonly env?: Record<string, string>;
}

function buildPeers(): Kind[] {
  const kinds: Kind[] = [
    { name: 'SDK createServer', command: [join(peers, 'sdk-hello.mjs')] },
    { name: 'SDK serve (fetch)', command: [join(peers, 'sdk-fetch-hello.mjs')] },
    { name: 'node-fastcgi', command: [process.execPath, join(peers, 'node-fastcgi-hello.cjs')] },
  ];
  const go = findProgram('go');
  if (go) {
    const out = join(build, 'go-hello');
    const env = {
      ...process.env,
      GOCACHE: join(build, 'gocache'),
      GOPATH: join(build, 'gopath'),
      GOTOOLCHAIN: 'local',
      GO111MODULE: 'off',
    };
    const r = spawnSync(go, ['build', '-o', out, join(peers, 'go-hello.go')], { env, encoding: 'utf8' });
    if (r.status === 0) kinds.push({ name: 'Go net/http/fcgi', command: [out] });
    else console.error(`go build failed: ${r.stderr}`);
  }
  const gcc = findProgram('gcc');
  if (gcc) {
    const out = join(build, 'libfcgi-hello');
    const r = spawnSync(gcc, ['-O2', '-o', out, join(peers, 'libfcgi-hello.c'), '-lfcgi'], {
      encoding: 'utf8',
    });
    if (r.status === 0) kinds.push({ name: 'libfcgi C', command: [out] });
    else console.error(`gcc failed (libfcgi-dev installed?): ${r.stderr}`);
  }
  const php = findProgram('php-cgi');
  if (php)
    kinds.push({
      name: 'php-cgi',
      command: [php],
      env: { PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '0' },
    });
  kinds.push({
    name: 'node:http cluster (proxy_pass)',
    command: [process.execPath, join(peers, 'node-http-cluster.mjs')],
    http: true,
  });
  return kinds;
}

interface Wrk {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(url: string): Wrk {
  const out = execFileSync('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${duration}s`, '--latency', url], {
    encoding: 'utf8',
  });
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    errors: non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

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
  rps: number;
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
    pool = startCli(['-p', String(port), '-N', '2', '--allow-root', '--', ...kind.command], {
      env: { ...process.env, ...kind.env },
    });
    workerPids = () => childrenOf(pool.pid);
  }
  await waitForListen({ host: '127.0.0.1', port });
  await new Promise((r) => setTimeout(r, 1500));
  for (const keepConn of [false, true]) {
    const front = await freePort();
    const upstream = `upstream app { server 127.0.0.1:${port}; ${keepConn ? 'keepalive 32;' : ''} }`;
    const location = kind.http
      ? `proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";`
      : `include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME ${join(peers, 'hello.php')}; fastcgi_pass app; ${keepConn ? 'fastcgi_keep_conn on;' : ''}`;
    const nginx = await startNginxHttp(
      `${upstream} server { listen 127.0.0.1:${front}; location / { ${location} } }`,
      front,
    );
    try {
      for (const path of ['/', '/64k']) {
        wrk(`${nginx.url}${path}`); // warm-up pass is the first second of the real one below
        const r = wrk(`${nginx.url}${path}`);
        const pids = await workerPids();
        rows.push({
          kind: kind.name,
          keepConn,
          path,
          ...r,
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
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const kinds = buildPeers();
  const rows: Row[] = [];
  for (const kind of kinds) {
    process.stderr.write(`measuring ${kind.name}…\n`);
    rows.push(...(await measure(kind)));
  }
  await stopAll();
  console.log(
    `\n${cpus().length} cores (${cpus()[0]?.model}), Linux ${release()}, Node ${process.version}; wrk -t2 -c${CONNECTIONS} -d${duration}s through nginx; 2 workers each\n`,
  );
  const table = [['worker', 'keep-conn', 'path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'RSS/worker MiB']];
  for (const r of rows)
    table.push([
      r.kind,
      r.keepConn ? 'on' : 'off',
      r.path,
      r.rps.toFixed(0),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      String(r.errors),
      r.rssPerWorkerMiB.toFixed(1),
    ]);
  printTable(table);
  const get = (kind: string, keepConn: boolean, path = '/') =>
    rows.find((r) => r.kind === kind && r.keepConn === keepConn && r.path === path);
  const sdkOff = get('SDK createServer', false);
  const sdkOn = get('SDK createServer', true);
  const lines: [string, number | undefined, number][] = [
    [
      'SDK / node-fastcgi (keep-conn off)',
      sdkOff && get('node-fastcgi', false) ? sdkOff.rps / get('node-fastcgi', false)!.rps : undefined,
      1.5,
    ],
    [
      'SDK / Go net/http/fcgi (keep-conn off)',
      sdkOff && get('Go net/http/fcgi', false) ? sdkOff.rps / get('Go net/http/fcgi', false)!.rps : undefined,
      1,
    ],
    [
      'SDK / libfcgi C (keep-conn off)',
      sdkOff && get('libfcgi C', false) ? sdkOff.rps / get('libfcgi C', false)!.rps : undefined,
      0.8,
    ],
    [
      'SDK keep-conn / node:http cluster + keepalive',
      sdkOn && get('node:http cluster (proxy_pass)', true)
        ? sdkOn.rps / get('node:http cluster (proxy_pass)', true)!.rps
        : undefined,
      1,
    ],
  ];
  console.log('\nratios (target):');
  for (const [name, value, target] of lines) {
    console.log(
      `  ${name}: ${value === undefined ? 'n/a' : `${value.toFixed(2)}x`} (≥ ${target}) ${value === undefined ? '' : value >= target ? 'PASS' : 'MISS'}`,
    );
  }
  if (sdkOn)
    console.log(`  SDK keep-conn p99: ${sdkOn.p99.toFixed(2)} ms (< 20) ${sdkOn.p99 < 20 ? 'PASS' : 'MISS'}`);
  const json = jsonTarget();
  if (json)
    writeFileSync(
      json,
      `${JSON.stringify({ bench: 'workers', node: process.version, duration, connections: CONNECTIONS, rows }, null, 2)}\n`,
    );
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
