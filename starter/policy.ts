/**
 * What the supervisor does about a slot, as pure functions of what it saw and the time: restart,
 * backoff, give-up, hung workers and recycling. No processes, no timers, no clock of its own, so
 * every rule is tested with made-up observations (test/starter/policy.test.ts).
 */

/** When failed starts end the pool, and how a slot slows down after one. */
export interface CrashPolicy {
  /**
   * This many failed starts in a row within `windowMs` end the pool, while the command has not
   * shown it works (decide).
   */
  readonly limit: number;
  readonly windowMs: number;
  /** The backoff after a failed start doubles from `backoffMinMs` up to `backoffMaxMs`. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}

export interface Policy extends CrashPolicy {
  /** A worker that does not report readiness counts as ready after this long alive. */
  readonly settleMs: number;
  /** A clean exit this soon after start is no failed start, but slows the slot down. */
  readonly minCleanUptimeMs: number;
  /** Kill an SDK worker silent, or busy with one request, for longer than this. */
  readonly timeoutMs?: number | undefined;
  /** Recycle a worker after about this long (each worker's own figure, see lifetimeOf). */
  readonly maxLifetimeMs?: number | undefined;
}

export const DEFAULT_CRASH_POLICY: CrashPolicy = {
  limit: 5,
  windowMs: 10_000,
  backoffMinMs: 100,
  backoffMaxMs: 5_000,
};

export const DEFAULT_POLICY: Policy = { ...DEFAULT_CRASH_POLICY, settleMs: 300, minCleanUptimeMs: 100 };

/** A slot's restart state. */
export interface SlotState {
  /** Failed (or too quick) starts in a row: sets the backoff. */
  readonly failures: number;
  /** No start in this slot before this time. */
  readonly notBefore: number;
}

export const FRESH_SLOT: SlotState = { failures: 0, notBefore: 0 };

/** The pool's failed starts since a worker last proved the command works. */
export type FailedStarts = readonly number[];

/** What the supervisor knows of a worker. */
export interface WorkerFacts {
  /** Speaks the link (an SDK worker): says when it is ready, sends heartbeats. */
  readonly link: boolean;
  readonly startedAt: number;
  /** An SDK worker said it is ready. */
  readonly ready: boolean;
  /** The worker said it will exit on purpose (max requests). */
  readonly retiringSelf: boolean;
  /** Last message over the link. */
  readonly lastSeen: number;
  /** Age of the oldest request in progress, as the worker last said. */
  readonly oldestActiveMs: number;
  /** When this worker is due for recycling (--max-lifetime), if ever. */
  readonly recycleAt?: number | undefined;
}

export type Observation =
  /**
   * A worker of the slot exited; the supervisor had not asked it to. `works`: the command has
   * shown it works (a worker of this generation proved it, or one is ready now), so the pool
   * is not given up.
   */
  | {
      readonly kind: 'exit';
      readonly worker: WorkerFacts;
      readonly code: number | null;
      readonly signal: string | null;
      readonly works: boolean;
    }
  /** spawn(2) itself failed: no process. */
  | { readonly kind: 'spawnFailed'; readonly errno: string; readonly works: boolean }
  /** A live worker, looked at once a turn; `recycling` says another slot is being recycled. */
  | { readonly kind: 'alive'; readonly worker: WorkerFacts; readonly recycling: boolean };

export type Decision =
  | { readonly kind: 'keep' }
  /**
   * Start a worker in the slot. `urgent`: the slot has lost its worker (it died, or is hung and
   * killed now), which is worth a log line; otherwise the worker retired, or is recycled with
   * the new one ready before the old one is retired, as in a reload.
   */
  | { readonly kind: 'replace'; readonly urgent: boolean; readonly why: string }
  /** Start the slot again after `ms`; `failed`: it was a failed start (counted toward giving up). */
  | { readonly kind: 'backoff'; readonly ms: number; readonly why: string; readonly failed: boolean }
  /** The command keeps failing: end the pool, exit 1. */
  | { readonly kind: 'giveUp'; readonly why: string };

export interface Verdict {
  readonly decision: Decision;
  readonly slot: SlotState;
  readonly failedStarts: FailedStarts;
}

/** Signals by which a program crashes on its own, as opposed to being killed. */
const CRASH_SIGNALS: ReadonlySet<string> = new Set([
  'SIGSEGV',
  'SIGBUS',
  'SIGILL',
  'SIGFPE',
  'SIGABRT',
  'SIGSYS',
]);

/** spawn failures that say the machine is short of something, not that the command is wrong. */
const RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);

