// --detach starts workers as the pool does (one spawnWorker): as the -u/-g user, never as root
// unless allowed, without the starter's LISTEN_* and NOTIFY_SOCKET, on a socket owned as
// -U/-G say, and with a Node worker's shared socket left non-blocking.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fcgiGet } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { isAlive, startCli, stopAll, until } from '../helpers/processes.js';

afterEach(stopAll);

const ids = (pid: number, field: 'Uid' | 'Gid') =>
  new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.split(/\s+/);

describe('--detach', () => {
  it('starts workers as -u/-g, without LISTEN_* or NOTIFY_SOCKET, on a -U/-G socket, non-blocking', {
    timeout: 60_000,
  }, async () => {
    const path = `/tmp/fcgi-prefork-detach-${process.pid}.sock`;
    const starter = startCli(
      [
        '-s',
        path,
        '-M',
        '0660',
        '-U',
        'nobody',
        '-G',
        'nogroup',
        '-u',
        'nobody',
        '-g',
        'nogroup',
        '-N',
        '2',
        '--detach',
        'test/fixtures/fd0-flags-worker.ts',
      ],
      {
        env: {
          ...process.env,
          LISTEN_FDS: '1',
          LISTEN_PID: '1',
          LISTEN_FDNAMES: 'stolen',
          NOTIFY_SOCKET: '/run/systemd/notify',
        },
      },
    );
    expect(await starter.exited).toBe(0);
    const pids = starter
      .output()
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
    expect(pids).toHaveLength(2);
    try {
      for (const pid of pids) {
        expect(isAlive(pid)).toBe(true);
        expect(ids(pid, 'Uid')).toEqual(['65534', '65534', '65534', '65534']);
        expect(ids(pid, 'Gid')).toEqual(['65534', '65534', '65534', '65534']);
        const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
        expect(env.filter((v) => /^(LISTEN_|NOTIFY_SOCKET=)/.test(v))).toEqual([]);
        expect(env).toContain('FCGI_PREFORK=1');
      }
      const socket = statSync(path);
      expect([socket.uid, socket.gid, socket.mode & 0o777]).toEqual([65534, 65534, 0o660]);
      // Each worker says how its fd 0 came, before Node touches it.
      await until(() => starter.output().match(/fd 0 came/g)?.length === 2, 20_000, 'both workers report');
      expect(starter.output()).not.toMatch(/fd 0 came blocking/);
      expect(await fcgiGet({ path }, '/', 20_000)).toMatch(/^hello from pid/);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      rmSync(path, { force: true });
    }
  });

  it('refuses to run workers as root without -u or --allow-root', async () => {
    const port = await freePort();
    const starter = startCli(['-p', String(port), '--detach', 'test/fixtures/responder.ts']);
    expect(await starter.exited).toBe(1);
    expect(starter.output()).toMatch(
      /refusing to run workers as root: give --user <name> \(or --allow-root\)/,
    );
    expect(
      starter
        .output()
        .split('\n')
        .filter((line) => /^\d+$/.test(line)),
    ).toEqual([]);
  });
});
