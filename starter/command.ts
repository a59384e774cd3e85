import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../src/net/errors.js';

/** How a worker command is run: the program spawn execs, and whether it speaks the link. */
export interface ResolvedCommand {
  readonly file: string;
  readonly args: readonly string[];
  /** Run by this Node: gets the link of src/link.ts. */
  readonly node: boolean;
  /**
   * A Node process, run by us or named by the user (`node app.js`): its accept loop must never
   * meet a blocking socket (see workerSpawn).
   */
  readonly nodeProcess: boolean;
  /** For logs. */
  readonly display: string;
}

const NODE_SCRIPT = /\.(?:m?js|cjs)$/;
const TS_SCRIPT = /\.(?:m?ts|cts)$/;

/** tsx's loader, resolved from this package, so TypeScript workers run wherever we are installed. */
function tsxLoader(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('tsx/package.json');
  return join(pkg, '..', 'dist', 'loader.mjs');
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds a program the way execvp would, to fail once and clearly instead of in every child. */
function findExecutable(command: string, cwd: string, path: string | undefined): string {
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolve(cwd, command);
    try {
      statSync(full);
    } catch {
      throw new UserError(`command not found: ${command}`);
    }
    if (!isExecutableFile(full)) throw new UserError(`command is not executable: ${command}`);
    return full;
  }
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const full = join(dir, command);
    if (isExecutableFile(full)) return full;
  }
  throw new UserError(`command not found: ${command}`);
}

/**
 * A command ending in .js/.mjs/.cjs runs with this Node; .ts/.mts/.cts with this Node and tsx.
 * Anything else is exec'd as it is (php-cgi, a C or Go program, a shell script).
 */
export function resolveCommand(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): ResolvedCommand {
  const display = [command, ...args].join(' ');
  if (NODE_SCRIPT.test(command) || TS_SCRIPT.test(command)) {
    const script = resolve(cwd, command);
    try {
      if (!statSync(script).isFile()) throw new Error('not a file');
    } catch {
      throw new UserError(`command not found: ${command}`);
    }
    const loader = TS_SCRIPT.test(command) ? ['--import', tsxLoader()] : [];
    return {
      file: process.execPath,
      args: [...loader, script, ...args],
      node: true,
      nodeProcess: true,
      display,
    };
  }
  const file = findExecutable(command, cwd, env.PATH);
  return { file, args, node: false, nodeProcess: isNode(file), display };
}

/** This Node's binary, or one named node or nodejs (`fcgi-prefork -- node --flag app.js`). */
function isNode(file: string): boolean {
  if (/^node(?:js)?$/.test(basename(file))) return true;
  try {
    return realpathSync(file) === realpathSync(process.execPath);
  } catch {
    return false;
  }
}

/** How spawn starts a worker: what it execs, with what, and the child's descriptors. */
export interface WorkerSpawn {
  readonly file: string;
  readonly args: readonly string[];
  readonly stdio: ('pipe' | 'ignore' | number)[];
  /**
   * A Node worker gets the socket as fd 0 from spawn (no /bin/sh): spawn makes it blocking,
   * and so does the worker as it exits (Node restores its fd 0's flags). The caller sets it
   * back after each.
   */
  readonly blocksNodeSocket: boolean;
}

const SHELL = isExecutableFile('/bin/sh') ? '/bin/sh' : null;

/**
 * Spawn with `socketFd` as the worker's fd 0. Not directly for a Node worker: spawn makes a
 * child's fds 0-2 blocking (libuv clears O_NONBLOCK, and on a socket that is the open file
 * description every worker shares), and a Node worker already inside its accept loop would
 * then block in accept(2) until a connection comes, deaf to SIGTERM and to its starter's
 * death. So a Node worker gets the socket as the descriptor after its others and /bin/sh
 * moves it to fd 0 as it execs the worker: a dup2, which leaves the flag alone. php-cgi and
 * other programs want the socket blocking, and get it as fd 0 from spawn. Without /bin/sh a
 * Node worker gets fd 0 directly, and the caller puts the socket back in non-blocking mode.
 */
export function workerSpawn(command: ResolvedCommand, socketFd: number): WorkerSpawn {
  // The link (src/link.ts): a socketpair at LINK_FD, for the workers that speak it.
  const link = command.node ? (['pipe'] as const) : [];
  if (!command.nodeProcess || SHELL === null)
    return {
      file: command.file,
      args: command.args,
      stdio: [socketFd, 'pipe', 'pipe', ...link],
      blocksNodeSocket: command.nodeProcess,
    };
  const at = 3 + link.length;
  return {
    file: SHELL,
    args: ['-c', `exec "$0" "$@" 0<&${at} ${at}<&-`, command.file, ...command.args],
    stdio: ['ignore', 'pipe', 'pipe', ...link, socketFd],
    blocksNodeSocket: false,
  };
}
