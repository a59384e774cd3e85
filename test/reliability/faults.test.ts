import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { fdsPointingAt, isNonBlocking, killOneAwaitRespawn } from '../helpers/fds.js';
import { freePort } from '../helpers/net.js';
import { startNginx } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';
import { childrenOf, isAlive, sleep, start, startCli, stopAll, until } from '../helpers/processes.js';
import { fdCount, httpLoop, rssKiB } from './loop.js';

const nginxPeer = peer('nginx', 'nginx-light');
const HELLO = 'examples/hello.ts';
const SLOW_START = 'test/fixtures/slow-start-worker.ts';
const FD0_FLAGS = 'test/fixtures/fd0-flags-worker.ts';
afterEach(stopAll);

async function pool(args: string[], workers: number) {
  const port = await freePort();
  const starter = startCli(['-p', String(port), '-N', String(workers), '--allow-root', ...args]);
  await starter.waitFor(/listening on/);
  await until(async () => (await childrenOf(starter.pid)).length === workers, 15_000, `${workers} workers`);
  await waitServing({ host: '127.0.0.1', port }, workers);
  return { starter, port };
}

describe.skipIf(nginxPeer.skipReason)('reliability: faults under load, through nginx', () => {
  it('chaos: kill -9 a random worker every 200 ms under load; only 502s, pool back to 4, starter flat', {
    timeout: 90_000,
  }, async () => {
    const { starter, port } = await pool([HELLO], 4);
    const nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
    try {
      const fdsBefore = fdCount(starter.pid);
      const rssBefore = rssKiB(starter.pid);
      const end = Date.now() + 10_000;
      let kills = 0;
      const killer = (async () => {
        while (Date.now() < end) {
          await sleep(200);
          const kids = await childrenOf(starter.pid);
          const victim = kids[Math.floor(Math.random() * kids.length)];
          if (victim) {
            try {
              process.kill(victim, 'SIGKILL');
              kills++;
            } catch {
              // exited already
            }
          }
        }
      })();
      const result = await httpLoop(`${nginx.url}/`, 16, () => Date.now() > end);
      await killer;
      await until(async () => (await childrenOf(starter.pid)).length === 4, 20_000, 'pool back to 4');
      await sleep(1500); // the new workers settle
      const failed = [...result.failures.values()].reduce((a, b) => a + b, 0);
      console.log(
        `chaos: ${result.sent} sent, ${result.ok} ok, ${failed} failed ${JSON.stringify(Object.fromEntries(result.failures))}, ${kills} kills; starter fds ${fdsBefore}→${fdCount(starter.pid)}, RSS ${rssBefore}→${rssKiB(starter.pid)} KiB`,
      );
      // A request fails only as a 502, and only with the worker it was on: at most the
      // in-flight requests of the killed workers.
      expect([...result.failures.keys()].filter((k) => k !== '502')).toEqual([]);
      expect(failed).toBeLessThanOrEqual(kills * 16);
      expect(result.ok).toBeGreaterThan(result.sent / 2);
      expect(fdCount(starter.pid)).toBe(fdsBefore);
      expect(rssKiB(starter.pid)).toBeLessThan(rssBefore * 1.5);
      expect(starter.output()).not.toMatch(/giving up/);
    } finally {
      await nginx.stop();
    }
  });

  it('reloads 20 times under load with zero failed requests', { timeout: 120_000 }, async () => {
    const { starter, port } = await pool([HELLO], 2);
    const nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
    try {
      let done = false;
      const load = httpLoop(`${nginx.url}/`, 8, () => done);
      for (let generation = 2; generation <= 21; generation++) {
        const before = await childrenOf(starter.pid);
        starter.child.kill('SIGHUP');
        await starter.waitFor(new RegExp(`reloading workers \\(generation ${generation}\\)`), 10_000);
        await until(
          async () => {
            const now = await childrenOf(starter.pid);
            return now.length === 2 && now.every((pid) => !before.includes(pid));
          },
          20_000,
          `reload ${generation - 1} done`,
        );
      }
      done = true;
      const result = await load;
      console.log(
        `20 reloads: ${result.sent} sent, ${result.ok} ok, failures ${JSON.stringify(Object.fromEntries(result.failures))}, ${result.servedBy.size} worker pids served`,
      );
      expect(Object.fromEntries(result.failures)).toEqual({});
      expect(result.servedBy.size).toBeGreaterThanOrEqual(40);
    } finally {
      await nginx.stop();
    }
  });
});

