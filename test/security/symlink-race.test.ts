import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startCli, stopAll } from '../helpers/processes.js';
import { asNobody, hostileDir, rootSkipReason } from './hostile.js';

/**
 * A root starter puts its socket, control socket and pidfile in a directory the worker user
 * (nobody) owns, as /run/app often is, while a nobody process swaps each entry that appears
 * there for a symlink: a socket or regular file for one to a root-only 0600 file, a directory
 * (the private one the starter binds in) for one to a root-only directory holding such a file.
 * Were any chmod, chown, write or unlink of the starter's to follow one, that file would
 * change: its mode, owner, content or ctime.
 */
const SWAPPER = `
use strict;
my ($dir, $file, $tree) = @ARGV;
my %swapped = (socket => 0, dir => 0, file => 0);
my $n = 0;
$SIG{TERM} = sub { print join(' ', map { "$_=$swapped{$_}" } sort keys %swapped), "\\n"; exit 0 };
$| = 1;
print "ready\\n";
while (1) {
  opendir(my $dh, $dir) or next;
  my @names = grep { !/^(\\.|\\.\\.|moved\\..*)$/ } readdir($dh);
  closedir($dh);
  for my $name (@names) {
    my $path = "$dir/$name";
    next if -l $path;
    my $kind = -S _ ? 'socket' : -d _ ? 'dir' : -f _ ? 'file' : next;
    rename($path, "$dir/moved." . $n++) or next;
    symlink($kind eq 'dir' ? $tree : $file, $path) and $swapped{$kind}++;
  }
}
`;

const ROUNDS = 8;

interface Fingerprint {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly ctimeMs: number;
  readonly content: string;
}

function fingerprint(path: string): Fingerprint {
  const stat = lstatSync(path);
  return {
    mode: stat.mode,
    uid: stat.uid,
    gid: stat.gid,
    ctimeMs: stat.ctimeMs,
    content: readFileSync(path, 'utf8'),
  };
}

const skip = rootSkipReason();

describe.skipIf(skip !== null)(
  `symlink races in the worker user's directory${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    const place = hostileDir('fcgi-prefork-race-');
    const secret = join(place.root, 'secret');
    const tree = join(place.root, 'tree');
    const treeSecret = join(tree, 's');

    beforeAll(() => {
      writeFileSync(secret, 'root only\n', { mode: 0o600 });
      chmodSync(secret, 0o600);
      mkdirSync(tree, { mode: 0o700 });
      writeFileSync(treeSecret, 'root only too\n', { mode: 0o600 });
      chmodSync(treeSecret, 0o600);
    });
    afterEach(stopAll);
    afterAll(() => place.remove());

    it('never lets a swapped symlink redirect -s, --control or -P (-M 0666 -U nobody -u nobody)', async () => {
      const before = fingerprint(secret);
      const beforeTree = fingerprint(treeSecret);
      const swapper = asNobody(SWAPPER, [place.shared, secret, tree]);
      const exits: number[] = [];
      const outputs: string[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          for (const name of readdirSync(place.shared)) rmSync(join(place.shared, name), { recursive: true });
          const starter = startCli([
            ...['-s', join(place.shared, 'app.sock'), '-M', '0666', '-U', 'nobody'],
            ...['--control', join(place.shared, 'ctl.sock'), '-P', join(place.shared, 'app.pid')],
            ...['-u', 'nobody', '-N', '1', '/bin/sleep', '600'],
          ]);
          await Promise.race([starter.waitFor(/starting 1 ×/), starter.exited]).catch(() => {});
          await sleep(300);
          exits.push(await starter.stop());
          outputs.push(starter.output());
        }
      } finally {
        swapper.kill('SIGTERM');
      }
      const { output } = await swapper.done;
      const swapped = Object.fromEntries(
        [...output.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]),
      );
      // The attack ran: sockets, pidfiles and the starter's private directories were swapped.
      expect(swapped.socket, output).toBeGreaterThan(0);
      expect(swapped.file, output).toBeGreaterThan(0);
      expect(swapped.dir, output).toBeGreaterThan(0);
      expect(fingerprint(secret)).toEqual(before);
      expect(fingerprint(treeSecret)).toEqual(beforeTree);
      // Each run either served and stopped (0) or refused a swapped-in path (1), never worse.
      for (const [i, code] of exits.entries()) {
        expect([0, 1], outputs[i]).toContain(code);
        expect(outputs[i]).not.toMatch(/internal error|\n\s+at /);
      }
    }, 120_000);
  },
);
