import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Real peers (nginx, php-cgi, cgi-fcgi, fcgistarter, spawn-fcgi, wrk) come from Debian packages.
 * On a developer box without one, its tests skip with the reason; under CI=true (.ci/run
 * installs them all) a missing peer is a failure, never a skip.
 */
export const IN_CI = process.env.CI === 'true';

const PATHS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin', '/usr/local/sbin'];

/** Absolute path of a program, or null. */
export function findProgram(name: string): string | null {
  for (const dir of PATHS) {
    const path = `${dir}/${name}`;
    if (existsSync(path)) return path;
  }
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export interface Peer {
  /** Path of the program when present. */
  readonly path: string | null;
  /** Why the tests skip, or null when the peer is there. */
  readonly skipReason: string | null;
}

/**
 * Looks for a peer. Under CI a missing peer throws at collection time, failing the file,
 * so `describe.skipIf(peer.skipReason)` can never quietly skip in CI.
 */
export function peer(name: string, debianPackage: string): Peer {
  const path = findProgram(name);
  if (path) return { path, skipReason: null };
  const reason = `${name} not installed (apt-get install ${debianPackage})`;
  if (IN_CI) throw new Error(`CI=true but ${reason}: .ci/run must install it`);
  return { path: null, skipReason: reason };
}
