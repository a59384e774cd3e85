import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lchownSync,
  lstatSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmdirSync,
  type Stats,
  statSync,
  unlinkSync,
} from 'node:fs';
import net from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { describeErrno, UserError } from './errors.js';

/**
 * A unix socket file that root makes in a directory the worker user can write (/run/app owned
 * by the app), without that user being able to turn root's chmod, chown or unlink onto another
 * file by swapping a symlink (or a hard link) in at the right moment.
 *
 * The socket is bound in a private directory made next to the target (mkdtemp: 0700, ours),
 * and reached only through an open descriptor of that directory (`/proc/self/fd/N/s`), so a
 * rename of the directory's name changes nothing. Mode and owner are set there, where nobody
 * else can put anything, and rename(2) then moves the finished socket onto the target name: it
 * replaces whatever is there without following it. On close, the target is unlinked only if it
 * is still our socket (same inode).
 *
 * libuv unlinks the path a pipe was bound to when the handle closes: that is the path through
 * the descriptor, so the descriptor stays open until after the handle is closed (`release`).
 *
 * In a directory only this process's user can write (/run, a root-owned 0755 /run/app), nobody
 * can swap anything in, and the socket is bound at its own name: the name `ss -xl` and
 * getsockname show, where the private directory's would show `/proc/self/fd/N/s`.
 */
export interface SocketFile {
  /** Where to bind: the socket's name in the private directory, through its descriptor. */
  readonly bindPath: string;
  /** Sets mode and owner on the bound socket, then renames it onto the target. Once. */
  publish(options: SocketFileOptions): void;
  /** After the socket's handle is closed: removes the target if it is still ours. Idempotent. */
  release(): void;
}

export interface SocketFileOptions {
  /** File mode of the socket file, e.g. 0o660. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** sun_path holds 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;

/** True when something accepts connections at the unix socket path. */
export function isLiveSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Refuses a target that is anything but a stale socket: a regular file, a directory, a
 * symlink (never followed), or a socket a running server answers on. `what`, if given, names
 * it in errors ("control socket /run/app.ctl …").
 */
export async function refuseToReplace(path: string, what?: string): Promise<void> {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch {
    return; // nothing there
  }
  const name = what ? `${what} ${path}` : path;
  if (!stat.isSocket()) throw new UserError(`${name} exists and is not a socket; not replacing it`);
  if (await isLiveSocket(path)) throw new UserError(`${name} is in use by a running server`);
}

/** Whether only this process's user may add, remove or rename entries in `dir`. */
function onlyWeCanWrite(dir: string): boolean {
  const euid = process.geteuid?.();
  if (euid === undefined) return false;
  try {
    const stat = statSync(dir);
    return stat.isDirectory() && stat.uid === euid && (stat.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** Mode and owner on the bound socket at `path`, then `place` it; the socket's stat. */
function finishSocket(target: string, path: string, options: SocketFileOptions, place: () => void): Stats {
  try {
    if (options.mode !== undefined) chmodSync(path, options.mode);
    if (options.uid !== undefined || options.gid !== undefined)
      lchownSync(path, options.uid ?? -1, options.gid ?? -1);
    const stat = lstatSync(path);
    if (!stat.isSocket()) throw new UserError(`cannot bind ${target}: the bound socket is not there`);
    place();
    return stat;
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot set up ${target}: ${describeErrno(code)}`);
  }
}

/** Removes the socket at `path` if it is still the one we made. */
function removeIfOurs(path: string, ours: Stats): void {
  try {
    const now = lstatSync(path);
    if (now.isSocket() && sameFile(now, ours)) unlinkSync(path);
  } catch {
    // gone already
  }
}

/** A socket bound at its own name, in a directory no one else can write. */
function socketFileInPlace(target: string, absolute: string): SocketFile {
  let ours: Stats | undefined;
  let released = false;
  return {
    bindPath: absolute,
    publish(options) {
      if (ours) throw new Error('socket file published twice');
      ours = finishSocket(target, absolute, options, () => {});
    },
    release() {
      if (released) return;
      released = true;
      if (ours) removeIfOurs(absolute, ours);
    },
  };
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Makes the private directory for a socket file at `target`; see SocketFile. */
export function socketFile(target: string): SocketFile {
  if (Buffer.byteLength(target) > SUN_PATH_MAX)
    throw new UserError(`cannot bind ${target}: ${describeErrno('ENAMETOOLONG')}`);
  const absolute = resolve(target);
  const dir = dirname(absolute);
  if (!existsSync(dir)) throw new UserError(`cannot bind ${target}: directory ${dir} does not exist`);
  if (onlyWeCanWrite(dir)) return socketFileInPlace(target, absolute);
  if (!existsSync('/proc/self/fd'))
    throw new UserError(`cannot bind ${target}: a unix socket needs /proc/self/fd (Linux)`);
  let privateDir: string;
  try {
    privateDir = mkdtempSync(join(dir, `.${basename(absolute)}.`));
  } catch (e) {
    throw new UserError(`cannot bind ${target}: ${describeErrno((e as NodeJS.ErrnoException).code)}`);
  }
  let fd: number;
  try {
    fd = openSync(privateDir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    throw new UserError(
      `cannot bind ${target}: ${privateDir} was replaced as it was made (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  const dirStat = fstatSync(fd);
  const euid = process.geteuid?.() ?? dirStat.uid;
  if (!dirStat.isDirectory() || dirStat.uid !== euid || (dirStat.mode & 0o077) !== 0) {
    closeSync(fd);
    throw new UserError(`cannot bind ${target}: ${privateDir} was replaced as it was made`);
  }
  const bindPath = `/proc/self/fd/${fd}/s`;
  let ours: Stats | undefined;
  let released = false;

  // The private directory by its name, only while that name is still our directory: if the
  // worker user renamed it, what now has the name is theirs to keep.
  const removePrivateDir = () => {
    try {
      if (sameFile(lstatSync(privateDir), dirStat)) rmdirSync(privateDir);
    } catch {
      // renamed away or gone: an empty 0700 directory of ours is left, harmless
    }
  };

  return {
    bindPath,
    publish(options) {
      if (ours) throw new Error('socket file published twice');
      ours = finishSocket(target, bindPath, options, () => renameSync(bindPath, absolute));
      removePrivateDir();
    },
    release() {
      if (released) return;
      released = true;
      if (ours) removeIfOurs(absolute, ours);
      else {
        // Never published: the socket, if bound, is still in the private directory.
        try {
          unlinkSync(bindPath);
        } catch {
          // not bound
        }
        removePrivateDir();
      }
      closeSync(fd);
    },
  };
}
