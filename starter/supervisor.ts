import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { type CurrentRequest, parseWorkerMessage, type WorkerMessage } from '../src/link.js';
import { LineReader, MAX_LINK_LINE } from '../src/link-stream.js';
import type { ListeningSocket } from '../src/net/listen.js';
import { listenReusePort } from '../src/net/reuseport.js';
import type { ResolvedCommand } from './command.js';
import { monotonicUsec, type Notifier } from './notify.js';
import { prefixLines } from './output.js';
import {
  type Decision,
  decide,
  describeExit,
  type FailedStarts,
  FRESH_SLOT,
  isProven,
  isReady,
  type Observation,
  type Policy,
  provenAt,
  recycleAt,
  type SlotState,
} from './policy.js';
import { type Identity, linkOf, spawnWorker } from './spawn-worker.js';
import { type WorkerEnvOptions, workerEnv } from './worker-env.js';
import { parseCurrentRequest } from './worker-stats.js';

/**
 * What the pool is asked to do, whoever asks: signals and control commands map to these at the
 * edge (SIGNAL_ACTIONS, control.ts), and the supervisor handles each by name. `source` names the
 * asker in the log.
 */
export type Action =
  | { readonly kind: 'stop'; readonly source: string }
  | { readonly kind: 'reload'; readonly source: string }
  | { readonly kind: 'scale'; readonly source: string; readonly to?: number; readonly by?: number }
  | { readonly kind: 'recycle'; readonly source: string; readonly slot: number };

export type Signal = 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGTTIN' | 'SIGTTOU';

export const SIGNAL_ACTIONS: Readonly<Record<Signal, Action>> = {
  SIGTERM: { kind: 'stop', source: 'SIGTERM' },
  SIGINT: { kind: 'stop', source: 'SIGINT' },
  SIGHUP: { kind: 'reload', source: 'SIGHUP' },
  SIGTTIN: { kind: 'scale', source: 'SIGTTIN', by: 1 },
  SIGTTOU: { kind: 'scale', source: 'SIGTTOU', by: -1 },
};

export interface Worker {
  readonly slot: number;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly generation: number;
  readonly link: boolean;
  readonly startedAt: number;
  readonly recycleAt: number | undefined;
  ready: boolean;
  /** Showed the command works (policy.isProven); counted once. */
  proven: boolean;
  /** Asked to go (SIGTERM or SIGKILL): its exit is no failure. */
  retiring: boolean;
  /** Due for recycling: replaced like one slot of a reload. */
  recycling: boolean;
  /** The worker said it will exit on purpose (max requests). */
  retiringSelf: boolean;
  requests: number;
  active: number;
  oldestActiveMs: number;
  /** The oldest request in progress, as the worker last said (checked: parseCurrentRequest). */
  current: CurrentRequest | null;
  lastSeen: number;
  killTimer: NodeJS.Timeout | undefined;
}

interface Slot extends SlotState {
  readonly restarts: number;
}

/** Everything the supervisor is given; it owns none of it but the workers and the slot sockets. */
export interface SupervisorConfig {
  readonly command: ResolvedCommand;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly identity: Identity;
  readonly backlog: number;
  /** What the workers' environment is made of (worker-env.ts); gracefulTimeout also bounds a retire. */
  readonly envOptions: WorkerEnvOptions;
  readonly readyTimeoutMs: number;
  readonly policy: Policy;
  /** The shared socket, and with reusePort each slot's (slot k at k - 1). */
  readonly socket: ListeningSocket;
  readonly slotSockets: readonly ListeningSocket[] | undefined;
  readonly workers: number;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly notifier: Notifier | null;
  readonly events: EventEmitter;
  readonly log: (message: string) => void;
  /** Called once, when the last worker is gone after a stop, with the exit code. */
  readonly onFinish: (code: number) => void;
  readonly onReady: () => void;
  readonly clock?: () => number;
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

/** How long the starter still reads a worker's link after the worker has exited. */
const LINK_DRAIN_MS = 1000;

/**
 * The arbiter, as gunicorn's: signal handlers, child events and control commands only queue
 * work and wake the loop. Each turn handles the queued actions by name, kills hung workers and
 * marks those due for recycling, reaps the exits (asking the policy what each means), then
 * converges the actual workers to the desired ones. All state changes happen in a turn.
 */
export class Supervisor {
  readonly startedAt: number;
  readonly mode: 'shared' | 'reuseport';
  desired: number;
  generation = 1;
  readonly workers = new Map<number, Worker>();

