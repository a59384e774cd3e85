import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { ListenAddress } from '../src/net/address.js';
import { UserError } from '../src/net/errors.js';
import { type ListeningSocket, listenSocket, systemdSocket } from '../src/net/listen.js';
import { listenReusePort } from '../src/net/reuseport.js';
import { lookupGroup, lookupUser } from '../src/net/users.js';
import { resolveCommand } from './command.js';
import { createNotifier } from './notify.js';
import { removePidfile, writePidfile } from './pidfile.js';
import { DEFAULT_POLICY, type Policy } from './policy.js';
import { workerIdentity } from './spawn-worker.js';
import { SIGNAL_ACTIONS, type Signal, Supervisor } from './supervisor.js';
import type { WorkerEnvOptions } from './worker-env.js';
import { type CurrentRequestInfo, cpuSecondsOf, currentRequestInfo } from './worker-stats.js';

export interface PoolOptions extends WorkerEnvOptions {
  /** The worker program; .js/.mjs/.ts/.mts run with this Node (and tsx). */
  readonly command: string;
  readonly args?: readonly string[];
  /** Where to listen. Without it, the socket systemd passed (LISTEN_FDS) is used. */
  readonly listen?: ListenAddress;
  /** Unix socket file mode (default 0o660), owner and group. */
  readonly socketMode?: number;
  readonly socketUser?: string;
  readonly socketGroup?: string;
  /** Number of workers (default: the number of CPUs). */
  readonly workers?: number;
  /** listen(2) backlog (default 1024), also passed to workers as FCGI_BACKLOG. */
  readonly backlog?: number;
  /** Run the workers as this user / group (the starter binds first, as root). */
  readonly user?: string;
  readonly group?: string;
  /** Allow workers to run as root. Without it, a root starter with no `user` refuses to start. */
  readonly allowRoot?: boolean;
  readonly cwd?: string;
  /** File to write the starter's pid to; removed on exit. */
  readonly pidfile?: string;
  /** Seconds workers get to finish in-flight requests on stop and reload (default 30). */
  readonly gracefulTimeout?: number;
  /** SDK workers retire after about this many requests (±10% jitter, so they don't all restart at once). */
  readonly maxRequests?: number;
  /** Seconds without a heartbeat, or with one request in progress, before an SDK worker is killed. */
  readonly timeout?: number;
  /**
   * Environment for the workers (default: this process's). With NOTIFY_SOCKET in it the pool
   * reports to systemd (notify.ts); workers never see it, nor LISTEN_*.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Where workers' output and the starter's log lines go (default: this process's). */
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  /** Queue SIGTERM/SIGINT/SIGHUP/SIGTTIN/SIGTTOU to the pool (the CLI does). Default false. */
  readonly handleSignals?: boolean;
  /** Seconds a new SDK worker gets to report ready during a reload before the reload moves on. Default 10. */
  readonly readyTimeout?: number;
  /**
   * One SO_REUSEPORT socket per slot instead of one shared socket (TCP only): the kernel
   * spreads connections over the slots, and a worker's epoll wakes only for its own socket.
   * The pool keeps each slot's socket across that slot's respawns and reloads.
   */
  readonly reusePort?: boolean;
  /** Failed starts in a row (no worker ready in between), within `crashWindow` seconds, that end the pool (default 5). */
  readonly crashLimit?: number;
  /** Seconds over which `crashLimit` failed starts count as a crash loop (default 10). */
  readonly crashWindow?: number;
  /** Longest wait, in seconds, before a slot starts again after failed starts (default 5; doubling from 0.1). */
  readonly backoffMax?: number;
  /** Recycle a worker after this many seconds alive (plus up to 10% jitter), one slot at a time. */
  readonly maxLifetime?: number;
}

/** `shared`: every worker accepts on one socket; `reuseport`: a socket per slot. */
export type SocketMode = 'shared' | 'reuseport';

export type WorkerState = 'starting' | 'ready' | 'retiring';

export interface WorkerInfo {
  readonly slot: number;
  readonly pid: number;
  readonly generation: number;
  readonly state: WorkerState;
  readonly startedAt: number;
  /** Requests served; null for workers that do not report (not SDK workers). */
  readonly requests: number | null;
  readonly active: number | null;
  readonly rssBytes: number | null;
  /** CPU seconds used (user + system), from /proc; null where there is none. */
  readonly cpuSeconds: number | null;
  /** The oldest request in progress, as an SDK worker reports it; null when idle or not SDK. */
  readonly current: CurrentRequestInfo | null;
}

