import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { quietEnv } from '../helpers/processes.js';

const root = join(import.meta.dirname, '..', '..');

/**
 * In a child of its own (vitest's process has loaded undici for its own reasons): a server made
 * by `make` (an expression of the SDK's `createServer` or `serve`, listening on a free port)
 * answers one request; the child's status and the undici modules it loaded.
 */
function serveOnce(imported: string, make: string): { status: number; undici: string[] } {
  const code = `
    import { ${imported} } from './worker-sdk/index.ts';
    import { createClient } from './src/client/index.ts';
    const server = ${make};
    server.on('listening', async () => {
      const client = createClient({ host: '127.0.0.1', port: server.address().port });
      const r = await client.requestAll({ params: { REQUEST_METHOD: 'GET', REQUEST_URI: '/' } });
      client.close();
      server.close();
      console.log(JSON.stringify({ status: r.status, undici: process.moduleLoadList.filter((m) => m.includes('undici')) }));
    });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: quietEnv(),
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout.trim()) as { status: number; undici: string[] };
}

describe('worker footprint', () => {
  // On every line: Node 22 and later load undici for an ESM `import 'node:http'` (its WebSocket
  // getters), so the SDK requires node:http (src/node-internals.ts); the second case shows the
  // premise, so that this one cannot pass for want of it.
  it('a createServer worker serving requests does not load undici (the fetch API’s 9 MiB)', () => {
    const child = serveOnce(
      'createServer',
      "createServer((req, res) => res.end('hi')).listen(0, '127.0.0.1')",
    );
    expect(child).toEqual({ status: 200, undici: [] });
  });

  it('a worker that uses fetch-style serve() does load it (what the test above would miss)', () => {
    const child = serveOnce('serve', "serve(() => new Response('hi'), { port: 0, host: '127.0.0.1' })");
    expect(child.status).toBe(200);
    expect(child.undici.length).toBeGreaterThan(0);
  });
});
