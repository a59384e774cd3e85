import { afterEach, describe, expect, it } from 'vitest';
import { workerEnv as buildWorkerEnv } from '../../starter/worker-env.js';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { startCli, stopAll } from '../helpers/processes.js';
import { rootSkipReason } from './hostile.js';

/**
 * What a worker's environment holds, with the starter run as root and the worker dropped to
 * nobody. The worker is a shell printing `env`, so nothing of the SDK filters what it sees.
 */
const PRINT_ENV = ['/bin/sh', '-c', 'env | sed "s/^/ENV:/"; echo ENV-END; exec sleep 600'];

/** The starter's own environment: a root login's, with secrets and socket activation in it. */
const STARTER_ENV = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: '/root',
  SECRET_TOKEN: 's3cret',
  PHP_FCGI_CHILDREN: '0',
  PHP_FCGI_MAX_REQUESTS: '500',
  FCGI_WEB_SERVER_ADDRS: '127.0.0.1',
  LISTEN_FDS: '1',
  LISTEN_PID: '1',
};

async function workerEnv(flags: readonly string[]): Promise<Map<string, string>> {
  const port = await freePort();
  const starter = startCli(['-p', String(port), '-N', '1', '-u', 'nobody', ...flags, '--', ...PRINT_ENV], {
    env: STARTER_ENV,
  });
  await starter.waitFor(/^\[worker 1 pid \d+\] ENV-END$/m);
  const env = new Map<string, string>();
  for (const match of starter.output().matchAll(/^\[worker 1 pid \d+\] ENV:([^=\n]*)=(.*)$/gm)) {
    env.set(match[1]!, match[2]!);
  }
  expect(await starter.stop()).toBe(0);
  return env;
}

const skip = rootSkipReason();

describe.skipIf(skip !== null)(`worker environment${skip ? ` (skipped: ${skip})` : ''}`, () => {
  afterEach(stopAll);

  it('passes the starter environment through by default, less socket activation', async () => {
    const env = await workerEnv([]);
    expect(env.get('PHP_FCGI_CHILDREN')).toBe('0');
    expect(env.get('PHP_FCGI_MAX_REQUESTS')).toBe('500');
    expect(env.get('FCGI_WEB_SERVER_ADDRS')).toBe('127.0.0.1');
    expect(env.get('HOME')).toBe('/root');
    expect(env.get('FCGI_WORKER_ID')).toBe('1');
    expect(env.get('FCGI_PREFORK')).toBe('1');
    expect(env.has('LISTEN_FDS')).toBe(false);
    expect(env.has('LISTEN_PID')).toBe(false);
  });

  it('sets -e values over what passes through', async () => {
    const env = await workerEnv(['-e', 'HOME=/srv/app', '--env', 'APP_MODE=production', '-e', 'EMPTY=']);
    expect(env.get('HOME')).toBe('/srv/app');
    expect(env.get('APP_MODE')).toBe('production');
    expect(env.get('EMPTY')).toBe('');
    expect(env.get('SECRET_TOKEN')).toBe('s3cret');
  });

  it('--clear-env keeps only PATH, FCGI_WEB_SERVER_ADDRS, -e and the FCGI_* the starter sets', async () => {
    const env = await workerEnv(['--clear-env', '-e', 'APP_MODE=production', '-e', 'URL=a=b']);
    expect(env.has('HOME')).toBe(false);
    expect(env.has('SECRET_TOKEN')).toBe(false);
    expect(env.has('PHP_FCGI_CHILDREN')).toBe(false);
    expect(env.has('LISTEN_FDS')).toBe(false);
    expect(env.get('PATH')).toBe(STARTER_ENV.PATH);
    expect(env.get('FCGI_WEB_SERVER_ADDRS')).toBe('127.0.0.1');
    expect(env.get('APP_MODE')).toBe('production');
    expect(env.get('URL')).toBe('a=b');
    // What sh itself adds (PWD, SHLVL, _) aside, nothing else.
    const names = [...env.keys()].filter((name) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(name)).sort();
    expect(names).toEqual(
      [
        'APP_MODE',
        'FCGI_BACKLOG',
        'FCGI_GRACEFUL_TIMEOUT',
        'FCGI_PREFORK',
        'FCGI_WEB_SERVER_ADDRS',
        'FCGI_WORKER_ID',
        'PATH',
        'URL',
      ].sort(),
    );
  });

  it('an SDK worker (Node, tsx, IPC) still starts and serves with --clear-env', async () => {
    const port = await freePort();
    const starter = startCli(
      ['-p', String(port), '-N', '1', '-u', 'nobody', '--clear-env', 'examples/hello.ts'],
      {
        env: STARTER_ENV,
      },
    );
    await waitServing({ host: '127.0.0.1', port });
    expect(await fcgiGet({ host: '127.0.0.1', port }, '/hi')).toMatch(/worker 1/);
    expect(await starter.stop()).toBe(0);
  });
});

// The same rules on the pure function, as any user: the exact environment, nothing more.
describe('workerEnv', () => {
  const base = { ...STARTER_ENV, NOTIFY_SOCKET: '/run/systemd/notify', FCGI_MAX_REQUESTS: '7' };

  it('passes through, less LISTEN_*, NOTIFY_SOCKET and a stale FCGI_MAX_REQUESTS; -e under the FCGI_* it sets', () => {
    const env = buildWorkerEnv(base, 2, 64, { setEnv: { HOME: '/srv', FCGI_WORKER_ID: '9' } });
    expect(env).toEqual({
      PATH: STARTER_ENV.PATH,
      HOME: '/srv',
      SECRET_TOKEN: 's3cret',
      PHP_FCGI_CHILDREN: '0',
      PHP_FCGI_MAX_REQUESTS: '500',
      FCGI_WEB_SERVER_ADDRS: '127.0.0.1',
      FCGI_WORKER_ID: '2',
      FCGI_BACKLOG: '64',
      FCGI_PREFORK: '1',
      FCGI_GRACEFUL_TIMEOUT: '30',
    });
  });

  it('with clearEnv: PATH (or a default), FCGI_WEB_SERVER_ADDRS, -e, then the FCGI_* it sets', () => {
    const options = { clearEnv: true, setEnv: { APP: '1' }, maxRequests: 100, gracefulTimeout: 5 };
    expect(buildWorkerEnv(base, 1, 1024, options, () => 0.5)).toEqual({
      PATH: STARTER_ENV.PATH,
      FCGI_WEB_SERVER_ADDRS: '127.0.0.1',
      APP: '1',
      FCGI_WORKER_ID: '1',
      FCGI_BACKLOG: '1024',
      FCGI_PREFORK: '1',
      FCGI_GRACEFUL_TIMEOUT: '5',
      FCGI_MAX_REQUESTS: '105',
    });
    expect(buildWorkerEnv({ HOME: '/root' }, 1, 1024, { clearEnv: true }).PATH).toBe(
      '/usr/local/bin:/usr/bin:/bin',
    );
  });
});
