// Issue 18, item 5 (the front's part): with RLIMIT_NOFILE at 256, 400 clients that each send
// half a request head held every descriptor of the starter, and a worker's restart then failed
// with EMFILE. The front now closes connections past its cap as they come. A real starter
// under `ulimit -n 256`, the hostile worker of this directory as an ordinary one, and 400
// raw clients.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { IN_CI } from '../helpers/peers.js';
import { CLI, childrenOf, isAlive, ROOT, sleep, start, stopAll } from '../helpers/processes.js';
import { fastcgiGet, HOSTILE_WORKER, rawHttp, statuses } from './front-raw.js';

const SLOW_CLIENTS = 400;

/** Opens a connection and sends half a request head; resolves once connected. */
function slowClient(port: number): Promise<{ socket: net.Socket; closed: () => boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let closed = false;
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
    });
    socket.once('connect', () => {
      socket.write('GET /slow HTTP/1.1\r\nHost: app\r\n');
      resolve({ socket, closed: () => closed });
    });
    socket.once('close', () => resolve({ socket, closed: () => true }));
  });
}

function workerPids(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('front-hostile-worker');
    } catch {
      return false;
    }
  });
}

const isRoot = process.getuid?.() === 0;

describe('the --http front has a connection cap', () => {
  afterEach(stopAll);

  it.each([
    ['in the starter', ['--allow-root']],
    ...(isRoot || IN_CI ? [['in the front process', ['-u', 'nobody']] as [string, string[]]] : []),
  ])(
    '400 half-sent requests under RLIMIT_NOFILE 256, front %s: the pool keeps serving and restarting, the front recovers',
    async (_where, user) => {
      const fcgiPort = await freePort();
      const httpPort = await freePort();
      const argv = [
        '-p',
        String(fcgiPort),
        '-N',
        '2',
        ...user,
        '--http',
        `127.0.0.1:${httpPort}`,
        HOSTILE_WORKER,
      ];
      const starter = start(
        'sh',
        ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, '--import', 'tsx', CLI, ...argv],
        { cwd: ROOT },
      );
      await starter.waitFor(/HTTP on http:\/\//);
      expect(await fastcgiGet(fcgiPort, '/ready')).toBe(200);
      expect(readFileSync(`/proc/${starter.pid}/limits`, 'utf8')).toMatch(/^Max open files\s+256\s/m);
      expect(
        statuses((await rawHttp(httpPort, 'GET /a HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n')).text),
      ).toEqual([200]);

      const slow = await Promise.all(Array.from({ length: SLOW_CLIENTS }, () => slowClient(httpPort)));
      await sleep(1000);
      const held = slow.filter((c) => !c.closed()).length;
      // The cap is half the descriptor limit: 128 held, the rest closed as they came.
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(128);
      const refused = await rawHttp(httpPort, 'GET /b HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
      expect(refused).toEqual({ text: '', closed: true });

      // The starter is up and its workers serve FastCGI clients directly.
      expect(isAlive(starter.pid)).toBe(true);
      expect(await fastcgiGet(fcgiPort, '/direct')).toBe(200);
      // A worker that dies is replaced: spawning it needs descriptors the front could not take.
      const [victim] = workerPids(await childrenOf(starter.pid));
      expect(victim).toBeDefined();
      process.kill(victim!, 'SIGKILL');
      await starter.waitFor(/worker \d+ \(pid \d+\) killed by SIGKILL.*restarting it|restarting it/);
      let replaced: number[] = [];
      for (let tries = 0; tries < 100; tries++) {
        replaced = workerPids(await childrenOf(starter.pid));
        if (replaced.length === 2 && !replaced.includes(victim!)) break;
        await sleep(100);
      }
      expect(replaced).toHaveLength(2);
      expect(replaced).not.toContain(victim);
      expect(await fastcgiGet(fcgiPort, '/after-restart')).toBe(200);
      expect(starter.output()).not.toMatch(/EMFILE/);

      for (const client of slow) client.socket.destroy();
      let after: number[] = [];
      for (let tries = 0; tries < 50; tries++) {
        after = statuses(
          (await rawHttp(httpPort, 'GET /c HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n', 500)).text,
        );
        if (after.length > 0) break;
        await sleep(100);
      }
      expect(after).toEqual([200]);
      expect(isAlive(starter.pid)).toBe(true);
    },
    60_000,
  );
});