describe('reliability: stopping and dying', () => {
  it('SIGTERM under load: in-flight requests finish, exit 0, no worker left, socket removed', {
    timeout: 60_000,
  }, async () => {
    const path = `/tmp/fcgi-prefork-term-${process.pid}.sock`;
    const starter = startCli(['-s', path, '-N', '2', '--allow-root', HELLO]);
    await starter.waitFor(/listening on/);
    await waitServing({ path }, 2);
    const kids = await childrenOf(starter.pid);
    const inflight = Array.from({ length: 8 }, () => fcgiGet({ path }, '/stream?n=10', 20_000));
    await sleep(300);
    const stopped = Date.now();
    starter.child.kill('SIGTERM');
    const bodies = await Promise.all(inflight);
    for (const body of bodies) expect(body.trim().split('\n')).toHaveLength(10);
    expect(await starter.exited).toBe(0);
    expect(Date.now() - stopped).toBeLessThan(30_000);
    for (const pid of kids) expect(isAlive(pid)).toBe(false);
    expect(() => statSync(path)).toThrow();
  });

  it('kills and replaces a hung worker with --timeout; without it, the others keep serving', {
    timeout: 60_000,
  }, async () => {
    const { starter, port } = await pool(
      ['--timeout', '2', '--graceful-timeout', '1', 'test/fixtures/hang-worker.ts'],
      2,
    );
    const target = { host: '127.0.0.1', port };
    const before = await childrenOf(starter.pid);
    void fcgiGet(target, '/hang', 30_000).catch(() => {});
    await starter.waitFor(/hung \(no heartbeat for \d+ s\); killing it/, 15_000);
    await until(
      async () => {
        const now = await childrenOf(starter.pid);
        return now.length === 2 && now.some((pid) => !before.includes(pid));
      },
      15_000,
      'replacement',
    );
    expect(await fcgiGet(target)).toMatch(/^ok from pid/);

    const plain = await pool(['--graceful-timeout', '1', 'test/fixtures/hang-worker.ts'], 2);
    void fcgiGet({ host: '127.0.0.1', port: plain.port }, '/hang', 30_000).catch(() => {});
    await sleep(500);
    for (let i = 0; i < 10; i++)
      expect(await fcgiGet({ host: '127.0.0.1', port: plain.port })).toMatch(/^ok from pid/);
    // A stuck worker cannot act on SIGTERM: the starter kills it after the graceful timeout.
    const stuck = await childrenOf(plain.starter.pid);
    plain.starter.child.kill('SIGTERM');
    expect(await plain.starter.exited).toBe(0);
    for (const pid of stuck) expect(isAlive(pid)).toBe(false);
  });

  it('when the starter is killed with SIGKILL its SDK workers exit, and a new starter binds the same address', {
    timeout: 60_000,
  }, async () => {
    const { starter, port } = await pool([HELLO], 2);
    const kids = await childrenOf(starter.pid);
    starter.child.kill('SIGKILL');
    await starter.exited;
    await until(() => kids.every((pid) => !isAlive(pid)), 15_000, 'orphaned workers to exit');
    const again = startCli(['-p', String(port), '-N', '1', '--allow-root', HELLO]);
    await again.waitFor(/listening on 127\.0\.0\.1:\d+/);
    await waitServing({ host: '127.0.0.1', port });
  });

  it('a worker still starting when its starter is killed exits once it is up, instead of serving on as an orphan', {
    timeout: 60_000,
  }, async () => {
    // The link closes while the worker is still loading, before the worker reads it: the end
    // of the stream is there when it first does, and says the starter is gone.
    const port = await freePort();
    const starter = startCli(['-p', String(port), '-N', '1', '--allow-root', SLOW_START], {
      env: { ...process.env, SLOW_START_MS: '1500' },
    });
    await starter.waitFor(/listening on/);
    await until(async () => (await childrenOf(starter.pid)).length === 1, 10_000, 'the worker');
    const kids = await childrenOf(starter.pid);
    starter.child.kill('SIGKILL');
    await starter.exited;
    await until(() => kids.every((pid) => !isAlive(pid)), 15_000, 'the orphaned worker to exit');
  });

  it('a respawn leaves the shared socket non-blocking for the Node workers already on it: they still stop on SIGTERM', {
    timeout: 60_000,
  }, async () => {
    // Spawning a child with the socket as fd 0 makes the shared file description blocking; a
    // Node worker that then accepts hangs in accept(2), signals and all, until a connection
    // comes. The respawned worker here takes 1.5 s before it listens (and would fix the flag
    // itself): inside that window the survivor must already see a non-blocking socket.
    const port = await freePort();
    const target = { host: '127.0.0.1', port };
    const starter = startCli(
      ['-p', String(port), '-N', '2', '--graceful-timeout', '20', '--allow-root', SLOW_START],
      { env: { ...process.env, SLOW_START_MS: '1500' } },
    );
    await waitServing(target, 2);
    const { survivor } = await killOneAwaitRespawn(starter.pid);
    expect(isNonBlocking(survivor)).toBe(true);
    // The survivor takes a connection (its accept loop runs until EAGAIN), then the pool stops:
    // well within the 20 s graceful timeout.
    expect(await fcgiGet(target)).toMatch(/hello/);
    const started = Date.now();
    process.kill(starter.pid, 'SIGTERM');
    expect(await starter.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  // A script the starter runs with its Node (with the IPC link), and `node …` named by the user.
  for (const [form, command] of [
    ['a TypeScript worker', [FD0_FLAGS]],
    ['`node --import tsx worker.ts`', [process.execPath, '--import', 'tsx', FD0_FLAGS]],
  ] as const)
    it(`never makes the shared socket blocking when it starts a Node worker, not even for a moment: ${form}`, {
      timeout: 60_000,
    }, async () => {
      // Even a moment of a blocking socket is too long: a Node worker inside its accept loop then
      // stays in accept(2) until a connection comes, deaf to SIGTERM and to its starter's death
      // (orphans blocked there were found after test runs). Spawn itself makes a child's fd 0
      // blocking; the starter hands a Node worker its socket another way. A watcher reads the
      // flag as fast as it can while workers are respawned.
      const port = await freePort();
      const target = { host: '127.0.0.1', port };
      const starter = startCli(['-p', String(port), '-N', '2', '--allow-root', '--', ...command]);
      await waitServing(target, 2);
      const [survivor, first] = await childrenOf(starter.pid);
      const watcher = start(process.execPath, [
        '-e',
        `const fs = require('node:fs'); const end = Date.now() + 6000; let reads = 0, blocking = 0;
       while (Date.now() < end) {
         const flags = parseInt(/flags:\\s+(\\d+)/.exec(fs.readFileSync('/proc/${survivor}/fdinfo/0', 'utf8'))[1], 8);
         reads++; if (!(flags & 0o4000)) blocking++;
       }
       console.log(JSON.stringify({ reads, blocking }));`,
      ]);
      let victim = first!;
      for (let i = 0; i < 8; i++) {
        process.kill(victim, 'SIGKILL');
        await until(
          async () => (await childrenOf(starter.pid)).some((pid) => pid !== victim && pid !== survivor),
          10_000,
          'the respawned worker',
        );
        victim = (await childrenOf(starter.pid)).find((pid) => pid !== victim && pid !== survivor)!;
        await sleep(150);
      }
      expect(await watcher.exited).toBe(0);
      const seen = JSON.parse(watcher.output()) as { reads: number; blocking: number };
      expect(seen.reads).toBeGreaterThan(1000);
      expect(seen.blocking).toBe(0);
      // Every worker found it non-blocking as it started, and has the socket as fd 0 alone (once
      // /bin/sh has moved it there: a worker respawned last, after a backoff, may still be in sh).
      await until(
        async () =>
          (await childrenOf(starter.pid)).every((pid) =>
            readlinkSync(`/proc/${pid}/fd/0`).startsWith('socket:'),
          ),
        10_000,
        'every worker on the socket',
      );
      expect(new Set(starter.output().match(/fd 0 came \S+/g))).toEqual(new Set(['fd 0 came non-blocking']));
      for (const pid of await childrenOf(starter.pid)) {
        const socket = readlinkSync(`/proc/${pid}/fd/0`);
        expect(socket).toMatch(/^socket:/);
        expect(fdsPointingAt(pid, socket)).toEqual([0]);
      }
      expect(await fcgiGet(target)).toMatch(/hello/);
    });

  const isRoot = process.getuid?.() === 0;
  it.skipIf(!isRoot)(
    'as root with -u nobody: workers run as nobody, the socket gets its owner and mode',
    async () => {
      const path = `/tmp/fcgi-prefork-priv-${process.pid}.sock`;
      const starter = startCli([
        '-s',
        path,
        '-U',
        'nobody',
        '-G',
        'nogroup',
        '-M',
        '0600',
        '-u',
        'nobody',
        '-N',
        '1',
        'sleep',
        '30',
      ]);
      await starter.waitFor(/listening on/);
      const [worker] = await (async () => {
        await until(async () => (await childrenOf(starter.pid)).length === 1, 10_000, 'worker');
        return childrenOf(starter.pid);
      })();
      // Between fork and exec the child is still the starter's copy (uid 0): look once it runs sleep.
      await until(
        () => /(^|\/)sleep$/.test(readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0')[0] ?? ''),
        10_000,
        'the worker to exec sleep',
      );
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))?.[1];
      expect(uid).toBe('65534');
      const stat = statSync(path);
      expect(stat.uid).toBe(65534);
      expect(stat.mode & 0o777).toBe(0o600);
    },
  );
});