export interface PoolStatus {
  readonly pid: number;
  /** The Node the starter runs on (process.version), which .js/.ts workers run on too. */
  readonly node: string;
  readonly address: string;
  readonly backlog: number;
  readonly mode: SocketMode;
  readonly command: string;
  readonly startedAt: number;
  readonly generation: number;
  readonly desiredWorkers: number;
  readonly workers: readonly (WorkerInfo & { readonly restarts: number })[];
  readonly totals: {
    readonly workers: number;
    readonly requests: number;
    readonly restarts: number;
    readonly rssBytes: number;
  };
}

export interface Pool extends EventEmitter {
  /** The listening socket (with reusePort, slot 1's; all slots' share its address). */
  readonly socket: ListeningSocket;
  /** Where the pool listens, for logs and clients. */
  readonly address: string;
  readonly backlog: number;
  /** Resolves once every first worker is ready (SDK workers say so; others after a short settle). */
  readonly ready: Promise<void>;
  /** Resolves when the pool has ended, with the exit code the CLI uses (0 after a stop). */
  readonly done: Promise<number>;
  status(): PoolStatus;
  /** Rolling reload: one new worker up and ready, then one old one retired, slot by slot. */
  reload(): void;
  /** Changes the number of workers. */
  scale(workers: number): void;
  /** Replaces slot's worker as one slot of a reload: the new one ready before the old one goes. */
  recycle(slot: number): void;
  /** Graceful stop; resolves with the exit code. */
  stop(): Promise<number>;
}

const SIGNALS = Object.keys(SIGNAL_ACTIONS) as Signal[];

function rssOf(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new UserError(`invalid ${what} '${value}': must be a positive integer`, 2);
  return value;
}

function positiveSeconds(value: number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0)
    throw new UserError(`invalid ${what} '${value}': must be a number of seconds above 0`, 2);
  return value * 1000;
}

/** The supervision policy the options ask for; throws UserError(…, 2) for a bad value. */
export function policyFromOptions(options: PoolOptions): Policy {
  const backoffMaxMs = positiveSeconds(options.backoffMax, 'backoff max') ?? DEFAULT_POLICY.backoffMaxMs;
  return {
    ...DEFAULT_POLICY,
    limit: positiveInteger(options.crashLimit, DEFAULT_POLICY.limit, 'crash limit'),
    windowMs: positiveSeconds(options.crashWindow, 'crash window') ?? DEFAULT_POLICY.windowMs,
    backoffMaxMs,
    backoffMinMs: Math.min(DEFAULT_POLICY.backoffMinMs, backoffMaxMs),
    timeoutMs: options.timeout !== undefined ? options.timeout * 1000 : undefined,
    maxLifetimeMs: positiveSeconds(options.maxLifetime, 'max lifetime'),
  };
}

