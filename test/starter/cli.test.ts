import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { CLI, quietEnv, ROOT } from '../helpers/processes.js';

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: quietEnv(),
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'fcgi-prefork-cli-'));
const notExecutable = join(dir, 'not-executable');
writeFileSync(notExecutable, '#!/bin/sh\n');
let busy: net.Server;
let busyPort = 0;

beforeAll(async () => {
  busyPort = await freePort();
  busy = net.createServer().listen(busyPort, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
});
afterAll(() => {
  busy.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fcgi-prefork command line', () => {
  it('prints its version and help', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(cli(['--version'])).toMatchObject({
      status: 0,
      stdout: `fcgi-prefork ${version} (Node ${process.version})\n`,
    });
    const help = cli(['-h']);
    expect(help.status).toBe(0);
    for (const flag of [
      '--port',
      '--address',
      '--socket',
      '--workers',
      '--backlog',
      '--user',
      '--graceful-timeout',
      '--detach',
      '--env',
      '--clear-env',
    ]) {
      expect(help.stdout).toContain(flag);
    }
  });

  // Each bad invocation: exit 2 (usage) or 1 (runtime), one line naming the problem, no stack.
  const cases: [string, () => string[], number, () => RegExp][] = [
    ['unknown long flag', () => ['--bogus', 'x'], 2, () => /unknown option --bogus/],
    ['unknown short flag', () => ['-z', 'x'], 2, () => /unknown option -z/],
    ['port 0', () => ['-p', '0', 'x'], 2, () => /invalid port '0': must be 1-65535/],
    ['port 70000', () => ['-p', '70000', 'x'], 2, () => /invalid port '70000'/],
    ['port abc', () => ['-p', 'abc', 'x'], 2, () => /invalid port 'abc': not a number/],
    ['port -1', () => ['-p', '-1', 'x'], 2, () => /invalid port '-1'/],
    ['missing port value', () => ['-p'], 2, () => /option -p needs a value/],
    ['missing command', () => ['-p', '9000', '--allow-root'], 2, () => /no worker command given/],
    ['no address at all', () => ['--allow-root', 'true'], 2, () => /no address to listen on/],
    [
      'port and socket',
      () => ['-p', '9000', '-s', '/tmp/x.sock', 'x'],
      2,
      () => /give --port or --socket, not both/,
    ],
    ['address without port', () => ['-a', '127.0.0.1', 'x'], 2, () => /--address needs --port/],
    [
      'bad address',
      () => ['-p', '9000', '-a', 'not-an-ip', '--allow-root', 'true'],
      2,
      () => /invalid address 'not-an-ip'/,
    ],
    [
      'address not on this machine',
      () => ['-p', '9000', '-a', '192.0.2.1', '--allow-root', 'true'],
      1,
      () => /192\.0\.2\.1:9000 is not an address of this machine/,
    ],
    ['socket mode 999', () => ['-s', '/tmp/x.sock', '-M', '999', 'x'], 2, () => /invalid socket mode '999'/],
    ['socket mode abc', () => ['-s', '/tmp/x.sock', '-M', 'abc', 'x'], 2, () => /invalid socket mode 'abc'/],
    [
      'socket mode without socket',
      () => ['-p', '9000', '-M', '0600', 'x'],
      2,
      () => /--socket-mode needs --socket/,
    ],
    [
      'socket directory missing',
      () => ['-s', '/nonexistent-dir/x.sock', '--allow-root', 'true'],
      1,
      () => /cannot bind \/nonexistent-dir\/x.sock: directory \/nonexistent-dir does not exist/,
    ],
    [
      'socket path is a regular file',
      () => ['-s', notExecutable, '--allow-root', 'true'],
      1,
      () => /exists and is not a socket/,
    ],
    ['workers 0', () => ['-p', '9000', '-N', '0', 'x'], 2, () => /invalid worker count '0'/],
    ['workers -1', () => ['-p', '9000', '-N', '-1', 'x'], 2, () => /invalid worker count '-1'/],
    ['workers abc', () => ['-p', '9000', '-F', 'abc', 'x'], 2, () => /invalid worker count 'abc'/],
    ['backlog abc', () => ['-p', '9000', '-b', 'abc', 'x'], 2, () => /invalid backlog 'abc'/],
    [
      'graceful timeout abc',
      () => ['-p', '9000', '--graceful-timeout', 'abc', 'x'],
      2,
      () => /invalid graceful timeout 'abc'/,
    ],
    [
      'env without =',
      () => ['-p', '9000', '-e', 'NOVALUE', 'x'],
      2,
      () => /invalid environment 'NOVALUE': give NAME=VALUE/,
    ],
    [
      'env with empty name',
      () => ['-p', '9000', '--env', '=x', 'x'],
      2,
      () => /invalid environment '=x': give NAME=VALUE/,
    ],
    ['env without value', () => ['-p', '9000', '-e'], 2, () => /option -e needs a value/],
    ['max requests 0', () => ['-p', '9000', '--max-requests', '0', 'x'], 2, () => /invalid max requests '0'/],
    ['crash limit 0', () => ['-p', '9000', '--crash-limit', '0', 'x'], 2, () => /invalid crash limit '0'/],
    [
      'crash limit abc',
      () => ['-p', '9000', '--crash-limit', 'abc', 'x'],
      2,
      () => /invalid crash limit 'abc'/,
    ],
    ['crash window 0', () => ['-p', '9000', '--crash-window', '0', 'x'], 2, () => /invalid crash window '0'/],
    [
      'crash window -1',
      () => ['-p', '9000', '--crash-window', '-1', 'x'],
      2,
      () => /invalid crash window '-1'/,
    ],
    [
      'backoff max abc',
      () => ['-p', '9000', '--backoff-max', 'abc', 'x'],
      2,
      () => /invalid backoff max 'abc'/,
    ],
    ['max lifetime 0', () => ['-p', '9000', '--max-lifetime', '0', 'x'], 2, () => /invalid max lifetime '0'/],
    [
      'unknown user',
      () => ['-p', '9000', '-u', 'no-such-user-xyz', 'true'],
      2,
      () => /unknown user 'no-such-user-xyz'/,
    ],
    [
      'unknown group',
      () => ['-p', '9000', '-g', 'no-such-group-xyz', '--allow-root', 'true'],
      2,
      () => /unknown group 'no-such-group-xyz'/,
    ],
    [
      'command not found',
      () => ['-p', '9000', '--allow-root', 'no-such-command-xyz'],
      1,
      () => /command not found: no-such-command-xyz/,
    ],
    [
      'command not executable',
      () => ['-p', '9000', '--allow-root', notExecutable],
      1,
      () => /command is not executable/,
    ],
    [
      'script not found',
      () => ['-p', '9000', '--allow-root', 'missing-worker.ts'],
      1,
      () => /command not found: missing-worker.ts/,
    ],
    [
      'port in use',
      () => ['-p', String(busyPort), '--allow-root', 'true'],
      1,
      () => new RegExp(`^fcgi-prefork: 127\\.0\\.0\\.1:${busyPort} is already in use$`, 'm'),
    ],
    ['status without target', () => ['status'], 2, () => /status needs --control <path> or --pidfile <path>/],
    [
      'status of nothing',
      () => ['status', '--control', '/nonexistent/ctl.sock'],
      1,
      () => /cannot reach the starter at \/nonexistent\/ctl.sock/,
    ],
    [
      'request to nothing',
      () => ['request', '--connect', '127.0.0.1:9', '/'],
      1,
      () => /cannot connect to 127\.0\.0\.1:9: connection refused/,
    ],
    ['request bad header', () => ['request', '-H', 'nocolon', '/'], 2, () => /invalid header 'nocolon'/],
  ];

  for (const [name, args, code, message] of cases) {
    it(`rejects: ${name}`, () => {
      const result = cli(args());
      expect(result.stderr).toMatch(message());
      expect(result.status).toBe(code);
      expect(result.stderr).not.toMatch(/\n\s+at |internal error/);
      const lines = result.stderr.trim().split('\n');
      expect(lines.length, result.stderr).toBeLessThanOrEqual(code === 2 ? 2 : 1);
      if (code === 2 && !name.startsWith('status') && !name.startsWith('request')) {
        expect(lines[1]).toBe("Try 'fcgi-prefork --help' for more information.");
      }
    });
  }

  it('refuses to run workers as root without --allow-root or --user', () => {
    const isRoot = Number(execFileSync('id', ['-u'], { encoding: 'utf8' }).trim()) === 0;
    if (!isRoot)
      return expect(cli(['-p', '9000', '-u', 'nobody', 'true']).stderr).toMatch(
        /--user\/--group need the starter to run as root/,
      );
    const result = cli(['-p', '9000', 'true']);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'fcgi-prefork: refusing to run workers as root: give --user <name> (or --allow-root)\n',
    );
  });
});
