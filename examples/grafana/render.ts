// Draws docs/grafana.png: the dashboard's panels with data from a real run, without Grafana.
// Starts a pool with --metrics, loads it for about a minute (quick requests, CPU-heavy ones,
// slow ones, a worker killed), reads /metrics every 2 s, computes what each panel's query
// computes (rates from counter deltas), draws the panels as SVG (bench/lib/svg.ts) and turns
// that into PNG with rsvg-convert (Debian: librsvg2-bin).
//   npx tsx examples/grafana/render.ts
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChart, type Series } from '../../bench/lib/svg.js';
import { createClient } from '../../src/client/client.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PORT = 19_571;
const METRICS = 19_572;
const SAMPLES = 30;
const EVERY_MS = 2000;

type Scrape = Map<string, { labels: string; value: number }[]>;

function parse(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push({ labels: m[2] ?? '', value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const pool = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'starter/cli.ts',
      '-p',
      String(PORT),
      '-N',
      '3',
      '--metrics',
      `127.0.0.1:${METRICS}`,
      '--allow-root',
      'test/fixtures/slow-sdk-worker.ts',
    ],
    { cwd: ROOT, stdio: 'inherit' },
  );
  const client = createClient({ host: '127.0.0.1', port: PORT }, { keepConn: false, connections: 8 });
  const get = (uri: string) =>
    client
      .requestAll({ params: { REQUEST_METHOD: 'GET', REQUEST_URI: uri, SERVER_PROTOCOL: 'HTTP/1.1' } })
      .catch(() => null);
  await sleep(8000);
  let running = true;
  // Load that changes over the run: a steady trickle, bursts of CPU work, some slow requests.
  const load = (async () => {
    for (let i = 0; running; i++) {
      const phase = Math.floor(i / 40) % 3;
      if (phase === 1) await Promise.all([get('/burn?ms=40'), get('/')]);
      else if (phase === 2) await Promise.all([get('/slow/report?ms=300'), get('/'), get('/')]);
      else await get('/');
    }
  })();
  const scrapes: Scrape[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i === SAMPLES / 2) {
      const text = await (await fetch(`http://127.0.0.1:${METRICS}/metrics`)).text();
      const pid = /pid="(\d+)"/.exec(text)?.[1];
      if (pid) process.kill(Number(pid), 'SIGKILL'); // a crash: the restarts panel moves
    }
    scrapes.push(parse(await (await fetch(`http://127.0.0.1:${METRICS}/metrics`)).text()));
    await sleep(EVERY_MS);
  }
  running = false;
  await load;
  client.close();
  pool.kill('SIGTERM');

  const seconds = EVERY_MS / 1000;
  const x = scrapes.slice(1).map((_, i) => ((i + 1) % 5 === 0 ? `${(i + 1) * seconds}s` : ''));
  const per = (name: string, f: (now: number, before: number | undefined) => number | null): Series[] => {
    const keys = new Set(scrapes.flatMap((s) => (s.get(name) ?? []).map((e) => e.labels)));
    return [...keys].map((labels) => ({
      name: labels.replace(/[{}"]/g, '').replace(/,/g, ' '),
      values: scrapes.slice(1).map((s, i) => {
        const now = s.get(name)?.find((e) => e.labels === labels)?.value;
        const before = scrapes[i]!.get(name)?.find((e) => e.labels === labels)?.value;
        return now === undefined ? null : f(now, before);
      }),
    }));
  };
  const rate = (now: number, before: number | undefined) =>
    before === undefined ? null : Math.max(0, now - before) / seconds;
  const total = (series: Series[]) =>
    series[0]!.values.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const single = (name: string) => scrapes.slice(1).map((s) => s.get(name)?.[0]?.value ?? null);
  const busy = scrapes
    .slice(1)
    .map((s) => (s.get('fcgi_prefork_worker_active_requests') ?? []).filter((e) => e.value > 0).length);
  const panels = [
    lineChart({
      title: 'Requests/s',
      xLabel: 'time',
      yLabel: 'req/s',
      x,
      series: [{ name: 'requests/s', values: total(per('fcgi_prefork_worker_requests_total', rate)) }],
    }),
    lineChart({
      title: 'Busy and idle workers',
      xLabel: 'time',
      yLabel: 'workers',
      x,
      series: [
        { name: 'busy', values: busy },
        { name: 'idle', values: single('fcgi_prefork_workers').map((w, i) => (w ?? 0) - busy[i]!) },
        { name: 'desired', values: single('fcgi_prefork_workers_desired') },
      ],
    }),
    lineChart({
      title: 'Restarts (per 2 s)',
      xLabel: 'time',
      yLabel: 'restarts',
      x,
      series: [
        {
          name: 'restarts',
          values: per('fcgi_prefork_restarts_total', (n, b) => (b === undefined ? null : n - b))[0]!.values,
        },
      ],
    }),
    lineChart({
      title: 'RSS per worker',
      xLabel: 'time',
      yLabel: 'MiB',
      x,
      series: per('fcgi_prefork_worker_resident_memory_bytes', (n) => n / 2 ** 20),
    }),
    lineChart({
      title: 'CPU per worker',
      xLabel: 'time',
      yLabel: 'CPU seconds/s',
      x,
      series: per('fcgi_prefork_worker_cpu_seconds_total', rate),
    }),
    lineChart({
      title: 'Listen queue (pending: served once the listen-queue metric lands)',
      xLabel: 'time',
      yLabel: 'queued',
      x,
      series: [{ name: 'no data yet', values: x.map(() => null) }],
    }),
  ];
  // Two columns of panels, as the dashboard lays them out.
  const W = 760;
  const H = 420;
  const parts = panels.map((svg, i) => {
    const inner = svg.replace(/^<svg [^>]*>/, '').replace(/<\/svg>\s*$/, '');
    return `<svg x="${(i % 2) * W}" y="${Math.floor(i / 2) * H}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${inner}</svg>`;
  });
  const rows = Math.ceil(panels.length / 2);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${rows * H}">\n${parts.join('\n')}\n</svg>\n`;
  const svgPath = join(ROOT, 'docs', 'grafana.svg');
  writeFileSync(svgPath, svg);
  execFileSync('rsvg-convert', ['-o', join(ROOT, 'docs', 'grafana.png'), svgPath]);
  process.stderr.write('wrote docs/grafana.png (and docs/grafana.svg)\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
