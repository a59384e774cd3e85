import { UserError } from '../src/net/errors.js';
import { last, type OptionSpec, parseArgs, parseCount } from './args.js';
import { controlPathFromPidfile, queryStatus } from './control.js';
import type { PoolStatus } from './pool.js';
import { cpuSecondsOf } from './worker-stats.js';

/**
 * `fcgi-prefork top`: the pool, live, as uwsgitop or pm2 monit show it. Every refresh asks the
 * control socket for the status; rates (CPU %, req/s) are the differences between two of them.
 * On a terminal it redraws one screen (q quits, c/m/e/s sort); elsewhere it prints one plain
 * snapshot per refresh.
 */

export const TOP_USAGE = `Usage: fcgi-prefork top [--control <path> | --pidfile <path>] [options]

  --control <path>     the starter's control socket
  -P, --pidfile <path> the starter's pidfile (control socket <pidfile>.sock)
  --sort <key>         cpu, rss, elapsed or slot (default slot); keys c, m, e, s switch
  -d, --delay <s>      seconds between refreshes (default 1)
  -n, --iterations <n> stop after n refreshes (default: until q, or Ctrl-C)
`;

export const TOP_SPECS: readonly OptionSpec[] = [
  { key: 'control', long: ['control'], value: true },
  { key: 'pidfile', short: ['P'], long: ['pidfile'], value: true },
  { key: 'sort', long: ['sort'], value: true },
  { key: 'delay', short: ['d'], long: ['delay'], value: true },
  { key: 'iterations', short: ['n'], long: ['iterations'], value: true },
  { key: 'help', short: ['h'], long: ['help'], value: false },
];

export type SortKey = 'cpu' | 'rss' | 'elapsed' | 'slot';
const SORT_KEYS: readonly SortKey[] = ['cpu', 'rss', 'elapsed', 'slot'];
const SORT_BY_KEY: Readonly<Record<string, SortKey>> = { c: 'cpu', m: 'rss', e: 'elapsed', s: 'slot' };

/** A status and when it was taken, with each worker's CPU seconds. */
export interface Sample {
  readonly at: number;
  readonly status: PoolStatus;
  readonly cpu: ReadonlyMap<number, number>;
}

export interface Row {
  readonly slot: number;
  readonly pid: number;
  readonly state: string;
  readonly uptimeMs: number;
  readonly cpuPercent: number | null;
  readonly rssBytes: number | null;
  readonly requests: number | null;
  readonly rate: number | null;
  readonly current: { readonly method: string; readonly uri: string; readonly elapsedMs: number } | null;
}

export interface View {
  readonly header: {
    readonly pid: number;
    readonly uptimeMs: number;
    readonly address: string;
    readonly generation: number;
    readonly listenQueue: string;
    readonly workers: number;
    readonly desired: number;
    readonly rate: number | null;
    readonly restarts: number;
  };
  readonly rows: readonly Row[];
}

/** Takes a sample: CPU from the status when the starter gives it, else from /proc (same machine). */
export function sample(status: PoolStatus, at: number, readCpu = cpuSecondsOf): Sample {
  const cpu = new Map<number, number>();
  for (const w of status.workers) {
    const seconds = typeof w.cpuSeconds === 'number' ? w.cpuSeconds : readCpu(w.pid);
    if (seconds !== null) cpu.set(w.pid, seconds);
  }
  return { at, status, cpu };
}

/** The listen queue, once the starter reports it (current/peak/backlog); "n/a" until then. */
function listenQueue(status: PoolStatus): string {
  const q = (status as { listenQueue?: unknown }).listenQueue;
  if (typeof q === 'number') return `${q}/${status.backlog}`;
  if (typeof q === 'object' && q !== null) {
    const { current, peak, backlog } = q as Record<string, unknown>;
    return [current, peak, backlog ?? status.backlog].map((v) => (typeof v === 'number' ? v : '?')).join('/');
  }
  return 'n/a';
}

