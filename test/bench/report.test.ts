import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Results } from '../../bench/lib/results.js';
import { barChart, lineChart } from '../../bench/lib/svg.js';
import { evaluateTargets, renderReport, writeReport } from '../../bench/report.js';

const worker = (kind: string, keepConn: boolean, path: string, rps: number, p99 = 5) => ({
  kind,
  keepConn,
  path,
  rps,
  p50: 1,
  p99,
  errors: 0,
  rssPerWorkerMiB: 50,
});

/** A made-up run: figures chosen so that some targets pass and some miss. */
const sample: Results = {
  date: '2026-11-25T09:00:00.000Z',
  quick: false,
  machine: {
    cores: 2,
    cpu: 'Test CPU',
    kernel: 'Linux 6.1.0',
    os: 'Debian GNU/Linux 12 (bookworm)',
    node: 'v20.20.2',
    loadAverage: 0.5,
    peers: { 'nginx-light (Debian)': '1.22.1', 'fastcgi-client (npm)': '0.2.0' },
  },
  commands: ['npm run bench', 'tsx bench/codec.ts --json <codec.json>'],
  failures: [],
  codec: {
    rows: [
      {
        case: 'decode typical nginx request',
        unit: 'req/s',
        ours: 400_000,
        theirs: 100_000,
        note: 'target ≥ 3x',
      },
      { case: 'encode 1 MiB STDIN', unit: 'MiB/s', ours: 5000, theirs: 2500, note: '' },
    ],
  },
  workers: {
    wrk: 'wrk -t2 -c32 -d5s --latency http://<nginx>/<path>',
    rows: [
      worker('SDK createServer', false, '/', 9000),
      { ...worker('SDK createServer', true, '/', 22_000, 25), runs: [22_000, 19_000, 18_000] },
      { ...worker('SDK createServer', false, '/64k', 4000), runs: [3500, 4000] },
      worker('node-fastcgi', false, '/', 5000), // 1.8x: PASS
      worker('Go net/http/fcgi', false, '/', 10_000), // 0.9x: MISS
      worker('libfcgi C', false, '/', 10_000), // 0.9x ≥ 0.8: PASS
      // 1.1x: PASS; the medians (19,000 vs 19,500) are shown beside it.
      { ...worker('node:http cluster (proxy_pass)', true, '/', 20_000), runs: [20_000, 19_500, 19_000] },
    ],
  },
  starter: {
    wrk: 'wrk -t2 -c16 -d4s --latency http://<nginx>/',
    workers: 2,
    startupMs: { 'fcgi-prefork': 180, fcgistarter: 70, 'spawn-fcgi': 120 },
    respawnMs: 72,
    respawnSamples: [70, 72, 75, 80, 222],
    reload: { reloads: 5, sent: 1000, lost: 3 }, // MISS
    steady: [
      { worker: 'SDK createServer', starter: 'fcgi-prefork', runs: [9600, 9500] },
      { worker: 'SDK createServer', starter: 'fcgistarter', runs: [10_000, 9900] }, // 0.96x, noise 5%: PASS
      { worker: 'SDK createServer', starter: 'spawn-fcgi', runs: [9800, 9700] },
      { worker: 'php-cgi', starter: 'fcgi-prefork', runs: [5000, 4950] },
      { worker: 'php-cgi', starter: 'fcgistarter', runs: [6000, 5900] }, // 0.83x, noise 5%: MISS
      { worker: 'php-cgi', starter: 'spawn-fcgi', runs: [6000, 6000] },
    ],
  },
  cpu: {
    duration: 4,
    rows: [
      {
        kind: 'SDK createServer',
        keepConn: true,
        requests: 160_000,
        rps: 40_000,
        workerMicros: 14.04,
        nginxMicros: 16.26,
      },
      {
        kind: 'node:http (proxy_pass)',
        keepConn: true,
        requests: 200_000,
        rps: 50_000,
        workerMicros: 11.5,
        nginxMicros: 13.5,
      },
    ],
  },
  scaling: {
    wrk: 'wrk -t<min(2,c)> -c<c> -d3s --latency http://<nginx>/',
    points: [1, 8, 32, 128, 512].flatMap((c, i) => [
      { kind: 'SDK createServer', connections: c, rps: 2000 * (i + 1), p99: 1 + i, errors: 0 },
      { kind: 'node-fastcgi', connections: c, rps: 1500 * (i + 1), p99: 2 + i, errors: i === 4 ? 7 : 0 },
    ]),
  },
  client: {
    wrk: 'wrk -t2 -c32 -d4s --latency http://<front>/',
    inFlight: 16,
    front: [
      { front: 'fcgi-prefork --http', rps: 10_000, p50: 2, p99: 10, errors: 0 },
      { front: 'nginx (keep-conn, keepalive 32)', rps: 40_000, p50: 0.7, p99: 3, errors: 0 },
    ],
    clients: [
      { client: 'fcgi-prefork/client', target: 'SDK pool', keepConn: false, rps: 9000, errors: 0 },
      { client: 'fastcgi-client (npm)', target: 'SDK pool', keepConn: false, rps: 6000, errors: 0 },
      { client: 'fcgi-prefork/client', target: 'SDK pool', keepConn: true, rps: 27_000, errors: 0 },
    ],
  },
  balance: {
    rows: [
      { mode: 'shared', workers: 2, rps: 9000, perWorker: [4600, 4400], jain: 0.95, cswPerRequest: 1.5 },
      {
        mode: 'shared',
        workers: 4,
        rps: 9500,
        perWorker: [5000, 3000, 1000, 500],
        jain: 0.7,
        cswPerRequest: 2.5,
      },
      { mode: 'reuseport', workers: 2, rps: 9200, perWorker: [4600, 4600], jain: 1, cswPerRequest: 1.1 },
      {
        mode: 'reuseport',
        workers: 4,
        rps: 9800,
        perWorker: [2500, 2400, 2450, 2450],
        jain: 0.99,
        cswPerRequest: 1.2,
      },
    ],
    notes: ['made-up balance note'],
  },
};

