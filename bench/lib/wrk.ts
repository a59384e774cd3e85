import { execFileSync } from 'node:child_process';

export interface WrkResult {
  readonly rps: number;
  readonly requests: number;
  /** Non-2xx/3xx responses plus socket errors. */
  readonly errors: number;
}

/** One wrk run against url (wrk must be on PATH), its summary parsed. */
export function runWrk(url: string, seconds: number, connections = 32, threads = 2): WrkResult {
  const out = execFileSync('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, url], {
    encoding: 'utf8',
  });
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    errors: non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}
