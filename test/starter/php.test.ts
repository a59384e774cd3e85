import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, waitForListen } from '../helpers/net.js';
import { peer } from '../helpers/peers.js';
import { childrenOf, ROOT, start, startCli, stopAll, until } from '../helpers/processes.js';

const run = promisify(execFile);
const php = peer('php-cgi', 'php-cgi');
const cgiFcgi = peer('cgi-fcgi', 'libfcgi-bin');
const fcgistarter = peer('fcgistarter', 'apache2-utils');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'php', 'hello.php');

afterEach(stopAll);

/** One request with libfcgi's own client, as `cgi-fcgi -bind -connect` sends it. */
async function cgiRequest(port: number, query = ''): Promise<string> {
  const { stdout } = await run(cgiFcgi.path!, ['-bind', '-connect', `127.0.0.1:${port}`], {
    env: {
      REQUEST_METHOD: 'GET',
      SCRIPT_FILENAME: SCRIPT,
      QUERY_STRING: query,
      REDIRECT_STATUS: '200',
      SERVER_PROTOCOL: 'HTTP/1.1',
    },
    timeout: 10_000,
  });
  return stdout;
}

describe.skipIf(php.skipReason ?? cgiFcgi.skipReason)('starter with Debian php-cgi', () => {
  it('serves php-cgi and keeps the pool up past PHP_FCGI_MAX_REQUESTS', async () => {
    const port = await freePort();
    const starter = startCli(['-p', String(port), '-N', '2', '--allow-root', php.path!], {
      env: { ...process.env, PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '5' },
    });
    await starter.waitFor(/listening on/);
    await until(async () => (await childrenOf(starter.pid)).length === 2, 10_000, 'two php-cgi workers');
    const pids = new Set<string>();
    // 30 requests: each php-cgi exits after 5, so the pool lives only because it is respawned.
    for (let i = 0; i < 30; i++) {
      const out = await cgiRequest(port);
      expect(out).toMatch(/Content-type: text\/plain/i);
      const pid = /php says hello from (\d+)/.exec(out)?.[1];
      expect(pid).toBeDefined();
      pids.add(pid!);
    }
    expect(pids.size).toBeGreaterThanOrEqual(6);
    expect(starter.output()).not.toMatch(/giving up/);
  });

  it.skipIf(fcgistarter.skipReason)(
    'contrast: under fcgistarter the same pool dies after N × PHP_FCGI_MAX_REQUESTS',
    async () => {
      const port = await freePort();
      const starter = start(
        fcgistarter.path!,
        ['-c', php.path!, '-p', String(port), '-i', '127.0.0.1', '-N', '1'],
        {
          env: { ...process.env, PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '3' },
          detached: true,
        },
      );
      await starter.exited; // fcgistarter exits at once, leaving its child unsupervised
      await waitForListen({ host: '127.0.0.1', port });
      for (let i = 0; i < 3; i++) expect(await cgiRequest(port)).toMatch(/php says hello/);
      // The only php-cgi has exited and nobody restarts it: the next request finds no server.
      await expect(cgiRequest(port)).rejects.toThrow();
    },
  );
});
