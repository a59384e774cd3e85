import { execFileSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { sleep, startCli, stopAll, until } from '../helpers/processes.js';
import { asNobody, hostileDir, NOBODY, rootSkipReason } from './hostile.js';

/**
 * Paths a root starter is given in a directory the worker user (nobody) owns, where that user
 * planted something first: a symlink to a root-only file, or a regular file where a socket
 * should be. The starter refuses with one line and exit 1, and neither the planted entry nor
 * what it points at changes.
 */

/** Runs perl as nobody and fails the test if it fails. */
async function nobodyDoes(script: string, ...args: string[]): Promise<void> {
  const { code, output } = await asNobody(script, args).done;
  expect(code, output).toBe(0);
}

const symlinkAsNobody = (target: string, link: string) =>
  nobodyDoes('symlink($ARGV[0], $ARGV[1]) or die "symlink: $!"', target, link);

function snapshot(path: string): string {
  const stat = lstatSync(path);
  const what = stat.isSymbolicLink() ? `-> ${readlinkSync(path)}` : readFileSync(path, 'utf8');
  return `${stat.mode.toString(8)} ${stat.uid}:${stat.gid} ${stat.ino} ${stat.ctimeMs} ${what}`;
}

const skip = rootSkipReason();

describe.skipIf(skip !== null)(`paths planted by the worker user${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const place = hostileDir('fcgi-prefork-planted-');
  const secret = join(place.root, 'secret');
  const run = (name: string) => join(place.shared, name);
  let port = 0;

  beforeEach(async () => {
    rmSync(secret, { force: true });
    writeFileSync(secret, 'root only\n', { mode: 0o600 });
    port = await freePort();
  });
  afterEach(async () => {
    await stopAll();
    // A fresh nobody-owned directory for the next case.
    rmSync(place.shared, { recursive: true, force: true });
    mkdirSync(place.shared);
    chownSync(place.shared, NOBODY.uid, NOBODY.gid);
  });
  afterAll(() => place.remove());

  /** Runs the starter with these options; it must refuse with one line matching `message`, exit 1. */
  async function refused(options: string[], message: RegExp): Promise<void> {
    const starter = startCli([...options, '-u', 'nobody', '-N', '1', '/bin/sleep', '600']);
    const code = await Promise.race([starter.exited, sleep(15_000).then(() => 'still running after 15 s')]);
    const lines = starter.output().split('\n').filter(Boolean);
    // Refused before anything starts: one line.
    expect(lines, starter.output()).toEqual([expect.stringMatching(message)]);
    expect(starter.output()).not.toMatch(/internal error|\n\s+at /);
    expect(code).toBe(1);
  }

  it('-P at a symlink to a root-only file: refused, the file untouched', async () => {
    await symlinkAsNobody(secret, run('app.pid'));
    const before = [snapshot(secret), snapshot(run('app.pid'))];
    await refused(
      ['-p', String(port), '-P', run('app.pid')],
      /pidfile .*app\.pid is a symbolic link; not following it/,
    );
    expect([snapshot(secret), snapshot(run('app.pid'))]).toEqual(before);
  });

  it('-P at a dangling symlink into a root-only directory: refused, nothing created there', async () => {
    const target = join(place.root, 'created-by-root');
    await symlinkAsNobody(target, run('app.pid'));
    await refused(['-p', String(port), '-P', run('app.pid')], /pidfile .* is a symbolic link/);
    expect(existsSync(target)).toBe(false);
  });

  it('-P at a hard link to a root-only file (fs.protected_hardlinks=0 lets nobody make one): the name is replaced, the file untouched', async () => {
    // Planted by root here: this machine's protected_hardlinks stops nobody from linking root's files.
    linkSync(secret, run('app.pid'));
    const before = readFileSync(secret, 'utf8');
    const starter = startCli([
      '-p',
      String(port),
      '-P',
      run('app.pid'),
      '-u',
      'nobody',
      '-N',
      '1',
      '/bin/sleep',
      '600',
    ]);
    await starter.waitFor(/starting 1 ×/);
    expect(readFileSync(run('app.pid'), 'utf8')).toBe(`${starter.pid}\n`);
    expect(lstatSync(secret).nlink).toBe(1);
    expect(await starter.stop()).toBe(0);
    expect(existsSync(run('app.pid'))).toBe(false);
    expect(readFileSync(secret, 'utf8')).toBe(before);
    expect(lstatSync(secret).mode & 0o7777).toBe(0o600);
  });

  it('-s and --control at a hard link to a root-only file: refused, the file untouched', async () => {
    linkSync(secret, run('app.sock'));
    linkSync(secret, run('ctl.sock'));
    const before = snapshot(secret);
    await refused(['-s', run('app.sock')], /app\.sock exists and is not a socket; not replacing it$/);
    await refused(
      ['-p', String(port), '--control', run('ctl.sock')],
      /control socket .*ctl\.sock exists and is not a socket/,
    );
    expect(snapshot(secret)).toBe(before);
    expect(lstatSync(secret).nlink).toBe(3);
  });

  it('--control at a regular file: refused, the file neither replaced nor deleted', async () => {
    writeFileSync(run('control'), 'not a socket\n', { mode: 0o600 });
    const before = snapshot(run('control'));
    await refused(
      ['-p', String(port), '--control', run('control')],
      /control socket .*control exists and is not a socket; not replacing it/,
    );
    expect(snapshot(run('control'))).toBe(before);
  });

  it('--control at a symlink to a root-only file: refused, the file untouched', async () => {
    await symlinkAsNobody(secret, run('ctl.sock'));
    const before = [snapshot(secret), snapshot(run('ctl.sock'))];
    await refused(['-p', String(port), '--control', run('ctl.sock')], /control socket .* is not a socket/);
    expect([snapshot(secret), snapshot(run('ctl.sock'))]).toEqual(before);
  });

  it('-s at a symlink to a root-only file: refused, the file untouched', async () => {
    await symlinkAsNobody(secret, run('app.sock'));
    const before = [snapshot(secret), snapshot(run('app.sock'))];
    await refused(
      ['-s', run('app.sock'), '-M', '0666', '-U', 'nobody'],
      /^fcgi-prefork: \/.*app\.sock exists and is not a socket; not replacing it$/,
    );
    expect([snapshot(secret), snapshot(run('app.sock'))]).toEqual(before);
  });

  it('sockets and pidfile: mode and owner as asked, control socket 0600 and closed to nobody, all removed on stop', async () => {
    const starter = startCli([
      ...['-s', run('app.sock'), '-M', '0660', '-U', 'nobody', '-G', 'nogroup'],
      ...['-P', run('app.pid'), '--control', run('ctl.sock'), '-u', 'nobody', '-N', '1', '/bin/sleep', '600'],
    ]);
    await until(() => existsSync(run('ctl.sock')), 15_000, 'the control socket');
    const sock = lstatSync(run('app.sock'));
    expect(sock.isSocket()).toBe(true);
    expect([sock.mode & 0o7777, sock.uid, sock.gid]).toEqual([0o660, NOBODY.uid, NOBODY.gid]);
    const ctl = lstatSync(run('ctl.sock'));
    expect([ctl.mode & 0o7777, ctl.uid, ctl.gid]).toEqual([0o600, 0, 0]);
    const pid = lstatSync(run('app.pid'));
    expect(pid.isFile()).toBe(true);
    expect(readFileSync(run('app.pid'), 'utf8')).toBe(`${starter.pid}\n`);
    // nobody cannot reach the control socket; root can.
    await nobodyDoes(
      `use Socket; socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die;
       connect($s, pack_sockaddr_un($ARGV[0])) and die "connected";
       $!{EACCES} or die "not EACCES: $!";`,
      run('ctl.sock'),
    );
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(run('ctl.sock'), () => {
        c.destroy();
        resolve();
      });
      c.once('error', reject);
    });
    // No private directory of the starter's is left behind.
    expect(readdirNames(place.shared)).toEqual(['app.pid', 'app.sock', 'ctl.sock']);
    expect(await starter.stop()).toBe(0);
    expect(readdirNames(place.shared)).toEqual([]);
  });

  it('in a directory only root can write, the socket is bound at its own name (what ss -xl shows), mode and owner as asked', async () => {
    const own = join(place.root, 'root-run');
    mkdirSync(own, { mode: 0o755 });
    try {
      const path = join(own, 'app.sock');
      const starter = startCli([
        '-s',
        path,
        '-M',
        '0660',
        '-U',
        'nobody',
        '-u',
        'nobody',
        '-N',
        '1',
        '/bin/sleep',
        '600',
      ]);
      await until(() => existsSync(path), 15_000, 'the socket');
      const sock = lstatSync(path);
      expect([sock.mode & 0o7777, sock.uid]).toEqual([0o660, NOBODY.uid]);
      const listed = execFileSync('ss', ['-xlH'], { encoding: 'utf8' });
      expect(listed.split('\n').some((line) => line.includes(` ${path} `))).toBe(true);
      expect(readdirNames(own)).toEqual(['app.sock']);
      expect(await starter.stop()).toBe(0);
      expect(readdirNames(own)).toEqual([]);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('a pidfile or socket swapped for a symlink during the run: left alone on stop, its target untouched', async () => {
    const starter = startCli([
      ...['-s', run('app.sock'), '-P', run('app.pid'), '--control', run('ctl.sock')],
      ...['-u', 'nobody', '-N', '1', '/bin/sleep', '600'],
    ]);
    await until(() => existsSync(run('ctl.sock')), 15_000, 'the control socket');
    for (const name of ['app.pid', 'app.sock', 'ctl.sock']) {
      await nobodyDoes(
        'rename($ARGV[0], "$ARGV[0].moved") or die "rename: $!"; symlink($ARGV[1], $ARGV[0]) or die "symlink: $!"',
        run(name),
        secret,
      );
    }
    const before = snapshot(secret);
    expect(await starter.stop()).toBe(0);
    expect(snapshot(secret)).toBe(before);
    for (const name of ['app.pid', 'app.sock', 'ctl.sock'])
      expect(lstatSync(run(name)).isSymbolicLink()).toBe(true);
  });
});

const readdirNames = (dir: string): string[] => readdirSync(dir).sort();
