import { execFileSync, type SpawnOptions, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/net.js';
import { type Nginx, startNginxHttp } from '../../test/helpers/nginx.js';
import { findProgram } from '../../test/helpers/peers.js';
import {
  isAlive,
  pidsWithEnv,
  ROOT,
  type Running,
  start,
  stopAll,
  until,
} from '../../test/helpers/processes.js';

export const QUICK = process.argv.includes('--quick');
export const PEERS_DIR = join(ROOT, 'bench', 'peers');
export const WORK = join(ROOT, '.tmp', 'bench');
mkdirSync(WORK, { recursive: true });

/** Seconds per measured point: BENCH_DURATION, else 1 with --quick, else `full`. */
export function seconds(full: number): number {
  return Number(process.env.BENCH_DURATION ?? (QUICK ? 1 : full));
}

/** npm run build, unless the runner (bench/run.ts) already did for this run. */
export function buildOnce(): void {
  if (process.env.BENCH_BUILT === '1') return;
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  process.env.BENCH_BUILT = '1';
}

/** The starter as installed: built JavaScript, no tsx start-up in the figures. */
export function startPool(args: readonly string[], options: SpawnOptions = {}): Running {
  return start(process.execPath, [join(ROOT, 'dist', 'starter', 'cli.js'), ...args], options);
}

/** A shell script running the SDK hello worker: fcgistarter runs its command without arguments. */
export function sdkWorkerScript(): string {
  const script = join(WORK, 'sdk-worker.sh');
  writeFileSync(script, `#!/bin/sh\nexec '${process.execPath}' '${join(PEERS_DIR, 'sdk-hello.mjs')}'\n`);
  chmodSync(script, 0o755);
  return script;
}

const detached = new Set<Detached>();

/** Stops every process a benchmark started, detached pools included: on success and on error. */
export async function stopEverything(): Promise<void> {
  await Promise.all([stopAll(), ...[...detached].map((d) => d.stop())]);
}

export interface Detached {
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * A pool under a starter that exits once it has forked (fcgistarter, spawn-fcgi): its
 * children carry an env marker, so exactly they are stopped afterwards.
 */
export async function startDetached(
  program: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Detached> {
  const mark = randomUUID();
  const starter = start(program, args, { env: { ...env, FCGI_BENCH_MARK: mark }, detached: true });
  await starter.exited;
  const pids = () => pidsWithEnv('FCGI_BENCH_MARK', mark);
  const pool: Detached = {
    pids,
    async stop() {
      detached.delete(pool);
      for (const pid of pids()) process.kill(pid, 'SIGTERM');
      await until(() => pids().every((pid) => !isAlive(pid)), 5000, `${program}'s children to exit`).catch(
        () => {
          for (const pid of pids()) process.kill(pid, 'SIGKILL');
        },
      );
    },
  };
  detached.add(pool);
  return pool;
}

/** Builds a compiled peer into WORK; throws with the compiler's output when it fails. */
export function compile(
  program: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): void {
  const r = spawnSync(findProgram(program) ?? program, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} failed:\n${r.stderr}`);
}

/** Go's net/http/fcgi peer, built once per run. */
export function buildGoPeer(): string {
  const out = join(WORK, 'go-hello');
  compile('go', ['build', '-o', out, join(PEERS_DIR, 'go-hello.go')], {
    ...process.env,
    GOCACHE: join(WORK, 'gocache'),
    GOPATH: join(WORK, 'gopath'),
    GOTOOLCHAIN: 'local',
    GO111MODULE: 'off',
  });
  return out;
}

/** The libfcgi C peer. */
export function buildLibfcgiPeer(): string {
  const out = join(WORK, 'libfcgi-hello');
  compile('gcc', ['-O2', '-o', out, join(PEERS_DIR, 'libfcgi-hello.c'), '-lfcgi']);
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One nginx in front of an upstream on 127.0.0.1:port: FastCGI with Debian's fastcgi_params
 * (SCRIPT_FILENAME for php-cgi), or HTTP through proxy_pass; with keepConn, FastCGI
 * keep-conn (or HTTP/1.1 keep-alive) and upstream keepalive 32.
 */
export async function nginxInFront(
  port: number,
  options: { keepConn: boolean; http?: boolean },
): Promise<Nginx> {
  const front = await freePort();
  const upstream = `upstream app { server 127.0.0.1:${port}; ${options.keepConn ? 'keepalive 32;' : ''} }`;
  const location = options.http
    ? 'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";'
    : `include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME ${join(PEERS_DIR, 'hello.php')}; fastcgi_pass app; ${options.keepConn ? 'fastcgi_keep_conn on;' : ''}`;
  return startNginxHttp(
    `${upstream} server { listen 127.0.0.1:${front}; location / { ${location} } }`,
    front,
  );
}
