// Issue 18, item 9: under a root starter that drops workers to -u, the --http front and the
// metrics endpoint ran in the root process. Now a child running as the worker user serves
// them on sockets the root starter bound (a low port here). Shown with the process that
// holds the accepted connection, read from /proc, as a peer sees it.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { IN_CI } from '../helpers/peers.js';
import { childrenOf, isAlive, sleep, startCli, stopAll } from '../helpers/processes.js';
import { HOSTILE_WORKER, rawHttp, statuses } from './front-raw.js';

// Dropping to a user needs root; under CI=true a non-root run fails instead of skipping.
const isRoot = process.getuid?.() === 0;

/** A free port below 1024: only root may bind one. */
async function freeLowPort(): Promise<number> {
  for (let port = 1023; port >= 900; port--) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below 1024');
}

/** The inode of the established TCP socket from 127.0.0.1:remotePort to local port `port`. */
function acceptedInode(port: number, remotePort: number): string {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = Number.parseInt(fields[1]!.split(':')[1]!, 16);
    const remote = Number.parseInt(fields[2]!.split(':')[1]!, 16);
    if (local === port && remote === remotePort && fields[3] === '01') return fields[9]!;
  }
  throw new Error(`no established connection on port ${port} from ${remotePort}`);
}

/** Pids among `pids` that hold socket `inode`. */
function holders(pids: readonly number[], inode: string): number[] {
  return pids.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

function statusField(pid: number, name: string): string {
  const match = new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return (match?.[1] ?? '').trim();
}

/** Which process serves a connection to `port`: the one holding its accepted socket. */
async function serverOf(starterPid: number, port: number): Promise<number> {
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  client.on('error', () => {});
  client.write('GET /ok HTTP/1.1\r\nHost: app\r\n'); // half a head: the connection stays
  try {
    const pids = [starterPid, ...(await childrenOf(starterPid))];
    // The front accepts as soon as its loop turns; give it the time to.
    for (let tries = 0; tries < 100; tries++) {
      const found = holders(pids, acceptedInode(port, client.localPort!));
      if (found.length > 0) return found.length === 1 ? found[0]! : -1;
      await sleep(50);
    }
    throw new Error('no process took the connection');
  } finally {
    client.destroy();
  }
}

describe.skipIf(!isRoot && !IN_CI)('privilege separation: the fronts run as the worker user', () => {
  afterEach(stopAll);
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('serves --http on a low port and --metrics from a child running as nobody, restarted when it dies', async () => {
    const httpPort = await freeLowPort();
    const metricsPort = await freePort();
    const starter = startCli([
      '-p',
      String(await freePort()),
      '-N',
      '1',
      '-u',
      'nobody',
      '--http',
      `127.0.0.1:${httpPort}`,
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      HOSTILE_WORKER,
    ]);
    const served = await starter.waitFor(
      /HTTP and metrics served by pid (\d+) as nobody \(uid 65534, gid 65534\)/,
    );
    await starter.waitFor(/HTTP on http:\/\//);
    const frontPid = Number(served[1]);

    expect(statusField(starter.pid, 'Uid')).toMatch(/^0\s+0\s+0\s+0$/);
    const owner = await serverOf(starter.pid, httpPort).catch((e: Error) => {
      throw new Error(`${e.message}; starter said:\n${starter.output()}`);
    });
    expect(owner).toBe(frontPid);
    expect(await childrenOf(starter.pid)).toContain(owner);
    expect(statusField(owner, 'Uid')).toMatch(/^65534\s+65534\s+65534\s+65534$/);
    expect(statusField(owner, 'Gid')).toMatch(/^65534\s+65534\s+65534\s+65534$/);
    expect(statusField(owner, 'Groups')).toBe('');
    expect(statusField(owner, 'CapEff')).toMatch(/^0+$/);
    expect(await serverOf(starter.pid, metricsPort)).toBe(frontPid);

    const { text } = await rawHttp(httpPort, 'GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    expect(statuses(text)).toEqual([200]);
    expect(text).toContain('ok /x\n');
    // The pool's figures reach the child over its one-way channel.
    let metrics = '';
    for (let tries = 0; tries < 50 && !/^fcgi_prefork_workers 1$/m.test(metrics); tries++) {
      metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      await sleep(100);
    }
    expect(metrics).toMatch(/^fcgi_prefork_workers 1$/m);

    process.kill(frontPid, 'SIGKILL');
    await starter.waitFor(/front process killed by SIGKILL; restarting it in \d+ ms/);
    const again = await rawHttp(httpPort, 'GET /y HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    expect(statuses(again.text)).toEqual([200]);
    const next = await serverOf(starter.pid, httpPort);
    expect(next).not.toBe(frontPid);
    expect(statusField(next, 'Uid')).toMatch(/^65534\s+65534\s+65534\s+65534$/);

    // The child reads the starter's channel to its end: a starter killed outright takes it along.
    process.kill(starter.pid, 'SIGKILL');
    for (let tries = 0; tries < 100 && isAlive(next); tries++) await sleep(50);
    expect(isAlive(next)).toBe(false);
  });

  it('refuses a unix pool socket the worker user may not connect to, and serves one it may', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'front-privsep-'));
    dirs.push(dir);
    const closed = startCli([
      '-s',
      join(dir, 'app.sock'),
      '-U',
      'nobody',
      '-N',
      '1',
      '-u',
      'nobody',
      '--http',
      `127.0.0.1:${await freePort()}`,
      HOSTILE_WORKER,
    ]);
    expect(await closed.exited).toBe(2);
    expect(closed.output()).toMatch(
      /--http: the front runs as nobody, who may not search .*front-privsep-\w+ \(mode 0700, uid 0, gid 0\)/,
    );
    chmodSync(dir, 0o711);
    const httpPort = await freePort();
    const args = ['-N', '1', '-u', 'nobody', '--http', `127.0.0.1:${httpPort}`];
    const refused = startCli(['-s', join(dir, 'app.sock'), ...args, HOSTILE_WORKER]);
    expect(await refused.exited).toBe(2);
    expect(refused.output()).toMatch(
      /--http: the front runs as nobody, who may not connect to .*app\.sock \(mode 0660, uid 0, gid 0\)/,
    );

    const allowed = startCli(['-s', join(dir, 'ok.sock'), '-U', 'nobody', ...args, HOSTILE_WORKER]);
    await allowed.waitFor(/HTTP on http:\/\//);
    const { text } = await rawHttp(httpPort, 'GET /z HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    expect(statuses(text)).toEqual([200]);
  });

  it('keeps the fronts in the starter when there is no user to drop to', async () => {
    const httpPort = await freePort();
    const starter = startCli([
      '-p',
      String(await freePort()),
      '-N',
      '1',
      '--allow-root',
      '--http',
      `127.0.0.1:${httpPort}`,
      HOSTILE_WORKER,
    ]);
    await starter.waitFor(/HTTP on http:\/\//);
    expect(starter.output()).not.toContain('served by pid');
    expect(await serverOf(starter.pid, httpPort)).toBe(starter.pid);
  });
});
