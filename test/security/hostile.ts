import { type SpawnOptions, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IN_CI } from '../helpers/peers.js';

/** The unprivileged user the attacks run as and the workers are dropped to. */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Why these tests cannot run, or null: they need root (a root starter, an attacker as
 * `nobody`). Under CI=true, where .ci/run is root, not being root is a failure, never a skip.
 */
export function rootSkipReason(): string | null {
  if (IS_ROOT) return null;
  if (IN_CI) throw new Error('test/security needs root (a root starter, attackers as nobody) and CI=true');
  return 'needs root: a root starter and attackers running as nobody';
}

/**
 * `shared`: a directory the worker user owns (as a socket's or pidfile's directory often is,
 * e.g. /run/app owned by the app), in `root`, a root-owned 0711 directory that also holds the
 * root-only files the attacks aim at.
 */
export function hostileDir(prefix: string): { root: string; shared: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(root, 0o711);
  const shared = join(root, 'run');
  mkdirSync(shared);
  chownSync(shared, NOBODY.uid, NOBODY.gid);
  chmodSync(shared, 0o755);
  return {
    root,
    shared,
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Runs a perl script as nobody (the attacker), its output kept; resolves with exit code and output. */
export function asNobody(
  script: string,
  args: readonly string[],
  options: SpawnOptions = {},
): { done: Promise<{ code: number | null; output: string }>; kill(signal?: NodeJS.Signals): void } {
  const child = spawn('perl', ['-e', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    env: { PATH: '/usr/bin:/bin' },
    ...options,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const done = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, output })),
  );
  return { done, kill: (signal = 'SIGKILL') => child.kill(signal) };
}
