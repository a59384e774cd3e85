// The worker the attacks of test/security/worker-*.test.ts are aimed at: the SDK fixture
// (test/fixtures/worker-security-app.ts) as its own process, run as user nobody, on a free
// loopback port; its memory read from /proc.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { GET, rawConnect, requestRecords, responseOf } from '../helpers/fcgi-raw.js';
import { freePort } from '../helpers/net.js';
import { ROOT, type Running, start } from '../helpers/processes.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'worker-security-app.ts');
const NOBODY = 65534;
/** The bound every flood must keep a worker under. */
export const RSS_LIMIT_KIB = 256 * 1024;

export interface Target {
  readonly proc: Running;
  readonly pid: number;
  readonly port: number;
  /** Requests that reached the handler so far. */
  handled(): number;
  /** Its log lines (stderr and stdout together). */
  output(): string;
}

/** Starts the fixture as nobody with `env` added; resolves once it listens. */
export async function startTarget(env: Record<string, string> = {}): Promise<Target> {
  const port = await freePort();
  const proc = start(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: ROOT,
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, HOME: '/tmp', PORT: String(port), ...env },
  });
  await proc.waitFor(/listening \d+/, 20_000);
  return {
    proc,
    pid: proc.pid,
    port,
    handled: () => proc.output().match(/^handled /gm)?.length ?? 0,
    output: () => proc.output(),
  };
}

/** Resident and peak resident memory of a process, in KiB (/proc/<pid>/status). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** Runs as user nobody: the attacks are on an unprivileged worker, as under the starter. */
export function expectNobody(pid: number): void {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(NOBODY));
}

/** A normal GET on a connection of its own: the worker still serves others. */
export async function expectServes(target: Target, uri = '/'): Promise<string> {
  const conn = await rawConnect({ port: target.port });
  try {
    conn.send(...requestRecords(1, GET(uri)));
    const response = await responseOf(conn, 1, 10_000);
    expect(response.stdout).toMatch(/^Status: 200 OK\r\n/);
    return response.stdout.slice(response.stdout.indexOf('\r\n\r\n') + 4);
  } finally {
    conn.close();
  }
}

/** The worker's peak memory stayed under the bound, and it is still the same live process. */
export function expectBounded(target: Target): { rss: number; peak: number } {
  const memory = memoryOf(target.pid);
  expect(memory.peak).toBeLessThan(RSS_LIMIT_KIB);
  expect(target.proc.child.exitCode).toBeNull();
  return memory;
}
