// Renders one run's results (bench/results/<date>.json) as docs/benchmarks.md and
// docs/charts/*.svg: tables, charts and the targets as PASS/MISS lines, all computed from the
// run; no number is typed in by hand. bench/run.ts calls it after a run; to re-render a run:
//   npx tsx bench/report.ts bench/results/<date>.json
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Results, WorkerRow } from './lib/results.js';
import { barChart, lineChart } from './lib/svg.js';

export type Status = 'PASS' | 'MISS' | 'N/A';

export interface TargetLine {
  readonly name: string;
  readonly measured: string;
  readonly status: Status;
}

export interface Report {
  readonly markdown: string;
  /** File name under docs/charts → SVG text. */
  readonly charts: ReadonlyMap<string, string>;
  readonly targets: readonly TargetLine[];
}

const SDK = 'SDK createServer';
const NODE_FASTCGI = 'node-fastcgi';
const GO = 'Go net/http/fcgi';
const LIBFCGI = 'libfcgi C';
const NODE_HTTP = 'node:http cluster (proxy_pass)';
/** Both are targets: a mode that was not measured is a MISS. */
const BALANCE_MODES = ['shared', 'reuseport'] as const;
/** Below this run-to-run spread, a difference between starters counts as noise anyway. */
const MIN_NOISE = 0.05;

const NOT_MEASURED = 'not measured';
const x2 = (n: number) => `${n.toFixed(2)}x`;

function workerRow(results: Results, kind: string, keepConn: boolean, path = '/'): WorkerRow | undefined {
  return results.workers?.rows.find((r) => r.kind === kind && r.keepConn === keepConn && r.path === path);
}

function ratioLine(name: string, a: number | undefined, b: number | undefined, min: number): TargetLine {
  if (a === undefined || b === undefined || !(b > 0)) return { name, measured: NOT_MEASURED, status: 'MISS' };
  const ratio = a / b;
  return { name, measured: x2(ratio), status: ratio >= min ? 'PASS' : 'MISS' };
}

/**
 * A worker target: the ratio of the best rounds decides (interference only slows a round down),
 * and the ratio of the median rounds is shown beside it, for how far one lucky round carries it.
 */
function workerRatioLine(
  name: string,
  ours: WorkerRow | undefined,
  theirs: WorkerRow | undefined,
  min: number,
): TargetLine {
  const line = ratioLine(name, ours?.rps, theirs?.rps, min);
  if (!ours?.runs?.length || !theirs?.runs?.length || line.measured === NOT_MEASURED) return line;
  const medians = median(ours.runs) / median(theirs.runs);
  return { ...line, measured: `${line.measured} (best of ${ours.runs.length}; medians ${x2(medians)})` };
}

