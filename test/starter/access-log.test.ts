import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, startCli, stopAll, until } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'fcgi-access-'));
afterEach(stopAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LINE =
  /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET (\S+) HTTP\/1\.1" 200 (\d+|-) "([^"]*)" "([^"]*)" \d+\.\d{3} ([12])$/;

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

describe('--access-log', () => {
  it('SDK workers log every request, through --http too, and reopen the file on SIGUSR1', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const log = join(dir, 'access.log');
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '2',
      '--http',
      `127.0.0.1:${httpPort}`,
      '--access-log',
      log,
      '--allow-root',
      'test/fixtures/slow-sdk-worker.ts',
    ]);
    await starter.waitFor(/listening on/);
    const target = { host: '127.0.0.1', port };
    await waitServing(target, 2, 60_000);
    for (let i = 0; i < 4; i++) await fcgiGet(target, `/fcgi/${i}`);
    const res = await fetch(`http://127.0.0.1:${httpPort}/via-http?q="x"`, {
      headers: { 'User-Agent': 'top-test/1.0', Referer: 'http://example.test/' },
    });
    expect(res.status).toBe(200);
    await res.text();
    await until(() => lines(log).some((l) => l.includes('/via-http')), 30_000, 'the --http request logged');
    const before = lines(log);
    for (const line of before) expect(line).toMatch(LINE);
    for (let i = 0; i < 4; i++)
      expect(before.some((l) => l.includes(`"GET /fcgi/${i} HTTP/1.1"`))).toBe(true);
    const viaHttp = before.find((l) => l.includes('/via-http'))!;
    // The URI as the front sent it (fetch percent-encodes the quotes); referer and agent in their fields.
    expect(viaHttp).toContain('"GET /via-http?q=%22x%22 HTTP/1.1"');
    expect(LINE.exec(viaHttp)?.slice(3, 5)).toEqual(['http://example.test/', 'top-test/1.0']);

    // logrotate: move the file away, SIGUSR1 the starter; new lines go to a new file.
    const workers = await childrenOf(starter.pid);
    renameSync(log, `${log}.1`);
    process.kill(starter.pid, 'SIGUSR1');
    await starter.waitFor(/SIGUSR1: 2 worker\(s\) reopen the access log/, 30_000);
    await until(
      async () => {
        await fcgiGet(target, '/after-rotate');
        return lines(log).length >= 1;
      },
      30_000,
      'a line in the new file',
    );
    expect(lines(log).every((l) => l.includes('/after-rotate') && LINE.test(l))).toBe(true);
    expect(lines(`${log}.1`)).toHaveLength(before.length);
    // Nobody died of the signal, and the starter opened no inspector.
    expect(await childrenOf(starter.pid)).toEqual(workers);
    expect(starter.output()).not.toMatch(/Debugger listening|restarting/);
  }, 180_000);

  it('refuses an empty path with usage', async () => {
    const starter = startCli(['-p', String(await freePort()), '--access-log', '', 'examples/hello.ts']);
    expect(await starter.exited).toBe(2);
    expect(starter.output()).toMatch(/invalid access log path: empty/);
  }, 60_000);
});
