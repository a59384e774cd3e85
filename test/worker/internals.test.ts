import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import { INTERNAL_NAMES } from '../../src/node-internals.js';
import { waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { childrenOf, ROOT, startCli, stopAll, until } from '../helpers/processes.js';

// Each Node internal the project uses (src/node-internals.ts) hidden in turn, and all of them
// under --pending-deprecation (where no binding is used): the starter still binds, reloads and
// supervises, and a worker still serves node:http-style and fetch-style requests.
const WORKER = 'test/fixtures/internals-worker.ts';

afterEach(stopAll);

/** What src/node-internals.ts offers in a process with this environment. */
function offered(env: NodeJS.ProcessEnv): Record<string, boolean> {
  const code =
    "import('./src/node-internals.ts').then((m) => console.log(JSON.stringify(m.internalsOffered())))";
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, boolean>;
}

async function exercise(port: number): Promise<void> {
  const target = { host: '127.0.0.1', port };
  await waitServing(target, 2);
  const client = createClient(target, { keepConn: true, connections: 2 });
  const params = (method: string, uri: string, extra: Record<string, string> = {}) => ({
    REQUEST_METHOD: method,
    REQUEST_URI: uri,
    SCRIPT_NAME: uri,
    QUERY_STRING: '',
    SERVER_PROTOCOL: 'HTTP/1.1',
    HTTP_HOST: 'example.test',
    HTTP_USER_AGENT: 'internals-test',
    ...extra,
  });
  try {
    const node = await client.requestAll({ params: params('GET', '/node') });
    expect(node.status).toBe(200);
    expect(node.headers['content-type']).toBe('application/json');
    expect(JSON.parse(node.body.toString())).toMatchObject({ agent: 'internals-test', host: 'example.test' });

    const big = await client.requestAll({ params: params('GET', '/node/big') });
    expect(big.status).toBe(200);
    expect(createHash('sha256').update(big.body).digest('hex')).toBe(
      createHash('sha256')
        .update(Buffer.alloc(32 * 64 * 1024, 'x'))
        .digest('hex'),
    );

    const sent = { list: [1, 2, 3], text: 'é'.repeat(5000) };
    const body = Buffer.from(JSON.stringify(sent));
    const echoed = await client.requestAll({
      params: params('POST', '/fetch/echo', {
        CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: String(body.length),
      }),
      body,
    });
    expect(echoed.status, echoed.body.toString()).toBe(200);
    expect(JSON.parse(echoed.body.toString())).toMatchObject({ received: sent });

    const text = await client.requestAll({ params: params('GET', '/fetch/hi') });
    expect(text.status).toBe(200);
    expect(text.body.toString()).toMatch(/^fetch from pid \d+ at \/fetch\/hi$/);
  } finally {
    client.close();
  }
}

const cases: [string, NodeJS.ProcessEnv][] = [
  ...INTERNAL_NAMES.map((name): [string, NodeJS.ProcessEnv] => [name, { FCGI_HIDE_INTERNALS: name }]),
  ['every binding, under --pending-deprecation', { NODE_OPTIONS: '--pending-deprecation' }],
];

describe('Node internals hidden in turn', () => {
  for (const [name, extra] of cases) {
    it(`without ${name}: the pool binds, serves both styles, reloads and serves again`, async () => {
      const env = { ...process.env, ...extra };
      const shown = offered(env);
      if (extra.FCGI_HIDE_INTERNALS) expect(shown[name]).toBe(false);
      else expect(shown).toMatchObject({ stream_wrap: false, tcp_wrap: false, onread: true });
      const port = await freePort();
      // The SO_REUSEPORT flag serves --reuseport only: that pool runs with it.
      const mode = extra.FCGI_HIDE_INTERNALS === 'reusePort' ? ['--reuseport'] : [];
      const starter = startCli(['-p', String(port), '-N', '2', ...mode, '--allow-root', WORKER], { env });
      await exercise(port);
      const before = await childrenOf(starter.pid);
      process.kill(starter.pid, 'SIGHUP');
      await until(async () => {
        const now = await childrenOf(starter.pid);
        return now.length === 2 && now.every((pid) => !before.includes(pid));
      }, 20_000);
      await exercise(port);
      await starter.stop();
      expect(starter.output()).not.toMatch(/DeprecationWarning|internal error|\n\s+at /);
    });
  }

  it('without net._createServerHandle nor the tcp_wrap binding: one line, exit 1', async () => {
    const starter = startCli(['-p', String(await freePort()), '--allow-root', WORKER], {
      env: { ...process.env, FCGI_HIDE_INTERNALS: 'createServerHandle,tcp_wrap' },
    });
    expect(await starter.exited).toBe(1);
    expect(starter.output().trim()).toMatch(
      /^fcgi-prefork: this Node \(v[\d.]+\) offers no way to bind a socket without accepting on it .*$/,
    );
  });
});
