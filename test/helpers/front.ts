import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { waitForListen } from './net.js';
import { ROOT, start } from './processes.js';

/** A real web server (nginx, Apache httpd, lighttpd) in front of FastCGI apps, for e2e tests. */
export interface Front {
  readonly port: number;
  /** The server's (master) process. */
  readonly pid: number;
  /** http://127.0.0.1:port, without a trailing slash. */
  readonly url: string;
  /** The server's own error log so far (stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs a server in the foreground with its own files in `dir` (removed when it stops), and
 * resolves once it accepts on 127.0.0.1:port. A bad config or a busy port ends the server at
 * once: that is reported with what the server said, instead of waiting for the port.
 */
export async function startFront(
  name: string,
  command: string,
  args: readonly string[],
  port: number,
  dir: string,
  logFile?: string,
): Promise<Front> {
  const server = start(command, args);
  const output = () => {
    let log = '';
    try {
      if (logFile) log = readFileSync(logFile, 'utf8');
    } catch {
      // not written yet, or removed with dir
    }
    return server.output() + log;
  };
  const stop = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  let up = false;
  const exitedEarly = server.exited.then((code) => {
    if (!up) throw new Error(`${name} exited with ${code}`);
  });
  exitedEarly.catch(() => {});
  try {
    await Promise.race([waitForListen({ host: '127.0.0.1', port }), exitedEarly]);
    up = true;
  } catch (err) {
    const said = output();
    await stop();
    throw new Error(`${(err as Error).message}; ${name} said:\n${said}`);
  }
  return { port, pid: server.pid, url: `http://127.0.0.1:${port}`, output, stop };
}

/**
 * A shipped example file (path from the repository root) with the test's ports and paths. Each
 * edit must apply, or this throws: the example cannot drift away from what its test checks.
 */
export function editedExample(file: string, edits: readonly (readonly [RegExp | string, string])[]): string {
  let text = readFileSync(join(ROOT, file), 'utf8');
  for (const [from, to] of edits) {
    const before = text;
    text = text.replace(from, to);
    if (text === before) throw new Error(`${file}: the test's edit ${from} no longer applies`);
  }
  return text;
}
