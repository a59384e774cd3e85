// The supervision policy without processes: made-up observations, and the time given.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICY,
  decide,
  type FailedStarts,
  FRESH_SLOT,
  isProven,
  isReady,
  type Observation,
  type Policy,
  recycleAt,
  type SlotState,
  type WorkerFacts,
} from '../../starter/policy.js';

const sdk = (startedAt: number, more: Partial<WorkerFacts> = {}): WorkerFacts => ({
  link: true,
  startedAt,
  ready: false,
  retiringSelf: false,
  lastSeen: startedAt,
  oldestActiveMs: 0,
  ...more,
});
const program = (startedAt: number, more: Partial<WorkerFacts> = {}): WorkerFacts => ({
  ...sdk(startedAt, more),
  link: false,
});
const exit = (
  worker: WorkerFacts,
  code: number | null,
  signal: string | null = null,
  works = false,
): Observation => ({ kind: 'exit', worker, code, signal, works });

/** Starts and fails a slot again and again, each start when its backoff ends; the decisions. */
function loop(policy: Policy, fail: (startedAt: number) => Observation, times: number) {
  let slot: SlotState = FRESH_SLOT;
  let failed: FailedStarts = [];
  let now = 1_000_000;
  const decisions = [];
  for (let i = 0; i < times; i++) {
    const startedAt = Math.max(now, slot.notBefore);
    now = startedAt + 20; // it dies 20 ms after start
    const verdict = decide(policy, slot, failed, fail(startedAt), now);
    decisions.push(verdict.decision);
    slot = verdict.slot;
    failed = verdict.failedStarts;
    if (verdict.decision.kind === 'giveUp') break;
  }
  return decisions;
}

describe('policy: failed starts', () => {
  it('an exit(1) loop backs off, doubling, and gives up at the fifth failed start', () => {
    const decisions = loop(DEFAULT_POLICY, (t) => exit(program(t), 1), 10);
    expect(decisions.map((d) => (d.kind === 'backoff' ? d.ms : d.kind))).toEqual([
      100,
      200,
      400,
      800,
      'giveUp',
    ]);
    expect(decisions.at(-1)).toMatchObject({
      why: '5 failed starts within 10 s, last: exited with code 1',
    });
  });

  it('a worker that SIGKILLs itself before it is ready is a crash loop too', () => {
    const sdkLoop = loop(DEFAULT_POLICY, (t) => exit(sdk(t), null, 'SIGKILL'), 10);
    expect(sdkLoop.map((d) => d.kind)).toEqual(['backoff', 'backoff', 'backoff', 'backoff', 'giveUp']);
    expect(sdkLoop.at(-1)).toMatchObject({ why: expect.stringMatching(/last: killed by SIGKILL$/) });
    const programLoop = loop(DEFAULT_POLICY, (t) => exit(program(t), null, 'SIGKILL'), 10);
    expect(programLoop.at(-1)?.kind).toBe('giveUp');
  });

  it('once the command has shown it works, a run of failed starts (kills as workers start) backs off but does not end the pool', () => {
    const decisions = loop(DEFAULT_POLICY, (t) => exit(sdk(t), null, 'SIGKILL', true), 12);
    expect(decisions).toHaveLength(12);
    expect(decisions.every((d) => d.kind === 'backoff' && d.failed)).toBe(true);
    expect(decisions.at(-1)).toMatchObject({ ms: DEFAULT_POLICY.backoffMaxMs });
  });

  it('a kill from outside once ready is no failed start: replaced at once, the slot fresh', () => {
    const slot = { failures: 3, notBefore: 0 };
    const ready = sdk(0, { ready: true });
    const verdict = decide(DEFAULT_POLICY, slot, [1, 2], exit(ready, null, 'SIGKILL'), 50);
    expect(verdict.decision).toEqual({ kind: 'replace', urgent: true, why: 'killed by SIGKILL' });
    expect(verdict.slot).toEqual(FRESH_SLOT);
    expect(verdict.failedStarts).toEqual([1, 2]);
    // A program that does not report is ready once settled; killed after that, the same.
    const settled = decide(DEFAULT_POLICY, slot, [], exit(program(0), null, 'SIGTERM'), 5_000);
    expect(settled.decision.kind).toBe('replace');
    // ... but a crash signal within the crash window is its own failure.
    const crashed = decide(DEFAULT_POLICY, slot, [], exit(program(0), null, 'SIGSEGV'), 5_000);
    expect(crashed.decision).toMatchObject({ kind: 'backoff', failed: true });
  });

  it('only failed starts within the window count', () => {
    const old = [0, 1000, 2000, 3000];
    const now = 20_000;
    const verdict = decide(DEFAULT_POLICY, FRESH_SLOT, old, exit(program(now - 50), 1), now);
    expect(verdict.decision.kind).toBe('backoff');
    expect(verdict.failedStarts).toEqual([now]);
    const within = decide(
      DEFAULT_POLICY,
      FRESH_SLOT,
      [15_000, 16_000, 17_000, 18_000],
      exit(program(19_900), 1),
      now,
    );
    expect(within.decision.kind).toBe('giveUp');
  });

  it('a retiring worker, or a program exiting 0, is replaced at once; exits 0 back-to-back slow the slot', () => {
    const retiring = decide(DEFAULT_POLICY, FRESH_SLOT, [], exit(sdk(0, { retiringSelf: true }), 0), 10);
    expect(retiring.decision).toMatchObject({ kind: 'replace', urgent: false });
    const php = decide(DEFAULT_POLICY, { failures: 2, notBefore: 0 }, [], exit(program(0), 0), 5_000);
    expect(php.decision).toMatchObject({ kind: 'replace', urgent: false });
    expect(php.slot).toEqual(FRESH_SLOT);
    const quick = loop(DEFAULT_POLICY, (t) => exit(program(t), 0), 12);
    expect(quick.every((d) => d.kind === 'backoff' && !d.failed)).toBe(true);
    expect(quick.map((d) => (d.kind === 'backoff' ? d.ms : 0)).slice(-3)).toEqual([5000, 5000, 5000]);
  });
});

