// The worker's end of the starter link (worker-sdk/link.ts), in a real child with a real
// socketpair at fd 3: it never queues without bound, says ready even when stats are dropped,
// stops when asked and knows when the starter is gone.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LINK_LINE } from '../../src/link-stream.js';
import { ROOT, until } from '../helpers/processes.js';

const FIXTURE = 'test/fixtures/link-end-worker.ts';
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function run(env: NodeJS.ProcessEnv, linked = true) {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: ROOT,
    env: { ...process.env, FCGI_PREFORK: '1', FCGI_LINK_FD: '3', ...env },
    stdio: ['ignore', 'pipe', 'inherit', linked ? 'pipe' : 'ignore'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, link: child.stdio[3] as Socket | null, output: () => out };
}

describe('the worker end of the starter link', () => {
  it('drops stats while the starter does not read, and still says ready', { timeout: 30_000 }, async () => {
    const { link, output } = run({ LINK_TEST: 'flood' });
    link!.pause();
    await until(() => /queued \d+/.test(output()), 20_000, 'the flood queued');
    const queued = Number(/queued (\d+)/.exec(output())![1]);
    // Past the high-water mark only ready is queued: a few lines over it at most.
    expect(queued).toBeLessThanOrEqual(4 * MAX_LINK_LINE + 1024);
    expect(output()).toContain('env hidden');
    let text = '';
    link!.on('data', (d: Buffer) => {
      text += d.toString();
    });
    link!.resume();
    await until(() => text.endsWith('{"type":"fcgi-prefork:ready"}\n'), 10_000, 'ready after the stats');
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(100_000);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('stops when the starter asks, and exits when the link closes', { timeout: 30_000 }, async () => {
    const { child, link, output } = run({});
    await until(() => output().includes('env hidden'), 20_000, 'the worker up');
    link!.write('{"type":"fcgi-prefork:stop"}\n');
    await until(() => output().includes('stop'), 10_000, 'the stop');
    link!.destroy();
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(output()).toContain('gone');
  });

  it('runs unlinked when FCGI_LINK_FD names no socket', { timeout: 30_000 }, async () => {
    const { child, output } = run({}, false);
    await once(child, 'exit');
    expect(output()).toBe('unlinked\n');
  });
});
