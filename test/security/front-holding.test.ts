// Issue 18, "already holding": what the --http front refused before the issue, kept as real
// attacks (a real starter and worker, raw client bytes) so that no change undoes them.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpFront } from '../../starter/http-front.js';
import { freePort } from '../helpers/net.js';
import { startCli, stopAll } from '../helpers/processes.js';
import {
  type FrontStarter,
  fastcgiGet,
  HOSTILE_WORKER,
  rawHttp,
  startFrontStarter,
  statuses,
} from './front-raw.js';

describe('the --http front keeps refusing what it refused', () => {
  let front: FrontStarter;
  beforeAll(async () => {
    front = await startFrontStarter(['--allow-root']);
  });
  afterAll(stopAll);

  it.each([
    [
      'Content-Length with Transfer-Encoding',
      'POST /params HTTP/1.1\r\nHost: app\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['an obs-fold header line', 'GET /params HTTP/1.1\r\nHost: app\r\nX-Folded: a\r\n  b\r\n\r\n'],
    ['a bare LF line end', 'GET /params HTTP/1.1\nHost: app\n\n'],
  ])('%s: 400, never forwarded', async (_what, bytes) => {
    const { text, closed } = await rawHttp(front.httpPort, bytes);
    expect(statuses(text)).toEqual([400]);
    expect(closed).toBe(true);
    expect(front.starter.output()).not.toContain('saw "/params"');
  });

  it('drops Proxy: (httpoxy) and headers with an underscore', async () => {
    const { text } = await rawHttp(
      front.httpPort,
      'GET /params HTTP/1.1\r\nHost: app\r\nProxy: http://evil:3128\r\nX_Forwarded: no\r\nX-Kept: yes\r\nConnection: close\r\n\r\n',
    );
    expect(statuses(text)).toEqual([200]);
    const params = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
    expect(params.HTTP_X_KEPT).toBe('yes');
    expect(params).not.toHaveProperty('HTTP_PROXY');
    expect(params).not.toHaveProperty('HTTP_X_FORWARDED');
  });

  it('answers 431 to a head over 16 KiB and 413 to a body over the limit', async () => {
    const big = await rawHttp(
      front.httpPort,
      `GET /params HTTP/1.1\r\nHost: app\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(statuses(big.text)).toEqual([431]);
    const huge = await rawHttp(
      front.httpPort,
      'POST /params HTTP/1.1\r\nHost: app\r\nContent-Length: 200000000\r\nConnection: close\r\n\r\n',
    );
    expect(statuses(huge.text)).toEqual([413]);
  });
});

describe('the --http front', () => {
  afterAll(stopAll);

  it('binds 127.0.0.1 when given a port alone', async () => {
    const httpPort = await freePort();
    const fcgiPort = await freePort();
    const starter = startCli([
      '-p',
      String(fcgiPort),
      '-N',
      '1',
      '--allow-root',
      '--http',
      String(httpPort),
      HOSTILE_WORKER,
    ]);
    await starter.waitFor(/HTTP on http:\/\/127\.0\.0\.1:\d+\//);
    const listening = execFileSync('ss', ['-Hltn', `sport = :${httpPort}`], { encoding: 'utf8' });
    expect(listening.trim().split('\n')).toHaveLength(1);
    expect(listening).toMatch(new RegExp(`\\s127\\.0\\.0\\.1:${httpPort}\\s`));
  });

  it('answers 408 to a head that does not come in time', async () => {
    // Not through the CLI: its header timeout is node:http's 60 s.
    const fcgi = startCli(['-p', String(await freePort()), '-N', '1', '--allow-root', HOSTILE_WORKER]);
    const port = Number((await fcgi.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    expect(await fastcgiGet(port, '/ready')).toBe(200);
    const http = await startHttpFront({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port },
      headersTimeout: 500,
      log: () => {},
    });
    try {
      const { text, closed } = await rawHttp(
        http.address.port,
        'GET /params HTTP/1.1\r\nHost: app\r\n',
        3000,
      );
      expect(statuses(text)).toEqual([408]);
      expect(closed).toBe(true);
    } finally {
      await http.close();
    }
  });
});