  private readonly config: SupervisorConfig;
  private readonly policy: Policy;
  private readonly clock: () => number;
  private readonly slots = new Map<number, Slot>();
  private readonly slotSockets = new Map<number, ListeningSocket>();
  private readonly actions: Action[] = [];
  private readonly exits: { worker: Worker; code: number | null; signal: NodeJS.Signals | null }[] = [];
  private readonly spawnFailures: { slot: number; error: NodeJS.ErrnoException }[] = [];
  /** Slots whose spawn failed and whose failure is not reaped yet: not to be started again meanwhile. */
  private readonly failing = new Set<number>();
  private failedStarts: FailedStarts = [];
  /** The latest generation a worker of which proved the command works. */
  private provenGeneration = 0;
  private stopping = false;
  private reloading = false;
  private finished = false;
  private announced = false;
  private exitCode = 0;
  private addingSockets = false;
  private scheduled = false;
  private wakeAt = Number.POSITIVE_INFINITY;
  private wakeTimer: NodeJS.Timeout | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout | undefined;

  constructor(config: SupervisorConfig) {
    this.config = config;
    this.policy = config.policy;
    this.clock = config.clock ?? Date.now;
    this.startedAt = this.clock();
    this.desired = config.workers;
    this.mode = config.slotSockets ? 'reuseport' : 'shared';
    for (const [i, s] of (config.slotSockets ?? []).entries()) this.slotSockets.set(i + 1, s);
    const { timeoutMs } = this.policy;
    this.heartbeat =
      timeoutMs !== undefined ? setInterval(() => this.wake(), Math.min(1000, timeoutMs / 2)) : undefined;
  }

  /** Queues an action and wakes the loop: what a signal handler or a control command does. */
  request(action: Action): void {
    this.actions.push(action);
    this.wake();
  }

  restartsOf(slot: number): number {
    return this.slots.get(slot)?.restarts ?? 0;
  }

  totalRestarts(): number {
    let restarts = 0;
    for (const slot of this.slots.values()) restarts += slot.restarts;
    return restarts;
  }

  isReady(worker: Worker, now = this.clock()): boolean {
    return isReady(this.policy, worker, now);
  }

