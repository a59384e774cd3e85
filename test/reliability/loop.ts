import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

export interface LoopResult {
  readonly sent: number;
  readonly ok: number;
  /** Status code (or error code) → count, for everything that was not a 200. */
  readonly failures: Map<string, number>;
  /** Worker pids named in the bodies of the 200s, with how many each served. */
  readonly servedBy: Map<string, number>;
}

export interface LoopOptions {
  /** Every nth request is a POST of postBody (failures then count as "POST <status>"). */
  readonly postEvery?: number;
  readonly postBody?: string;
  /** Sees every response that arrived whole, whatever its status. */
  readonly onResponse?: (response: http.IncomingMessage) => void;
}

/**
 * Keeps `concurrency` HTTP requests in flight until `until()` is true; bounded by maxRequests.
 * Every outcome is counted, so a test can say exactly what failed.
 */
export async function httpLoop(
  url: string,
  concurrency: number,
  until: () => boolean,
  maxRequests = 1_000_000,
  options: LoopOptions = {},
): Promise<LoopResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let sent = 0;
  let ok = 0;
  const failures = new Map<string, number>();
  const servedBy = new Map<string, number>();
  const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const one = () =>
    new Promise<void>((resolve) => {
      sent++;
      const post = options.postEvery !== undefined && sent % options.postEvery === 0;
      const method = post ? 'POST' : 'GET';
      const failure = (what: string) => count(failures, post ? `POST ${what}` : what);
      const req = http.request(url, { method, agent, timeout: 30_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          options.onResponse?.(res);
          if (res.statusCode === 200) {
            ok++;
            count(servedBy, /pid (\d+)/.exec(body)?.[1] ?? '?');
          } else failure(String(res.statusCode));
          resolve();
        });
        res.on('error', () => {
          failure('response error');
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        failure(err.code ?? err.message);
        resolve();
      });
      req.end(post ? options.postBody : undefined);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!until() && sent < maxRequests) await one();
    }),
  );
  agent.destroy();
  return { sent, ok, failures, servedBy };
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}
