// Signal deaths are failed starts: a worker that SIGKILLs itself at start is a crash loop, and
// the starter backs off and gives up (exit 1, so systemd's Restart=on-failure takes over)
// instead of restarting it as fast as it can.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { startCli, stopAll } from '../helpers/processes.js';

afterEach(stopAll);

async function crashLoop(command: string[]) {
  const port = await freePort();
  const starter = startCli(['-p', String(port), '-N', '2', '-u', 'nobody', ...command]);
  expect(await starter.exited).toBe(1);
  const output = starter.output();
  return {
    output,
    starts: [...output.matchAll(/killed by SIGKILL/g)].length,
    waits: [...output.matchAll(/restarting it in (\d+) ms/g)].map((m) => Number(m[1])),
  };
}

describe('starter against a worker that kills itself at start', () => {
  it('an SDK worker SIGKILLing itself: backoff, then giving up with exit 1', {
    timeout: 60_000,
  }, async () => {
    const { output, starts, waits } = await crashLoop(['test/fixtures/self-kill-worker.ts']);
    expect(output).toMatch(
      /keeps exiting \(5 failed starts within 10 s, last: killed by SIGKILL\); giving up/,
    );
    // Five starts, not hundreds; each slot waits longer after each of its failures.
    expect(starts).toBe(5);
    expect(waits.every((ms) => ms >= 100)).toBe(true);
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(200);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('any program SIGKILLing itself: the same', { timeout: 60_000 }, async () => {
    const { output, starts } = await crashLoop(['sh', '-c', 'kill -9 $$']);
    expect(output).toMatch(
      /keeps exiting \(5 failed starts within 10 s, last: killed by SIGKILL\); giving up/,
    );
    expect(starts).toBe(5);
  });
});
