import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editedExample, type Front } from '../helpers/front.js';
import { helloAnswers } from '../helpers/hello-http.js';
import { freePort, waitForListen } from '../helpers/net.js';
import { startNginxHttp } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';
import { ROOT, type Running, startCli } from '../helpers/processes.js';

/**
 * examples/php/ end to end: php-cgi workers under the starter as its README runs them
 * (PHP_FCGI_CHILDREN=0, a small PHP_FCGI_MAX_REQUESTS), behind a real nginx running the
 * example's nginx.conf. test/starter/php.test.ts has the starter against fcgistarter with
 * libfcgi's client; this is the deployment: nginx, SCRIPT_FILENAME, index.php, many requests.
 */
const nginxPeer = peer('nginx', 'nginx-light');
const php = peer('php-cgi', 'php-cgi');
const WORKERS = 3;
const MAX_REQUESTS = 20;
const PID = /^Hello from php-cgi pid (\d+)$/m;

interface Status {
  workers: { pid: number }[];
  totals: { workers: number; restarts: number };
}

describe.skipIf(nginxPeer.skipReason ?? php.skipReason)(
  'examples/php: php-cgi under the starter behind nginx',
  () => {
    let dir: string;
    let pidfile: string;
    let starter: Running;
    let nginx: Front;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'php-example-'));
      const socket = join(dir, 'php.sock');
      pidfile = join(dir, 'php.pid');
      starter = startCli(
        ['-s', socket, '-N', String(WORKERS), '--allow-root', '--pidfile', pidfile, php.path!],
        {
          env: { ...process.env, PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: String(MAX_REQUESTS) },
        },
      );
      await waitForListen({ path: socket });
      const port = await freePort();
      const conf = editedExample('examples/php/nginx.conf', [
        ['listen 8080;', `listen 127.0.0.1:${port};`],
        ['root /var/www/php;', `root ${join(ROOT, 'examples', 'php')};`],
        ['unix:/run/fcgi-prefork/php.sock', `unix:${socket}`],
        ['include fastcgi_params;', 'include /etc/nginx/fastcgi_params;'],
      ]);
      nginx = await startNginxHttp(conf, port);
      await helloAnswers(nginx.url);
    });

    afterAll(async () => {
      await nginx?.stop();
      await starter?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    async function status(): Promise<Status> {
      const client = startCli(['status', '--pidfile', pidfile, '--json']);
      expect(await client.exited, client.output()).toBe(0);
      return JSON.parse(client.output()) as Status;
    }

    it(`serves ${WORKERS * MAX_REQUESTS * 3} requests (3 × N × PHP_FCGI_MAX_REQUESTS) without a failure, workers replaced as they retire`, async () => {
      const before = await status();
      const total = WORKERS * MAX_REQUESTS * 3;
      const pids = new Set<string>();
      const failures: string[] = [];
      let next = 0;
      // Six clients at once, each sending its next request as soon as the last one is answered.
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          while (next < total) {
            next++;
            const response = await fetch(`${nginx.url}/`);
            const text = await response.text();
            const pid = PID.exec(text)?.[1];
            if (response.status !== 200 || !pid) failures.push(`${response.status} ${text.slice(0, 200)}`);
            else pids.add(pid);
          }
        }),
      );
      expect(failures).toEqual([]);
      // A php-cgi serves at most MAX_REQUESTS, so these requests took at least total / MAX_REQUESTS of them.
      expect(pids.size).toBeGreaterThanOrEqual(total / MAX_REQUESTS);
      const after = await status();
      expect(after.totals.workers).toBe(WORKERS);
      expect(after.totals.restarts - before.totals.restarts).toBeGreaterThanOrEqual(
        total / MAX_REQUESTS - WORKERS,
      );
      expect(starter.output()).not.toMatch(/giving up|failed/);
    });

    it('a POST reaches PHP: the raw body by SHA-256, and a form PHP parsed', async () => {
      const body = randomBytes(1024 * 1024);
      const raw = await fetch(`${nginx.url}/index.php`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body,
      });
      expect(raw.status).toBe(200);
      expect(await raw.text()).toContain(
        `POST ${body.length} bytes, sha256 ${createHash('sha256').update(body).digest('hex')}\n`,
      );
      const form = await fetch(`${nginx.url}/index.php`, {
        method: 'POST',
        body: new URLSearchParams({ name: 'fcgi-prefork', n: '42' }),
      });
      expect(form.status).toBe(200);
      const text = await form.text();
      expect(text).toMatch(PID);
      expect(text).toContain('field name=fcgi-prefork\nfield n=42\n');
    });

    it('a .php path with no such file is a 404 from nginx, never sent to php-cgi', async () => {
      const response = await fetch(`${nginx.url}/missing.php`);
      expect(response.status).toBe(404);
      expect(await response.text()).toMatch(/nginx/);
    });
  },
);
