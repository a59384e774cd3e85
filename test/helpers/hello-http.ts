import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { until } from './processes.js';

/**
 * HTTP checks of examples/hello.ts behind a real front (nginx, Apache httpd, lighttpd), so every
 * front is held to the same requests: `url` is the front's http://host:port.
 */

/** GET /: answered by a worker; resolves with its FCGI_WORKER_ID and pid. */
export async function getHello(url: string): Promise<{ workerId: string; pid: number }> {
  const response = await fetch(`${url}/`);
  expect(response.status).toBe(200);
  const text = await response.text();
  const match = /^Hello from fcgi-prefork worker (\S+) \(pid (\d+)\)$/m.exec(text);
  expect(match, text).not.toBeNull();
  return { workerId: match![1]!, pid: Number(match![2]) };
}

/** Retries GET / until the pool answers 200 (workers start after the starter's socket is up). */
export async function helloAnswers(url: string, timeoutMs = 15_000): Promise<void> {
  await until(
    async () => {
      try {
        return (await fetch(`${url}/`)).status === 200;
      } catch {
        return false;
      }
    },
    timeoutMs,
    `a 200 from ${url}/`,
  );
}

/** POST /echo with `size` random bytes: the worker got every byte (size and SHA-256 echoed). */
export async function postEcho(url: string, size: number): Promise<void> {
  const body = randomBytes(size);
  const response = await fetch(`${url}/echo`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body,
  });
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({
    bytes: size,
    sha256: createHash('sha256').update(body).digest('hex'),
  });
}

/** GET /stream?n=…: every chunk arrives, and spread over time (the front passes them on unbuffered). */
export async function stream(url: string, chunks: number, timed = true): Promise<void> {
  const response = await fetch(`${url}/stream?n=${chunks}`);
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const arrivals: number[] = [];
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    arrivals.push(Date.now());
    text += decoder.decode(chunk.value, { stream: true });
  }
  expect(text).toBe(Array.from({ length: chunks }, (_, i) => `chunk ${i}\n`).join(''));
  // The worker writes a chunk every 20 ms: a buffered response would arrive all at once.
  // (Not under a concurrent load, where this process may read several chunks at once.)
  if (!timed) return;
  expect(arrivals.length).toBeGreaterThan(1);
  expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(20 * (chunks - 2));
}

/** GET /status/<code>: the app's status code and both of its Set-Cookie headers come through. */
export async function statusAndHeaders(url: string, code: number): Promise<void> {
  const response = await fetch(`${url}/status/${code}`);
  expect(response.status).toBe(code);
  expect(response.headers.get('content-type')).toBe('text/plain');
  expect(response.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  expect(await response.text()).toBe(`status ${code}\n`);
}

/** GET, POST, stream and status requests at once: all must succeed. */
export async function mixedLoad(url: string, requests: number): Promise<void> {
  await Promise.all(
    Array.from({ length: requests }, (_, i) =>
      i % 4 === 0
        ? postEcho(url, 100_000 + i)
        : i % 4 === 1
          ? stream(url, 3, false)
          : i % 4 === 2
            ? statusAndHeaders(url, 404)
            : getHello(url),
    ),
  );
}

/** Established FastCGI connections to a pool (TCP 127.0.0.1:port or a unix path), from ss. */
export function connectionsTo(target: number | string): number {
  const lines =
    typeof target === 'number'
      ? execFileSync('ss', ['-Htn', 'state', 'established', `( dport = :${target} )`], { encoding: 'utf8' })
      : // The accepting side of a unix connection shows the socket's path as its local address.
        execFileSync('ss', ['-Hx', 'state', 'established'], { encoding: 'utf8' })
          .split('\n')
          .filter((line) => line.includes(` ${target} `))
          .join('\n');
  return lines.split('\n').filter((line) => line.trim() !== '').length;
}
