import { rmSync } from 'node:fs';
import { waitForListen } from './net.js';
import { start } from './processes.js';

/** A real web server (nginx, Apache httpd, lighttpd) in front of FastCGI apps, for e2e tests. */
export interface Front {
  readonly port: number;
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
): Promise<Front> {
  const server = start(command, args);
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
    await stop();
    throw new Error(`${(err as Error).message}; ${name} said:\n${server.output()}`);
  }
  return { port, url: `http://127.0.0.1:${port}`, output: server.output, stop };
}