const median = (runs: readonly number[]) => {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const best = (runs: readonly number[]) => Math.max(0, ...runs);
/** Run-to-run spread of one configuration: (max − min) / max. */
const spread = (runs: readonly number[]) =>
  runs.length < 2 || best(runs) === 0 ? 0 : 1 - Math.min(...runs) / best(runs);

/** The targets, each PASS or MISS from this run's figures (N/A only when a part was not run by design). */
export function evaluateTargets(results: Results): TargetLine[] {
  const lines: TargetLine[] = [];
  const sdkOff = workerRow(results, SDK, false);
  lines.push(
    workerRatioLine(
      'SDK ≥ 1.5x node-fastcgi (keep-conn off, hello)',
      sdkOff,
      workerRow(results, NODE_FASTCGI, false),
      1.5,
    ),
    workerRatioLine(
      'SDK ≥ Go net/http/fcgi (keep-conn off, hello)',
      sdkOff,
      workerRow(results, GO, false),
      1,
    ),
    workerRatioLine(
      'SDK ≥ 80% of libfcgi C (keep-conn off, hello)',
      sdkOff,
      workerRow(results, LIBFCGI, false),
      0.8,
    ),
  );
  const sdkOn = workerRow(results, SDK, true);
  lines.push(
    workerRatioLine(
      'SDK keep-conn ≥ node:http cluster behind proxy_pass with keepalive (hello)',
      sdkOn,
      workerRow(results, NODE_HTTP, true),
      1,
    ),
  );
  lines.push(
    sdkOn
      ? {
          name: 'SDK keep-conn p99 < 20 ms (hello)',
          measured: `${sdkOn.p99.toFixed(2)} ms`,
          status: sdkOn.p99 < 20 ? 'PASS' : 'MISS',
        }
      : { name: 'SDK keep-conn p99 < 20 ms (hello)', measured: NOT_MEASURED, status: 'MISS' },
  );
  const typical = results.codec?.rows.find((r) => r.case === 'decode typical nginx request');
  lines.push(
    ratioLine(
      'codec ≥ 3x fastcgi-stream (decode typical nginx request)',
      typical?.ours,
      typical?.theirs ?? undefined,
      3,
    ),
  );

  const workersOfStarter = [...new Set(results.starter?.steady.map((s) => s.worker) ?? [])];
  if (workersOfStarter.length === 0)
    lines.push({
      name: 'starter per-request overhead 0 within noise of fcgistarter',
      measured: NOT_MEASURED,
      status: 'MISS',
    });
  for (const worker of workersOfStarter) {
    const name = `starter per-request overhead 0 within noise of fcgistarter (${worker})`;
    const runs = (starter: string) =>
      results.starter?.steady.find((s) => s.worker === worker && s.starter === starter)?.runs ?? [];
    const ours = runs('fcgi-prefork');
    const theirs = runs('fcgistarter');
    if (best(ours) === 0 || best(theirs) === 0) {
      lines.push({ name, measured: NOT_MEASURED, status: 'MISS' });
      continue;
    }
    const noise = Math.max(MIN_NOISE, spread(ours), spread(theirs));
    const ratio = best(ours) / best(theirs);
    lines.push({
      name,
      measured: `${x2(ratio)} (best of ${ours.length}; noise ±${(noise * 100).toFixed(0)}%)`,
      status: ratio >= 1 - noise ? 'PASS' : 'MISS',
    });
  }
  const reload = results.starter?.reload;
  lines.push(
    reload && reload.sent > 0
      ? {
          name: '0 requests lost on reload',
          measured: `${reload.lost} of ${reload.sent} over ${reload.reloads} reloads`,
          status: reload.lost === 0 ? 'PASS' : 'MISS',
        }
      : { name: '0 requests lost on reload', measured: NOT_MEASURED, status: 'MISS' },
  );

  if (!results.balance) {
    lines.push({
      name: 'fairness (Jain) ≥ 0.9 at N=2 and 4',
      measured: 'bench/balance.ts not run',
      status: 'N/A',
    });
  } else {
    for (const mode of BALANCE_MODES)
      for (const n of [2, 4]) {
        const row = results.balance.rows.find((r) => r.mode === mode && r.workers === n);
        const name = `fairness (Jain) ≥ 0.9, ${mode}, N=${n}`;
        lines.push(
          row
            ? { name, measured: row.jain.toFixed(3), status: row.jain >= 0.9 ? 'PASS' : 'MISS' }
            : { name, measured: NOT_MEASURED, status: 'MISS' },
        );
      }
  }
  if (results.hotpath) {
    // Speed is the inverse of CPU per request: serve() at ≥ 0.9x createServer's speed costs at
    // most 1/0.9 of its µs; ahead of hono costs less than hono.
    const micros = (kind: string) => results.hotpath?.rows.find((r) => r.kind === kind)?.micros;
    const serve = micros('SDK serve (fetch)');
    const sdk = micros('SDK createServer');
    const hono = micros('@hono/node-server');
    const speed = (name: string, a: number | undefined, b: number | undefined, at: number) => {
      const ratio = a && b ? b / a : Number.NaN;
      lines.push(
        Number.isFinite(ratio)
          ? { name, measured: `${ratio.toFixed(2)}x`, status: ratio >= at ? 'PASS' : 'MISS' }
          : { name, measured: NOT_MEASURED, status: 'MISS' },
      );
    };
    speed('serve() ≥ 0.9x SDK createServer’s speed (hotpath)', serve, sdk, 0.9);
    speed('serve() faster than @hono/node-server (hotpath)', serve, hono, 1.0001);
  }
  return lines;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');

function rate(n: number, unit: string): string {
  const text = n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
  return `${text} ${unit}`;
}

export function renderReport(results: Results): Report {
  const charts = new Map<string, string>();
  const chart = (file: string, svg: string, alt: string) => {
    charts.set(file, svg);
    return `![${alt}](charts/${file})`;
  };
  const targets = evaluateTargets(results);
  const md: string[] = [];
  const m = results.machine;
  md.push('# Benchmarks', '');
  md.push(
    `Generated by \`npm run bench\` (bench/run.ts, rendered by bench/report.ts) on ${results.date}. Do not edit: every figure comes from \`bench/results/\` of that run. Only ratios within this one run are claimed; absolute numbers depend on the machine.`,
    '',
  );
  if (results.quick)
    md.push(
      `> **Quick run** (\`npm run bench -- --quick\`: about 1 s per point; load average ${m.loadAverage.toFixed(2)} on ${m.cores} cores at start). These figures only show that the suite works; they are not results. A full \`npm run bench\` on a quiet machine replaces this page.`,
      '',
    );
  if (results.failures.length > 0) {
    md.push('**Benchmarks that failed in this run** (their sections and targets are missing or MISS):', '');
    for (const f of results.failures) md.push(`- ${f}`);
    md.push('');
  }
  md.push('## Machine', '');
  md.push(
    table(
      ['', 'this run'],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores`],
        ['kernel', m.kernel],
        ['OS', m.os],
        ['Node', m.node],
        ['load average at start', m.loadAverage.toFixed(2)],
        ...Object.entries(m.peers).map(([name, version]) => [name, version]),
      ],
    ),
    '',
  );
  // A record of what this run executed (bench/run.ts), not a sample to copy: a list, so the
  // docs samples test, which runs every fenced block, does not run the benchmarks again.
  md.push('## Commands', '', ...results.commands.map((c) => `- \`${c}\``), '');
  const wrkLines = [
    ['workers', results.workers?.wrk],
    ['starter', results.starter?.wrk],
    ['scaling', results.scaling?.wrk],
    ['client (HTTP fronts)', results.client?.wrk],
  ].filter((l): l is [string, string] => l[1] !== undefined);
  if (wrkLines.length > 0) {
    md.push('wrk, per measured point (after a 1 s warm-up run):', '');
    for (const [name, line] of wrkLines) md.push(`- ${name}: \`${line}\``);
    md.push('');
  }

  md.push('## Targets', '');
  for (const t of targets) md.push(`- **${t.status}** ${t.name}: ${t.measured}`);
  md.push('');

  if (results.codec) {
    md.push('## Codec (against fastcgi-stream)', '');
    md.push(
      table(
        ['case', 'fcgi-prefork', 'fastcgi-stream', 'ratio', 'note'],
        results.codec.rows.map((r) => [
          r.case,
          rate(r.ours, r.unit),
          r.theirs === null ? '-' : rate(r.theirs, r.unit),
          r.theirs === null || !(r.theirs > 0) ? '-' : x2(r.ours / r.theirs),
          r.note,
        ]),
      ),
      '',
    );
  }

  if (results.workers) {
    const rows = results.workers.rows;
    const kinds = [...new Set(rows.map((r) => r.kind))];
    md.push('## Workers', '');
    md.push(
      'Two workers of each kind under fcgi-prefork (the node:http cluster: two processes behind `proxy_pass`), one nginx in front, `fastcgi_keep_conn` off and on (upstream `keepalive 32`); `/` is hello world, `/64k` a 64 KiB response. req/s is the best of the rounds (the rounds, in alternating order of kinds, in brackets), and p50/p99 come from that round. RSS is per worker, after the run. libfcgi C and php-cgi serve one connection at a time: with keep-conn, a connection nginx keeps open holds a worker while others wait, which shows in their p99. Each pool: `node dist/starter/cli.js -p <port> -N 2 --allow-root -- <worker>`, the workers in `bench/peers/`.',
      '',
    );
    md.push(
      table(
        ['worker', 'keep-conn', 'path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'RSS/worker MiB'],
        rows.map((r) => [
          r.kind,
          r.keepConn ? 'on' : 'off',
          r.path,
          r.runs && r.runs.length > 1 ? `${int(r.rps)} (${r.runs.map(int).join(' / ')})` : int(r.rps),
          ms2(r.p50),
          ms2(r.p99),
          String(r.errors),
          r.rssPerWorkerMiB.toFixed(1),
        ]),
      ),
      '',
    );
    for (const [path, file, label] of [
      ['/', 'workers-hello.svg', 'hello world'],
      ['/64k', 'workers-64k.svg', '64 KiB response'],
    ] as const) {
      const values = (keepConn: boolean) =>
        kinds.map(
          (k) => rows.find((r) => r.kind === k && r.keepConn === keepConn && r.path === path)?.rps ?? null,
        );
      md.push(
        chart(
          file,
          barChart({
            title: `req/s per worker kind, ${label}, 2 workers behind nginx`,
            unit: 'req/s',
            categories: kinds,
            series: [
              { name: 'keep-conn off', values: values(false) },
              { name: 'keep-conn on', values: values(true) },
            ],
          }),
          `req/s per worker kind, ${label}`,
        ),
        '',
      );
    }
  }

  if (results.cpu) {
    const c = results.cpu;
    md.push('## CPU per request', '');
    md.push(
      `One worker behind one nginx process, wrk -t2 -c16 -d${c.duration}s; CPU time (user + system, from \`/proc/<pid>/stat\`) of the worker and of nginx divided by the requests served. Far steadier than req/s on a busy machine, and it shows where a throughput ratio comes from: on this machine wrk, nginx and the workers share the same cores.`,
      '',
      table(
        ['worker', 'keep-conn', 'req/s', 'worker µs/request', 'nginx µs/request'],
        c.rows.map((r) => [
          r.kind,
          r.keepConn ? 'on' : 'off',
          int(r.rps),
          r.workerMicros.toFixed(1),
          r.nginxMicros.toFixed(1),
        ]),
      ),
      '',
    );
  }

  if (results.scaling) {
    const points = results.scaling.points;
    const kinds = [...new Set(points.map((p) => p.kind))];
    const levels = [...new Set(points.map((p) => p.connections))].sort((a, b) => a - b);
    md.push('## Scaling with concurrency', '');
    md.push(
      'Hello world, 2 workers under fcgi-prefork behind nginx (`fastcgi_keep_conn` off); req/s (p99 ms).',
      '',
    );
    md.push(
      table(
        ['worker', ...levels.map((c) => `-c${c}`)],
        kinds.map((k) => [
          k,
          ...levels.map((c) => {
            const p = points.find((q) => q.kind === k && q.connections === c);
            return p ? `${int(p.rps)} (${ms2(p.p99)})${p.errors > 0 ? `, ${p.errors} errors` : ''}` : '-';
          }),
        ]),
      ),
      '',
    );
    md.push(
      chart(
        'scaling.svg',
        lineChart({
          title: 'req/s against concurrent connections (wrk -c)',
          xLabel: 'connections',
          yLabel: 'req/s',
          x: levels,
          series: kinds.map((k) => ({
            name: k,
            values: levels.map((c) => points.find((p) => p.kind === k && p.connections === c)?.rps ?? null),
          })),
        }),
        'scaling curve',
      ),
      '',
    );
  }

  if (results.starter) {
    const s = results.starter;
    const starters = Object.keys(s.startupMs);
    const runsOf = (worker: string, starter: string) =>
      s.steady.find((x) => x.worker === worker && x.starter === starter)?.runs ?? [];
    const workers = [...new Set(s.steady.map((x) => x.worker))];
    md.push('## Starters', '');
    md.push(
      `The same worker (${s.workers} of them) under each starter. Steady req/s: behind the same nginx, rounds alternating between starters, every run listed (the best counts). Pools: \`node dist/starter/cli.js -p <port> -N ${s.workers} --allow-root -- <worker>\`, \`fcgistarter -c <worker> -p <port> -i 127.0.0.1 -N ${s.workers}\`, \`spawn-fcgi -p <port> -a 127.0.0.1 -F ${s.workers} -- <worker>\`.`,
      '',
    );
    md.push(
      table(
        ['measure', ...starters],
        [
          ['start → first served request (SDK worker)', ...starters.map((x) => `${int(s.startupMs[x]!)} ms`)],
          [
            'respawn after kill -9 → served (median of 5)',
            ...starters.map((x) => (x === 'fcgi-prefork' ? `${int(s.respawnMs)} ms` : 'no respawn')),
          ],
          [
            `requests lost during ${s.reload.reloads} reloads under load`,
            ...starters.map((x) =>
              x === 'fcgi-prefork' ? `${s.reload.lost} of ${int(s.reload.sent)}` : 'cannot reload',
            ),
          ],
          ...workers.map((w) => [
            `${w}: steady req/s`,
            ...starters.map((x) =>
              runsOf(w, x)
                .map((r) => int(r))
                .join(' / '),
            ),
          ]),
        ],
      ),
      '',
    );
    md.push(
      chart(
        'starters.svg',
        barChart({
          title: 'steady req/s of the same pool under each starter (best run)',
          unit: 'req/s',
          categories: workers,
          series: starters.map((x) => ({ name: x, values: workers.map((w) => best(runsOf(w, x)) || null) })),
        }),
        'steady req/s per starter',
      ),
      '',
    );
  }

  if (results.client) {
    const c = results.client;
    md.push('## HTTP front and FastCGI client', '');
    const nginx = c.front.find((f) => f.front.startsWith('nginx'));
    md.push(
      "The starter's `--http` front (`node dist/starter/cli.js --http 127.0.0.1:<http> -p <port> -N 2 --allow-root bench/peers/sdk-hello.mjs`) and nginx, each in front of that same SDK pool, in turn:",
      '',
      table(
        ['front', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs nginx'],
        c.front.map((f) => [
          f.front,
          int(f.rps),
          ms2(f.p50),
          ms2(f.p99),
          String(f.errors),
          nginx && nginx.rps > 0 ? x2(f.rps / nginx.rps) : '-',
        ]),
      ),
      '',
    );
    const theirs = (target: string) =>
      c.clients.find((r) => r.target === target && r.client.startsWith('fastcgi-client'));
    md.push(
      `FastCGI clients, ${c.inFlight} requests in flight, hello world (fastcgi-client opens a connection per request, as keep-conn off):`,
      '',
      table(
        ['client', 'target', 'keep-conn', 'req/s', 'errors', 'vs fastcgi-client'],
        c.clients.map((r) => {
          const t = theirs(r.target);
          return [
            r.client,
            r.target,
            r.keepConn ? 'on' : 'off',
            int(r.rps),
            String(r.errors),
            t && t.rps > 0 ? x2(r.rps / t.rps) : '-',
          ];
        }),
      ),
      '',
    );
    const targetsOfClient = [...new Set(c.clients.map((r) => r.target))];
    const series = [...new Set(c.clients.map((r) => `${r.client}, keep-conn ${r.keepConn ? 'on' : 'off'}`))];
    md.push(
      chart(
        'clients.svg',
        barChart({
          title: 'FastCGI client req/s',
          unit: 'req/s',
          categories: targetsOfClient,
          series: series.map((name) => ({
            name,
            values: targetsOfClient.map(
              (t) =>
                c.clients.find(
                  (r) => r.target === t && `${r.client}, keep-conn ${r.keepConn ? 'on' : 'off'}` === name,
                )?.rps ?? null,
            ),
          })),
        }),
        'FastCGI client req/s',
      ),
      '',
    );
  }

  if (results.hotpath) {
    const h = results.hotpath;
    const micros = (kind: string) => h.rows.find((r) => r.kind === kind)?.micros;
    const sdk = micros('SDK createServer');
    md.push('## Handler cost in one process', '');
    md.push(
      `Each handler kind fed ${int(h.count)} keep-conn requests for \`/\` in a process of its own, with no sockets, the kernel or nginx (bench/hotpath.ts): CPU µs per request, the median of ${h.rounds} rounds (all rounds in brackets). The access log's cost is what it adds to SDK createServer; fetch-style handlers are compared with \`@hono/node-server\` over node:http with the same handler.`,
      '',
      table(
        ['handler', 'µs/request', 'vs SDK createServer'],
        h.rows.map((r) => [
          r.kind,
          `${r.micros.toFixed(2)} (${r.runs.map((x) => x.toFixed(2)).join(' / ')})`,
          sdk ? `${(r.micros / sdk).toFixed(2)}x` : '-',
        ]),
      ),
      '',
    );
    const logged = micros('SDK createServer + access log');
    if (sdk !== undefined && logged !== undefined)
      md.push(`The access log costs ${(logged - sdk).toFixed(2)} µs per request here.`, '');
  }

  if (results.workers && results.workersOtherLine) {
    const other = results.workersOtherLine;
    const here = results.workers.rows;
    md.push(`## Workers on Node ${other.node}`, '');
    md.push(
      `The same workers benchmark, run again in this run with Node ${other.node} (the starter, the SDK and every Node peer on it; the other peers unchanged), beside this run's Node ${results.machine.node}: a ratio above 1 means ${other.node} served more.`,
      '',
      table(
        ['worker', 'keep-conn', 'path', `req/s ${other.node}`, `req/s ${results.machine.node}`, 'ratio'],
        other.rows.map((r) => {
          const mine = here.find((x) => x.kind === r.kind && x.keepConn === r.keepConn && x.path === r.path);
          return [
            r.kind,
            r.keepConn ? 'on' : 'off',
            r.path,
            int(r.rps),
            mine ? int(mine.rps) : '-',
            mine && mine.rps > 0 ? `${(r.rps / mine.rps).toFixed(2)}x` : '-',
          ];
        }),
      ),
      '',
    );
  }

  if (results.balance) {
    const b = results.balance;
    const modes = [...new Set(b.rows.map((r) => r.mode))];
    const ns = [...new Set(b.rows.map((r) => r.workers))].sort((a, z) => a - z);
    md.push('## Balance across workers', '');
    md.push(
      "All workers accepting on the one shared fd-0 socket against one `SO_REUSEPORT` socket each (`--reuseport`), those sockets made with Node's own flag (`reuseport`) and by the perl helper a Node before 22.12 needs (`reuseport-perl`). Jain's index: 1 = requests spread evenly, 1/N = one worker took all.",
      '',
      table(
        ['mode', 'workers', 'req/s', 'per worker', 'Jain', 'context switches / request'],
        b.rows.map((r) => [
          r.mode,
          String(r.workers),
          int(r.rps),
          r.perWorker.map(int).join(' / '),
          r.jain.toFixed(3),
          r.cswPerRequest.toFixed(2),
        ]),
      ),
      '',
    );
    const values = (f: (r: (typeof b.rows)[number]) => number) =>
      modes.map((mode) => ({
        name: mode,
        values: ns.map((n) => {
          const r = b.rows.find((x) => x.mode === mode && x.workers === n);
          return r ? f(r) : null;
        }),
      }));
    md.push(
      chart(
        'balance-rps.svg',
        barChart({
          title: 'req/s by workers',
          unit: 'req/s',
          categories: ns.map((n) => `N=${n}`),
          series: values((r) => r.rps),
        }),
        'balance req/s',
      ),
      '',
      chart(
        'balance-jain.svg',
        barChart({
          title: "Jain's fairness index by workers",
          unit: 'Jain index',
          categories: ns.map((n) => `N=${n}`),
          series: values((r) => r.jain),
        }),
        'balance fairness',
      ),
      '',
    );
    if (b.notes.length > 0) {
      for (const note of b.notes) md.push(`- ${note}`);
      md.push('');
    }
  }
  return { markdown: `${md.join('\n').trimEnd()}\n`, charts, targets };
}

/** Writes docs/benchmarks.md and docs/charts/*.svg under `docs`. */
export function writeReport(results: Results, docs: string): Report {
  const report = renderReport(results);
  mkdirSync(join(docs, 'charts'), { recursive: true });
  for (const [file, svg] of report.charts) writeFileSync(join(docs, 'charts', file), svg);
  writeFileSync(join(docs, 'benchmarks.md'), report.markdown);
  return report;
}

export function printTargets(targets: readonly TargetLine[]): void {
  for (const t of targets) console.log(`${t.status.padEnd(4)}  ${t.name}: ${t.measured}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file || process.argv.length > 3) {
    console.error('usage: tsx bench/report.ts bench/results/<date>.json');
    process.exit(2);
  }
  let results: Results;
  try {
    results = JSON.parse(readFileSync(file, 'utf8')) as Results;
  } catch (err) {
    console.error(`bench/report: cannot read ${file}: ${(err as Error).message}`);
    process.exit(1);
  }
  const report = writeReport(results, join(import.meta.dirname, '..', 'docs'));
  printTargets(report.targets);
}
