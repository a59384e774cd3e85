import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { waitServing } from '../helpers/fcgi.js';
import { freePort, waitForListen } from '../helpers/net.js';
import { peer } from '../helpers/peers.js';
import { childrenOf, ROOT, start, startCli, stopAll, until } from '../helpers/processes.js';

const run = promisify(execFile);
const cgiFcgi = peer('cgi-fcgi', 'libfcgi-bin');
afterEach(stopAll);

describe('SDK worker with peers', () => {
  it.skipIf(cgiFcgi.skipReason)('answers libfcgi’s own client, cgi-fcgi', async () => {
    const port = await freePort();
    start(process.execPath, ['--import', 'tsx', 'examples/hello.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port) },
    });
    await waitForListen({ host: '127.0.0.1', port });
    const { stdout } = await run(cgiFcgi.path!, ['-bind', '-connect', `127.0.0.1:${port}`], {
      env: { REQUEST_METHOD: 'GET', REQUEST_URI: '/', SERVER_PROTOCOL: 'HTTP/1.1' },
    });
    expect(stdout).toMatch(
      /^Status: 200 OK\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Length: \d+\r\n\r\nHello from fcgi-prefork worker - \(pid \d+\)\n$/,
    );
  });

  it('listen() on an fd 0 that is not a socket fails with a clear message', () => {
    const script = `import('${ROOT}/worker-sdk/index.ts').then(({ createServer }) => {
      try { createServer().listen(); } catch (e) { console.log(e.name + ': ' + e.message); process.exit(3); }
    })`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
    expect(result.status).toBe(3);
    expect(result.stdout.trim()).toBe(
      'NotListeningSocketError: fd 0 is not a listening socket: run under fcgi-prefork, spawn-fcgi or fcgistarter, or call listen(port)',
    );
  });

  it('keeps the starter’s backlog when it listens on fd 0 (FCGI_BACKLOG)', async () => {
    const port = await freePort();
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '2',
      '-b',
      '321',
      '--allow-root',
      'examples/hello.ts',
    ]);
    await starter.waitFor(/listening on/);
    await until(async () => (await childrenOf(starter.pid)).length === 2, 10_000, 'workers');
    await waitForListen({ host: '127.0.0.1', port });
    // After both SDK workers have called listen() on fd 0 themselves (each has served), the
    // backlog is still 321, not Node's 511.
    await waitServing({ host: '127.0.0.1', port }, 2);
    const ss = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
    expect(ss).toMatch(/LISTEN\s+\d+\s+321\s/);
  });
});
