import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../src/net/errors.js';
import type { PoolStatus } from './pool.js';

/**
 * `--access-log <path|->`: the SDK workers write the lines themselves (worker-sdk/access-log.ts),
 * each appending to the file as the worker user: the root starter never opens a path a worker
 * could have swapped. The starter passes the path in FCGI_ACCESS_LOG and forwards SIGUSR1 (the
 * reopen after logrotate) to them.
 */
export const ENV_ACCESS_LOG = 'FCGI_ACCESS_LOG';

/** The path as workers get it: absolute, since their --cwd may differ from ours. */
export function accessLogPath(text: string, cwd = process.cwd()): string {
  if (text === '') throw new UserError('invalid access log path: empty', 2);
  if (text === '-') return text;
  return isAbsolute(text) ? text : resolve(cwd, text);
}

/**
 * SIGUSR1 → every SDK worker (they reopen their log). Not to other programs: php-cgi and most
 * others die of a SIGUSR1 they do not handle. The handler also keeps Node from opening its
 * inspector on SIGUSR1, which it does for a process without one.
 */
export function forwardReopen(status: () => PoolStatus, log: (message: string) => void): () => void {
  const handler = () => {
    let count = 0;
    for (const w of status().workers) {
      if (w.requests === null) continue;
      try {
        process.kill(w.pid, 'SIGUSR1');
        count++;
      } catch {
        // exited meanwhile
      }
    }
    log(`SIGUSR1: ${count} worker(s) reopen the access log`);
  };
  process.on('SIGUSR1', handler);
  return () => process.off('SIGUSR1', handler);
}
