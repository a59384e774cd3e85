import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, waitForListen } from '../helpers/net.js';
import { type Nginx, startNginx, startNginxHttp } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';
import { ROOT, start, startCli, stopAll, until } from '../helpers/processes.js';

/**
 * Every example runs as documented at its top: by itself with PORT, and under the starter on
 * fd 0; a real request goes through nginx to each. Then `npm start`'s pool with the starter's
 * HTTP front, and examples/nginx/fcgi-prefork.conf itself in front of a TCP and a unix pool.
 */
const nginxPeer = peer('nginx', 'nginx-light');

interface Example {
  readonly file: string;
  readonly hello: RegExp;
  /** What POST /echo answers for `body`. */
  readonly echo: (body: string) => unknown;
}

const digest = (body: string) => ({
  bytes: Buffer.byteLength(body),
  sha256: createHash('sha256').update(body).digest('hex'),
});
const received = (body: string) => ({ received: JSON.parse(body) });

const EXAMPLES: readonly Example[] = [
  { file: 'hello.ts', hello: /^Hello from fcgi-prefork worker/, echo: digest },
  { file: 'fetch-hello.ts', hello: /^Hello from a fetch-style worker \(pid \d+\) at \/$/m, echo: digest },
  { file: 'express-app.ts', hello: /^Hello from Express on FastCGI/, echo: received },
  { file: 'hono-app.ts', hello: /^Hello from Hono on FastCGI/, echo: received },
  { file: 'fastify-app.ts', hello: /^Hello from Fastify on FastCGI/, echo: received },
  { file: 'koa-app.ts', hello: /^Hello from Koa on FastCGI/, echo: received },
];

const BODY = JSON.stringify({ message: 'hello', list: [1, 2, 3] });

async function checkExample(example: Example, url: string): Promise<void> {
  const hello = await fetch(`${url}/`);
  expect(hello.status).toBe(200);
  expect(await hello.text()).toMatch(example.hello);
  const echo = await fetch(`${url}/echo`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: BODY,
  });
  expect(echo.status).toBe(200);
  expect(await echo.json()).toEqual(example.echo(BODY));
}

/** Retries a GET until the pool answers (workers start after the starter's socket is up). */
async function poolAnswers(url: string): Promise<void> {
  await until(
    async () => {
      try {
        return (await fetch(url)).status === 200;
      } catch {
        return false;
      }
    },
    15_000,
    `a 200 from ${url}`,
  );
}

describe.skipIf(nginxPeer.skipReason)('examples', () => {
  let nginx: Nginx | undefined;
  afterEach(async () => {
    await nginx?.stop();
    nginx = undefined;
    await stopAll();
  });

  describe.each(EXAMPLES)('$file', (example) => {
    it('runs by itself with PORT set and answers through nginx', async () => {
      const port = await freePort();
      const worker = start(process.execPath, ['--import', 'tsx', join('examples', example.file)], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port) },
      });
      await waitForListen({ host: '127.0.0.1', port }, 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${worker.output()}`);
      });
      nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
      await checkExample(example, nginx.url);
    });

    it('runs under the starter on fd 0 and answers through nginx', async () => {
      const port = await freePort();
      startCli(['-p', String(port), '-N', '1', '--allow-root', join('examples', example.file)]);
      await waitForListen({ host: '127.0.0.1', port });
      nginx = await startNginx({ fastcgi: { host: '127.0.0.1', port } });
      await poolAnswers(`${nginx.url}/`);
      await checkExample(example, nginx.url);
    });
  });

  it("npm start's pool: the starter's HTTP front over two hello workers", async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const script = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string;
    // The same command line as `npm start`, on free ports.
    const args = script
      .replace(/^tsx starter\/cli\.ts /, '')
      .replace('127.0.0.1:8080', `127.0.0.1:${httpPort}`)
      .replace('-p 9000', `-p ${port}`)
      .split(' ');
    expect(args).toContain('examples/hello.ts');
    startCli(args);
    const url = `http://127.0.0.1:${httpPort}`;
    await poolAnswers(`${url}/`);
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const text = await (await fetch(`${url}/`)).text();
      const match = /^Hello from fcgi-prefork worker (\d+) \(pid (\d+)\)$/m.exec(text);
      expect(match, text).not.toBeNull();
      ids.add(match![1]!);
    }
    expect([...ids].every((id) => id === '1' || id === '2')).toBe(true);
    const echo = await fetch(`${url}/echo`, { method: 'POST', body: BODY });
    expect(await echo.json()).toEqual(digest(BODY));
  });

  describe('examples/nginx/fcgi-prefork.conf', () => {
    const dirs: string[] = [];
    afterAll(() => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it.each([
      ['as shipped (a connection per request)', false],
      ['with keepalive and fastcgi_keep_conn uncommented', true],
    ])('fronts a TCP pool and a unix-socket pool, %s', async (_, keepConn) => {
      const dir = mkdtempSync(join(tmpdir(), 'fcgi-prefork-conf-'));
      dirs.push(dir);
      const [poolPort, tcpFront, unixFront] = [await freePort(), await freePort(), await freePort()];
      const socket = join(dir, 'app.sock');
      // The shipped file, with the test's ports and paths: each edit must apply, so the
      // example cannot drift away from what this test checks.
      const edits: [RegExp | string, string][] = [
        ['server 127.0.0.1:9000;', `server 127.0.0.1:${poolPort};`],
        ['server unix:/run/fcgi-prefork/app.sock;', `server unix:${socket};`],
        ['listen 8080;', `listen 127.0.0.1:${tcpFront};`],
        ['listen 8081;', `listen 127.0.0.1:${unixFront};`],
        [/include fastcgi_params;/g, 'include /etc/nginx/fastcgi_params;'],
      ];
      if (keepConn) edits.push([/# (keepalive 16;|fastcgi_keep_conn on;)/g, '$1']);
      let conf = readFileSync(join(ROOT, 'examples', 'nginx', 'fcgi-prefork.conf'), 'utf8');
      for (const [from, to] of edits) {
        const before = conf;
        conf = conf.replace(from, to);
        expect(conf, `edit ${from} applies`).not.toBe(before);
      }
      startCli(['-p', String(poolPort), '-N', '2', '--allow-root', 'examples/hello.ts']);
      startCli(['-s', socket, '-N', '2', '--allow-root', 'examples/express-app.ts']);
      nginx = await startNginxHttp(conf, unixFront);
      await poolAnswers(`http://127.0.0.1:${tcpFront}/`);
      await poolAnswers(`http://127.0.0.1:${unixFront}/`);
      for (let i = 0; i < 5; i++) {
        await checkExample(EXAMPLES[0]!, `http://127.0.0.1:${tcpFront}`);
        await checkExample(EXAMPLES[2]!, `http://127.0.0.1:${unixFront}`);
      }
    });
  });
});
