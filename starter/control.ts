import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describeErrno, UserError } from '../src/net/errors.js';
import { refuseToReplace, socketFile } from '../src/net/socket-file.js';
import type { PoolStatus } from './pool.js';

/**
 * The control socket: a unix socket, mode 0600, that takes one command line and answers with
 * one JSON document: `status` (the pool's state), `reload`, `scale <n>`, `recycle <slot>`,
 * `stop`. `fcgi-prefork status` and `fcgi-prefork ctl` are its clients.
 */
export interface ControlServer {
  close(): Promise<void>;
}

/** A command that acts on the pool; the same actions signals map to. */
export type ControlAction =
  | { readonly command: 'reload' }
  | { readonly command: 'scale'; readonly workers: number }
  | { readonly command: 'recycle'; readonly slot: number }
  | { readonly command: 'stop' };

export type ControlCommand = { readonly command: 'status' } | ControlAction;

/** The answer to an action: what was done, or why not. */
export type ControlAnswer =
  | { readonly ok: true; readonly [key: string]: unknown }
  | { readonly error: string };

/** Most workers `scale` may ask for: a typo must not fork thousands of processes. */
export const MAX_WORKERS = 1024;

/** One command line, strictly: a name and at most one number, or the reason it is refused. */
export function parseControlCommand(line: string): ControlCommand | { readonly error: string } {
  const words = line.trim().split(/\s+/);
  const [name, arg, ...extra] = words;
  const number = arg !== undefined && /^[1-9]\d{0,5}$/.test(arg) ? Number(arg) : undefined;
  if (extra.length > 0) return { error: `too many arguments to '${name}'` };
  switch (name) {
    case 'status':
    case 'reload':
    case 'stop':
      return arg === undefined ? { command: name } : { error: `'${name}' takes no argument` };
    case 'scale':
      if (number === undefined || number > MAX_WORKERS)
        return { error: `scale needs a worker count from 1 to ${MAX_WORKERS}` };
      return { command: 'scale', workers: number };
    case 'recycle':
      if (number === undefined) return { error: 'recycle needs a slot number' };
      return { command: 'recycle', slot: number };
    default:
      return { error: `unknown command '${(name ?? '').slice(0, 32)}'` };
  }
}

export async function startControlServer(
  path: string,
  status: () => PoolStatus,
  act: (action: ControlAction) => ControlAnswer = () => ({
    error: 'this control socket only answers status',
  }),
): Promise<ControlServer> {
  await refuseToReplace(path, 'control socket');
  const server = net.createServer((socket) => {
    socket.setEncoding('utf8');
    let line = '';
    let answered = false;
    socket.on('data', (chunk: string) => {
      if (answered) return;
      line += chunk;
      if (!line.includes('\n') && line.length < 64) return;
      answered = true;
      const command = parseControlCommand(line.slice(0, line.includes('\n') ? line.indexOf('\n') : 64));
      const answer = 'error' in command ? command : command.command === 'status' ? status() : act(command);
      socket.end(`${JSON.stringify(answer)}\n`);
    });
    socket.on('error', () => {});
  });
  // Bound where no one else can reach it, then renamed into place: see socket-file.ts.
  const file = socketFile(path);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new UserError(`cannot open control socket ${path}: ${describeErrno(e.code)}`)),
      );
      server.listen(file.bindPath, resolve);
    });
    // Owner only: the status names pids and the command line.
    file.publish({ mode: 0o600 });
  } catch (e) {
    server.close();
    file.release();
    throw e;
  }
  return {
    close: () =>
      new Promise<void>((resolve) => {
        // Closes the listening handle at once (libuv unlinks its bind path, in the private
        // directory), then the connections; the target goes only if it is still ours.
        server.close(() => resolve());
        file.release();
      }),
  };
}

/** The control socket of a starter run with --pidfile and no --control. */
export function controlPathForPidfile(pidfile: string): string {
  return `${pidfile}.sock`;
}

/** Sends one command line to a control socket; resolves with the JSON document it answers. */
export async function sendControl(path: string, line: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UserError(`no answer from the control socket ${path}`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new UserError(`cannot reach the starter at ${path}: ${describeErrno(e.code)}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(data));
      } catch {
        reject(new UserError(`the control socket ${path} sent something that is not JSON`));
      }
    });
  });
}

export async function queryStatus(path: string, timeoutMs = 5000): Promise<PoolStatus> {
  const answer = await sendControl(path, 'status', timeoutMs);
  if (typeof answer !== 'object' || answer === null || !('workers' in answer))
    throw new UserError(`the control socket ${path} sent something that is not a status`);
  return answer as PoolStatus;
}

/** The control socket path for `status --pidfile`: the starter's pid must be alive. */
export function controlPathFromPidfile(pidfile: string): string {
  let pid: number;
  try {
    pid = Number(readFileSync(pidfile, 'utf8').trim());
  } catch (e) {
    throw new UserError(
      `cannot read pidfile ${pidfile}: ${describeErrno((e as NodeJS.ErrnoException).code)}`,
    );
  }
  try {
    process.kill(pid, 0);
  } catch {
    throw new UserError(`no starter running: pid ${pid} from ${pidfile} is gone`);
  }
  return controlPathForPidfile(pidfile);
}

function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** The status as a table, for people. */
export function formatStatus(status: PoolStatus, now = Date.now()): string {
  const rows = [['SLOT', 'PID', 'STATE', 'UPTIME', 'RESTARTS', 'REQUESTS', 'ACTIVE', 'RSS']];
  for (const w of status.workers) {
    rows.push([
      String(w.slot),
      String(w.pid),
      w.state,
      formatUptime(now - w.startedAt),
      String(w.restarts),
      w.requests === null ? '-' : String(w.requests),
      w.active === null ? '-' : String(w.active),
      formatBytes(w.rssBytes),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
  return [
    `starter pid ${status.pid}, up ${formatUptime(now - status.startedAt)}, Node ${status.node}`,
    `listening on ${status.address} (backlog ${status.backlog}${status.mode === 'reuseport' ? ', SO_REUSEPORT: a socket per worker' : ''})`,
    `command: ${status.command}`,
    `workers: ${status.totals.workers} of ${status.desiredWorkers}, generation ${status.generation}`,
    '',
    table,
    '',
    `total: ${status.totals.requests} requests, ${status.totals.restarts} restarts, ${formatBytes(status.totals.rssBytes)} RSS`,
  ].join('\n');
}
