import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Front } from '../helpers/front.js';
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
import { type Running, startCli, until } from '../helpers/processes.js';

/** Where a shipped front config is pointed: its two fronts and the two pools behind them. */
export interface FrontPorts {
  /** The front for the TCP pool (the example's 8080). */
  readonly tcpFront: number;
  /** The front for the unix-socket pool (the example's 8081). */
  readonly unixFront: number;
  /** The TCP pool on 127.0.0.1 (the example's 9000). */
  readonly pool: number;
  /** The unix-socket pool (the example's /run/fcgi-prefork/app.sock). */
  readonly socket: string;
}

export interface FrontCase {
  readonly label: string;
  /** Starts the front (a shipped example with these ports), resolving once it accepts. */
  start(ports: FrontPorts): Promise<Front>;
  /** The front sets FCGI_KEEP_CONN and keeps FastCGI connections, or opens one per request. */
  readonly keepsConnections: boolean;
  /** Starter options that let the front's user connect to the unix socket (-U/-G). */
  readonly socketOwner?: readonly string[];
}

/**
 * A real front in front of two pools of examples/hello.ts under the starter, one on TCP and
 * one on a unix socket, each checked with the same requests: GET, a 5 MiB POST by hash, a
 * streamed response, status and repeated headers, a concurrent mix, and the FastCGI
 * connections the front leaves open.
 */
export function describeFrontPools(cases: readonly FrontCase[]): void {
  describe.each(cases)('$label', (front) => {
    let dir: string;
    let ports: FrontPorts;
    const pools: Running[] = [];
    let server: Front;
    const urls = () => [`http://127.0.0.1:${ports.tcpFront}`, `http://127.0.0.1:${ports.unixFront}`];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'front-pools-'));
      // A root front serving as another user must still reach the socket inside.
      chmodSync(dir, 0o711);
      ports = {
        tcpFront: await freePort(),
        unixFront: await freePort(),
        pool: await freePort(),
        socket: join(dir, 'app.sock'),
      };
      pools.push(startCli(['-p', String(ports.pool), '-N', '2', '--allow-root', 'examples/hello.ts']));
      pools.push(
        startCli([
          '-s',
          ports.socket,
          ...(front.socketOwner ?? []),
          '-N',
          '2',
          '--allow-root',
          'examples/hello.ts',
        ]),
      );
      await waitForListen({ host: '127.0.0.1', port: ports.pool });
      await waitForListen({ path: ports.socket });
      server = await front.start(ports);
      for (const url of urls())
        await helloAnswers(url).catch((err: Error) => {
          throw new Error(`${err.message}; the front said:\n${server.output()}`);
        });
    });

    afterAll(async () => {
      await server?.stop();
      await Promise.all(pools.map((pool) => pool.stop()));
      rmSync(dir, { recursive: true, force: true });
    });

    it('GET: answered by the workers of each pool', async () => {
      for (const url of urls()) {
        const seen = new Set<string>();
        for (let i = 0; i < 10; i++) seen.add((await getHello(url)).workerId);
        for (const id of seen) expect(['1', '2']).toContain(id);
      }
    });

    it('POST with a 5 MiB body: the worker gets every byte (size and SHA-256 echoed)', async () => {
      for (const url of urls()) await postEcho(url, 5 * 1024 * 1024);
    });

    it('streams a response chunk by chunk', async () => {
      for (const url of urls()) await stream(url, 10);
    });

    it("passes the app's status code and repeated headers on", async () => {
      for (const url of urls()) {
        await statusAndHeaders(url, 404);
        await statusAndHeaders(url, 201);
      }
    });

    it('40 concurrent requests of mixed kinds all succeed', async () => {
      for (const url of urls()) await mixedLoad(url, 40);
    });

    it(
      front.keepsConnections
        ? 'keeps FastCGI connections open between requests (FCGI_KEEP_CONN: the SDK closes otherwise)'
        : 'closes each FastCGI connection after its request',
      async () => {
        const [url] = urls();
        for (let i = 0; i < 5; i++) await getHello(url!);
        if (front.keepsConnections) {
          expect(connectionsTo(ports.pool)).toBeGreaterThanOrEqual(1);
          const before = connectionsTo(ports.pool);
          for (let i = 0; i < 10; i++) await getHello(url!);
          expect(connectionsTo(ports.pool)).toBe(before);
        } else {
          await until(() => connectionsTo(ports.pool) === 0, 5000, 'no FastCGI connection left open');
        }
      },
    );
  });
}
