// Out of descriptors (a flood holding the starter's fds): a worker that cannot be spawned is a
// failed start with backoff, not the end of the pool. The live workers keep serving, a reload
// waits, a starter with no worker left keeps trying, and all comes back once fds are free.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { childrenOf, isAlive, sleep, startCli, stopAll, until } from '../helpers/processes.js';

afterEach(stopAll);

/** Sets a running process's soft RLIMIT_NOFILE (prlimit), keeping its hard limit. */
function setOpenFiles(pid: number, soft: number | 'hard'): void {
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![1]!;
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft === 'hard' ? hard : soft}:${hard}`]);
}

const emfiles = (output: string) =>
  output.match(/cannot start worker \d \(sleep 600\): spawn \S+ EMFILE; trying again in \d+ ms/g)?.length ??
  0;

describe('starter out of descriptors', () => {
  it('backs off and keeps trying on EMFILE through a reload and the loss of every worker, then recovers', {
    timeout: 90_000,
  }, async () => {
    const port = await freePort();
    const starter = startCli(['-p', String(port), '-N', '2', '-u', 'nobody', 'sleep', '600']);
    await starter.waitFor(/listening on/);
    let workers: number[] = [];
    await until(
      async () => {
        workers = await childrenOf(starter.pid);
        return workers.length === 2;
      },
      15_000,
      'two workers',
    );

    // Every descriptor number a spawn could use is taken from here on.
    setOpenFiles(starter.pid, 12);
    starter.child.kill('SIGHUP');
    await until(() => emfiles(starter.output()) >= 2, 15_000, 'EMFILE twice during the reload');
    // The reload waits; the old workers serve on.
    expect(workers.every(isAlive)).toBe(true);
    expect((await childrenOf(starter.pid)).sort()).toEqual([...workers].sort());

    for (const pid of workers) process.kill(pid, 'SIGKILL');
    const before = emfiles(starter.output());
    await until(() => emfiles(starter.output()) >= before + 4, 15_000, 'both slots retrying');
    await sleep(500);
    // No worker, but a plan: still running, still trying.
    expect(isAlive(starter.pid)).toBe(true);
    expect(await childrenOf(starter.pid)).toEqual([]);
    expect(starter.output()).not.toMatch(/giving up|stopped/);

    setOpenFiles(starter.pid, 'hard');
    let now: number[] = [];
    await until(
      async () => {
        now = await childrenOf(starter.pid);
        return now.length === 2;
      },
      20_000,
      'two new workers',
    );
    expect(now.some((pid) => workers.includes(pid))).toBe(false);
    starter.child.kill('SIGTERM');
    expect(await starter.exited).toBe(0);
    expect(starter.output()).not.toMatch(/internal error|\n\s+at /);
  });
});
