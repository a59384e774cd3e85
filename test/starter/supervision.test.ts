import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, isAlive, ROOT, sleep, startCli, stopAll, until } from '../helpers/processes.js';

const RESPONDER = 'test/fixtures/responder.ts';

afterEach(stopAll);

function socketInode(pid: number, fd: number): string {
  return readlinkSync(`/proc/${pid}/fd/${fd}`);
}

async function startPool(args: string[]) {
  const port = await freePort();
  const starter = startCli(['-p', String(port), '--allow-root', ...args]);
  await starter.waitFor(/listening on/);
  return { starter, port, target: { host: '127.0.0.1', port } };
}

async function waitWorkers(pid: number, n: number): Promise<number[]> {
  let kids: number[] = [];
  await until(
    async () => {
      kids = await childrenOf(pid);
      return kids.length === n;
    },
    15_000,
    `${n} workers`,
  );
  return kids;
}

describe('starter: one socket, N workers on fd 0', () => {
  it('gives every worker the starter’s listening socket as fd 0', async () => {
    const { starter, target } = await startPool(['-N', '2', RESPONDER]);
    const kids = await waitWorkers(starter.pid, 2);
    await fcgiGet(target);
    const inodes = kids.map((pid) => socketInode(pid, 0));
    expect(inodes[0]).toMatch(/^socket:\[\d+\]$/);
    expect(inodes[1]).toBe(inodes[0]);
    const starterFds = readdirSync(`/proc/${starter.pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${starter.pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(starterFds).toContain(inodes[0]);
  });

  it('never accepts itself: with the only worker stopped, a connection waits in the backlog for the next worker', async () => {
    const { starter, target } = await startPool(['-N', '1', RESPONDER]);
    const [worker] = await waitWorkers(starter.pid, 1);
    await fcgiGet(target); // the worker is up and accepting
    process.kill(worker!, 'SIGSTOP');
    let answered = false;
    const pending = fcgiGet(target, '/', 20_000).then((body) => {
      answered = true;
      return body;
    });
    await sleep(700);
    // Nobody took the connection: not the stopped worker, and not the starter.
    expect(answered).toBe(false);
    process.kill(worker!, 'SIGKILL');
    const body = await pending;
    expect(body).toMatch(/^hello from (\d+)/);
    expect(body).not.toContain(String(worker));
  });

  it('sets FCGI_WORKER_ID, FCGI_BACKLOG and passes the environment through', async () => {
    const port = await freePort();
    const starter = startCli(
      [
        '-p',
        String(port),
        '-N',
        '1',
        '-b',
        '77',
        '--allow-root',
        'sh',
        '-c',
        'echo "id=$FCGI_WORKER_ID backlog=$FCGI_BACKLOG extra=$PHP_FCGI_MAX_REQUESTS"; exec sleep 30',
      ],
      { env: { ...process.env, PHP_FCGI_MAX_REQUESTS: '123' } },
    );
    await starter.waitFor(/\[worker 1 pid \d+\] id=1 backlog=77 extra=123/);
  });

  it('keeps the configured backlog in force while Node workers run (ss -ltn)', async () => {
    const { starter, port } = await startPool(['-N', '2', '-b', '77', RESPONDER]);
    await waitWorkers(starter.pid, 2);
    const { execFileSync } = await import('node:child_process');
    await until(
      () => {
        const ss = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
        return /LISTEN\s+\d+\s+77\s/.test(ss);
      },
      5000,
      'backlog 77 in ss',
    );
  });

  it('passes no inherited descriptor to the workers', async () => {
    const port = await freePort();
    // fd 3 of the starter is a pipe it inherited without close-on-exec, as fcgistarter's parent might leave.
    const starter = startCli(['-p', String(port), '-N', '1', '--allow-root', 'sleep', '30'], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    await starter.waitFor(/listening on/);
    const [worker] = await waitWorkers(starter.pid, 1);
    // Between fork and exec the child still has the starter's descriptors: look after exec.
    await until(() => readFileSync(`/proc/${worker}/comm`, 'utf8').trim() === 'sleep', 5000, 'exec');
    expect(readdirSync(`/proc/${starter.pid}/fd`).length).toBeGreaterThan(3);
    expect(readdirSync(`/proc/${worker}/fd`).map(Number).sort()).toEqual([0, 1, 2]);
  });
});

describe('starter: supervision', () => {
  it('replaces a worker killed with SIGKILL', async () => {
    const { starter, target } = await startPool(['-N', '2', RESPONDER]);
    const kids = await waitWorkers(starter.pid, 2);
    process.kill(kids[0]!, 'SIGKILL');
    await until(
      async () => {
        const now = await childrenOf(starter.pid);
        return now.length === 2 && !now.includes(kids[0]!);
      },
      10_000,
      'replacement',
    );
    expect(await fcgiGet(target)).toMatch(/^hello from/);
    await starter.waitFor(new RegExp(`worker \\d \\(pid ${kids[0]}\\) killed by SIGKILL.*restarting it`));
  });

  it('gives up on a command that keeps failing, with one clear line and exit 1', async () => {
    const port = await freePort();
    const started = Date.now();
    const starter = startCli(['-p', String(port), '-N', '2', '--allow-root', 'false']);
    expect(await starter.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(starter.output()).toMatch(
      /false keeps exiting \(5 failed starts within 10 s, last: exited with code 1\); giving up/,
    );
    expect(starter.output()).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('gives up as --crash-limit, --crash-window and --backoff-max say', async () => {
    const port = await freePort();
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '1',
      '--crash-limit',
      '3',
      '--crash-window',
      '60',
      '--backoff-max',
      '0.15',
      '--allow-root',
      'false',
    ]);
    expect(await starter.exited).toBe(1);
    const waits = [...starter.output().matchAll(/restarting it in (\d+) ms/g)].map((m) => Number(m[1]));
    expect(waits).toEqual([100, 150]);
    expect(starter.output()).toMatch(
      /false keeps exiting \(3 failed starts within 60 s, last: exited with code 1\); giving up/,
    );
  });

  it('stops gracefully on SIGTERM: in-flight requests finish, exit 0, no worker left', async () => {
    const { starter, target } = await startPool(['-N', '2', RESPONDER]);
    const kids = await waitWorkers(starter.pid, 2);
    await waitServing(target, 2);
    const inflight = Promise.all([fcgiGet(target, '/?sleep=1500'), fcgiGet(target, '/?sleep=1500')]);
    await sleep(400);
    starter.child.kill('SIGTERM');
    const bodies = await inflight;
    for (const body of bodies) expect(body).toMatch(/^hello from/);
    expect(await starter.exited).toBe(0);
    for (const pid of kids) expect(isAlive(pid)).toBe(false);
  });

  it('reloads on SIGHUP under a steady request loop with zero failed requests', async () => {
    const { starter, target } = await startPool(['-N', '2', RESPONDER]);
    const before = await waitWorkers(starter.pid, 2);
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const loop = async () => {
      while (running) {
        try {
          await fcgiGet(target);
          ok++;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await sleep(300);
    starter.child.kill('SIGHUP');
    await starter.waitFor(/reloading workers \(generation 2\)/);
    await until(
      async () => {
        const now = await childrenOf(starter.pid);
        return now.length === 2 && now.every((pid) => !before.includes(pid));
      },
      20_000,
      'all workers replaced',
    );
    await sleep(300);
    running = false;
    await Promise.all(loops);
    console.log(`reload under load: ${ok} served, ${failures.length} failed`);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
  });

  it('reloads workers that do not report readiness (any program), slot by slot', async () => {
    const port = await freePort();
    const starter = startCli(['-p', String(port), '-N', '2', '--allow-root', 'sleep', '60']);
    await starter.waitFor(/listening on/);
    const before = await waitWorkers(starter.pid, 2);
    starter.child.kill('SIGHUP');
    await until(
      async () => {
        const now = await childrenOf(starter.pid);
        return now.length === 2 && now.every((pid) => !before.includes(pid));
      },
      10_000,
      'both sleep workers replaced',
    );
  });

  it('adds and removes a worker on SIGTTIN / SIGTTOU', async () => {
    const { starter } = await startPool(['-N', '2', RESPONDER]);
    await waitWorkers(starter.pid, 2);
    starter.child.kill('SIGTTIN');
    await waitWorkers(starter.pid, 3);
    // One at a time: signals of one kind sent together may arrive as one.
    starter.child.kill('SIGTTOU');
    await waitWorkers(starter.pid, 2);
    starter.child.kill('SIGTTOU');
    await waitWorkers(starter.pid, 1);
  });

  it('shows its state through the control socket (status command)', async () => {
    const control = `/tmp/fcgi-prefork-test-${process.pid}-${Date.now()}.sock`;
    const { starter, target } = await startPool(['-N', '2', '--control', control, RESPONDER]);
    const kids = await waitWorkers(starter.pid, 2);
    for (let i = 0; i < 4; i++) await fcgiGet(target);
    await sleep(1200); // one stats interval
    const status = startCli(['status', '--control', control, '--json']);
    expect(await status.exited).toBe(0);
    const state = JSON.parse(status.output()) as {
      workers: { pid: number; requests: number }[];
      totals: { requests: number };
    };
    expect(state.workers.map((w) => w.pid).sort()).toEqual([...kids].sort());
    expect(state.totals.requests).toBe(4);
    const table = startCli(['status', '--control', control]);
    expect(await table.exited).toBe(0);
    expect(table.output()).toMatch(/SLOT\s+PID\s+STATE/);
    expect(table.output()).toMatch(/total: 4 requests/);
    starter.child.kill('SIGTERM');
    await starter.exited;
    expect(() => readFileSync(control)).toThrow();
  });
});

describe('starter: addresses', () => {
  it('serves on IPv6 loopback', async () => {
    const port = await freePort('::1');
    const starter = startCli(['-p', String(port), '-a', '::1', '-N', '1', '--allow-root', RESPONDER]);
    await starter.waitFor(/listening on \[::1\]:\d+/);
    expect(await fcgiGet({ host: '::1', port })).toMatch(/^hello from/);
  });

  it('serves on a unix socket with the requested mode and group, and removes it on exit', async () => {
    const { statSync } = await import('node:fs');
    const path = `/tmp/fcgi-prefork-test-${process.pid}-${Date.now()}.sock`;
    const starter = startCli([
      '-s',
      path,
      '-M',
      '0640',
      '-G',
      'nogroup',
      '-N',
      '1',
      '--allow-root',
      RESPONDER,
    ]);
    await starter.waitFor(/listening on/);
    const stat = statSync(path);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o640);
    const { execFileSync } = await import('node:child_process');
    expect(stat.gid).toBe(
      Number(execFileSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).split(':')[2]),
    );
    expect(await fcgiGet({ path })).toMatch(/^hello from/);
    starter.child.kill('SIGTERM');
    expect(await starter.exited).toBe(0);
    expect(() => statSync(path)).toThrow();
  });

  it('replaces a stale socket file but refuses a live one', async () => {
    const path = `/tmp/fcgi-prefork-test-${process.pid}-${Date.now()}.sock`;
    const live = net.createServer().listen(path);
    await new Promise((r) => live.once('listening', r));
    const refused = startCli(['-s', path, '-N', '1', '--allow-root', RESPONDER]);
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain(`fcgi-prefork: ${path} is in use by a running server`);
    // Close without unlinking: a stale file, as a crashed server leaves.
    const handle = (live as unknown as { _handle: { close(): void } })._handle;
    handle.close();
    const starter = startCli(['-s', path, '-N', '1', '--allow-root', RESPONDER]);
    await starter.waitFor(/listening on/);
    expect(await fcgiGet({ path })).toMatch(/^hello from/);
  });
});

describe('starter: detach (fcgistarter mode)', () => {
  it('starts the workers, prints their pids and exits 0', async () => {
    const port = await freePort();
    const starter = startCli(['-p', String(port), '-N', '2', '--detach', '--allow-root', RESPONDER]);
    expect(await starter.exited).toBe(0);
    const pids = starter.output().trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    try {
      for (const pid of pids) expect(isAlive(pid)).toBe(true);
      expect(await fcgiGet({ host: '127.0.0.1', port })).toMatch(/^hello from/);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    }
  });
});

void ROOT;
