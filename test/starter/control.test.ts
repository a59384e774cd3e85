// Commands on the control socket (fcgi-prefork ctl): the same actions signals map to, answered
// in JSON; and --max-lifetime recycling, one slot at a time.
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, startCli, stopAll, until } from '../helpers/processes.js';

const RESPONDER = 'test/fixtures/responder.ts';
afterEach(stopAll);

async function ctl(control: string, ...command: string[]) {
  const run = startCli(['ctl', '--control', control, ...command]);
  const code = await run.exited;
  return { code, output: run.output() };
}

async function workerOf(slot: number, control: string): Promise<number | undefined> {
  const run = startCli(['status', '--control', control, '--json']);
  await run.exited;
  const state = JSON.parse(run.output()) as { workers: { slot: number; pid: number; state: string }[] };
  return state.workers.find((w) => w.slot === slot && w.state === 'ready')?.pid;
}

describe('fcgi-prefork ctl', () => {
  it('scales, recycles one slot, reloads and stops a running pool, answering JSON', {
    timeout: 90_000,
  }, async () => {
    const control = `/tmp/fcgi-prefork-ctl-${process.pid}-${Date.now()}.sock`;
    const port = await freePort();
    const target = { host: '127.0.0.1', port };
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '2',
      '--control',
      control,
      '--allow-root',
      RESPONDER,
    ]);
    await starter.waitFor(/listening on/);
    await waitServing(target, 2);

    expect(await ctl(control, 'scale', '3')).toEqual({
      code: 0,
      output: '{"ok":true,"command":"scale","workers":3}\n',
    });
    await until(async () => (await childrenOf(starter.pid)).length === 3, 15_000, 'three workers');

    let slot1: number | undefined;
    let slot2: number | undefined;
    await until(
      async () => {
        slot1 = await workerOf(1, control);
        slot2 = await workerOf(2, control);
        return slot1 !== undefined && slot2 !== undefined;
      },
      15_000,
      'slots 1 and 2 ready',
    );
    expect((await ctl(control, 'recycle', '1')).code).toBe(0);
    await starter.waitFor(/recycle: recycling slot 1/);
    await until(
      async () => {
        const now = await workerOf(1, control);
        return now !== undefined && now !== slot1 && (await childrenOf(starter.pid)).length === 3;
      },
      20_000,
      'slot 1 replaced',
    );
    expect(await workerOf(2, control)).toBe(slot2);

    const before = await childrenOf(starter.pid);
    expect((await ctl(control, 'reload')).code).toBe(0);
    await until(
      async () => {
        const now = await childrenOf(starter.pid);
        return now.length === 3 && now.every((pid) => !before.includes(pid));
      },
      30_000,
      'every worker replaced',
    );
    expect(await fcgiGet(target)).toMatch(/^hello from/);

    const refused = await ctl(control, 'recycle', '9');
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/"error":"no slot 9: slots are 1 to 3"/);
    const bad = await ctl(control, 'scale', 'many');
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/scale needs a worker count from 1 to 1024/);

    expect((await ctl(control, 'stop')).code).toBe(0);
    expect(await starter.exited).toBe(0);
  });
});

describe('--max-lifetime', () => {
  it('recycles workers as they age, one slot at a time, never leaving a slot empty', {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '2',
      '--max-lifetime',
      '2',
      '--allow-root',
      'sleep',
      '600',
    ]);
    await starter.waitFor(/listening on/);
    await until(async () => (await childrenOf(starter.pid)).length === 2, 15_000, 'two workers');
    const seen = new Set<number>();
    let fewest = 2;
    let most = 0;
    const end = Date.now() + 9000;
    while (Date.now() < end) {
      const now = await childrenOf(starter.pid);
      for (const pid of now) seen.add(pid);
      fewest = Math.min(fewest, now.length);
      most = Math.max(most, now.length);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Each of the two slots recycled at least twice; a new worker ready before the old went,
    // and never two slots at once (at most one extra worker).
    expect(seen.size).toBeGreaterThanOrEqual(6);
    expect(fewest).toBe(2);
    expect(most).toBe(3);
    expect(starter.output()).toMatch(/worker \d \(pid \d+\) recycling: alive \d+ s \(--max-lifetime\)/);
  });
});
