// A compromised worker against its root starter, over the link: a line that never ends (Node's
// IPC channel buffered it until the starter died of it), descriptors sent with SCM_RIGHTS, and
// messages of the wrong shape. The starter's memory and descriptors stay flat, it kills the
// sender of anything but well-formed lines, and it goes on serving with a new worker.
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, type Running, sleep, startCli, stopAll, until } from '../helpers/processes.js';

const HOSTILE = 'test/fixtures/hostile-link-worker.ts';
afterEach(stopAll);

function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function rssBytes(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

async function hostilePool(env: NodeJS.ProcessEnv, extra: string[] = []) {
  const port = await freePort();
  const starter = startCli(['-p', String(port), '-N', '1', '-u', 'nobody', ...extra, HOSTILE], {
    env: { ...process.env, ...env },
  });
  await starter.waitFor(/listening on/);
  return { starter, target: { host: '127.0.0.1', port } };
}

/** The pids of the workers killed for a link breach so far. */
function killed(starter: Running, what: RegExp): number[] {
  return [
    ...starter.output().matchAll(new RegExp(`worker \\d+ \\(pid (\\d+)\\) ${what.source}; killing it`, 'g')),
  ].map((m) => Number(m[1]));
}

describe('starter against a worker attacking it over its link', () => {
  it('a worker writing 700 MiB without a newline: the starter stays small, kills it, keeps serving', {
    timeout: 90_000,
  }, async () => {
    const { starter, target } = await hostilePool({ HOSTILE: 'flood', MB: '700' });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(starter.pid));
    }, 20);
    try {
      // Two attackers in turn: the first, and the worker that replaced it.
      await until(
        () => killed(starter, /sent a link line over 65536 bytes/).length >= 2,
        60_000,
        'two floods refused',
      );
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssBytes(starter.pid));
    expect(peak).toBeLessThan(150 * 1024 * 1024);
    const [first] = killed(starter, /sent a link line over 65536 bytes/);
    await until(async () => !(await childrenOf(starter.pid)).includes(first!), 10_000, 'the sender killed');
    await waitServing(target);
    expect(await fcgiGet(target)).toMatch(/^hello from pid/);
    for (const pid of await childrenOf(starter.pid)) expect(uidOf(pid)).toBe(65534);
    expect(starter.output()).not.toMatch(/Invalid string length|internal error|giving up|\n\s+at /);
  });

  it('a worker sending 10,000 descriptors with SCM_RIGHTS: the starter holds none of them', {
    timeout: 90_000,
  }, async () => {
    const metrics = await freePort();
    const { starter, target } = await hostilePool({ HOSTILE: 'fds', COUNT: '50' }, [
      '--metrics',
      `127.0.0.1:${metrics}`,
    ]);
    await waitServing(target);
    const before = fdCount(starter.pid);
    await starter.waitFor(/sent fds/, 60_000);
    // The lines that carried the descriptors were read (their count is in the metrics), and the
    // descriptors were dropped by the kernel as they were: the starter's table is as it was.
    await until(
      async () =>
        /^fcgi_prefork_worker_requests_total\{[^}]*\} 4242$/m.test(
          await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text(),
        ),
      10_000,
      'the stats lines read',
    );
    await sleep(200);
    expect(fdCount(starter.pid)).toBeLessThanOrEqual(before + 2);
    expect(starter.output()).not.toMatch(/python3|killing it|internal error/);
    expect(await fcgiGet(target)).toMatch(/^hello from pid/);
  });

  it('kills a worker that sends a malformed link message, and keeps serving', {
    timeout: 60_000,
  }, async () => {
    const { starter, target } = await hostilePool({ HOSTILE: 'malformed' });
    await starter.waitFor(/worker 1 \(pid \d+\) sent a malformed link message; killing it/, 20_000);
    await waitServing(target);
    expect(await fcgiGet(target)).toMatch(/^hello from pid/);
    // Nothing the worker wrote reached the starter's log as a line of its own.
    expect(starter.output()).not.toMatch(/^fcgi-prefork: forged line/m);
    expect(starter.output()).not.toMatch(/giving up|internal error/);
  });

  it('kills a worker that sends a line that is not JSON', { timeout: 60_000 }, async () => {
    const { starter, target } = await hostilePool({ HOSTILE: 'garbage' });
    await starter.waitFor(/worker 1 \(pid \d+\) sent a malformed link message; killing it/, 20_000);
    await waitServing(target);
    expect(await fcgiGet(target)).toMatch(/^hello from pid/);
  });
});
