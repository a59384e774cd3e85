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
