import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connectionsTo,
  getHello,
  helloAnswers,
  mixedLoad,
  postEcho,
  statusAndHeaders,
  stream,
} from '../helpers/hello-http.js';
import { freePort, waitForListen } from '../helpers/net.js';
import { type Nginx, startNginx } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';
import {
  isAlive,
  pidsWithEnv,
  ROOT,
  type Running,
  start,
  startCli,
  stopAll,
  until,
} from '../helpers/processes.js';

/**
 * A real nginx in front of a pool of worker-SDK processes (examples/hello.ts), with real HTTP
 * requests: under the project's starter with fastcgi_keep_conn off and on, then one SDK worker
 * under Debian's spawn-fcgi and under Apache's fcgistarter.
 */
const nginxPeer = peer('nginx', 'nginx-light');
const spawnFcgi = peer('spawn-fcgi', 'spawn-fcgi');
const fcgistarter = peer('fcgistarter', 'apache2-utils');
const HELLO = join(ROOT, 'examples', 'hello.ts');

describe.skipIf(nginxPeer.skipReason)('nginx in front of an SDK pool under the starter', () => {
  describe.each([
    { keepConn: false, unix: false, label: 'TCP, fastcgi_keep_conn off: a FastCGI connection per request' },
    { keepConn: true, unix: false, label: 'TCP, fastcgi_keep_conn on with upstream keepalive' },
    { keepConn: true, unix: true, label: 'unix socket, fastcgi_keep_conn on with upstream keepalive' },
  ])('$label', ({ keepConn, unix }) => {
    let pool: Running;
    let nginx: Nginx;
    let port: number;
    let dir: string;
    let socket: string;
    const target = () => (unix ? socket : port);

    beforeAll(async () => {
      port = await freePort();
      dir = mkdtempSync(join(tmpdir(), 'nginx-pool-'));
      socket = join(dir, 'pool.sock');
      const where = unix ? ['-s', socket] : ['-p', String(port)];
      pool = startCli([...where, '-N', '2', '--allow-root', '--', 'examples/hello.ts']);
      await waitForListen(unix ? { path: socket } : { host: '127.0.0.1', port });
      nginx = await startNginx({
        fastcgi: unix ? { path: socket } : { host: '127.0.0.1', port },
        ...(keepConn ? { keepConn: true, keepalive: 8 } : {}),
      });
      await helloAnswers(nginx.url);
    });

    afterAll(async () => {
      await nginx?.stop();
      await pool?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('GET: answered by a worker of the pool', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await getHello(nginx.url)).workerId);
      for (const id of seen) expect(['1', '2']).toContain(id);
    });

    it('POST with a 5 MiB body: the worker gets every byte (size and SHA-256 echoed)', async () => {
      await postEcho(nginx.url, 5 * 1024 * 1024);
    });

    it('streams a response chunk by chunk', async () => {
      await stream(nginx.url, 6);
    });

    it("passes the app's status code and repeated headers on", async () => {
      await statusAndHeaders(nginx.url, 404);
      await statusAndHeaders(nginx.url, 201);
    });

    it('40 concurrent requests of mixed kinds all succeed', async () => {
      await mixedLoad(nginx.url, 40);
    });

    it(
      keepConn
        ? 'keeps FastCGI connections open between requests'
        : 'closes each FastCGI connection after its request',
      async () => {
        for (let i = 0; i < 5; i++) await getHello(nginx.url);
        if (keepConn) {
          // nginx's cached upstream connections stay established, and requests reuse them.
          expect(connectionsTo(target())).toBeGreaterThanOrEqual(1);
          const before = connectionsTo(target());
          for (let i = 0; i < 10; i++) await getHello(nginx.url);
          expect(connectionsTo(target())).toBe(before);
        } else {
          await until(() => connectionsTo(target()) === 0, 5000, 'no FastCGI connection left open');
        }
      },
    );
  });
});

describe.skipIf(nginxPeer.skipReason || spawnFcgi.skipReason)('an SDK worker under spawn-fcgi', () => {
  let nginx: Nginx | undefined;
  afterEach(async () => {
    await nginx?.stop();
    nginx = undefined;
    await stopAll();
  });

  it('serves GET, a 5 MiB POST and a stream through nginx', async () => {
    const port = await freePort();
    // -n: spawn-fcgi binds, then execs the worker in its own place (no fork), so the test owns its pid.
    const worker = start(
      spawnFcgi.path!,
      ['-p', String(port), '-a', '127.0.0.1', '-n', '--', process.execPath, '--import', 'tsx', HELLO],
      { cwd: ROOT },
    );
    await waitForListen({ host: '127.0.0.1', port });
    nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
    const { workerId, pid } = await getHello(nginx.url);
    expect(pid).toBe(worker.pid);
    expect(workerId).toBe('-'); // no starter: no FCGI_WORKER_ID
    await postEcho(nginx.url, 5 * 1024 * 1024);
    await stream(nginx.url, 4);
  });
});

describe.skipIf(nginxPeer.skipReason || fcgistarter.skipReason)('an SDK worker under fcgistarter', () => {
  const mark = randomUUID();
  let dir: string;
  let nginx: Nginx | undefined;

  /** fcgistarter exits once it has spawned: its children are found by an env marker. */
  const markedPids = () => pidsWithEnv('FCGI_E2E_MARK', mark);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fcgistarter-'));
  });

  afterAll(async () => {
    await nginx?.stop();
    for (const pid of markedPids()) process.kill(pid, 'SIGTERM');
    await until(() => markedPids().every((pid) => !isAlive(pid)), 5000, 'fcgistarter children to exit').catch(
      () => {
        for (const pid of markedPids()) process.kill(pid, 'SIGKILL');
      },
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves GET, a 5 MiB POST and a stream through nginx; nothing is left running', async () => {
    const port = await freePort();
    // fcgistarter runs a program without arguments, from /: a script gives it the worker.
    const script = join(dir, 'worker.sh');
    writeFileSync(script, `#!/bin/sh\ncd '${ROOT}' && exec '${process.execPath}' --import tsx '${HELLO}'\n`);
    chmodSync(script, 0o755);
    const starter = start(
      fcgistarter.path!,
      ['-c', script, '-p', String(port), '-i', '127.0.0.1', '-N', '1'],
      {
        env: { ...process.env, FCGI_E2E_MARK: mark },
      },
    );
    expect(await starter.exited).toBe(0);
    await waitForListen({ host: '127.0.0.1', port });
    nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
    const { pid } = await getHello(nginx.url);
    expect(markedPids()).toContain(pid);
    await postEcho(nginx.url, 5 * 1024 * 1024);
    await stream(nginx.url, 4);
    // The worker outlives fcgistarter; it stops on SIGTERM like under any starter.
    for (const child of markedPids()) process.kill(child, 'SIGTERM');
    await until(() => markedPids().length === 0, 5000, 'the fcgistarter worker to exit on SIGTERM');
  });
});
