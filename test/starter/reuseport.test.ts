import { execFileSync, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, sleep, startCli, stopAll, until } from '../helpers/processes.js';

const RESPONDER = 'test/fixtures/responder.ts';

const dir = mkdtempSync(join(tmpdir(), 'fcgi-prefork-rp-'));
afterEach(stopAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `socket:[123]` → `123`: the inode of a worker's fd 0. */
function fd0Inode(pid: number): string {
  return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/0`))?.[1] ?? '';
}

function fdTargets(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

/** The listening sockets on the port, by inode, with their accept-queue length (Recv-Q). */
function listeners(port: number): Map<string, number> {
  const out = execFileSync('ss', ['-ltnHe', `sport = :${port}`], { encoding: 'utf8' });
  const map = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^LISTEN\s+(\d+)\s.*\bino:(\d+)/.exec(line);
    if (m) map.set(m[2]!, Number(m[1]));
  }
  return map;
}

async function startReusePort(workers: number, extra: string[] = [], options: SpawnOptions = {}) {
  const port = await freePort();
  const starter = startCli(
    ['-p', String(port), '--reuseport', '-N', String(workers), '--allow-root', ...extra, RESPONDER],
    options,
  );
  await starter.waitFor(/listening on 127\.0\.0\.1:\d+ \(backlog 1024, SO_REUSEPORT: a socket per worker\)/);
  const target = { host: '127.0.0.1', port };
  await waitServing(target, workers);
  return { starter, port, target };
}

/** Worker pid by slot, from each worker's FCGI_WORKER_ID. */
async function pidsBySlot(starterPid: number, workers: number): Promise<Map<number, number>> {
  const kids = await childrenOf(starterPid);
  const map = new Map<number, number>();
  for (const pid of kids) {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
    const slot = /(?:^|\0)FCGI_WORKER_ID=(\d+)/.exec(env)?.[1];
    if (slot) map.set(Number(slot), pid);
  }
  expect(map.size).toBe(workers);
  return map;
}

describe('starter --reuseport: a socket per worker', () => {
  it('gives each worker its own listening socket on fd 0, all bound to the port, held by the starter; all serve', async () => {
    const control = join(dir, 'ctl.sock');
    const { starter, port } = await startReusePort(3, ['--control', control]);
    const pids = [...(await pidsBySlot(starter.pid, 3)).values()];
    const inodes = pids.map(fd0Inode);
    expect(new Set(inodes).size).toBe(3);
    // Exactly these three sockets listen on the port (ss), and the starter holds each one.
    expect([...listeners(port).keys()].sort()).toEqual([...inodes].sort());
    const held = fdTargets(starter.pid);
    for (const inode of inodes) expect(held).toContain(`socket:[${inode}]`);
    // waitServing above saw three different pids answer.
    const status = startCli(['status', '--control', control, '--json']);
    expect(await status.exited).toBe(0);
    expect(JSON.parse(status.output())).toMatchObject({ mode: 'reuseport', desiredWorkers: 3 });
    const text = startCli(['status', '--control', control]);
    expect(await text.exited).toBe(0);
    expect(text.output()).toMatch(/\(backlog 1024, SO_REUSEPORT: a socket per worker\)/);
  });

  // Node's own SO_REUSEPORT (the bind flag behind net's reusePort, 22.12 and later) makes the
  // sockets in this process: with no perl to be found, the pool still starts and serves. Where
  // the flag is hidden, the perl helper makes them, and without perl the error says so.
  it('binds the sockets with Node’s own SO_REUSEPORT: no perl helper is started', async () => {
    const empty = mkdtempSync(join(dir, 'path-'));
    const { starter, port } = await startReusePort(2, [], { env: { ...process.env, PATH: empty } });
    expect(listeners(port).size).toBe(2);
    await starter.stop();
    const fallback = startCli(
      ['-p', String(await freePort()), '--reuseport', '-N', '2', '--allow-root', RESPONDER],
      {
        env: { ...process.env, PATH: empty, FCGI_HIDE_INTERNALS: 'reusePort' },
      },
    );
    expect(await fallback.exited).toBe(1);
    expect(fallback.output()).toMatch(/--reuseport needs perl .*: perl not found/);
  });

  it('makes the sockets with the perl helper where Node has no SO_REUSEPORT flag', async () => {
    const { starter, port } = await startReusePort(2, [], {
      env: { ...process.env, FCGI_HIDE_INTERNALS: 'reusePort' },
    });
    expect(listeners(port).size).toBe(2);
    const held = fdTargets(starter.pid);
    for (const inode of listeners(port).keys()) expect(held).toContain(`socket:[${inode}]`);
  });

  it('keeps a slot’s socket across kill -9: connections queued on it are served by the respawned worker; the starter never accepts', async () => {
    const { starter, port, target } = await startReusePort(2);
    const before = await pidsBySlot(starter.pid, 2);
    const victim = before.get(1)!;
    const inode = fd0Inode(victim);
    process.kill(victim, 'SIGSTOP');
    // The kernel hashes each connection to one socket of the group: about half land on the
    // stopped worker's socket and wait in its accept queue; the others are served by worker 2.
    const bodies = Array.from({ length: 16 }, () => fcgiGet(target, '/', 20_000));
    await until(() => (listeners(port).get(inode) ?? 0) > 0, 5000, 'connections queued on slot 1');
    await sleep(500);
    const queued = listeners(port).get(inode)!;
    // Nobody took them: not the stopped worker, and not the starter, which holds the socket.
    expect(queued).toBeGreaterThan(0);
    process.kill(victim, 'SIGKILL');
    const answers = await Promise.all(bodies);
    const after = await pidsBySlot(starter.pid, 2);
    const respawned = after.get(1)!;
    expect(respawned).not.toBe(victim);
    expect(fd0Inode(respawned)).toBe(inode);
    const bySlot1 = answers.filter((a) => a.includes(' worker 1'));
    expect(bySlot1.length).toBe(queued);
    for (const body of bySlot1) expect(body).toContain(`hello from ${respawned} `);
    expect(answers.filter((a) => a.includes(`hello from ${before.get(2)} worker 2`)).length).toBe(
      16 - queued,
    );
  });

  it('keeps each slot’s socket across a reload (SIGHUP)', async () => {
    const { starter, port } = await startReusePort(2);
    const before = await pidsBySlot(starter.pid, 2);
    const inodes = new Map([...before].map(([slot, pid]) => [slot, fd0Inode(pid)]));
    process.kill(starter.pid, 'SIGHUP');
    await until(
      async () => {
        const kids = await childrenOf(starter.pid);
        return kids.length === 2 && !kids.some((pid) => [...before.values()].includes(pid));
      },
      15_000,
      'both workers replaced',
    );
    const after = await pidsBySlot(starter.pid, 2);
    for (const slot of [1, 2]) expect(fd0Inode(after.get(slot)!)).toBe(inodes.get(slot));
    expect(listeners(port).size).toBe(2);
  });

  it('adds a socket on SIGTTIN and closes the surplus one on SIGTTOU', async () => {
    const { starter, port, target } = await startReusePort(2);
    const first = new Set(listeners(port).keys());
    process.kill(starter.pid, 'SIGTTIN');
    await until(() => listeners(port).size === 3, 10_000, 'a third listening socket');
    await waitServing(target, 3);
    const third = (await pidsBySlot(starter.pid, 3)).get(3)!;
    expect(first.has(fd0Inode(third))).toBe(false);
    expect(listeners(port).has(fd0Inode(third))).toBe(true);
    process.kill(starter.pid, 'SIGTTOU');
    await until(() => listeners(port).size === 2, 10_000, 'back to two listening sockets');
    expect(new Set(listeners(port).keys())).toEqual(first);
    await starter.waitFor(/closing slot 3's socket/);
  });
});

describe('starter --reuseport: refusals', () => {
  const cases: [string, () => Promise<string[]>, number, RegExp][] = [
    [
      'with a unix socket',
      async () => ['--reuseport', '-s', '/tmp/x.sock', 'true'],
      2,
      /--reuseport needs --port \(TCP\): not with --socket or socket activation/,
    ],
    [
      'without an address (socket activation)',
      async () => ['--reuseport', 'true'],
      2,
      /--reuseport needs --port \(TCP\)/,
    ],
    [
      'with --detach',
      async () => ['--reuseport', '--detach', '-p', String(await freePort()), 'true'],
      2,
      /--reuseport needs the starter to keep the sockets: not with --detach/,
    ],
  ];
  for (const [name, args, code, message] of cases) {
    it(`rejects --reuseport ${name}`, async () => {
      const run = startCli(await args());
      expect(await run.exited).toBe(code);
      expect(run.output()).toMatch(message);
      expect(run.output()).not.toMatch(/\n\s+at /);
    });
  }

  it('refuses a port another pool already listens on, though SO_REUSEPORT would let it join that group', async () => {
    const { port } = await startReusePort(1);
    const second = startCli(['-p', String(port), '--reuseport', '--allow-root', RESPONDER]);
    expect(await second.exited).toBe(1);
    expect(second.output()).toBe(`fcgi-prefork: 127.0.0.1:${port} is already in use\n`);
    expect(listeners(port).size).toBe(1);
  });
});