/** Checks that an SVG is well-formed XML of the kind we write: balanced tags, quoted attributes, escaped text. */
function parseSvg(svg: string): { name: string; attrs: Record<string, string> }[] {
  const elements: { name: string; attrs: Record<string, string> }[] = [];
  const stack: string[] = [];
  for (const token of svg.match(/<[^>]*>|[^<]+/g) ?? []) {
    if (!token.startsWith('<')) {
      expect(token, 'text without stray markup').not.toMatch(/>|&(?!(amp|lt|gt|quot);)/);
      continue;
    }
    const tag = /^<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>$/.exec(token);
    expect(tag, `well-formed tag: ${token}`).not.toBeNull();
    const [, close, name, attrText, selfClose] = tag!;
    if (close) {
      expect(stack.pop(), `closing </${name}>`).toBe(name);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const [, key, value] of attrText!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      expect(attrs, `duplicate attribute ${key} in ${token}`).not.toHaveProperty(key!);
      attrs[key!] = value!;
    }
    elements.push({ name: name!, attrs });
    if (!selfClose) stack.push(name!);
  }
  expect(stack, 'every tag closed').toEqual([]);
  expect(elements[0]?.name).toBe('svg');
  // Every number drawn is finite.
  for (const { attrs } of elements)
    for (const key of ['x', 'y', 'width', 'height', 'x1', 'x2', 'y1', 'y2', 'cx', 'cy', 'r', 'data-value'])
      if (key in attrs) expect(Number.isFinite(Number(attrs[key])), `${key}="${attrs[key]}"`).toBe(true);
  // Shapes stay inside the picture.
  const width = Number(elements[0]!.attrs.width);
  const height = Number(elements[0]!.attrs.height);
  for (const { name, attrs } of elements.filter((e) => e.name === 'rect' || e.name === 'circle')) {
    const n = (key: string) => Number(attrs[key] ?? 0);
    const right = name === 'rect' ? n('x') + n('width') : n('cx') + n('r');
    const bottom = name === 'rect' ? n('y') + n('height') : n('cy') + n('r');
    expect(right, `${name} inside the width`).toBeLessThanOrEqual(width);
    expect(bottom, `${name} inside the height`).toBeLessThanOrEqual(height);
  }
  for (const { attrs } of elements.filter((e) => e.name === 'polyline'))
    for (const n of attrs.points!.split(/[ ,]/)) expect(Number.isFinite(Number(n))).toBe(true);
  return elements;
}