/** The view of `current`, with rates against `previous` (none on the first refresh). */
export function buildView(current: Sample, previous: Sample | null, sort: SortKey): View {
  const { status, at } = current;
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const before = new Map(previous?.status.workers.map((w) => [w.pid, w]) ?? []);
  let poolDelta = 0;
  let poolKnown = false;
  const rows: Row[] = status.workers.map((w) => {
    const old = before.get(w.pid);
    let rate: number | null = null;
    if (w.requests !== null && previous && seconds > 0) {
      // A worker new since the last refresh served all its requests within it.
      const delta = Math.max(0, w.requests - (old?.requests ?? 0));
      rate = delta / seconds;
      poolDelta += delta;
      poolKnown = true;
    }
    const cpuNow = current.cpu.get(w.pid);
    const cpuThen = previous?.cpu.get(w.pid) ?? (old ? undefined : 0);
    const cpuPercent =
      cpuNow !== undefined && cpuThen !== undefined && seconds > 0
        ? Math.max(0, ((cpuNow - cpuThen) / seconds) * 100)
        : null;
    return {
      slot: w.slot,
      pid: w.pid,
      state: w.state,
      uptimeMs: Math.max(0, at - w.startedAt),
      cpuPercent,
      rssBytes: w.rssBytes,
      requests: w.requests,
      rate,
      current: w.current ?? null,
    };
  });
  const by: Record<SortKey, (r: Row) => number> = {
    cpu: (r) => -(r.cpuPercent ?? -1),
    rss: (r) => -(r.rssBytes ?? -1),
    elapsed: (r) => -(r.current?.elapsedMs ?? -1),
    slot: (r) => r.slot,
  };
  rows.sort((a, b) => by[sort](a) - by[sort](b) || a.slot - b.slot || a.pid - b.pid);
  return {
    header: {
      pid: status.pid,
      uptimeMs: Math.max(0, at - status.startedAt),
      address: status.address,
      generation: status.generation,
      listenQueue: listenQueue(status),
      workers: status.totals.workers,
      desired: status.desiredWorkers,
      rate: poolKnown ? poolDelta / seconds : null,
      restarts: status.totals.restarts,
    },
    rows,
  };
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function elapsed(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : duration(ms);
}

function bytes(n: number | null): string {
  if (n === null) return '-';
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)}G` : `${(n / 1024 ** 2).toFixed(1)}M`;
}

function rate(r: number | null): string {
  return r === null ? '-' : r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

/** Only printable ASCII reaches the terminal, so widths are exact and nothing is an escape. */
function plain(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** The screen's lines, none wider than `width` (the URI column takes what is left). */
export function renderView(view: View, sort: SortKey, width = Number.POSITIVE_INFINITY): string[] {
  const h = view.header;
  const lines = [
    `fcgi-prefork pid ${h.pid}  up ${duration(h.uptimeMs)}  ${h.address}  generation ${h.generation}`,
    `workers ${h.workers}/${h.desired}  req/s ${rate(h.rate)}  restarts ${h.restarts}  listen queue ${h.listenQueue}  sort ${sort}`,
    '',
  ];
  const table: string[][] = [
    ['SLOT', 'PID', 'STATE', 'UPTIME', 'CPU%', 'RSS', 'REQS', 'REQ/S', 'ELAPSED', 'REQUEST'],
  ];
  for (const r of view.rows) {
    table.push([
      String(r.slot),
      String(r.pid),
      r.state,
      duration(r.uptimeMs),
      r.cpuPercent === null ? '-' : r.cpuPercent.toFixed(1),
      bytes(r.rssBytes),
      r.requests === null ? '-' : String(r.requests),
      rate(r.rate),
      r.current ? elapsed(r.current.elapsedMs) : '-',
      r.current ? `${r.current.method} ${r.current.uri}` : '-',
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const right = new Set([0, 1, 4, 5, 6, 7, 8]);
  for (const row of table)
    lines.push(
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!),
        )
        .join('  ')
        .trimEnd(),
    );
  return lines.map((line) => {
    const text = plain(line);
    return text.length > width ? text.slice(0, width) : text;
  });
}

function parseSort(text: string): SortKey {
  if (!(SORT_KEYS as readonly string[]).includes(text))
    throw new UserError(`invalid sort key '${text}': give cpu, rss, elapsed or slot`, 2);
  return text as SortKey;
}

function parseDelay(text: string): number {
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds < 0.1)
    throw new UserError(`invalid delay '${text}': give seconds, at least 0.1`, 2);
  return seconds;
}

// Alternate screen and hidden cursor while running, as top does; restored on the way out.
const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME_CLEAR = '\x1b[H\x1b[2J';

export async function runTop(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, TOP_SPECS);
  if (args.flags.has('help')) {
    process.stdout.write(TOP_USAGE);
    return 0;
  }
  if (args.rest.length > 0) throw new UserError(`unexpected argument '${args.rest[0]}'`, 2);
  const control = last(args, 'control');
  const pidfile = last(args, 'pidfile');
  if (!control && !pidfile) throw new UserError('top needs --control <path> or --pidfile <path>', 2);
  let sort = parseSort(last(args, 'sort') ?? 'slot');
  const delayMs = parseDelay(last(args, 'delay') ?? '1') * 1000;
  const iterationsText = last(args, 'iterations');
  const iterations = iterationsText !== undefined ? parseCount(iterationsText, 'iterations') : Infinity;
  const path = control ?? controlPathFromPidfile(pidfile!);

  const out = process.stdout;
  const tty = out.isTTY === true;
  let previous: Sample | null = null;
  let latest: Sample | null = null;
  let problem = '';
  // The first status must come: a wrong path is one error line and exit 1, before any screen.
  latest = sample(await queryStatus(path), Date.now());

  const draw = () => {
    if (!latest) return;
    const view = buildView(latest, previous, sort);
    if (!tty) {
      out.write(`${renderView(view, sort).join('\n')}\n\n`);
      return;
    }
    const width = out.columns || 80;
    const height = out.rows || 24;
    const lines = renderView(view, sort, width);
    if (problem) lines.splice(2, 1, plain(problem).slice(0, width));
    out.write(HOME_CLEAR + lines.slice(0, height).join('\r\n'));
  };

  return new Promise<number>((resolve) => {
    let count = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const stdin = process.stdin;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      if (tty) {
        out.off('resize', draw);
        out.write(LEAVE);
        if (stdin.isTTY) stdin.setRawMode(false);
        stdin.pause();
      }
      resolve(code);
    };
    const refresh = async () => {
      count++;
      draw();
      if (count >= iterations) return end(0);
      timer = setTimeout(async () => {
        try {
          const next = sample(await queryStatus(path), Date.now());
          previous = latest;
          latest = next;
          problem = '';
        } catch (e) {
          // On a terminal the last screen stays, with why it is stale; piped, it is over.
          if (!tty) {
            process.stderr.write(`fcgi-prefork: ${(e as Error).message}\n`);
            return end(1);
          }
          problem = (e as Error).message;
        }
        if (!ended) refresh();
      }, delayMs);
    };
    if (tty) {
      out.write(ENTER);
      out.on('resize', draw);
      if (stdin.isTTY) {
        stdin.setRawMode(true);
        stdin.setEncoding('utf8');
        stdin.on('data', (key: string) => {
          if (key === 'q' || key === '\x03' || key === '\x04') return end(0);
          const chosen = SORT_BY_KEY[key];
          if (chosen) {
            sort = chosen;
            draw();
          }
        });
      }
    }
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => end(0));
    refresh();
  });
}