export function describeExit(code: number | null, signal: string | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

/** Whether a worker counts as ready: an SDK worker says so; any other program once it has settled. */
export function isReady(policy: Policy, worker: WorkerFacts, now: number): boolean {
  return worker.link ? worker.ready : now - worker.startedAt >= policy.settleMs;
}

/**
 * Whether a worker has shown the command works, which ends a run of failed starts. An SDK
 * worker proves it by being ready; any other program only by living past the crash window, as
 * an exit is all it tells.
 */
export function isProven(policy: Policy, worker: WorkerFacts, now: number): boolean {
  return worker.link ? worker.ready : now - worker.startedAt >= policy.windowMs;
}

/** When a program that does not report readiness will have proven itself. */
export function provenAt(policy: Policy, worker: WorkerFacts): number {
  return worker.startedAt + policy.windowMs;
}

export function backoffMs(policy: CrashPolicy, failures: number): number {
  return Math.min(policy.backoffMinMs * 2 ** failures, policy.backoffMaxMs);
}

/** When a worker started at `startedAt` is due for recycling: the lifetime plus up to 10% (`random` in [0, 1)). */
export function recycleAt(policy: Policy, startedAt: number, random: number): number | undefined {
  if (policy.maxLifetimeMs === undefined) return undefined;
  return startedAt + policy.maxLifetimeMs + Math.floor(policy.maxLifetimeMs * 0.1 * random);
}

type ExitKind = 'retired' | 'quickClean' | 'failedStart' | 'died';

/**
 * A failed start is the command failing: any death before the worker is ready (whatever the
 * signal: a worker that SIGKILLs itself at start is a crash loop too), and for a program that
 * does not report readiness a non-zero exit or a crash signal within the crash window. A kill
 * from outside (an operator, the OOM killer) after that is no fault of the command.
 */
function classifyExit(
  policy: Policy,
  worker: WorkerFacts,
  code: number | null,
  signal: string | null,
  now: number,
): ExitKind {
  if (worker.retiringSelf) return 'retired';
  const uptime = now - worker.startedAt;
  const clean = code === 0 && signal === null;
  if (worker.link) return worker.ready ? 'died' : 'failedStart';
  // A clean exit is a program retiring (php-cgi after PHP_FCGI_MAX_REQUESTS); only one at once
  // slows the slot down, so a command that exits 0 at once cannot spin.
  if (clean) return uptime < policy.minCleanUptimeMs ? 'quickClean' : 'retired';
  if (uptime < policy.settleMs) return 'failedStart';
  const crashed = signal === null || CRASH_SIGNALS.has(signal);
  return crashed && uptime < policy.windowMs ? 'failedStart' : 'died';
}

/**
 * A failed start backs the slot off. Enough of them in a row, within the window, end the pool,
 * but only for a command that has not shown it works: a kill from outside cannot be told from a
 * crash (a SIGKILL is a SIGKILL), and workers killed as they start (chaos, an operator, the OOM
 * killer) are no reason to stop a pool whose command works. Such a pool keeps trying, slowly.
 */
function failedStart(
  policy: Policy,
  slot: SlotState,
  failedStarts: FailedStarts,
  what: string,
  works: boolean,
  now: number,
): Verdict {
  const recent = [...failedStarts.filter((at) => at > now - policy.windowMs), now];
  if (recent.length >= policy.limit && !works) {
    return {
      decision: {
        kind: 'giveUp',
        why: `${recent.length} failed starts within ${policy.windowMs / 1000} s, last: ${what}`,
      },
      slot,
      failedStarts: recent,
    };
  }
  return { ...backoff(policy, slot, what, true, now), failedStarts: recent };
}

function backoff(
  policy: Policy,
  slot: SlotState,
  why: string,
  failed: boolean,
  now: number,
): Omit<Verdict, 'failedStarts'> {
  const ms = backoffMs(policy, slot.failures);
  return {
    decision: { kind: 'backoff', ms, why, failed },
    slot: { failures: slot.failures + 1, notBefore: now + ms },
  };
}

/** The policy's answer to one observation of one slot. */
export function decide(
  policy: Policy,
  slot: SlotState,
  failedStarts: FailedStarts,
  observation: Observation,
  now: number,
): Verdict {
  const keep: Verdict = { decision: { kind: 'keep' }, slot, failedStarts };
  switch (observation.kind) {
    case 'exit': {
      const { worker, code, signal } = observation;
      const what = describeExit(code, signal);
      switch (classifyExit(policy, worker, code, signal, now)) {
        case 'failedStart':
          return failedStart(policy, slot, failedStarts, what, observation.works, now);
        case 'quickClean':
          return { ...backoff(policy, slot, what, false, now), failedStarts };
        case 'retired':
          return { decision: { kind: 'replace', urgent: false, why: what }, slot: FRESH_SLOT, failedStarts };
        case 'died':
          return { decision: { kind: 'replace', urgent: true, why: what }, slot: FRESH_SLOT, failedStarts };
      }
      break;
    }
    case 'spawnFailed': {
      const what = `cannot start: ${observation.errno}`;
      // Short of descriptors or processes: keep trying, slowly, and let the live workers serve.
      if (RESOURCE_ERRORS.has(observation.errno))
        return { ...backoff(policy, slot, what, false, now), failedStarts };
      return failedStart(policy, slot, failedStarts, what, observation.works, now);
    }
    case 'alive': {
      const { worker, recycling } = observation;
      if (policy.timeoutMs !== undefined && worker.link) {
        const silent = now - worker.lastSeen;
        if (silent > policy.timeoutMs)
          return {
            ...keep,
            decision: {
              kind: 'replace',
              urgent: true,
              why: `no heartbeat for ${Math.round(silent / 1000)} s`,
            },
          };
        if (worker.oldestActiveMs > policy.timeoutMs)
          return {
            ...keep,
            decision: { kind: 'replace', urgent: true, why: 'a request ran past the timeout' },
          };
      }
      // One slot recycles at a time, so a recycle never takes more than one worker away.
      if (worker.recycleAt !== undefined && now >= worker.recycleAt && !recycling)
        return {
          ...keep,
          decision: {
            kind: 'replace',
            urgent: false,
            why: `alive ${Math.round((now - worker.startedAt) / 1000)} s (--max-lifetime)`,
          },
        };
      return keep;
    }
  }
  return keep;
}
