import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, onTestFailed } from 'vitest';
import type { PoolStatus } from '../../starter/pool.js';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { peer } from '../helpers/peers.js';
import { CLI, quietEnv, ROOT, start, startCli, stopAll, until } from '../helpers/processes.js';

const tmux = peer('tmux', 'tmux');
const dir = mkdtempSync(join(tmpdir(), 'fcgi-top-'));
// A server of our own (-L): the test neither sees nor touches anyone's tmux sessions.
const TMUX_SERVER = `fcgi-top-${process.pid}`;

function tmuxRun(...args: string[]): string {
  return execFileSync(tmux.path!, ['-L', TMUX_SERVER, ...args], { encoding: 'utf8', stdio: 'pipe' });
}

let lastScreen = '';
function screen(): string[] {
  lastScreen = tmuxRun('capture-pane', '-p', '-t', 'top');
  return lastScreen.replace(/\n+$/, '').split('\n');
}

afterEach(async () => {
  if (tmux.path) {
    try {
      tmuxRun('kill-server');
    } catch {
      // no server left
    }
  }
  await stopAll();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function startPool(workers: number, command = 'test/fixtures/slow-sdk-worker.ts') {
  const port = await freePort();
  const control = join(dir, `control-${port}`);
  const starter = startCli([
    '-p',
    String(port),
    '-N',
    String(workers),
    '--control',
    control,
    '--allow-root',
    command,
  ]);
  await starter.waitFor(/listening on/);
  return { starter, control, target: { host: '127.0.0.1', port } };
}

function status(control: string): PoolStatus {
  return JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', CLI, 'status', '--control', control, '--json'], {
      cwd: ROOT,
      env: quietEnv(),
      encoding: 'utf8',
    }),
  ) as PoolStatus;
}

describe.skipIf(tmux.skipReason)('fcgi-prefork top under tmux', () => {
  it('shows a busy worker’s request and its elapsed time, a replaced worker’s new pid, and redraws on resize', async () => {
    onTestFailed(() => console.log(`the screen at the end:\n${lastScreen}`));
    const { control, target } = await startPool(2);
    await waitServing(target, 2, 60_000);
    // Load: one request that stays in progress, and a bounded loop of quick ones.
    const slow = fcgiGet(target, '/slow/report-42?ms=120000', 180_000).catch(() => 'aborted');
    const quick = (async () => {
      for (let i = 0; i < 40; i++) await fcgiGet(target, `/quick/${i}`, 30_000);
    })();

    tmuxRun(
      'new-session',
      '-d',
      '-s',
      'top',
      '-x',
      '120',
      '-y',
      '30',
      // The pane stays after top ends, saying how it ended.
      `cd ${ROOT} && ${process.execPath} --import tsx ${CLI} top --control ${control}; echo "top exited $?"; sleep 600`,
    );
    // The busy worker's row: the method and URI, an elapsed time that grows.
    let busyLine = '';
    await until(
      () => {
        busyLine = screen().find((l) => l.includes('GET /slow/report-42?ms=120000')) ?? '';
        return /\s(\d+\.\d\ds|\d+m\d+s)\s+GET \/slow/.test(busyLine) && !/\s0\.00s\s/.test(busyLine);
      },
      60_000,
      'the busy worker on the screen',
    );
    const busyPid = Number(busyLine.trim().split(/\s+/)[1]);
    expect(busyLine.trim().split(/\s+/)[2]).toBe('ready');
    await quick;

    // kill -9 the other worker: its replacement's pid appears, the old one goes.
    const idle = status(control).workers.find((w) => w.pid !== busyPid)!;
    process.kill(idle.pid, 'SIGKILL');
    let replacement = 0;
    await until(
      () => {
        const rows = screen().filter((l) => /^\s+\d+\s+\d+\s/.test(l));
        const pids = rows.map((l) => Number(l.trim().split(/\s+/)[1]));
        replacement = pids.find((p) => p !== busyPid && p !== idle.pid) ?? 0;
        return replacement > 0 && !pids.includes(idle.pid);
      },
      60_000,
      'the replacement worker on the screen',
    );
    expect(status(control).workers.map((w) => w.pid)).toContain(replacement);
    expect(screen().find((l) => l.startsWith('workers '))).toMatch(/restarts 1\b/);

    // c sorts by CPU: the header says so.
    tmuxRun('send-keys', '-t', 'top', 'c');
    await until(() => screen()[1]!.includes('sort cpu'), 20_000, 'sort cpu');
    // A narrower window: every line fits, the header is whole, nothing left of the wide screen.
    tmuxRun('resize-window', '-t', 'top', '-x', '52', '-y', '20');
    await until(
      () => {
        const lines = screen();
        return (
          lines.every((l) => l.length <= 52) &&
          lines[0]!.startsWith('fcgi-prefork pid ') &&
          lines[1]!.startsWith('workers 2/2') &&
          lines[3]!.startsWith('SLOT') &&
          lines.filter((l) => /^\s+\d+\s+\d+\s/.test(l)).length === 2 &&
          lines.slice(6).every((l) => l.trim() === '')
        );
      },
      30_000,
      'a clean redraw at 52 columns',
    );
    tmuxRun('send-keys', '-t', 'top', 'q');
    await until(() => screen().includes('top exited 0'), 20_000, 'top to quit on q');
    void slow;
  }, 300_000);
});