/** Bar lengths are value × one scale (within the 0.1 px rounding). */
function expectProportionalBars(svg: string): number {
  const bars = parseSvg(svg).filter((e) => e.attrs.class === 'bar');
  const biggest = bars.reduce((a, b) =>
    Number(b.attrs['data-value']) > Number(a.attrs['data-value']) ? b : a,
  );
  const scale = Number(biggest.attrs.width) / Number(biggest.attrs['data-value']);
  for (const bar of bars)
    expect(Math.abs(Number(bar.attrs.width) - Number(bar.attrs['data-value']) * scale)).toBeLessThan(0.11);
  return bars.length;
}

describe('bench report', () => {
  it('computes each target from the run: PASS and MISS as the figures say', () => {
    const byName = new Map(evaluateTargets(sample).map((t) => [t.name, t]));
    const status = (name: string) => byName.get(name)?.status;
    expect(status('SDK ≥ 1.5x node-fastcgi (keep-conn off, hello)')).toBe('PASS');
    expect(byName.get('SDK ≥ 1.5x node-fastcgi (keep-conn off, hello)')?.measured).toBe('1.80x');
    expect(status('SDK ≥ Go net/http/fcgi (keep-conn off, hello)')).toBe('MISS');
    expect(status('SDK ≥ 80% of libfcgi C (keep-conn off, hello)')).toBe('PASS');
    expect(status('SDK keep-conn ≥ node:http cluster behind proxy_pass with keepalive (hello)')).toBe('PASS');
    expect(
      byName.get('SDK keep-conn ≥ node:http cluster behind proxy_pass with keepalive (hello)')?.measured,
    ).toBe('1.10x (best of 3; medians 0.97x)');
    expect(status('SDK keep-conn p99 < 20 ms (hello)')).toBe('MISS');
    expect(status('codec ≥ 3x fastcgi-stream (decode typical nginx request)')).toBe('PASS');
    expect(status('starter per-request overhead 0 within noise of fcgistarter (SDK createServer)')).toBe(
      'PASS',
    );
    expect(status('starter per-request overhead 0 within noise of fcgistarter (php-cgi)')).toBe('MISS');
    expect(status('0 requests lost on reload')).toBe('MISS');
    expect(status('fairness (Jain) ≥ 0.9, shared, N=2')).toBe('PASS');
    expect(status('fairness (Jain) ≥ 0.9, shared, N=4')).toBe('MISS');
    expect(status('fairness (Jain) ≥ 0.9, reuseport, N=4')).toBe('PASS');
  });

  it('a run-to-run spread wider than the gap makes the starters equal within noise', () => {
    const noisy: Results = {
      ...sample,
      starter: {
        ...sample.starter!,
        steady: [
          { worker: 'php-cgi', starter: 'fcgi-prefork', runs: [5000, 4000] },
          { worker: 'php-cgi', starter: 'fcgistarter', runs: [6000, 5900] },
        ],
      },
    };
    const line = evaluateTargets(noisy).find((t) => t.name.includes('(php-cgi)'))!;
    expect(line.status).toBe('PASS'); // 0.83x, but one starter's own runs differ by 20%
    expect(line.measured).toBe('0.83x (best of 2; noise ±20%)');
  });

  it('a part that did not run is a MISS, never hidden; balance absent is N/A', () => {
    const { workers: _, balance: __, ...rest } = sample;
    const lines = evaluateTargets({ ...rest, failures: ['workers: bench/workers.ts exited with 1'] });
    const sdk = lines.find((t) => t.name.startsWith('SDK ≥ 1.5x'))!;
    expect(sdk).toMatchObject({ status: 'MISS', measured: 'not measured' });
    expect(lines.find((t) => t.name.startsWith('fairness'))).toMatchObject({ status: 'N/A' });
    const { markdown } = renderReport({ ...rest, failures: ['workers: bench/workers.ts exited with 1'] });
    expect(markdown).toContain('- workers: bench/workers.ts exited with 1');
    expect(markdown).toContain('- **MISS** SDK ≥ 1.5x node-fastcgi (keep-conn off, hello): not measured');
    expect(markdown).not.toContain('## Workers');
    expect(markdown).not.toContain('## Balance');
  });

  it('a balance mode with no rows is a MISS for each N', () => {
    const shared = sample.balance!.rows.filter((r) => r.mode === 'shared');
    const lines = evaluateTargets({ ...sample, balance: { rows: shared, notes: [] } });
    expect(lines.find((t) => t.name === 'fairness (Jain) ≥ 0.9, reuseport, N=2')).toMatchObject({
      status: 'MISS',
      measured: 'not measured',
    });
    expect(lines.find((t) => t.name === 'fairness (Jain) ≥ 0.9, shared, N=2')?.status).toBe('PASS');
  });

  it('writes markdown with the machine, the commands, the tables and the target lines', () => {
    const { markdown, charts } = renderReport(sample);
    expect(markdown).toMatch(/^# Benchmarks\n/);
    expect(markdown).not.toContain('Quick run');
    expect(markdown).toContain('| CPU | Test CPU, 2 cores |');
    expect(markdown).toContain('| nginx-light (Debian) | 1.22.1 |');
    expect(markdown).toContain('tsx bench/codec.ts --json <codec.json>');
    expect(markdown).toContain('- **PASS** SDK ≥ 1.5x node-fastcgi (keep-conn off, hello): 1.80x');
    expect(markdown).toContain('- **MISS** SDK keep-conn p99 < 20 ms (hello): 25.00 ms');
    expect(markdown).toContain(
      '| decode typical nginx request | 400.0k req/s | 100.0k req/s | 4.00x | target ≥ 3x |',
    );
    expect(markdown).toContain(
      '| SDK createServer | on | / | 22,000 (22,000 / 19,000 / 18,000) | 1.00 | 25.00 | 0 | 50.0 |',
    );
    expect(markdown).toContain('| SDK createServer | off | /64k | 4,000 (3,500 / 4,000) |');
    expect(markdown).toContain('| node-fastcgi | 1,500 (2.00) | 3,000 (3.00) |');
    expect(markdown).toContain('| SDK createServer | on | 40,000 | 14.0 | 16.3 |');
    expect(markdown).toContain('| node:http (proxy_pass) | on | 50,000 | 11.5 | 13.5 |');
    expect(markdown).toContain('7,500 (6.00), 7 errors');
    expect(markdown).toContain(
      '| requests lost during 5 reloads under load | 3 of 1,000 | cannot reload | cannot reload |',
    );
    expect(markdown).toContain('| fcgi-prefork --http | 10,000 | 2.00 | 10.00 | 0 | 0.25x |');
    expect(markdown).toContain('| fcgi-prefork/client | SDK pool | off | 9,000 | 0 | 1.50x |');
    expect(markdown).toContain('| shared | 4 | 9,500 | 5,000 / 3,000 / 1,000 / 500 | 0.700 | 2.50 |');
    expect(markdown).toContain('- made-up balance note');
    // Every chart the page shows is written, and every chart written is shown.
    const linked = [...markdown.matchAll(/\]\(charts\/([\w-]+\.svg)\)/g)].map((m) => m[1]);
    expect(new Set(linked)).toEqual(new Set(charts.keys()));
    expect([...charts.keys()]).toEqual(
      expect.arrayContaining(['workers-hello.svg', 'scaling.svg', 'balance-rps.svg', 'balance-jain.svg']),
    );
  });

  it("sets the other Node line's worker figures beside this run's, as ratios", () => {
    const workersOtherLine = {
      node: 'v24.0.0',
      wrk: sample.workers!.wrk,
      rows: [worker('SDK createServer', false, '/', 9900), worker('Go net/http/fcgi', true, '/', 100)],
    };
    const { markdown } = renderReport({ ...sample, workersOtherLine });
    expect(markdown).toContain('## Workers on Node v24.0.0');
    expect(markdown).toContain(`| SDK createServer | off | / | 9,900 | 9,000 | 1.10x |`);
    // A row this run did not measure has no ratio.
    expect(markdown).toContain('| Go net/http/fcgi | on | / | 100 | - | - |');
    expect(renderReport(sample).markdown).not.toContain('## Workers on Node');
  });

  it('shows the handler costs in one process, the access log cost, and the fetch targets', () => {
    const hotpath = {
      count: 1000,
      rounds: 3,
      rows: [
        { kind: 'SDK createServer', micros: 5, runs: [5, 5.1, 4.9] },
        { kind: 'SDK createServer + access log', micros: 6.5, runs: [6.5, 6.4, 6.6] },
        { kind: 'SDK serve (fetch)', micros: 5.4, runs: [5.4, 5.5, 5.3] },
        { kind: '@hono/node-server', micros: 6, runs: [6, 6, 6] },
      ],
    };
    const { markdown } = renderReport({ ...sample, hotpath });
    expect(markdown).toContain('## Handler cost in one process');
    expect(markdown).toContain('| SDK createServer + access log | 6.50 (6.50 / 6.40 / 6.60) | 1.30x |');
    expect(markdown).toContain('The access log costs 1.50 µs per request here.');
    const lines = evaluateTargets({ ...sample, hotpath });
    // 5 / 5.4 = 0.93x of createServer's speed; 6 / 5.4 = 1.11x hono's.
    expect(lines).toContainEqual({
      name: 'serve() ≥ 0.9x SDK createServer’s speed (hotpath)',
      measured: '0.93x',
      status: 'PASS',
    });
    expect(lines).toContainEqual({
      name: 'serve() faster than @hono/node-server (hotpath)',
      measured: '1.11x',
      status: 'PASS',
    });
    const slow = {
      ...hotpath,
      rows: hotpath.rows.map((r) => (r.kind === 'SDK serve (fetch)' ? { ...r, micros: 7 } : r)),
    };
    expect(evaluateTargets({ ...sample, hotpath: slow }).filter((l) => l.name.startsWith('serve()'))).toEqual(
      [
        { name: 'serve() ≥ 0.9x SDK createServer’s speed (hotpath)', measured: '0.71x', status: 'MISS' },
        { name: 'serve() faster than @hono/node-server (hotpath)', measured: '0.86x', status: 'MISS' },
      ],
    );
  });

  it('says so in the header when the run was a quick one', () => {
    expect(renderReport({ ...sample, quick: true }).markdown).toContain('**Quick run**');
  });

  it('draws well-formed SVG with bars proportional to their values', () => {
    const { charts } = renderReport(sample);
    for (const [file, svg] of charts) {
      if (file === 'scaling.svg') continue;
      expect(expectProportionalBars(svg), file).toBeGreaterThan(0);
    }
    // workers-hello: the SDK keep-conn bar (22,000) is 2.2x the libfcgi bar (10,000).
    const bars = parseSvg(charts.get('workers-hello.svg')!).filter((e) => e.attrs.class === 'bar');
    const width = (v: number) => Number(bars.find((b) => Number(b.attrs['data-value']) === v)!.attrs.width);
    expect(width(22_000) / width(10_000)).toBeCloseTo(2.2, 2);
    // Not measured (node-fastcgi keep-conn on) is drawn as text, not as a zero bar.
    expect(bars).toHaveLength(6);
    expect(charts.get('workers-hello.svg')).toContain('not measured');
  });

  it('draws the scaling curve with heights proportional to req/s', () => {
    const svg = renderReport(sample).charts.get('scaling.svg')!;
    const points = parseSvg(svg).filter((e) => e.attrs.class === 'point');
    expect(points).toHaveLength(10);
    expect(parseSvg(svg).filter((e) => e.name === 'polyline')).toHaveLength(2);
    const baseline = Math.max(
      ...parseSvg(svg)
        .filter((e) => e.name === 'line')
        .map((e) => Number(e.attrs.y1)),
    );
    const heightPerRps = (baseline - Number(points[0]!.attrs.cy)) / Number(points[0]!.attrs['data-value']);
    for (const p of points)
      expect(
        Math.abs(baseline - Number(p.attrs.cy) - Number(p.attrs['data-value']) * heightPerRps),
      ).toBeLessThan(0.11);
  });

  it('escapes labels and draws no NaN for empty or odd input', () => {
    const svg = barChart({
      title: 'a <b> & "c"',
      unit: 'req/s',
      categories: ['x & y', 'z'],
      series: [{ name: '<one>', values: [Number.NaN, 0] }],
    });
    parseSvg(svg);
    expect(svg).not.toContain('NaN');
    parseSvg(
      lineChart({ title: 't', xLabel: 'x', yLabel: 'y', x: [1], series: [{ name: 's', values: [null] }] }),
    );
  });

  it('writes docs/benchmarks.md and docs/charts/*.svg', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    try {
      writeReport(sample, dir);
      expect(readFileSync(join(dir, 'benchmarks.md'), 'utf8')).toContain('## Targets');
      expect(readdirSync(join(dir, 'charts')).sort()).toEqual([...renderReport(sample).charts.keys()].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
