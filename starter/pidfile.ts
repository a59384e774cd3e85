import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describeErrno, UserError } from '../src/net/errors.js';

/**
 * Pidfiles written safely in a directory the worker user may be able to write: never through
 * a symlink (one already there is refused), always a new file (O_CREAT|O_EXCL|O_NOFOLLOW under
 * a random name) renamed onto the name, which replaces whatever is there without following it.
 * Removed on exit only while the name is still the file we wrote, with our content.
 */

/** The pidfiles this process wrote: path → the file (device and inode) and its content. */
const written = new Map<string, { readonly stat: Stats; readonly content: string }>();

function fail(path: string, e: unknown): never {
  throw new UserError(`cannot write pidfile ${path}: ${describeErrno((e as NodeJS.ErrnoException).code)}`);
}

/** Writes `content` (default: this process's pid) to the pidfile at `path`. */
export function writePidfile(path: string, content = `${process.pid}\n`): void {
  let existing: Stats | undefined;
  try {
    existing = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') fail(path, e);
  }
  if (existing?.isSymbolicLink()) throw new UserError(`pidfile ${path} is a symbolic link; not following it`);
  if (existing && !existing.isFile())
    throw new UserError(`pidfile ${path} exists and is not a regular file; not replacing it`);
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}`);
  let fd: number;
  try {
    fd = openSync(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
  } catch (e) {
    fail(path, e);
  }
  try {
    writeSync(fd, content);
    const stat = fstatSync(fd);
    renameSync(temporary, path);
    written.set(path, { stat, content });
  } catch (e) {
    try {
      unlinkSync(temporary);
    } catch {
      // not there
    }
    fail(path, e);
  } finally {
    closeSync(fd);
  }
}

/** Removes the pidfile at `path` if it is still the one this process wrote. */
export function removePidfile(path: string): void {
  const ours = written.get(path);
  if (!ours) return;
  written.delete(path);
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    const stat = fstatSync(fd);
    const buffer = Buffer.alloc(ours.content.length + 1);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    if (
      stat.isFile() &&
      stat.dev === ours.stat.dev &&
      stat.ino === ours.stat.ino &&
      buffer.toString('utf8', 0, length) === ours.content
    )
      unlinkSync(path);
  } catch {
    // gone already, or replaced by something that is not ours
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