describe('fcgi-prefork top without a terminal', () => {
  it('prints one plain snapshot per refresh, with the request in progress', async () => {
    const { control, target } = await startPool(1);
    await waitServing(target, 1, 60_000);
    void fcgiGet(target, '/slow/plain?ms=60000', 120_000).catch(() => {});
    await until(() => status(control).workers[0]?.current !== null, 30_000, 'the request in progress');
    const top = start(
      process.execPath,
      ['--import', 'tsx', CLI, 'top', '--control', control, '-n', '2', '-d', '0.5'],
      {
        cwd: ROOT,
      },
    );
    expect(await top.exited).toBe(0);
    const out = top.output();
    expect(out.includes('\x1b')).toBe(false);
    expect(out.match(/^fcgi-prefork pid \d+ {2}up /gm)).toHaveLength(2);
    expect(out).toMatch(/^\s+1\s+\d+\s+ready\s.*\s\d+\.\d\ds\s+GET \/slow\/plain\?ms=60000$/m);
  }, 180_000);

  it('refuses a bad command line with usage (exit 2) and an unreachable starter in one line (exit 1)', async () => {
    const none = start(process.execPath, ['--import', 'tsx', CLI, 'top'], { cwd: ROOT });
    expect(await none.exited).toBe(2);
    expect(none.output()).toMatch(/top needs --control <path> or --pidfile <path>/);
    const sort = start(process.execPath, ['--import', 'tsx', CLI, 'top', '--control', 'x', '--sort', 'pid'], {
      cwd: ROOT,
    });
    expect(await sort.exited).toBe(2);
    expect(sort.output()).toMatch(/invalid sort key 'pid'/);
    const gone = start(process.execPath, ['--import', 'tsx', CLI, 'top', '--control', join(dir, 'nothing')], {
      cwd: ROOT,
    });
    expect(await gone.exited).toBe(1);
    expect(gone.output().trim().split('\n')).toEqual([
      expect.stringMatching(/^fcgi-prefork: cannot reach the starter/),
    ]);
  }, 120_000);
});

describe('what a worker says about its request is checked', () => {
  it('bounds and cleans a forged current request, and never reports a negative elapsed time', async () => {
    const { control } = await startPool(1, 'test/fixtures/forged-stats-worker.ts');
    let worker: PoolStatus['workers'][number] | undefined;
    await until(
      () => {
        worker = status(control).workers[0];
        return worker?.current != null;
      },
      60_000,
      'the forged request in status',
    );
    const current = worker!.current!;
    expect(current.method.length).toBeLessThanOrEqual(16);
    expect(current.uri.length).toBeLessThanOrEqual(200);
    expect([...(current.method + current.uri)].every((c) => c >= ' ' && c !== '\x7f')).toBe(true);
    expect(current.uri.startsWith('/evil?[31m')).toBe(true);
    expect(current.elapsedMs).toBe(0);
    expect(worker!.cpuSeconds).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
