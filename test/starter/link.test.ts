import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, startCli, stopAll, until } from '../helpers/processes.js';

afterEach(stopAll);

describe('starter and SDK workers', () => {
  it('recycles an SDK worker after --max-requests, without a failed request', async () => {
    const port = await freePort();
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '1',
      '--max-requests',
      '20',
      '--allow-root',
      'examples/hello.ts',
    ]);
    await starter.waitFor(/listening on/);
    const target = { host: '127.0.0.1', port };
    await waitServing(target);
    const pids = new Set<string>();
    // max-requests 20 with up to 10% jitter: 60 requests cross at least two retirements.
    for (let i = 0; i < 60; i++) pids.add(/pid (\d+)/.exec(await fcgiGet(target, '/', 20_000))?.[1] ?? '?');
    expect(pids.size).toBeGreaterThanOrEqual(2);
    expect(starter.output()).toMatch(/retiring: served \d+ requests \(--max-requests\)/);
    expect(starter.output()).not.toMatch(/giving up/);
  });

  it('serves Prometheus metrics with the pool’s figures', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const starter = startCli([
      '-p',
      String(port),
      '-N',
      '2',
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--allow-root',
      'examples/hello.ts',
    ]);
    await starter.waitFor(/listening on/);
    const target = { host: '127.0.0.1', port };
    await waitServing(target);
    for (let i = 0; i < 5; i++) await fcgiGet(target);
    // Both workers up and the counts reported (a busy machine may take a while for the second
    // tsx worker to start): what the metrics say, polled.
    let text = '';
    await until(
      async () => {
        text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const served = [...text.matchAll(/^fcgi_prefork_worker_requests_total\{[^}]*\} (\d+)$/gm)].reduce(
          (a, m) => a + Number(m[1]),
          0,
        );
        return served >= 6 && /^fcgi_prefork_workers 2$/m.test(text);
      },
      20_000,
      'both workers and their request counts in the metrics',
    );
    expect((await childrenOf(starter.pid)).length).toBe(2);
    expect(text).toMatch(/^# TYPE fcgi_prefork_workers gauge$/m);
    expect(text).toMatch(/^fcgi_prefork_workers 2$/m);
    expect(text).toMatch(/^fcgi_prefork_backlog 1024$/m);
    expect(text).toMatch(/^fcgi_prefork_worker_resident_memory_bytes\{slot="1",pid="\d+"\} \d+$/m);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status).toBe(404);
  });
});
