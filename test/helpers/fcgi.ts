import { createClient } from '../../src/client/client.js';
import type { Target } from '../../src/client/connection.js';

/** One GET over a fresh connection (no keep-conn), as a front would send it; resolves with the body. */
export async function fcgiGet(target: Target, uri = '/', timeoutMs = 10_000): Promise<string> {
  const client = createClient(target, {
    keepConn: false,
    multiplex: false,
    connections: 1,
    responseTimeout: timeoutMs,
  });
  try {
    const question = uri.indexOf('?');
    const response = await client.requestAll({
      params: {
        REQUEST_METHOD: 'GET',
        REQUEST_URI: uri,
        SCRIPT_NAME: question < 0 ? uri : uri.slice(0, question),
        QUERY_STRING: question < 0 ? '' : uri.slice(question + 1),
        SERVER_PROTOCOL: 'HTTP/1.1',
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body.toString()}`);
    return response.body.toString();
  } finally {
    client.close();
  }
}

/**
 * Resolves once `workers` different workers have answered (told apart by the pid in their
 * bodies: "pid 123" or "from 123"), so every worker of a pool is up and accepting. A refused or
 * failed attempt counts as not yet; throws after timeoutMs.
 */
export async function waitServing(target: Target, workers = 1, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = new Set<string>();
    try {
      for (let i = 0; i < workers * 6 && seen.size < workers; i++) {
        const pid = /(?:pid|from) (\d+)/.exec(await fcgiGet(target))?.[1];
        if (pid) seen.add(pid);
      }
    } catch {
      // not serving yet
    }
    if (seen.size >= workers) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${workers} workers to serve`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface FcgiLoopResult {
  readonly sent: number;
  readonly ok: number;
  /** Error code (ECONNREFUSED, ECONNRESET …) or message → count, for every request that failed. */
  readonly failures: Map<string, number>;
  /** Worker pids named in the bodies, with how many each served. */
  readonly servedBy: Map<string, number>;
}

/**
 * Keeps `concurrency` FastCGI GETs (fcgiGet: a connection each) in flight until `until()` is true
 * or maxRequests were sent: load from the host, every outcome counted.
 */
export async function fcgiLoop(
  target: Target,
  concurrency: number,
  until: () => boolean,
  maxRequests: number,
  uri = '/',
): Promise<FcgiLoopResult> {
  let sent = 0;
  let ok = 0;
  const failures = new Map<string, number>();
  const servedBy = new Map<string, number>();
  const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!until() && sent < maxRequests) {
        sent++;
        try {
          const body = await fcgiGet(target, uri, 30_000);
          ok++;
          count(servedBy, /(?:pid|from) (\d+)/.exec(body)?.[1] ?? '?');
        } catch (error) {
          const e = error as NodeJS.ErrnoException;
          count(failures, e.code ?? e.message);
        }
      }
    }),
  );
  return { sent, ok, failures, servedBy };
}
