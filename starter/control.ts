import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describeErrno, UserError } from '../src/net/errors.js';
import { refuseToReplace, socketFile } from '../src/net/socket-file.js';
import type { PoolStatus } from './pool.js';

/**
 * The control socket: a unix socket, mode 0600, that answers `status` with the pool's state
 * as one JSON document. `fcgi-prefork status` is its client.
 */
export interface ControlServer {
  close(): Promise<void>;
}

export async function startControlServer(path: string, status: () => PoolStatus): Promise<ControlServer> {
  await refuseToReplace(path, 'control socket');
  const server = net.createServer((socket) => {
    socket.setEncoding('utf8');
    let line = '';
    socket.on('data', (chunk: string) => {
      line += chunk;
      if (!line.includes('\n') && line.length < 64) return;
      const command = line.trim();
      if (command === 'status') socket.end(`${JSON.stringify(status())}\n`);
      else socket.end(`${JSON.stringify({ error: `unknown command '${command.slice(0, 32)}'` })}\n`);
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

export async function queryStatus(path: string, timeoutMs = 5000): Promise<PoolStatus> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UserError(`no answer from the control socket ${path}`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('status\n'));
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
        resolve(JSON.parse(data) as PoolStatus);
      } catch {
        reject(new UserError(`the control socket ${path} sent something that is not a status`));
      }
    });
  });
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
