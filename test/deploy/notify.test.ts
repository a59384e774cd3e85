import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { field, notifySocket, perl } from '../helpers/notify.js';
import { peer } from '../helpers/peers.js';
import { childrenOf, startCli, stopAll, until } from '../helpers/processes.js';

const RESPONDER = 'test/fixtures/responder.ts';
const systemdNotify = peer('systemd-notify', 'systemd');

const dir = mkdtempSync(join(tmpdir(), 'fcgi-notify-'));
afterEach(stopAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(systemdNotify.skipReason ?? perl.skipReason)('sd_notify (NOTIFY_SOCKET)', () => {
  it('sends READY=1 once the workers serve, RELOADING=1 … READY=1 around SIGHUP, STOPPING=1 on stop', async () => {
    const notify = await notifySocket(join(dir, 'reload.sock'));
    const port = await freePort();
    const target = { host: '127.0.0.1', port };
    const starter = startCli(['-p', String(port), '-N', '2', '--allow-root', RESPONDER], {
      env: { ...process.env, NOTIFY_SOCKET: notify.path },
    });
    await until(() => notify.messages().length >= 1, 15_000, 'READY=1');
    // Not before both workers are running (they reported ready over IPC), and the pool answers.
    const running = (await childrenOf(starter.pid)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('responder.ts');
      } catch {
        return false;
      }
    });
    expect(running).toHaveLength(2);
    await waitServing(target, 2);
    const first = new Set<string>();
    for (let i = 0; i < 8; i++) first.add(/from (\d+)/.exec(await fcgiGet(target))![1]!);

    const before = process.hrtime.bigint() / 1000n;
    process.kill(starter.pid, 'SIGHUP');
    await until(() => notify.messages().length >= 3, 15_000, 'READY=1 after the reload');
    // After the second READY=1, only new workers answer.
    for (let i = 0; i < 8; i++) {
      const pid = /from (\d+)/.exec(await fcgiGet(target))![1]!;
      expect(first.has(pid)).toBe(false);
    }

    expect(await starter.stop()).toBe(0);
    await until(() => notify.messages().length >= 4, 5000, 'STOPPING=1');
    const messages = notify.messages();
    expect(messages.map((m) => m[1])).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
    // systemd-notify --pid puts MAINPID first in every message: the starter's own pid.
    for (const m of messages) expect(m[0]).toBe(`MAINPID=${starter.pid}`);
    expect(field(messages[0], 'STATUS')).toBe(`2 workers ready (generation 1) on 127.0.0.1:${port}`);
    expect(field(messages[1], 'STATUS')).toBe('reloading 2 workers (generation 2)');
    expect(field(messages[2], 'STATUS')).toBe(`2 workers ready (generation 2) on 127.0.0.1:${port}`);
    expect(field(messages[3], 'STATUS')).toMatch(/^stopping \d workers$/);
    // MONOTONIC_USEC is CLOCK_MONOTONIC, the clock this process's hrtime reads.
    const usec = BigInt(field(messages[1], 'MONOTONIC_USEC')!);
    expect(usec).toBeGreaterThanOrEqual(before);
    expect(usec - before).toBeLessThan(5_000_000n);
  });

  it('keeps NOTIFY_SOCKET from the workers, and a worker that does not report is ready after it settles', async () => {
    const notify = await notifySocket(join(dir, 'env.sock'));
    const port = await freePort();
    const starter = startCli(
      [
        '-p',
        String(port),
        '-N',
        '1',
        '--allow-root',
        'sh',
        '-c',
        'if [ -z "$NOTIFY_SOCKET" ]; then echo notify=unset; else echo notify=set; fi; exec sleep 30',
      ],
      { env: { ...process.env, NOTIFY_SOCKET: notify.path } },
    );
    await starter.waitFor(/\[worker 1 pid \d+\] notify=unset/);
    await until(() => notify.messages().length >= 1, 10_000, 'READY=1');
    expect(notify.messages()[0]![1]).toBe('READY=1');
  });

  it('without systemd-notify on PATH: one clear line, and the pool runs on', async () => {
    const port = await freePort();
    const starter = startCli(['-p', String(port), '-N', '1', '--allow-root', RESPONDER], {
      env: { ...process.env, PATH: dir, NOTIFY_SOCKET: join(dir, 'none.sock') },
    });
    await starter.waitFor(/NOTIFY_SOCKET is set but systemd-notify is not installed/);
    await waitServing({ host: '127.0.0.1', port }, 1, 10_000);
    expect(await starter.stop()).toBe(0);
    expect(starter.output().match(/not installed/g)).toHaveLength(1);
  });
});
