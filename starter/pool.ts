import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { type CurrentRequest, isWorkerMessage, type WorkerMessage } from '../src/link.js';
import type { ListenAddress } from '../src/net/address.js';
import { UserError } from '../src/net/errors.js';
import { type ListeningSocket, listenSocket, systemdSocket } from '../src/net/listen.js';
import { listenReusePort } from '../src/net/reuseport.js';
import { lookupGroup, lookupUser } from '../src/net/users.js';
import { type ResolvedCommand, resolveCommand, workerSpawn } from './command.js';
import { createNotifier, monotonicUsec } from './notify.js';
import { prefixLines } from './output.js';
import { removePidfile, writePidfile } from './pidfile.js';
import { type WorkerEnvOptions, workerEnv } from './worker-env.js';
import {
  type CurrentRequestInfo,
  cpuSecondsOf,
  currentRequestInfo,
  parseCurrentRequest,
} from './worker-stats.js';

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
  /** Graceful stop; resolves with the exit code. */
  stop(): Promise<number>;
}

type Signal = 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGTTIN' | 'SIGTTOU';
const SIGNALS: readonly Signal[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU'];

type Action =
  | { readonly kind: 'signal'; readonly signal: Signal }
  | { readonly kind: 'scale'; readonly workers: number };

interface Worker {
  readonly slot: number;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly generation: number;
  readonly link: boolean;
  readonly startedAt: number;
  ready: boolean;
  retiring: boolean;
  /** The worker said it will exit on purpose (max requests). */
  retiringSelf: boolean;
  requests: number;
  active: number;
  oldestActiveMs: number;
  current: CurrentRequest | null;
  lastSeen: number;
  killTimer: NodeJS.Timeout | undefined;
}

interface Slot {
  restarts: number;
  /** Failures in a row; sets the backoff. */
  failures: number;
  /** No spawn in this slot before this time (backoff). */
  notBefore: number;
}

/** Workers that don't report readiness count as ready after this long alive. */
const SETTLE_MS = 300;
/** A crash loop: this many failed starts within CRASH_WINDOW_MS ends the pool. */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 10_000;
/** Backoff after a failed start doubles from BACKOFF_MIN_MS up to BACKOFF_MAX_MS. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** A clean exit this soon after start is no failed start, but slows the slot down (backoff). */
const MIN_CLEAN_UPTIME_MS = 100;
/** Signals by which a program crashes on its own, as opposed to being killed. */
const CRASH_SIGNALS: ReadonlySet<string> = new Set([
  'SIGSEGV',
  'SIGBUS',
  'SIGILL',
  'SIGFPE',
  'SIGABRT',
  'SIGSYS',
]);

function rssOf(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Whether Linux (5.14+) moves the connections queued on a closed SO_REUSEPORT socket to
 * another socket of its group; by default it resets them.
 */
function migratesQueuedConnections(): boolean {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new UserError(`invalid ${what} '${value}': must be a positive integer`, 2);
  return value;
}

interface Identity {
  readonly uid: number | undefined;
  readonly gid: number | undefined;
}

/** Who the workers run as; refuses root unless allowed, as spawn-fcgi does. */
function workerIdentity(options: PoolOptions): Identity {
  const user = options.user ? lookupUser(options.user) : undefined;
  const gid = options.group ? lookupGroup(options.group) : user?.gid;
  const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const uid = user?.uid;
  if (runningAsRoot && (uid === undefined || uid === 0) && !options.allowRoot) {
    throw new UserError('refusing to run workers as root: give --user <name> (or --allow-root)');
  }
  if (!runningAsRoot && (options.user || options.group)) {
    throw new UserError('--user/--group need the starter to run as root');
  }
  return { uid, gid };
}

async function openSocket(
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
 * Binds the socket once, starts the workers and supervises them until stopped. One loop, as
 * gunicorn's arbiter: signal handlers and child events only queue work and wake the loop;
 * each turn handles the queue, kills hung workers, then converges the actual workers to the
 * desired ones (count, generation after a reload).
 */
export async function startPool(options: PoolOptions): Promise<Pool> {
  const env = options.env ?? process.env;
  const cwd = resolve(options.cwd ?? process.cwd());
  const backlog = positiveInteger(options.backlog, 1024, 'backlog');
  let desired = positiveInteger(options.workers, availableParallelism(), 'worker count');
  const gracefulMs = (options.gracefulTimeout ?? 30) * 1000;
  const readyTimeoutMs = (options.readyTimeout ?? 10) * 1000;
  const timeoutMs = options.timeout !== undefined ? options.timeout * 1000 : undefined;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const command: ResolvedCommand = resolveCommand(options.command, options.args ?? [], cwd, env);
  const identity = workerIdentity(options);

  const mode: SocketMode = options.reusePort ? 'reuseport' : 'shared';
  const opened = await openSocket(options, backlog, env, desired);
  const socket = opened[0]!;
  // With reusePort, slot k's socket: it outlives the slot's workers, so connections queued on
  // it wait for the next one; it is closed only when the pool scales below k.
  const slotSockets = new Map<number, ListeningSocket>();
  if (mode === 'reuseport') for (const [i, s] of opened.entries()) slotSockets.set(i + 1, s);
  let addingSockets = false;
  if (options.pidfile) {
    try {
      writePidfile(options.pidfile);
    } catch (e) {
      for (const s of opened) s.close();
      throw e;
    }
  }

  const emitter = new EventEmitter();
  const startedAt = Date.now();
  const workers = new Map<number, Worker>();
  const slots = new Map<number, Slot>();
  const queue: Action[] = [];
  const failures: number[] = [];
  let generation = 1;
  let stopping = false;
  let exitCode = 0;
  let finished = false;
  let scheduled = false;
  let wakeTimer: NodeJS.Timeout | undefined;
  let stopTimer: NodeJS.Timeout | undefined;
  let readyResolved = false;
  let resolveReady: () => void = () => {};
  let resolveDone: (code: number) => void = () => {};
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });
  const done = new Promise<number>((r) => {
    resolveDone = r;
  });

  function log(message: string): void {
    stderr.write(`fcgi-prefork: ${message}\n`);
  }

  // systemd (Type=notify): READY=1 once the workers are up, RELOADING=1 … READY=1 around a
  // rolling reload, STOPPING=1 on stop, STATUS= lines along the way.
  const notifier = createNotifier(env, log);
  let reloading = false;
  function readyStatus(): string {
    return `STATUS=${desired} workers ready (generation ${generation}) on ${socket.description}`;
  }

  function slotOf(id: number): Slot {
    let slot = slots.get(id);
    if (!slot) {
      slot = { restarts: 0, failures: 0, notBefore: 0 };
      slots.set(id, slot);
    }
    return slot;
  }

  function wake(): void {
    if (scheduled || finished) return;
    scheduled = true;
    setImmediate(turn);
  }

  // Wakes the loop at `at` (a backoff ending, a worker settling), keeping only the earliest.
  let wakeAt = Number.POSITIVE_INFINITY;
  function wakeLater(at: number): void {
    if (at >= wakeAt) return;
    wakeAt = at;
    clearTimeout(wakeTimer);
    wakeTimer = setTimeout(
      () => {
        wakeAt = Number.POSITIVE_INFINITY;
        wake();
      },
      Math.max(0, at - Date.now()),
    );
  }

  function isReady(worker: Worker, now: number): boolean {
    if (worker.link) return worker.ready;
    if (now - worker.startedAt >= SETTLE_MS) return true;
    wakeLater(worker.startedAt + SETTLE_MS);
    return false;
  }

  function onMessage(worker: Worker, message: WorkerMessage): void {
    worker.lastSeen = Date.now();
    switch (message.type) {
      case 'fcgi-prefork:ready':
        worker.ready = true;
        break;
      case 'fcgi-prefork:stats':
        worker.requests = message.requests;
        worker.active = message.active;
        worker.oldestActiveMs = message.oldestActiveMs ?? 0;
        worker.current = parseCurrentRequest(message.current);
        break;
      case 'fcgi-prefork:retiring':
        worker.retiringSelf = true;
        log(`worker ${worker.slot} (pid ${worker.pid}) retiring: ${message.reason}`);
        break;
    }
    wake();
  }

  function spawnWorker(slotId: number): void {
    const listening = mode === 'reuseport' ? slotSockets.get(slotId)! : socket;
    const how = workerSpawn(command, listening.fd);
    let child: ChildProcess;
    try {
      child = spawn(how.file, how.args, {
        cwd,
        env: workerEnv(env, slotId, backlog, options),
        stdio: how.stdio,
        ...(identity.uid !== undefined ? { uid: identity.uid } : {}),
        ...(identity.gid !== undefined ? { gid: identity.gid } : {}),
      });
    } catch (e) {
      fatal(`cannot start ${command.display}: ${(e as Error).message}`);
      return;
    } finally {
      // Back to non-blocking as soon as can be (see workerSpawn).
      if (how.blocksNodeSocket) listening.setNonBlocking?.();
    }
    if (how.blocksNodeSocket) child.once('exit', () => listening.setNonBlocking?.());
    if (child.pid === undefined) {
      // spawn reports its failure (EACCES, ENOENT) asynchronously, on 'error'.
      child.once('error', (e) => fatal(`cannot start ${command.display}: ${e.message}`));
      return;
    }
    const now = Date.now();
    const worker: Worker = {
      slot: slotId,
      child,
      pid: child.pid,
      generation,
      link: command.node,
      startedAt: now,
      ready: false,
      retiring: false,
      retiringSelf: false,
      requests: 0,
      active: 0,
      oldestActiveMs: 0,
      current: null,
      lastSeen: now,
      killTimer: undefined,
    };
    workers.set(worker.pid, worker);
    // The loop must look again when this worker counts as ready: a program that does not
    // report readiness is ready once it has lived SETTLE_MS; an SDK worker by readyTimeout at the latest.
    wakeLater(now + (command.node ? readyTimeoutMs : SETTLE_MS));
    const prefix = `[worker ${slotId} pid ${worker.pid}] `;
    if (child.stdout) prefixLines(child.stdout, stdout, prefix);
    if (child.stderr) prefixLines(child.stderr, stderr, prefix);
    child.on('error', (e) => log(`worker ${slotId} (pid ${worker.pid}): ${e.message}`));
    child.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) onMessage(worker, message);
    });
    child.on('exit', (code, signal) => onExit(worker, code, signal));
    emitter.emit('spawn', { slot: slotId, pid: worker.pid, generation });
  }

  function onExit(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    workers.delete(worker.pid);
    clearTimeout(worker.killTimer);
    emitter.emit('exit', { slot: worker.slot, pid: worker.pid, code, signal });
    if (stopping || worker.retiring) {
      wake();
      return;
    }
    const now = Date.now();
    const uptime = now - worker.startedAt;
    const slot = slotOf(worker.slot);
    slot.restarts++;
    const clean = code === 0 && signal === null;
    // A failed start is the command failing, not the worker being stopped from outside: an
    // SDK worker says when it is ready; for any other program only the exit tells. A kill by
    // another process (an operator, the OOM killer) is not the command's failure.
    const killed = signal !== null && !CRASH_SIGNALS.has(signal);
    const failed =
      !worker.retiringSelf && !killed && (worker.link ? !worker.ready : !clean && uptime < CRASH_WINDOW_MS);
    const what = `worker ${worker.slot} (pid ${worker.pid}) ${describeExit(code, signal)}`;
    if (!failed) {
      // A clean exit is a worker retiring (php-cgi after PHP_FCGI_MAX_REQUESTS): replace it at
      // once. Only when such exits come back-to-back within moments is the slot slowed down,
      // so a command that exits 0 at once cannot spin.
      if (clean && !worker.link && uptime < MIN_CLEAN_UPTIME_MS) {
        const delay = Math.min(BACKOFF_MIN_MS * 2 ** slot.failures, BACKOFF_MAX_MS);
        slot.failures++;
        slot.notBefore = now + delay;
        if (delay >= 1000) log(`${what} after ${uptime} ms; restarting it in ${delay} ms`);
        wakeLater(slot.notBefore);
      } else {
        slot.failures = 0;
        slot.notBefore = 0;
        if (!worker.retiringSelf && !clean) log(`${what}; restarting it`);
      }
      wake();
      return;
    }
    failures.push(now);
    while (failures.length > 0 && failures[0]! < now - CRASH_WINDOW_MS) failures.shift();
    if (failures.length >= CRASH_LIMIT) {
      fatal(
        `${command.display} keeps exiting (${failures.length} failed starts within ${CRASH_WINDOW_MS / 1000} s, last: ${describeExit(code, signal)}); giving up`,
      );
      return;
    }
    const delay = Math.min(BACKOFF_MIN_MS * 2 ** slot.failures, BACKOFF_MAX_MS);
    slot.failures++;
    slot.notBefore = now + delay;
    log(`${what} after ${uptime} ms; restarting it in ${delay} ms`);
    wakeLater(slot.notBefore);
    wake();
  }

  /** Asks a worker to finish in-flight requests and exit; KILL after the graceful timeout. */
  function retire(worker: Worker): void {
    if (worker.retiring) return;
    worker.retiring = true;
    worker.child.kill('SIGTERM');
    worker.killTimer = setTimeout(() => {
      log(
        `worker ${worker.slot} (pid ${worker.pid}) still running ${gracefulMs / 1000} s after SIGTERM; killing it`,
      );
      worker.child.kill('SIGKILL');
    }, gracefulMs);
  }

  function fatal(message: string): void {
    log(message);
    exitCode = 1;
    beginStop();
  }

  function beginStop(): void {
    if (stopping) return;
    stopping = true;
    notifier?.notify(['STOPPING=1', `STATUS=stopping ${workers.size} workers`]);
    stopTimer = setTimeout(() => {
      for (const worker of workers.values()) worker.child.kill('SIGKILL');
    }, gracefulMs);
    wake();
  }

  function handle(action: Action): void {
    if (action.kind === 'scale') {
      desired = action.workers;
      log(`scaling to ${desired} workers`);
      return;
    }
    switch (action.signal) {
      case 'SIGTERM':
      case 'SIGINT':
        if (!stopping) log(`${action.signal}: stopping (graceful timeout ${gracefulMs / 1000} s)`);
        beginStop();
        break;
      case 'SIGHUP':
        generation++;
        log(`SIGHUP: reloading workers (generation ${generation})`);
        reloading = true;
        notifier?.notify([
          'RELOADING=1',
          `MONOTONIC_USEC=${monotonicUsec()}`,
          `STATUS=reloading ${desired} workers (generation ${generation})`,
        ]);
        break;
      case 'SIGTTIN':
        desired++;
        log(`SIGTTIN: ${desired} workers`);
        break;
      case 'SIGTTOU':
        if (desired > 1) desired--;
        log(`SIGTTOU: ${desired} workers`);
        break;
    }
  }

  function killHung(now: number): void {
    if (timeoutMs === undefined) return;
    for (const worker of workers.values()) {
      if (!worker.link || worker.retiring) continue;
      const silent = now - worker.lastSeen;
      if (silent <= timeoutMs && worker.oldestActiveMs <= timeoutMs) continue;
      const why =
        silent > timeoutMs
          ? `no heartbeat for ${Math.round(silent / 1000)} s`
          : 'a request ran past the timeout';
      log(`worker ${worker.slot} (pid ${worker.pid}) hung (${why}); killing it`);
      worker.retiring = true; // replaced at once, not a failed start
      worker.child.kill('SIGKILL');
    }
  }

  /** Makes the missing slot sockets (after SIGTTIN) in the background; the loop waits for them. */
  function addSlotSockets(): void {
    if (addingSockets) return;
    const missing: number[] = [];
    for (let id = 1; id <= desired; id++) if (!slotSockets.has(id)) missing.push(id);
    if (missing.length === 0) return;
    addingSockets = true;
    const { host } = socket.address as { host: string };
    listenReusePort(host, socket.port ?? 0, missing.length, backlog, { probe: false }).then(
      (added) => {
        addingSockets = false;
        for (const s of added) {
          const id = missing.shift();
          if (finished || stopping || id === undefined || id > desired || slotSockets.has(id)) s.close();
          else slotSockets.set(id, s);
        }
        wake();
      },
      (e: Error) => {
        addingSockets = false;
        log(`cannot add a socket for a new worker: ${e.message}; staying at ${slotSockets.size} workers`);
        desired = slotSockets.size;
        wake();
      },
    );
  }

  /** A slot above the desired count loses its socket at once: the kernel stops sending it connections. */
  function closeSurplusSockets(): void {
    for (const [id, s] of slotSockets) {
      if (id <= desired) continue;
      log(
        `closing slot ${id}'s socket${
          migratesQueuedConnections()
            ? ''
            : ': connections queued on it are reset (net.ipv4.tcp_migrate_req=1 moves them to the other sockets)'
        }`,
      );
      s.close();
      slotSockets.delete(id);
    }
  }

  function converge(now: number): void {
    if (stopping) {
      for (const worker of workers.values()) retire(worker);
      if (workers.size === 0) finish();
      return;
    }
    const bySlot = new Map<number, Worker[]>();
    for (const worker of workers.values()) {
      if (worker.retiring) continue;
      const list = bySlot.get(worker.slot);
      if (list) list.push(worker);
      else bySlot.set(worker.slot, [worker]);
    }
    // Fewer slots: retire the highest.
    for (const [id, list] of bySlot) if (id > desired) for (const worker of list) retire(worker);
    if (mode === 'reuseport') closeSurplusSockets();
    // Empty slots: start a worker unless the slot is backing off (or still waits for its socket).
    for (let id = 1; id <= desired; id++) {
      if (bySlot.has(id)) continue;
      if (mode === 'reuseport' && !slotSockets.has(id)) {
        addSlotSockets();
        continue;
      }
      const slot = slotOf(id);
      if (now < slot.notBefore) {
        wakeLater(slot.notBefore);
        continue;
      }
      spawnWorker(id);
      if (stopping) return;
    }
    // Rolling reload: one slot at a time, a new worker ready before the old one goes.
    for (let id = 1; id <= desired; id++) {
      const list = bySlot.get(id);
      if (!list) continue;
      const current = list.find((w) => w.generation === generation);
      const old = list.filter((w) => w.generation !== generation);
      if (old.length === 0) continue;
      if (!current) {
        spawnWorker(id);
        return;
      }
      if (isReady(current, now) || now - current.startedAt > readyTimeoutMs) {
        for (const worker of old) retire(worker);
        continue;
      }
      if (current.link) wakeLater(current.startedAt + readyTimeoutMs);
      return;
    }
    if (!readyResolved) {
      let all = true;
      for (const worker of workers.values()) if (!isReady(worker, now)) all = false;
      if (all && workers.size >= desired) {
        readyResolved = true;
        resolveReady();
        emitter.emit('ready');
        notifier?.notify(['READY=1', readyStatus()]);
      }
    }
    // A reload is over once every slot has a ready worker of the new generation.
    if (reloading && readyResolved) {
      const current = new Set<number>();
      for (const w of workers.values())
        if (!w.retiring && w.generation === generation && isReady(w, now)) current.add(w.slot);
      let all = true;
      for (let id = 1; id <= desired; id++) if (!current.has(id)) all = false;
      if (all) {
        reloading = false;
        notifier?.notify(['READY=1', readyStatus()]);
      }
    }
  }

  function turn(): void {
    scheduled = false;
    if (finished) return;
    while (queue.length > 0) handle(queue.shift()!);
    const now = Date.now();
    killHung(now);
    converge(now);
  }

  const onSignal = (signal: Signal) => {
    queue.push({ kind: 'signal', signal });
    wake();
  };
  const handlers = new Map<Signal, () => void>();
  if (options.handleSignals) {
    for (const signal of SIGNALS) {
      const handler = () => onSignal(signal);
      handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }
  const heartbeat = timeoutMs !== undefined ? setInterval(wake, Math.min(1000, timeoutMs / 2)) : undefined;

  function finish(): void {
    if (finished) return;
    finished = true;
    clearTimeout(wakeTimer);
    clearTimeout(stopTimer);
    clearInterval(heartbeat);
    for (const [signal, handler] of handlers) process.off(signal, handler);
    socket.close();
    for (const s of slotSockets.values()) s.close();
    if (options.pidfile) removePidfile(options.pidfile);
    if (!readyResolved) resolveReady();
    log(exitCode === 0 ? 'stopped' : 'stopped after an error');
    emitter.emit('close', exitCode);
    resolveDone(exitCode);
  }

  const pool = Object.assign(emitter, {
    socket,
    address: socket.description,
    backlog,
    ready,
    done,
    status(): PoolStatus {
      const list = [...workers.values()]
        .sort((a, b) => a.slot - b.slot || a.generation - b.generation)
        .map((w) => ({
          slot: w.slot,
          pid: w.pid,
          generation: w.generation,
          state: (w.retiring ? 'retiring' : isReady(w, Date.now()) ? 'ready' : 'starting') as WorkerState,
          startedAt: w.startedAt,
          requests: w.link ? w.requests : null,
          active: w.link ? w.active : null,
          rssBytes: rssOf(w.pid),
          cpuSeconds: cpuSecondsOf(w.pid),
          current: w.link ? currentRequestInfo(w.current, Date.now()) : null,
          restarts: slotOf(w.slot).restarts,
        }));
      let restarts = 0;
      for (const slot of slots.values()) restarts += slot.restarts;
      return {
        pid: process.pid,
        node: process.version,
        address: socket.description,
        backlog,
        mode,
        command: command.display,
        startedAt,
        generation,
        desiredWorkers: desired,
        workers: list,
        totals: {
          workers: list.length,
          requests: list.reduce((sum, w) => sum + (w.requests ?? 0), 0),
          restarts,
          rssBytes: list.reduce((sum, w) => sum + (w.rssBytes ?? 0), 0),
        },
      };
    },
    reload() {
      onSignal('SIGHUP');
    },
    scale(workersWanted: number) {
      queue.push({ kind: 'scale', workers: positiveInteger(workersWanted, 1, 'worker count') });
      wake();
    },
    stop() {
      onSignal('SIGTERM');
      return done;
    },
  });

  const sockets = mode === 'reuseport' ? `, SO_REUSEPORT: a socket per worker` : '';
  log(
    `listening on ${socket.description} (backlog ${backlog}${sockets}); starting ${desired} × ${command.display}`,
  );
  wake();
  return pool;
}
