import {
  ENV_BACKLOG,
  ENV_GRACEFUL_TIMEOUT,
  ENV_MAX_REQUESTS,
  ENV_PREFORK,
  ENV_WORKER_ID,
} from '../src/link.js';
import { UserError } from '../src/net/errors.js';

export interface WorkerEnvOptions {
  /** Seconds workers get to finish in-flight requests on stop and reload (default 30). */
  readonly gracefulTimeout?: number;
  /** SDK workers retire after about this many requests (±10% jitter, so they don't all restart at once). */
  readonly maxRequests?: number;
  /**
   * php-fpm's clear_env: workers get only KEPT_WITH_CLEAR_ENV of this process's environment,
   * then `setEnv` and the starter's own variables. Default false: all of it passes through
   * (so PHP_FCGI_* reaches php-cgi).
   */
  readonly clearEnv?: boolean;
  /** `-e NAME=VALUE`: set for every worker, over what passes through. */
  readonly setEnv?: Readonly<Record<string, string>>;
}

/**
 * What --clear-env keeps. FCGI_WEB_SERVER_ADDRS restricts who may connect: dropping it would
 * open a worker to every peer, so it stays, as the operator's setting, not the app's.
 */
export const KEPT_WITH_CLEAR_ENV: readonly string[] = ['PATH', 'FCGI_WEB_SERVER_ADDRS'];

/** Where --clear-env finds no PATH to keep. */
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * The environment of the worker in `slot`: ours (or, with clearEnv, only what is kept), less
 * what belongs to the starter, plus `setEnv`, plus the slot's FCGI_* variables, which win.
 */
export function workerEnv(
  base: NodeJS.ProcessEnv,
  slot: number,
  backlog: number,
  options: WorkerEnvOptions,
  random: () => number = Math.random,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  if (options.clearEnv) {
    for (const name of KEPT_WITH_CLEAR_ENV) if (base[name] !== undefined) env[name] = base[name];
    env.PATH ??= DEFAULT_PATH;
  } else {
    Object.assign(env, base);
    // Socket activation was ours: a worker that saw these would think it was activated too.
    delete env.LISTEN_FDS;
    delete env.LISTEN_PID;
    delete env.LISTEN_FDNAMES;
    delete env.NODE_CHANNEL_FD;
    // The unit's notify socket is ours too: a worker speaking sd_notify must not report for the pool.
    delete env.NOTIFY_SOCKET;
    delete env[ENV_MAX_REQUESTS];
  }
  Object.assign(env, options.setEnv);
  env[ENV_WORKER_ID] = String(slot);
  env[ENV_BACKLOG] = String(backlog);
  env[ENV_PREFORK] = '1';
  env[ENV_GRACEFUL_TIMEOUT] = String(options.gracefulTimeout ?? 30);
  if (options.maxRequests !== undefined) {
    const jitter = Math.floor(options.maxRequests * 0.1 * random());
    env[ENV_MAX_REQUESTS] = String(options.maxRequests + jitter);
  }
  return env;
}

/** `-e NAME=VALUE` arguments as a record; a bad one is a usage error. */
export function parseEnvAssignments(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UserError(`invalid environment '${item}': give NAME=VALUE`, 2);
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}
