import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { ENV_LINK_FD, LINK_FD } from '../src/link.js';
import { UserError } from '../src/net/errors.js';
import type { ListeningSocket } from '../src/net/listen.js';
import { lookupGroup, lookupUser } from '../src/net/users.js';
import { type ResolvedCommand, workerSpawn } from './command.js';

/** Who the workers run as. */
export interface Identity {
  readonly uid: number | undefined;
  readonly gid: number | undefined;
}

/** Who the workers run as; refuses root unless allowed, as spawn-fcgi does. */
export function workerIdentity(options: {
  readonly user?: string | undefined;
  readonly group?: string | undefined;
  readonly allowRoot?: boolean | undefined;
}): Identity {
  const user = options.user ? lookupUser(options.user) : undefined;
  const gid = options.group ? lookupGroup(options.group) : user?.gid;
  const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const uid = user?.uid;
  if (runningAsRoot && (uid === undefined || uid === 0) && !options.allowRoot) {
    throw new UserError('refusing to run workers as root: give --user <name> (or --allow-root)');
  }
  if (!runningAsRoot && (options.user || options.group)) {
    throw new UserError('--user/--group need the starter to run as root');
  }
  return { uid, gid };
}

export interface WorkerLaunch {
  readonly command: ResolvedCommand;
  /** The socket the worker accepts on, as its fd 0. */
  readonly socket: ListeningSocket;
  readonly cwd: string;
  /** The worker's whole environment (worker-env.ts). */
  readonly env: NodeJS.ProcessEnv;
  readonly identity: Identity;
  /**
   * `supervised`: output through pipes, the link (src/link.ts) for an SDK worker, and the socket
   * kept non-blocking when the worker exits too. `detached`: the worker outlives us, in its own
   * session, with our stdout and stderr and no link (it would see its starter gone).
   */
  readonly mode: 'supervised' | 'detached';
}

/**
 * The one way a worker is started, for the pool and for --detach alike: the socket as fd 0, the
 * identity dropped to, the environment given, and the shared socket never left blocking for
 * the Node workers that accept on it. Returns the child once it runs. A failure of spawn itself
 * (EMFILE, EAGAIN, EACCES) goes to `onError` instead, now or on a later tick, never as an
 * exception: a worker that cannot start is the supervisor's business, not the end of it.
 */
export function spawnWorker(
  launch: WorkerLaunch,
  onError: (error: NodeJS.ErrnoException) => void,
): ChildProcess | undefined {
  const { command, socket, identity } = launch;
  const supervised = launch.mode === 'supervised';
  const how = workerSpawn(supervised ? command : { ...command, node: false }, socket.fd);
  const stdio = supervised ? how.stdio : how.stdio.map((s, fd) => (fd === 1 || fd === 2 ? 'inherit' : s));
  const linked = supervised && command.node;
  // Only a worker that has the link is told where it is (never one a -e or our own starter named).
  const env = { ...launch.env };
  delete env[ENV_LINK_FD];
  if (linked) env[ENV_LINK_FD] = String(LINK_FD);
  let child: ChildProcess;
  try {
    child = spawn(how.file, how.args, {
      cwd: launch.cwd,
      env,
      stdio,
      ...(supervised ? {} : { detached: true }),
      ...(identity.uid !== undefined ? { uid: identity.uid } : {}),
      ...(identity.gid !== undefined ? { gid: identity.gid } : {}),
    });
  } catch (e) {
    onError(e as NodeJS.ErrnoException);
    return undefined;
  } finally {
    // Back to non-blocking as soon as can be (see workerSpawn).
    if (how.blocksNodeSocket) socket.setNonBlocking?.();
  }
  if (child.pid === undefined) {
    // spawn reports its failure (EMFILE, EACCES, ENOENT) on the next tick, on 'error'.
    child.once('error', onError);
    return undefined;
  }
  if (how.blocksNodeSocket && supervised) child.once('exit', () => socket.setNonBlocking?.());
  return child;
}

/** The starter's end of a worker's link (src/link.ts), if the worker has one. */
export function linkOf(child: ChildProcess): Socket | undefined {
  return (child.stdio[LINK_FD] as Socket | null | undefined) ?? undefined;
}
