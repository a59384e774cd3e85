import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APACHE_USER, startApache } from '../helpers/apache.js';
import { editedExample, type Front } from '../helpers/front.js';
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
import { peer } from '../helpers/peers.js';
import { type Running, startCli, until } from '../helpers/processes.js';

/**
 * A real Apache httpd 2.4 (mod_proxy_fcgi) running examples/apache/fcgi-prefork.conf as shipped
 * (only its ports and socket path changed) in front of two pools of examples/hello.ts under
 * the starter: one on TCP, one on a unix socket. Then the same with enablereuse=on.
 */
const apachePeer = peer('apache2', 'apache2');
const TCP_LINE = '    ProxyPass "/" "fcgi://127.0.0.1:9000/" timeout=60 flushpackets=auto\n';
const REUSE_LINE = '# ProxyPass "/" "fcgi://127.0.0.1:9000/" timeout=60 enablereuse=on';

describe.skipIf(apachePeer.skipReason)('Apache httpd with examples/apache/fcgi-prefork.conf', () => {
  describe.each([
    { reuse: false, label: 'as shipped: a FastCGI connection per request' },
    { reuse: true, label: 'with the enablereuse=on line instead: FastCGI connections kept' },
  ])('$label', ({ reuse }) => {
    let dir: string;
    let poolPort: number;
    const pools: Running[] = [];
    let apache: Front;
    const fronts: { name: string; url: () => string }[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'apache-pool-'));
      // A root Apache serves as APACHE_USER, which must reach the socket (owned by it below).
      chmodSync(dir, 0o711);
      const socket = join(dir, 'app.sock');
      const [tcpFront, unixFront] = [await freePort(), await freePort()];
      poolPort = await freePort();
      const owner = APACHE_USER ? ['-U', APACHE_USER.user, '-G', APACHE_USER.group] : [];
      pools.push(startCli(['-p', String(poolPort), '-N', '2', '--allow-root', 'examples/hello.ts']));
      pools.push(startCli(['-s', socket, ...owner, '-N', '2', '--allow-root', 'examples/hello.ts']));
      await waitForListen({ host: '127.0.0.1', port: poolPort });
      await waitForListen({ path: socket });
      const edits: [RegExp | string, string][] = [
        [/8080/g, String(tcpFront)],
        [/8081/g, String(unixFront)],
        [/Listen (\d+)/g, 'Listen 127.0.0.1:$1'],
        [/127\.0\.0\.1:9000/g, `127.0.0.1:${poolPort}`],
        [/\/run\/fcgi-prefork\/app\.sock/g, socket],
      ];
      if (reuse)
        edits.push(
          [TCP_LINE.replace('9000', String(poolPort)), ''],
          [/# (ProxyPass .* enablereuse=on)/, '$1'],
        );
      apache = await startApache(editedExample('examples/apache/fcgi-prefork.conf', edits), unixFront);
      fronts.push(
        { name: 'TCP pool', url: () => `http://127.0.0.1:${tcpFront}` },
        { name: 'unix-socket pool', url: () => `http://127.0.0.1:${unixFront}` },
      );
      for (const front of fronts)
        await helloAnswers(front.url()).catch((err: Error) => {
          throw new Error(`${err.message}; apache said:\n${apache.output()}`);
        });
    });

    afterAll(async () => {
      await apache?.stop();
      await Promise.all(pools.map((pool) => pool.stop()));
      rmSync(dir, { recursive: true, force: true });
    });

    it('GET: answered by the workers of each pool', async () => {
      for (const front of fronts) {
        const seen = new Set<string>();
        for (let i = 0; i < 10; i++) seen.add((await getHello(front.url())).workerId);
        for (const id of seen) expect(['1', '2']).toContain(id);
      }
    });

    it('POST with a 5 MiB body: the worker gets every byte (size and SHA-256 echoed)', async () => {
      for (const front of fronts) await postEcho(front.url(), 5 * 1024 * 1024);
    });

    it('streams a response chunk by chunk', async () => {
      for (const front of fronts) await stream(front.url(), 6);
    });

    it("passes the app's status code and repeated headers on", async () => {
      for (const front of fronts) {
        await statusAndHeaders(front.url(), 404);
        await statusAndHeaders(front.url(), 201);
      }
    });

    it('40 concurrent requests of mixed kinds all succeed', async () => {
      for (const front of fronts) await mixedLoad(front.url(), 40);
    });

    it(
      reuse
        ? 'keeps FastCGI connections open between requests (FCGI_KEEP_CONN: the SDK closes otherwise)'
        : 'closes each FastCGI connection after its request',
      async () => {
        const url = fronts[0]!.url();
        for (let i = 0; i < 5; i++) await getHello(url);
        if (reuse) {
          expect(connectionsTo(poolPort)).toBeGreaterThanOrEqual(1);
          const before = connectionsTo(poolPort);
          for (let i = 0; i < 10; i++) await getHello(url);
          expect(connectionsTo(poolPort)).toBe(before);
        } else {
          await until(() => connectionsTo(poolPort) === 0, 5000, 'no FastCGI connection left open');
        }
      },
    );
  });
});
