import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../src/net/errors.js';

/** How a worker command is run: the program spawn execs, and whether it speaks the link. */
export interface ResolvedCommand {
  readonly file: string;
  readonly args: readonly string[];
  /** Run by this Node: gets the IPC channel of src/link.ts. */
  readonly node: boolean;
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
    return { file: process.execPath, args: [...loader, script, ...args], node: true, display };
  }
  return { file: findExecutable(command, cwd, env.PATH), args, node: false, display };
}