describe('policy: spawn failures', () => {
  it('out of descriptors: keeps trying with backoff up to the maximum, and never gives up', () => {
    const decisions = loop(
      DEFAULT_POLICY,
      () => ({ kind: 'spawnFailed', errno: 'EMFILE', works: false }),
      50,
    );
    expect(decisions).toHaveLength(50);
    expect(decisions.every((d) => d.kind === 'backoff' && !d.failed)).toBe(true);
    expect(decisions.at(-1)).toMatchObject({ ms: DEFAULT_POLICY.backoffMaxMs });
    for (const errno of ['ENFILE', 'EAGAIN', 'ENOMEM'])
      expect(
        decide(DEFAULT_POLICY, FRESH_SLOT, [], { kind: 'spawnFailed', errno, works: false }, 0).decision.kind,
      ).toBe('backoff');
  });

  it('any other spawn failure (EACCES) is a failed start', () => {
    const decisions = loop(
      DEFAULT_POLICY,
      () => ({ kind: 'spawnFailed', errno: 'EACCES', works: false }),
      10,
    );
    expect(decisions.at(-1)).toMatchObject({
      kind: 'giveUp',
      why: expect.stringMatching(/cannot start: EACCES$/),
    });
  });
});

describe('policy: set by options', () => {
  it('a crash limit, window and backoff maximum of the operator’s', () => {
    const policy: Policy = { ...DEFAULT_POLICY, limit: 3, windowMs: 60_000, backoffMaxMs: 250 };
    const decisions = loop(policy, (t) => exit(sdk(t), 1), 10);
    expect(decisions.map((d) => (d.kind === 'backoff' ? d.ms : d.kind))).toEqual([100, 200, 'giveUp']);
    expect(decisions.at(-1)).toMatchObject({ why: expect.stringMatching(/^3 failed starts within 60 s/) });
    const slow = loop({ ...DEFAULT_POLICY, limit: 100, backoffMaxMs: 250 }, (t) => exit(sdk(t), 1), 5);
    expect(slow.map((d) => (d.kind === 'backoff' ? d.ms : d.kind))).toEqual([100, 200, 250, 250, 250]);
  });
});

describe('policy: live workers', () => {
  const policy: Policy = { ...DEFAULT_POLICY, timeoutMs: 5_000, maxLifetimeMs: 60_000 };
  const alive = (worker: WorkerFacts, recycling = false): Observation => ({
    kind: 'alive',
    worker,
    recycling,
  });

  it('kills an SDK worker silent, or busy with one request, past the timeout', () => {
    const worker = sdk(0, { ready: true, lastSeen: 1_000 });
    expect(decide(policy, FRESH_SLOT, [], alive(worker), 5_900).decision.kind).toBe('keep');
    expect(decide(policy, FRESH_SLOT, [], alive(worker), 6_100).decision).toEqual({
      kind: 'replace',
      urgent: true,
      why: 'no heartbeat for 5 s',
    });
    const busy = sdk(0, { ready: true, lastSeen: 9_000, oldestActiveMs: 5_001 });
    expect(decide(policy, FRESH_SLOT, [], alive(busy), 9_000).decision).toMatchObject({ urgent: true });
    // A program that does not report has no heartbeat to miss.
    expect(decide(policy, FRESH_SLOT, [], alive(program(0)), 60_000 - 1).decision.kind).toBe('keep');
  });

  it('recycles a worker past its lifetime, one slot at a time', () => {
    const at = recycleAt(policy, 0, 0.5)!;
    expect(at).toBe(63_000);
    const worker = program(0, { recycleAt: at });
    expect(decide(policy, FRESH_SLOT, [], alive(worker), at - 1).decision.kind).toBe('keep');
    expect(decide(policy, FRESH_SLOT, [], alive(worker), at).decision).toEqual({
      kind: 'replace',
      urgent: false,
      why: 'alive 63 s (--max-lifetime)',
    });
    expect(decide(policy, FRESH_SLOT, [], alive(worker, true), at).decision.kind).toBe('keep');
    expect(recycleAt(DEFAULT_POLICY, 0, 0.5)).toBeUndefined();
    // The jitter stays within a tenth of the lifetime.
    expect(recycleAt(policy, 0, 0)).toBe(60_000);
    expect(recycleAt(policy, 0, 0.999_999)).toBeLessThan(66_000);
  });

  it('ready and proven: an SDK worker by its word; any other program by time alive', () => {
    expect(isReady(DEFAULT_POLICY, sdk(0), 60_000)).toBe(false);
    expect(isReady(DEFAULT_POLICY, sdk(0, { ready: true }), 1)).toBe(true);
    expect(isProven(DEFAULT_POLICY, sdk(0, { ready: true }), 1)).toBe(true);
    expect(isReady(DEFAULT_POLICY, program(0), 299)).toBe(false);
    expect(isReady(DEFAULT_POLICY, program(0), 300)).toBe(true);
    expect(isProven(DEFAULT_POLICY, program(0), 9_999)).toBe(false);
    expect(isProven(DEFAULT_POLICY, program(0), 10_000)).toBe(true);
  });
});
