import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { ROOT, startCli, stopAll, until } from '../helpers/processes.js';

afterEach(stopAll);

/**
 * Queried by the dashboard, served once their features land (the listen queue; the request
 * duration histogram). When one is served, this test fails until it leaves this list.
 */
const PENDING = ['fcgi_prefork_listen_queue', 'fcgi_prefork_request_duration_seconds'];

/** Every metric name in the dashboard's queries; a histogram's series count as the histogram. */
function dashboardMetrics(): Set<string> {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples/grafana/fcgi-prefork.json'), 'utf8')) as {
    panels: { targets: { expr: string }[] }[];
    templating: { list: { query: string }[] };
  };
  const exprs = [
    ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
    ...dashboard.templating.list.map((v) => v.query),
  ];
  const names = new Set<string>();
  for (const expr of exprs)
    for (const [name] of expr.matchAll(/\bfcgi_prefork_[a-z_]+/g))
      names.add(name.replace(/_(bucket|sum|count)$/, ''));
  return names;
}

describe('the Grafana dashboard', () => {
  it('queries only metrics that --metrics serves, apart from the pending ones', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    startCli([
      '-p',
      String(port),
      '-N',
      '2',
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--allow-root',
      'test/fixtures/slow-sdk-worker.ts',
    ]);
    const target = { host: '127.0.0.1', port };
    await waitServing(target, 2, 60_000);
    for (let i = 0; i < 4; i++) await fcgiGet(target, '/');
    let served = new Set<string>();
    // Every per-worker family has samples once both workers have reported.
    await until(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
        return (
          /^fcgi_prefork_worker_cpu_seconds_total\{/m.test(text) && /^fcgi_prefork_workers 2$/m.test(text)
        );
      },
      60_000,
      'both workers in the metrics',
    );
    const queried = dashboardMetrics();
    expect(queried.size).toBeGreaterThanOrEqual(8);
    const missing = [...queried].filter((name) => !served.has(name)).sort();
    expect(missing).toEqual([...PENDING].sort());
  }, 180_000);
});
