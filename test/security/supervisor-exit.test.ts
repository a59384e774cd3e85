// A starter whose pool has ended exits, whatever its servers still hold open (here the control
// socket, waiting for the rest of a command line): a live starter
// with no workers and no plan to start any is one systemd's Restart=on-failure never restarts.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { childrenOf, startCli, stopAll, until } from '../helpers/processes.js';

afterEach(stopAll);

describe('starter after its pool ends', () => {
  it('exits 1 after giving up though its control socket holds half-sent commands', {
    timeout: 60_000,
  }, async () => {
    const flag = `/tmp/fcgi-prefork-exit-${process.pid}.flag`;
    const port = await freePort();
    const control = `/tmp/fcgi-prefork-exit-${process.pid}.sock`;
    // Serves until the flag exists; from then on every start fails.
    const starter = startCli([
      '-p',
      String(port),
      '--control',
      control,
      '-N',
      '1',
      '-u',
      'nobody',
      'sh',
      '-c',
      `test -e ${flag} && exit 1; exec sleep 600`,
    ]);
    const held: net.Socket[] = [];
    try {
      await starter.waitFor(/listening on/);
      await until(() => existsSync(control), 15_000, 'the control socket');
      // The worker, among the starter's children.
      const isWorker = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sleep');
        } catch {
          return false;
        }
      };
      let workers: number[] = [];
      await until(
        async () => {
          workers = (await childrenOf(starter.pid)).filter(isWorker);
          return workers.length === 1;
        },
        15_000,
        'the worker',
      );
      for (let i = 0; i < 20; i++) {
        const socket = net.connect(control);
        socket.on('error', () => {});
        socket.write('sta'); // and never the rest of the line
        held.push(socket);
      }
      writeFileSync(flag, '');
      process.kill(workers[0]!, 'SIGKILL');
      await starter.waitFor(/giving up/, 20_000);
      const gaveUp = Date.now();
      expect(await starter.exited).toBe(1);
      expect(Date.now() - gaveUp).toBeLessThan(10_000);
    } finally {
      for (const socket of held) socket.destroy();
      rmSync(flag, { force: true });
    }
  });
});
