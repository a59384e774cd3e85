// A compromised worker against its root starter, over the IPC link: descriptors sent as
// handles, and messages of the wrong shape. The starter keeps none of the descriptors, kills
// the sender, and goes on serving with a new worker.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, startCli, stopAll, until } from '../helpers/processes.js';

const HOSTILE = 'test/fixtures/hostile-link-worker.ts';
afterEach(stopAll);

/** The TCP sockets a process listens on (ss), one line each. */
function listenersOf(pid: number): string[] {
  return execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`));
}

function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

async function hostilePool(env: NodeJS.ProcessEnv) {
  const port = await freePort();
  const starter = startCli(['-p', String(port), '-N', '1', '-u', 'nobody', HOSTILE], {
    env: { ...process.env, ...env },
  });
  await starter.waitFor(/listening on/);
  return { starter, target: { host: '127.0.0.1', port } };
}

describe('starter against a worker attacking it over its link', () => {
  it('closes every handle a worker sends (600 servers) and kills the sender', {
    timeout: 60_000,
  }, async () => {
    const { starter, target } = await hostilePool({ HOSTILE: 'handles', COUNT: '600' });
    const first = await starter.waitFor(
      /worker 1 \(pid (\d+)\) sent a handle over its link; killing it/,
      20_000,
    );
    const attacker = Number(first[1]);
    // The attacker is gone and a new worker (which attacks in turn) took its place.
    await until(async () => !(await childrenOf(starter.pid)).includes(attacker), 10_000, 'the sender killed');
    await until(
      async () => (await childrenOf(starter.pid)).some((pid) => pid !== attacker),
      15_000,
      'a new worker',
    );
    // The starter listens on the pool's socket and nothing else: no server it was sent stays.
    await until(() => listenersOf(starter.pid).length === 1, 10_000, 'only the pool socket');
    expect(listenersOf(starter.pid)[0]).toContain(`:${target.port} `);
    for (const pid of await childrenOf(starter.pid)) expect(uidOf(pid)).toBe(65534);
    expect(starter.output()).not.toMatch(/internal error|\n\s+at /);
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
});