  wake(): void {
    if (this.scheduled || this.finished) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  /** Wakes the loop at `at` (a backoff ending, a worker settling), keeping only the earliest. */
  private wakeLater(at: number): void {
    if (at >= this.wakeAt || this.finished) return;
    this.wakeAt = at;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(
      () => {
        this.wakeAt = Number.POSITIVE_INFINITY;
        this.wake();
      },
      Math.max(0, at - this.clock()),
    );
  }

  private log(message: string): void {
    this.config.log(message);
  }

  private turn(): void {
    this.scheduled = false;
    if (this.finished) return;
    for (const action of this.actions.splice(0)) this.handle(action);
    const now = this.clock();
    this.inspect(now);
    this.reap(now);
    this.converge(now);
  }

  // ---- actions, by name -------------------------------------------------------------------

  private handle(action: Action): void {
    switch (action.kind) {
      case 'stop':
        this.handleStop(action.source);
        break;
      case 'reload':
        this.handleReload(action.source);
        break;
      case 'scale':
        this.handleScale(action.source, action.to ?? this.desired + (action.by ?? 0));
        break;
      case 'recycle':
        this.handleRecycle(action.source, action.slot);
        break;
    }
  }

  private handleStop(source: string): void {
    if (!this.stopping)
      this.log(`${source}: stopping (graceful timeout ${this.config.envOptions.gracefulTimeout ?? 30} s)`);
    this.beginStop();
  }

  private handleReload(source: string): void {
    if (this.stopping) return;
    this.generation++;
    this.failedStarts = [];
    this.log(`${source}: reloading workers (generation ${this.generation})`);
    this.reloading = true;
    this.config.notifier?.notify([
      'RELOADING=1',
      `MONOTONIC_USEC=${monotonicUsec()}`,
      `STATUS=reloading ${this.desired} workers (generation ${this.generation})`,
    ]);
  }

  private handleScale(source: string, workers: number): void {
    if (this.stopping) return;
    this.desired = Math.max(1, workers);
    this.log(`${source}: ${this.desired} workers`);
  }

  private handleRecycle(source: string, slot: number): void {
    const live = [...this.workers.values()].filter((w) => w.slot === slot && !w.retiring);
    if (this.stopping || live.length === 0) return;
    this.log(`${source}: recycling slot ${slot}`);
    for (const worker of live) worker.recycling = true;
  }

  // ---- each turn ------------------------------------------------------------------------

  /** Live workers through the policy: the hung are killed, the old marked for recycling. */
  private inspect(now: number): void {
    // A slot recycles until its old worker is gone.
    let recycling = [...this.workers.values()].some((w) => w.recycling);
    for (const worker of this.workers.values()) {
      if (worker.retiring) continue;
      if (!worker.proven && isProven(this.policy, worker, now)) {
        // The command works: a run of failed starts is over, and the slot's backoff too.
        worker.proven = true;
        this.failedStarts = [];
        this.provenGeneration = Math.max(this.provenGeneration, worker.generation);
        const slot = this.slotOf(worker.slot);
        this.slots.set(worker.slot, { ...slot, failures: 0, notBefore: 0 });
      } else if (!worker.proven && !worker.link) this.wakeLater(provenAt(this.policy, worker));
      if (worker.recycling) continue;
      const { decision } = decide(
        this.policy,
        this.slotOf(worker.slot),
        this.failedStarts,
        { kind: 'alive', worker, recycling },
        now,
      );
      if (decision.kind !== 'replace') {
        if (worker.recycleAt !== undefined) this.wakeLater(worker.recycleAt);
        continue;
      }
      if (decision.urgent) {
        this.log(`worker ${worker.slot} (pid ${worker.pid}) hung (${decision.why}); killing it`);
        worker.retiring = true; // replaced at once, not a failed start
        worker.child.kill('SIGKILL');
      } else {
        this.log(`worker ${worker.slot} (pid ${worker.pid}) recycling: ${decision.why}`);
        worker.recycling = true;
        recycling = true;
      }
    }
  }

  /** Exits and failed spawns through the policy: restart, back off, or give up. */
  private reap(now: number): void {
    for (const { worker, code, signal } of this.exits.splice(0)) {
      this.workers.delete(worker.pid);
      clearTimeout(worker.killTimer);
      this.config.events.emit('exit', { slot: worker.slot, pid: worker.pid, code, signal });
      if (this.stopping || worker.retiring) continue;
      const slot = this.slotOf(worker.slot);
      this.slots.set(worker.slot, { ...slot, restarts: slot.restarts + 1 });
      const works = this.works(now);
      const decision = this.apply(worker.slot, { kind: 'exit', worker, code, signal, works }, now);
      const what = `worker ${worker.slot} (pid ${worker.pid}) ${describeExit(code, signal)}`;
      // A quick clean exit now and then is a program retiring; only a run of them is news.
      if (decision.kind === 'backoff' && (decision.failed || decision.ms >= 1000))
        this.log(`${what} after ${now - worker.startedAt} ms; restarting it in ${decision.ms} ms`);
      if (decision.kind === 'replace' && decision.urgent) this.log(`${what}; restarting it`);
    }
    for (const { slot, error } of this.spawnFailures.splice(0)) {
      this.failing.delete(slot);
      if (this.stopping) continue;
      const errno = error.code ?? 'EUNKNOWN';
      const decision = this.apply(slot, { kind: 'spawnFailed', errno, works: this.works(now) }, now);
      const retry = decision.kind === 'backoff' ? `; trying again in ${decision.ms} ms` : '';
      this.log(`cannot start worker ${slot} (${this.config.command.display}): ${error.message}${retry}`);
    }
  }

  /** Whether the command has shown it works: a worker of this generation proved it, or one serves now. */
  private works(now: number): boolean {
    if (this.provenGeneration === this.generation) return true;
    for (const worker of this.workers.values())
      if (!worker.retiring && this.isReady(worker, now)) return true;
    return false;
  }

  /** The policy's verdict on a slot, applied: its new state, and the end of the pool on giving up. */
  private apply(id: number, observation: Observation, now: number): Decision {
    const slot = this.slotOf(id);
    const verdict = decide(this.policy, slot, this.failedStarts, observation, now);
    this.slots.set(id, { ...slot, failures: verdict.slot.failures, notBefore: verdict.slot.notBefore });
    this.failedStarts = verdict.failedStarts;
    const { decision } = verdict;
    if (decision.kind === 'giveUp')
      this.fatal(`${this.config.command.display} keeps exiting (${decision.why}); giving up`);
    if (decision.kind === 'backoff') this.wakeLater(verdict.slot.notBefore);
    return decision;
  }

  /** The actual workers to the desired ones: count, sockets, generation, readiness. */
  private converge(now: number): void {
    if (this.stopping) {
      for (const worker of this.workers.values()) this.retire(worker);
      if (this.workers.size === 0) this.finish();
      return;
    }
    const bySlot = this.liveBySlot();
    this.retireSurplus(bySlot);
    this.fillEmptySlots(bySlot, now);
    if (this.stopping) return;
    this.roll(bySlot, now);
    this.announce(now);
  }

  private liveBySlot(): Map<number, Worker[]> {
    const bySlot = new Map<number, Worker[]>();
    for (const worker of this.workers.values()) {
      if (worker.retiring) continue;
      const list = bySlot.get(worker.slot);
      if (list) list.push(worker);
      else bySlot.set(worker.slot, [worker]);
    }
    return bySlot;
  }

  /** Fewer slots: retire the highest, and close their sockets. */
  private retireSurplus(bySlot: Map<number, Worker[]>): void {
    for (const [id, list] of bySlot) if (id > this.desired) for (const worker of list) this.retire(worker);
    if (this.mode === 'reuseport') this.closeSurplusSockets();
  }

  /** Empty slots: start a worker unless the slot is backing off (or still waits for its socket). */
  private fillEmptySlots(bySlot: Map<number, Worker[]>, now: number): void {
    for (let id = 1; id <= this.desired; id++) {
      if (bySlot.has(id)) continue;
      if (this.mode === 'reuseport' && !this.slotSockets.has(id)) {
        this.addSlotSockets();
        continue;
      }
      if (this.mayStart(id, now)) this.start(id, now);
    }
  }

  /**
   * Rolling replacement (a reload, or recycling): one slot at a time, a new worker ready before
   * the old one goes.
   */
  private roll(bySlot: Map<number, Worker[]>, now: number): void {
    for (let id = 1; id <= this.desired; id++) {
      const list = bySlot.get(id);
      if (!list) continue;
      const current = list.find((w) => w.generation === this.generation && !w.recycling);
      const old = list.filter((w) => w !== current);
      if (old.length === 0) continue;
      if (!current) {
        if (this.mayStart(id, now)) this.start(id, now);
        return;
      }
      if (this.isReady(current, now) || now - current.startedAt > this.config.readyTimeoutMs) {
        for (const worker of old) this.retire(worker);
        continue;
      }
      this.wakeLater(
        current.link
          ? current.startedAt + this.config.readyTimeoutMs
          : current.startedAt + this.policy.settleMs,
      );
      return;
    }
  }

  /** READY=1 once every first worker is up, and again once a reload is over. */
  private announce(now: number): void {
    if (!this.announced) {
      let all = this.workers.size >= this.desired;
      for (const worker of this.workers.values()) if (!this.settled(worker, now)) all = false;
      if (all) {
        this.announced = true;
        this.config.onReady();
        this.config.notifier?.notify(['READY=1', this.readyStatus()]);
      }
    }
    // A reload is over once every slot has a ready worker of the new generation.
    if (this.reloading && this.announced) {
      const current = new Set<number>();
      for (const w of this.workers.values())
        if (!w.retiring && w.generation === this.generation && this.settled(w, now)) current.add(w.slot);
      let all = true;
      for (let id = 1; id <= this.desired; id++) if (!current.has(id)) all = false;
      if (all) {
        this.reloading = false;
        this.config.notifier?.notify(['READY=1', this.readyStatus()]);
      }
    }
  }

  /** Ready, or (a program that does not report) wake the loop when it will count as ready. */
  private settled(worker: Worker, now: number): boolean {
    if (this.isReady(worker, now)) return true;
    if (!worker.link) this.wakeLater(worker.startedAt + this.policy.settleMs);
    return false;
  }

  private readyStatus(): string {
    return `STATUS=${this.desired} workers ready (generation ${this.generation}) on ${this.config.socket.description}`;
  }

  // ---- workers --------------------------------------------------------------------------

  private slotOf(id: number): Slot {
    let slot = this.slots.get(id);
    if (!slot) {
      slot = { ...FRESH_SLOT, restarts: 0 };
      this.slots.set(id, slot);
    }
    return slot;
  }

  private mayStart(id: number, now: number): boolean {
    if (this.failing.has(id)) return false;
    const { notBefore } = this.slotOf(id);
    if (now >= notBefore) return true;
    this.wakeLater(notBefore);
    return false;
  }

  private start(id: number, now: number): void {
    const { command } = this.config;
    const child = spawnWorker(
      {
        command,
        socket: this.mode === 'reuseport' ? this.slotSockets.get(id)! : this.config.socket,
        cwd: this.config.cwd,
        env: workerEnv(this.config.env, id, this.config.backlog, this.config.envOptions),
        identity: this.config.identity,
        mode: 'supervised',
      },
      (error) => {
        this.spawnFailures.push({ slot: id, error });
        this.wake();
      },
    );
    if (!child?.pid) {
      this.failing.add(id);
      return;
    }
    const worker: Worker = {
      slot: id,
      child,
      pid: child.pid,
      generation: this.generation,
      link: command.node,
      startedAt: now,
      recycleAt: recycleAt(this.policy, now, Math.random()),
      ready: false,
      proven: false,
      retiring: false,
      recycling: false,
      retiringSelf: false,
      requests: 0,
      active: 0,
      oldestActiveMs: 0,
      current: null,
      lastSeen: now,
      killTimer: undefined,
    };
    this.workers.set(worker.pid, worker);
    // The loop must look again when this worker counts as ready: a program that does not
    // report readiness once it has settled; an SDK worker by the ready timeout at the latest.
    this.wakeLater(now + (command.node ? this.config.readyTimeoutMs : this.policy.settleMs));
    const prefix = `[worker ${id} pid ${worker.pid}] `;
    if (child.stdout) prefixLines(child.stdout, this.config.stdout, prefix);
    if (child.stderr) prefixLines(child.stderr, this.config.stderr, prefix);
    child.on('error', (e) => this.log(`worker ${id} (pid ${worker.pid}): ${e.message}`));
    const link = linkOf(child);
    if (link) this.readLink(worker, link);
    child.on('exit', (code, signal) => {
      this.exits.push({ worker, code, signal });
      this.wake();
    });
    this.config.events.emit('spawn', { slot: id, pid: worker.pid, generation: this.generation });
  }

  /**
   * Reads a worker's link (src/link.ts). The worker may be compromised and the starter is root:
   * a line past the cap, one that is not JSON, or a message that is not what an SDK worker
   * sends gets the worker killed and the link closed, so what the starter holds for a worker
   * stays bounded whatever it writes. The link is a plain socketpair read with read(2): a
   * descriptor a worker sends along is dropped by the kernel, never received.
   */
  private readLink(worker: Worker, link: Socket): void {
    const reader = new LineReader();
    const refuse = (what: string) => {
      link.destroy();
      this.breach(worker, what);
    };
    link.on('data', (chunk: Buffer) => {
      const lines = reader.push(chunk);
      if (lines === 'overflow') return refuse(`sent a link line over ${MAX_LINK_LINE} bytes`);
      for (const line of lines) {
        let raw: unknown;
        try {
          raw = JSON.parse(line);
        } catch {
          return refuse('sent a malformed link message');
        }
        const message = parseWorkerMessage(raw);
        if (message === null) return refuse('sent a malformed link message');
        this.receive(worker, message, raw);
      }
    });
    // A worker that closes its end is gone or going: its exit says which.
    link.on('error', () => {});
    // Once the worker has exited, what it wrote before is read soon after; a process it left
    // behind holding its end must not keep this descriptor open in the starter.
    worker.child.once('exit', () => setTimeout(() => link.destroy(), LINK_DRAIN_MS).unref());
  }

  private breach(worker: Worker, what: string): void {
    if (worker.child.exitCode === null && worker.child.signalCode === null && !worker.child.killed)
      this.log(`worker ${worker.slot} (pid ${worker.pid}) ${what}; killing it`);
    worker.child.kill('SIGKILL');
  }

  private receive(worker: Worker, message: WorkerMessage, raw: unknown): void {
    worker.lastSeen = this.clock();
    switch (message.type) {
      case 'fcgi-prefork:ready':
        worker.ready = true;
        break;
      case 'fcgi-prefork:stats':
        worker.requests = message.requests;
        worker.active = message.active;
        worker.oldestActiveMs = message.oldestActiveMs;
        // Checked on its own: a malformed one is dropped, not a breach (worker-stats.ts).
        worker.current = parseCurrentRequest((raw as { current?: unknown }).current);
        break;
      case 'fcgi-prefork:retiring':
        worker.retiringSelf = true;
        this.log(`worker ${worker.slot} (pid ${worker.pid}) retiring: ${message.reason}`);
        break;
    }
    this.wake();
  }

  /** Asks a worker to finish in-flight requests and exit; KILL after the graceful timeout. */
  private retire(worker: Worker): void {
    if (worker.retiring) return;
    worker.retiring = true;
    worker.child.kill('SIGTERM');
    const gracefulMs = (this.config.envOptions.gracefulTimeout ?? 30) * 1000;
    worker.killTimer = setTimeout(() => {
      this.log(
        `worker ${worker.slot} (pid ${worker.pid}) still running ${gracefulMs / 1000} s after SIGTERM; killing it`,
      );
      worker.child.kill('SIGKILL');
    }, gracefulMs);
  }

  // ---- reuseport slot sockets -----------------------------------------------------------

  /** Makes the missing slot sockets (after scaling up) in the background; the loop waits for them. */
  private addSlotSockets(): void {
    if (this.addingSockets) return;
    const missing: number[] = [];
    for (let id = 1; id <= this.desired; id++) if (!this.slotSockets.has(id)) missing.push(id);
    if (missing.length === 0) return;
    this.addingSockets = true;
    const { socket, backlog } = this.config;
    const { host } = socket.address as { host: string };
    listenReusePort(host, socket.port ?? 0, missing.length, backlog, { probe: false }).then(
      (added) => {
        this.addingSockets = false;
        for (const s of added) {
          const id = missing.shift();
          if (
            this.finished ||
            this.stopping ||
            id === undefined ||
            id > this.desired ||
            this.slotSockets.has(id)
          )
            s.close();
          else this.slotSockets.set(id, s);
        }
        this.wake();
      },
      (e: Error) => {
        this.addingSockets = false;
        this.log(
          `cannot add a socket for a new worker: ${e.message}; staying at ${this.slotSockets.size} workers`,
        );
        this.desired = this.slotSockets.size;
        this.wake();
      },
    );
  }

  /** A slot above the desired count loses its socket at once: the kernel stops sending it connections. */
  private closeSurplusSockets(): void {
    for (const [id, s] of this.slotSockets) {
      if (id <= this.desired) continue;
      this.log(
        `closing slot ${id}'s socket${
          migratesQueuedConnections()
            ? ''
            : ': connections queued on it are reset (net.ipv4.tcp_migrate_req=1 moves them to the other sockets)'
        }`,
      );
      s.close();
      this.slotSockets.delete(id);
    }
  }

  // ---- the end --------------------------------------------------------------------------

  private fatal(message: string): void {
    this.log(message);
    this.exitCode = 1;
    this.beginStop();
  }

  private beginStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.config.notifier?.notify(['STOPPING=1', `STATUS=stopping ${this.workers.size} workers`]);
    const gracefulMs = (this.config.envOptions.gracefulTimeout ?? 30) * 1000;
    this.stopTimer = setTimeout(() => {
      for (const worker of this.workers.values()) worker.child.kill('SIGKILL');
    }, gracefulMs);
    this.wake();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.stopTimer);
    clearInterval(this.heartbeat);
    this.config.socket.close();
    for (const s of this.slotSockets.values()) s.close();
    this.config.onFinish(this.exitCode);
  }
}
