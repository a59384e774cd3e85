import { type ChildProcess, spawn } from 'node:child_process';
import { type Stats, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from '../src/client/connection.js';
import { formatAddress, type TcpAddress } from '../src/net/address.js';
import { isUserError, UserError } from '../src/net/errors.js';
import { type ListeningSocket, listenSocket } from '../src/net/listen.js';
import { lookupGroup, lookupUser } from '../src/net/users.js';
import { resolveCommand } from './command.js';
import type { FrontChildConfig } from './front-child.js';
import { startHttpFront } from './http-front.js';
import { startMetricsServer } from './metrics.js';
import type { PoolStatus } from './pool.js';

/** The network-facing parts of a starter: the --http front and the --metrics endpoint. */
export interface FrontsOptions {
  readonly http?: {
    readonly listen: TcpAddress;
    readonly upstream: Target;
    readonly scriptFilename?: string;
    readonly documentRoot?: string;
    readonly maxConnections?: number;
  };
  readonly metrics?: TcpAddress;
  readonly status: () => PoolStatus;
  /** The workers' user and group (-u/-g): a root starter runs the fronts as them. */
  readonly user?: string;
  readonly group?: string;
  readonly log?: (line: string) => void;
}

export interface Fronts {
  /** The front process serving them, when they run in one. */
  readonly pid: () => number | undefined;
  close(): Promise<void>;
}

interface Identity {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

/** Who the fronts run as: the worker user when a root starter drops workers to one; else null (in process). */
export function frontIdentity(
  user: string | undefined,
  group: string | undefined,
  euid: number | undefined,
): Identity | null {
  if (euid !== 0 || user === undefined) return null;
  const entry = lookupUser(user);
  if (entry.uid === 0) return null;
  return { uid: entry.uid, gid: group !== undefined ? lookupGroup(group) : entry.gid, name: entry.name };
}

type Owned = Pick<Stats, 'uid' | 'gid' | 'mode'>;

/** The permission bit (read 4, write 2, search 1) that applies to uid/gid, with no supplementary groups (spawn drops them). */
function permits(stat: Owned, uid: number, gid: number, bit: number): boolean {
  if (stat.uid === uid) return (stat.mode & (bit << 6)) !== 0;
  if (stat.gid === gid) return (stat.mode & (bit << 3)) !== 0;
  return (stat.mode & bit) !== 0;
}

/**
 * Why uid/gid may not connect(2) to the socket file at `path` (write on it, search on every
 * directory above it), or null when it may.
 */
export function connectRefusal(
  path: string,
  uid: number,
  gid: number,
  stat: (path: string) => Owned = statSync,
): string | null {
  const describe = (what: string, s: Owned) =>
    `${what} (mode ${(s.mode & 0o7777).toString(8).padStart(4, '0')}, uid ${s.uid}, gid ${s.gid})`;
  const absolute = resolve(path);
  for (let dir = dirname(absolute); ; dir = dirname(dir)) {
    const s = stat(dir);
    if (!permits(s, uid, gid, 1)) return describe(`search ${dir}`, s);
    if (dir === '/') break;
  }
  const s = stat(absolute);
  return permits(s, uid, gid, 2) ? null : describe(`connect to ${path}`, s);
}

/** Restart delay after the front process died: doubling from 100 ms, at most 30 s. */
export function respawnDelay(failures: number): number {
  return Math.min(30_000, 100 * 2 ** Math.max(0, failures - 1));
}

/** A front process that lived this long was not failing at start: the next death starts the backoff over. */
const STABLE_MS = 10_000;
/** How often the pool's figures go to the front process (a scrape sees them this stale at most). */
const SNAPSHOT_MS = 1000;

function childScript(): string {
  const self = fileURLToPath(import.meta.url);
  return self.replace(/front-process\.([cm]?[jt]s)$/, 'front-child.$1');
}

async function bind(address: TcpAddress, what: string): Promise<ListeningSocket> {
  try {
    return await listenSocket(address, 511);
  } catch (e) {
    if (isUserError(e)) throw new UserError(`${what} address ${e.message}`, e.exitCode);
    throw e;
  }
}

async function inProcess(options: FrontsOptions): Promise<Fronts> {
  const closers: (() => Promise<void>)[] = [];
  try {
    if (options.http) {
      const front = await startHttpFront(options.http);
      closers.push(() => front.close());
    }
    if (options.metrics) {
      const server = await startMetricsServer(options.metrics, options.status);
      closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    }
  } catch (e) {
    for (const close of closers) await close();
    throw e;
  }
  return {
    pid: () => undefined,
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

/**
 * Privilege separation, as nginx's master and workers: this (root) process binds the
 * listening sockets, so low ports work, and a child running as the worker user serves them.
 * The child gets the sockets as fds 3 and 4 and the pool's figures on its fd 0, which this
 * process only writes: nothing the child sends is read or trusted. A child that dies is
 * restarted with backoff; the sockets stay bound meanwhile, so connections wait in the backlog.
 */
async function separated(options: FrontsOptions, identity: Identity): Promise<Fronts> {
  const log = options.log ?? ((line: string) => process.stderr.write(`fcgi-prefork: ${line}\n`));
  const upstream = options.http?.upstream;
  if (upstream && 'path' in upstream && upstream.path !== undefined) {
    const refusal = connectRefusal(upstream.path, identity.uid, identity.gid);
    if (refusal)
      throw new UserError(
        `--http: the front runs as ${identity.name}, who may not ${refusal}: ` +
          'give --socket-user/--socket-group/--socket-mode so it may, or use --port',
        2,
      );
  }
  const sockets: ListeningSocket[] = [];
  const config: { http?: FrontChildConfig['http']; metrics?: FrontChildConfig['metrics'] } = {};
  try {
    if (options.http) {
      const { listen, ...rest } = options.http;
      sockets.push(await bind(listen, 'HTTP'));
      config.http = { fd: 3, ...rest };
    }
    if (options.metrics) {
      sockets.push(await bind(options.metrics, 'metrics'));
      config.metrics = { fd: 3 + sockets.length - 1 };
    }
  } catch (e) {
    for (const socket of sockets) socket.close();
    throw e;
  }
  const command = resolveCommand(childScript(), [JSON.stringify(config)], '/', process.env);
  let child: ChildProcess | undefined;
  let failures = 0;
  let closing = false;
  let respawnTimer: NodeJS.Timeout | undefined;

  const sendSnapshot = () => {
    const stdin = child?.stdin;
    // A child that does not read gets no more: what is queued here stays one line.
    if (!stdin || stdin.destroyed || stdin.writableLength > 0) return;
    stdin.write(`${JSON.stringify(options.status())}\n`);
  };

  const start = () => {
    const startedAt = Date.now();
    // 'error' and 'exit' may both come for one child: the first one counts.
    let ended = false;
    const end = (how: string) => {
      if (!ended) exited(how, startedAt);
      ended = true;
    };
    let spawned: ChildProcess;
    try {
      spawned = spawn(command.file, command.args, {
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['pipe', 'inherit', 'inherit', ...sockets.map((s) => s.fd)],
        uid: identity.uid,
        gid: identity.gid,
      });
    } catch (e) {
      end(`cannot start: ${(e as Error).message}`);
      return;
    }
    child = spawned;
    spawned.stdin?.on('error', () => {});
    spawned.once('error', (e) => end(`cannot start: ${e.message}`));
    spawned.once('exit', (code, signal) => end(signal ? `killed by ${signal}` : `exited with ${code}`));
    if (options.metrics) sendSnapshot();
  };

  const exited = (how: string, startedAt: number) => {
    child = undefined;
    if (closing) return;
    failures = Date.now() - startedAt >= STABLE_MS ? 1 : failures + 1;
    const delay = respawnDelay(failures);
    log(`front process ${how}; restarting it in ${delay} ms`);
    respawnTimer = setTimeout(start, delay);
  };

  start();
  const snapshots = options.metrics ? setInterval(sendSnapshot, SNAPSHOT_MS) : undefined;
  log(
    `${[options.http && 'HTTP', options.metrics && 'metrics'].filter(Boolean).join(' and ')} served by ` +
      `pid ${child?.pid ?? '-'} as ${identity.name} (uid ${identity.uid}, gid ${identity.gid}) on ` +
      [options.http?.listen, options.metrics].flatMap((a) => (a ? [formatAddress(a)] : [])).join(', '),
  );
  return {
    pid: () => child?.pid,
    close: async () => {
      closing = true;
      clearInterval(snapshots);
      clearTimeout(respawnTimer);
      const running = child;
      if (running && running.exitCode === null && running.signalCode === null) {
        const gone = new Promise<void>((resolve) => running.once('exit', () => resolve()));
        running.kill('SIGTERM');
        const kill = setTimeout(() => running.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(kill);
      }
      for (const socket of sockets) socket.close();
    },
  };
}

/**
 * Starts the fronts: in a process of their own as the worker user when this starter is root
 * and drops its workers to one, in this process otherwise (no privilege to shed).
 */
export async function startFronts(options: FrontsOptions): Promise<Fronts> {
  const identity = frontIdentity(options.user, options.group, process.geteuid?.());
  return identity ? separated(options, identity) : inProcess(options);
}
