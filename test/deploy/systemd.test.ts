import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { fdsPointingAt, isNonBlocking, killOneAwaitRespawn } from '../helpers/fds.js';
import { freePort } from '../helpers/net.js';
import { field, notifySocket, perl } from '../helpers/notify.js';
import { findProgram, peer } from '../helpers/peers.js';
import { CLI, childrenOf, ROOT, sleep, start, stopAll, until } from '../helpers/processes.js';

// The shipped units, as they are: the socket-activation test below runs their ExecStart line.
const UNITS = join(ROOT, 'examples', 'systemd');
const RESPONDER = join(ROOT, 'test', 'fixtures', 'responder.ts');
const SLOW_START = join(ROOT, 'test', 'fixtures', 'slow-start-worker.ts');
/** The starter run by this Node through tsx, as systemd-socket-activate's command. */
const STARTER = [process.execPath, '--import', 'tsx', CLI];

const activate = peer('systemd-socket-activate', 'systemd');
const analyze = peer('systemd-analyze', 'systemd');
const systemdNotify = peer('systemd-notify', 'systemd');

const dir = mkdtempSync(join(tmpdir(), 'fcgi-systemd-'));
chmodSync(dir, 0o777); // the service user writes its runtime directory here
afterEach(stopAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Unit = Record<string, Record<string, string>>;

/** A unit file's sections and keys (ours use no line continuations and set each key once). */
function readUnit(name: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string> = {};
  for (const raw of readFileSync(join(UNITS, name), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = {};
      unit[header[1]!] = section;
      continue;
    }
    const eq = line.indexOf('=');
    section[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return unit;
}

const service = readUnit('fcgi-prefork.service');
const socketUnit = readUnit('fcgi-prefork.socket');

/** ExecStart's words: the installed binary, then the flags and the worker command. */
function execStart(): string[] {
  const line = service.Service!.ExecStart!;
  expect(line).not.toMatch(/["'\\]/); // so splitting on blanks is what systemd does
  return line.split(/\s+/);
}

/** The number a flag of ExecStart is given. */
function execStartNumber(name: string): number {
  const words = execStart();
  return Number(words[words.indexOf(name) + 1]);
}

/**
 * ExecStart as this checkout runs it: the installed binary becomes `node --import tsx
 * starter/cli.ts` (one process, so LISTEN_PID stays its pid), the app in WorkingDirectory the
 * test responder, and the RuntimeDirectory a temporary one. Every flag stays as shipped.
 */
function execStartHere(runtime: string): string[] {
  const [binary, ...rest] = execStart();
  expect(binary).toBe('/usr/bin/fcgi-prefork');
  const app = `${service.Service!.WorkingDirectory}/`;
  const run = `/run/${service.Service!.RuntimeDirectory}/`;
  return [
    ...STARTER,
    ...rest.map((word) =>
      word.startsWith(app) ? RESPONDER : word.startsWith(run) ? join(runtime, word.slice(run.length)) : word,
    ),
  ];
}

/**
 * DynamicUser=yes: the starter runs unprivileged. As root, setpriv (which execs, keeping the pid)
 * drops to nobody when nobody can read this checkout; otherwise root needs --allow-root.
 */
function asServiceUser(): { prefix: string[]; extra: string[] } {
  if (process.getuid?.() !== 0) return { prefix: [], extra: [] };
  const setpriv = findProgram('setpriv');
  const prefix = setpriv ? [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : [];
  if (setpriv && spawnSync(setpriv, [...prefix.slice(1), 'test', '-r', RESPONDER]).status === 0)
    return { prefix, extra: [] };
  return { prefix: [], extra: ['--allow-root'] };
}

function parentOf(pid: number): number {
  // /proc/<pid>/stat: pid (comm) state ppid ...
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

describe('examples/systemd units', () => {
  it('have what the pool needs: notify, reload by SIGHUP, SIGTERM to the starter, a stop timeout past --graceful-timeout, hardening', () => {
    const s = service.Service!;
    expect(s.Type).toBe('notify');
    expect(s.NotifyAccess).toBe('all'); // the starter is unprivileged: systemd-notify sends as itself
    expect(s.ExecReload).toBe('/bin/kill -HUP $MAINPID');
    expect(s.KillSignal).toBe('SIGTERM');
    expect(s.KillMode).toBe('mixed');
    expect(Number(s.TimeoutStopSec)).toBeGreaterThan(execStartNumber('--graceful-timeout'));
    for (const [key, value] of Object.entries({
      DynamicUser: 'yes',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      RuntimeDirectory: 'fcgi-prefork',
    }))
      expect(s[key], key).toBe(value);
    expect(s.MemoryDenyWriteExecute).toBeUndefined(); // V8's JIT
    // Neither --port nor --socket: the socket systemd passes; the control socket in RuntimeDirectory.
    const words = execStart();
    expect(words.filter((w) => /^(-p|--port|-s|--socket)$/.test(w))).toEqual([]);
    expect(words[words.indexOf('--control') + 1]).toMatch(/^\/run\/fcgi-prefork\//);
    expect(service.Unit!.Requires).toBe('fcgi-prefork.socket');
    const k = socketUnit.Socket!;
    expect(k.ListenStream).toMatch(/^\/run\//);
    expect(k.SocketMode).toBe('0660');
    expect(k.SocketGroup).toBe('www-data');
    expect(k.Accept).toBe('no');
  });

  it.skipIf(analyze.skipReason)('pass systemd-analyze verify without a warning', () => {
    // verify runs without a running systemd given a root: the stock units, ours, and the binaries
    // ExecStart/ExecReload name (verify checks they are executable).
    const root = join(dir, 'root');
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    for (const name of ['fcgi-prefork.service', 'fcgi-prefork.socket'])
      copyFileSync(join(UNITS, name), join(root, 'etc/systemd/system', name));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/fcgi-prefork'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(root, 'bin/kill'), '#!/bin/sh\n', { mode: 0o755 });
    const result = spawnSync(
      analyze.path!,
      ['verify', `--root=${root}`, 'fcgi-prefork.socket', 'fcgi-prefork.service'],
      { encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

describe.skipIf(activate.skipReason ?? systemdNotify.skipReason ?? perl.skipReason)(
  'socket activation (systemd-socket-activate)',
  () => {
    it('the shipped ExecStart serves on the passed socket from every worker, never accepts itself, and passes workers fd 0 only', async () => {
      const port = await freePort();
      const target = { host: '127.0.0.1', port };
      const runtime = join(dir, 'run');
      mkdirSync(runtime, { mode: 0o777 });
      chmodSync(runtime, 0o777);
      const notify = await notifySocket(join(dir, 'notify.sock'));
      const user = asServiceUser();
      const command = [...user.prefix, ...execStartHere(runtime), ...user.extra];
      const workers = execStartNumber('--workers');
      const activator = start(
        activate.path!,
        [`--listen=127.0.0.1:${port}`, '--fdname=fcgi', `--setenv=NOTIFY_SOCKET=${notify.path}`, ...command],
        { cwd: ROOT },
      );
      await activator.waitFor(/Listening on/);
      // The first connection starts the service, and waits in the backlog for a worker.
      expect(await fcgiGet(target)).toMatch(/^hello from \d+/);
      await activator.waitFor(/listening on fd 3 \(socket activation\)/);
      await waitServing(target, workers);

      // READY=1 came from the starter: the pid systemd-socket-activate became by exec.
      await until(() => notify.messages().length >= 1, 10_000, 'READY=1');
      expect(notify.messages()[0]!.slice(0, 2)).toEqual([`MAINPID=${activator.pid}`, 'READY=1']);
      expect(field(notify.messages()[0], 'STATUS')).toBe(
        `${workers} workers ready (generation 1) on fd 3 (socket activation)`,
      );

      const pids = new Set<number>();
      for (let i = 0; pids.size < workers && i < workers * 10; i++)
        pids.add(Number(/from (\d+)/.exec(await fcgiGet(target))![1]));
      expect(pids.size).toBe(workers);
      // Unprivileged, as DynamicUser=yes runs it (unless this checkout is unreadable to nobody).
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${activator.pid}/status`, 'utf8'))![1];
      expect(uid).toBe(user.prefix.length > 0 ? '65534' : String(process.getuid?.()));
      const listening = readlinkSync(`/proc/${activator.pid}/fd/3`);
      expect(listening).toMatch(/^socket:\[\d+\]$/);
      for (const pid of pids) {
        expect(parentOf(pid)).toBe(activator.pid);
        // The activated socket is each worker's fd 0, and no other descriptor of it.
        expect(fdsPointingAt(pid, listening)).toEqual([0]);
        const env = environOf(pid);
        for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET'])
          expect(
            env.some((e) => e.startsWith(`${name}=`)),
            name,
          ).toBe(false);
        expect(env).toContain('FCGI_PREFORK=1');
      }

      // The starter never accepts: with every worker stopped, a connection waits unanswered.
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      const pending = fcgiGet(target, '/', 20_000);
      expect(await Promise.race([pending.then(() => 'answered'), sleep(700).then(() => 'waiting')])).toBe(
        'waiting',
      );
      for (const pid of pids) process.kill(pid, 'SIGCONT');
      expect(await pending).toMatch(/^hello from \d+/);

      expect(await activator.stop()).toBe(0);
      await until(() => notify.messages().length >= 2, 5000, 'STOPPING=1');
      expect(notify.messages()[1]![1]).toBe('STOPPING=1');
    });

    it('serves on the unix socket the shipped .socket unit listens on', async () => {
      // ListenStream=/run/… under a temporary directory: systemd-socket-activate binds it as systemd would.
      const path = socketUnit.Socket!.ListenStream!.replace(/^\/run\//, `${dir}/`);
      const runtime = join(dir, 'run-unix');
      mkdirSync(runtime, { mode: 0o777 });
      chmodSync(runtime, 0o777);
      const user = asServiceUser();
      const activator = start(
        activate.path!,
        [`--listen=${path}`, ...user.prefix, ...execStartHere(runtime), ...user.extra],
        { cwd: ROOT },
      );
      await activator.waitFor(/Listening on/);
      expect(await fcgiGet({ path })).toMatch(/^hello from \d+/);
      await waitServing({ path }, execStartNumber('--workers'));
      expect(await activator.stop()).toBe(0);
    });

    it('a respawn leaves the passed socket non-blocking for the Node workers already on it: they still stop on SIGTERM', {
      timeout: 60_000,
    }, async () => {
      // As for a socket the starter binds (test/reliability/faults.test.ts): spawning a worker
      // makes the shared socket blocking, and a Node worker accepting then hangs in accept(2).
      // The respawned worker takes 1.5 s to listen; inside that window the survivor must see
      // a non-blocking socket, which the starter restores through a handle on systemd's fd.
      const port = await freePort();
      const target = { host: '127.0.0.1', port };
      const activator = start(
        activate.path!,
        [
          `--listen=127.0.0.1:${port}`,
          ...STARTER,
          '-N',
          '2',
          '--graceful-timeout',
          '20',
          '--allow-root',
          SLOW_START,
        ],
        { cwd: ROOT, env: { ...process.env, SLOW_START_MS: '1500' } },
      );
      await activator.waitFor(/Listening on/);
      expect(await fcgiGet(target, '/', 20_000)).toMatch(/hello/);
      await waitServing(target, 2);
      const { survivor } = await killOneAwaitRespawn(activator.pid);
      expect(isNonBlocking(survivor)).toBe(true);
      expect(await fcgiGet(target)).toMatch(/hello/);
      const started = Date.now();
      expect(await activator.stop()).toBe(0);
      expect(Date.now() - started).toBeLessThan(8000);
    });

    it('gives a program that is not Node (no IPC channel on fd 3) exactly fds 0, 1 and 2', async () => {
      const port = await freePort();
      const activator = start(
        activate.path!,
        [`--listen=127.0.0.1:${port}`, ...STARTER, '-N', '1', '--allow-root', 'sleep', '30'],
        { cwd: ROOT },
      );
      await activator.waitFor(/Listening on/);
      const trigger = net.connect(port, '127.0.0.1'); // starts the service; nobody will answer it
      trigger.on('error', () => {});
      await activator.waitFor(/listening on fd 3/);
      let worker = 0;
      await until(
        async () => {
          worker = (await childrenOf(activator.pid)).find((pid) => commOf(pid) === 'sleep') ?? 0;
          return worker !== 0;
        },
        10_000,
        'the sleep worker',
      );
      const listening = readlinkSync(`/proc/${activator.pid}/fd/3`);
      expect(readdirSync(`/proc/${worker}/fd`).map(Number).sort()).toEqual([0, 1, 2]);
      expect(readlinkSync(`/proc/${worker}/fd/0`)).toBe(listening);
      trigger.destroy();
      expect(await activator.stop()).toBe(0);
    });

    it('refuses a LISTEN_PID that names another process (a wrapper that forks): one line, exit 1', async () => {
      const port = await freePort();
      // The tsx CLI runs the script in a child process, as `sh -c` or npx would.
      const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
      const activator = start(
        activate.path!,
        [`--listen=127.0.0.1:${port}`, tsx, CLI, '--workers', '1', '--allow-root', RESPONDER],
        { cwd: ROOT },
      );
      await activator.waitFor(/Listening on/);
      await fcgiGet({ host: '127.0.0.1', port }, '/', 3000).catch(() => {}); // triggers the exec; nobody answers
      expect(await activator.exited).toBe(1);
      const lines = activator
        .output()
        .split('\n')
        .filter((l) => l.startsWith('fcgi-prefork:'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^fcgi-prefork: socket activation: LISTEN_PID=\d+ names another process, not this one \(pid \d+\); start fcgi-prefork itself, not through a wrapper that forks/,
      );
      expect(activator.output()).not.toMatch(/\n\s+at /); // no stack trace
    });
  },
);