/** The listening socket(s) the options ask for: reuseport's one per slot, or one shared. */
export async function openSocket(
  options: PoolOptions,
  backlog: number,
  env: NodeJS.ProcessEnv,
  workers: number,
): Promise<ListeningSocket[]> {
  if (options.reusePort) {
    if (options.listen?.kind !== 'tcp')
      throw new UserError('--reuseport needs --port (TCP): not with --socket or socket activation', 2);
    return listenReusePort(options.listen.host, options.listen.port, workers, backlog, { probe: true });
  }
  if (options.listen) {
    const socketUser = options.socketUser ? lookupUser(options.socketUser) : undefined;
    const gid = options.socketGroup ? lookupGroup(options.socketGroup) : socketUser?.gid;
    const socket = await listenSocket(options.listen, backlog, {
      mode: options.socketMode ?? 0o660,
      ...(socketUser ? { uid: socketUser.uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    });
    return [socket];
  }
  const activated = systemdSocket(env);
  if (!activated)
    throw new UserError('no address to listen on: give --port, --socket, or run under socket activation', 2);
  return [activated];
}

/**
 * Binds the socket once, starts the workers and supervises them until stopped (supervisor.ts);
 * this is the pool's face: options in, status and actions out.
 */
export async function startPool(options: PoolOptions): Promise<Pool> {
  const env = options.env ?? process.env;
  const cwd = resolve(options.cwd ?? process.cwd());
  const backlog = positiveInteger(options.backlog, 1024, 'backlog');
  const workers = positiveInteger(options.workers, availableParallelism(), 'worker count');
  const policy = policyFromOptions(options);
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const command = resolveCommand(options.command, options.args ?? [], cwd, env);
  const identity = workerIdentity(options);

  const opened = await openSocket(options, backlog, env, workers);
  const socket = opened[0]!;
  if (options.pidfile) {
    try {
      writePidfile(options.pidfile);
    } catch (e) {
      for (const s of opened) s.close();
      throw e;
    }
  }

  const log = (message: string) => stderr.write(`fcgi-prefork: ${message}\n`);
  const emitter = new EventEmitter();
  let resolveReady: () => void = () => {};
  let resolveDone: (code: number) => void = () => {};
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });
  const done = new Promise<number>((r) => {
    resolveDone = r;
  });
  const handlers = new Map<Signal, () => void>();

  const supervisor: Supervisor = new Supervisor({
    command,
    cwd,
    env,
    identity,
    backlog,
    envOptions: options,
    readyTimeoutMs: (options.readyTimeout ?? 10) * 1000,
    policy,
    socket,
    slotSockets: options.reusePort ? opened : undefined,
    workers,
    stdout,
    stderr,
    // systemd (Type=notify): READY=1 once the workers are up, RELOADING=1 … READY=1 around a
    // rolling reload, STOPPING=1 on stop, STATUS= lines along the way.
    notifier: createNotifier(env, log),
    events: emitter,
    log,
    onReady() {
      resolveReady();
      emitter.emit('ready');
    },
    onFinish(code) {
      for (const [signal, handler] of handlers) process.off(signal, handler);
      if (options.pidfile) removePidfile(options.pidfile);
      resolveReady();
      log(code === 0 ? 'stopped' : 'stopped after an error');
      emitter.emit('close', code);
      resolveDone(code);
    },
  });

  // Signal handlers only queue the action; the loop handles it.
  if (options.handleSignals) {
    for (const signal of SIGNALS) {
      const handler = () => supervisor.request(SIGNAL_ACTIONS[signal]);
      handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  const pool = Object.assign(emitter, {
    socket,
    address: socket.description,
    backlog,
    ready,
    done,
    status(): PoolStatus {
      const now = Date.now();
      const list = [...supervisor.workers.values()]
        .sort((a, b) => a.slot - b.slot || a.generation - b.generation)
        .map((w) => ({
          slot: w.slot,
          pid: w.pid,
          generation: w.generation,
          state: (w.retiring ? 'retiring' : supervisor.isReady(w, now) ? 'ready' : 'starting') as WorkerState,
          startedAt: w.startedAt,
          requests: w.link ? w.requests : null,
          active: w.link ? w.active : null,
          rssBytes: rssOf(w.pid),
          cpuSeconds: cpuSecondsOf(w.pid),
          current: w.link ? currentRequestInfo(w.current, now) : null,
          restarts: supervisor.restartsOf(w.slot),
        }));
      return {
        pid: process.pid,
        node: process.version,
        address: socket.description,
        backlog,
        mode: supervisor.mode,
        command: command.display,
        startedAt: supervisor.startedAt,
        generation: supervisor.generation,
        desiredWorkers: supervisor.desired,
        workers: list,
        totals: {
          workers: list.length,
          requests: list.reduce((sum, w) => sum + (w.requests ?? 0), 0),
          restarts: supervisor.totalRestarts(),
          rssBytes: list.reduce((sum, w) => sum + (w.rssBytes ?? 0), 0),
        },
      };
    },
    reload() {
      supervisor.request({ kind: 'reload', source: 'reload' });
    },
    scale(workersWanted: number) {
      const to = positiveInteger(workersWanted, 1, 'worker count');
      supervisor.request({ kind: 'scale', source: 'scale', to });
    },
    recycle(slot: number) {
      supervisor.request({ kind: 'recycle', source: 'recycle', slot: positiveInteger(slot, 1, 'slot') });
    },
    stop() {
      supervisor.request({ kind: 'stop', source: 'stop' });
      return done;
    },
  });

  const sockets = supervisor.mode === 'reuseport' ? `, SO_REUSEPORT: a socket per worker` : '';
  log(
    `listening on ${socket.description} (backlog ${backlog}${sockets}); starting ${workers} × ${command.display}`,
  );
  supervisor.wake();
  return pool;
}
