import { execFileSync } from 'node:child_process';

export interface WrkResult {
  readonly rps: number;
  readonly requests: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Non-2xx/3xx responses plus socket errors (connect, read, write, timeout). */
  readonly errors: number;
}

export interface WrkOptions {
  readonly connections: number;
  readonly seconds: number;
  /** Defaults to min(2, connections): wrk refuses more threads than connections. */
  readonly threads?: number;
}

/** The exact command line, for the report. */
export function wrkArgs(url: string, options: WrkOptions): string[] {
  const threads = options.threads ?? Math.min(2, options.connections);
  return [`-t${threads}`, `-c${options.connections}`, `-d${options.seconds}s`, '--latency', url];
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** Parses wrk's --latency output; percentiles anchored at line starts, as wrk prints them. */
export function parseWrk(out: string): WrkResult {
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    errors: non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

export function wrk(url: string, options: WrkOptions): WrkResult {
  return parseWrk(execFileSync('wrk', wrkArgs(url, options), { encoding: 'utf8' }));
}

/** The same, positional (as bench/balance.ts calls it). */
export function runWrk(url: string, seconds: number, connections = 32, threads?: number): WrkResult {
  return wrk(url, threads === undefined ? { connections, seconds } : { connections, seconds, threads });
}
