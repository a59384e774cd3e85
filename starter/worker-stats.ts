import { readFileSync } from 'node:fs';
import type { CurrentRequest } from '../src/link.js';

/**
 * Figures about a worker that come from outside the pool's bookkeeping: the request it says it
 * is running (over IPC, so untrusted: checked and bounded here) and its CPU time (from /proc).
 */

/** Longest method and URI the starter keeps from a worker's report. */
export const METHOD_MAX = 16;
export const URI_MAX = 200;

/** The request in progress as status shows it. */
export interface CurrentRequestInfo {
  readonly method: string;
  readonly uri: string;
  readonly elapsedMs: number;
}

/**
 * Terminal control characters (ESC, CSI, DEL) in a URI would reach an operator's terminal
 * through `top` and `status`: each becomes '?'.
 */
function printable(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  return text.slice(0, max).replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

/** A worker's `current` field, or null when absent or malformed. */
export function parseCurrentRequest(value: unknown): CurrentRequest | null {
  if (typeof value !== 'object' || value === null) return null;
  const { method, uri, startedAt } = value as Record<string, unknown>;
  if (typeof method !== 'string' || typeof uri !== 'string') return null;
  if (typeof startedAt !== 'number' || !Number.isFinite(startedAt)) return null;
  return { method: printable(method, METHOD_MAX), uri: printable(uri, URI_MAX), startedAt };
}

/** As status reports it: elapsed at `now`, never negative (a worker's clock is its own word). */
export function currentRequestInfo(current: CurrentRequest | null, now: number): CurrentRequestInfo | null {
  if (!current) return null;
  return { method: current.method, uri: current.uri, elapsedMs: Math.max(0, now - current.startedAt) };
}

/** Clock ticks per second of /proc/<pid>/stat: USER_HZ, 100 on every Linux architecture Node runs on. */
const USER_HZ = 100;

/** utime + stime of a /proc/<pid>/stat line, in seconds. */
export function parseProcStatCpu(stat: string): number | null {
  // The command name (field 2) is in parentheses and may hold spaces or ')': fields count from
  // the last ')'. utime and stime are fields 14 and 15, so the 12th and 13th after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / USER_HZ;
}

/** CPU seconds a process has used, user and system; null when it is gone or not on Linux. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    return parseProcStatCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}
