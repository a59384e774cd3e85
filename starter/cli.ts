#!/usr/bin/env node
import type { ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatAddress, type ListenAddress, parseHostPort, parsePort } from '../src/net/address.js';
import { isUserError, UserError } from '../src/net/errors.js';
import { closeInheritedDescriptors } from '../src/net/fds.js';
import type { ListeningSocket } from '../src/net/listen.js';
import { refuseToReplace } from '../src/net/socket-file.js';
import { accessLogPath, ENV_ACCESS_LOG, forwardReopen } from './access-log.js';
import { last, type OptionSpec, type ParsedArgs, parseArgs, parseCount, parseSeconds } from './args.js';
import { resolveCommand } from './command.js';
import {
  type ControlAction,
  type ControlAnswer,
  controlPathForPidfile,
  controlPathFromPidfile,
  formatStatus,
  parseControlCommand,
  queryStatus,
  sendControl,
  startControlServer,
} from './control.js';
import { startFronts } from './front-process.js';
import { writePidfile } from './pidfile.js';
import { openSocket, type Pool, type PoolOptions, startPool } from './pool.js';
import { runRequestCommand } from './request-command.js';
import { spawnWorker, workerIdentity } from './spawn-worker.js';
import { runTop } from './top.js';
import { packageVersion } from './version.js';
import { parseEnvAssignments, workerEnv } from './worker-env.js';

const USAGE = `Usage: fcgi-prefork [options] [--] <command> [args...]
       fcgi-prefork request [options] <uri-or-script>   (fcgi-prefork request --help)
       fcgi-prefork status [--control <path> | --pidfile <path>] [--json]
       fcgi-prefork ctl [--control <path> | --pidfile <path>] reload | scale <n> | recycle <slot> | stop
       fcgi-prefork top [--control <path> | --pidfile <path>] [--sort cpu|rss|elapsed]

Binds one FastCGI socket, starts N workers that accept on it as fd 0, and supervises them:
restarts with backoff, graceful stop (SIGTERM/SIGINT), rolling reload (SIGHUP),
one worker more/fewer (SIGTTIN/SIGTTOU).

Where to listen (one of):
  -p, --port <n>             TCP port
  -a, --address <host>       with --port: address to bind (default 127.0.0.1; IPv6 such as ::1)
                             (alias -i, --interface)
  -s, --socket <path>        unix socket path (a stale socket file is replaced)
  -M, --socket-mode <octal>  unix socket mode (default 0660)
  -U, --socket-user <user>   unix socket owner
  -G, --socket-group <group> unix socket group
                             With neither --port nor --socket, the socket passed by systemd
                             socket activation (LISTEN_FDS/LISTEN_PID) is used.
      --reuseport            with --port: one SO_REUSEPORT socket per worker, kept across its
                             restarts, instead of one socket all workers share (Linux)
Workers:
  -c, --command <cmd>        the worker command (or give it after the options)
  -N, --workers <n>          number of workers (default: number of CPUs; alias -F)
  -b, --backlog <n>          listen backlog (default 1024)
  -u, --user <user>          run workers as this user (starter must be root)
  -g, --group <group>        run workers with this group
      --allow-root           allow workers to run as root
  -d, --cwd <dir>            working directory of the workers
  -e, --env <NAME=VALUE>     set this in every worker's environment (repeatable)
      --clear-env            workers get only PATH and FCGI_WEB_SERVER_ADDRS of the
                             starter's environment (plus -e and the FCGI_* it sets)
      --max-requests <n>     SDK workers retire after about n requests (with jitter)
      --timeout <seconds>    kill an SDK worker silent (or busy with one request) this long
      --graceful-timeout <s> time for in-flight requests on stop and reload (default 30)
      --ready-timeout <s>    time a new SDK worker gets to be ready during reload (default 10)
      --max-lifetime <s>     recycle a worker after about s seconds (up to 10% more), one
                             slot at a time, the new worker ready before the old one goes
      --crash-limit <n>      give up (exit 1) after n failed starts in a row (default 5)
      --crash-window <s>     ... within s seconds (default 10)
      --backoff-max <s>      longest wait before a failed slot starts again (default 5)
Starter:
  -P, --pidfile <path>       write the starter's pid here (removed on exit)
      --control <path>       control socket for 'fcgi-prefork status' and 'fcgi-prefork ctl'
                             (default with --pidfile: <pidfile>.sock)
      --metrics [host:]port  serve Prometheus metrics at http://host:port/metrics
      --http [host:]port     also serve HTTP there, forwarding each request to the pool
                             (for development; use nginx/Apache/lighttpd in production)
      --script-filename <p>  with --http: SCRIPT_FILENAME for every request (php-cgi)
      --document-root <dir>  with --http: DOCUMENT_ROOT (SCRIPT_FILENAME = dir + path)
      --http-max-connections <n>  with --http: client connections at once, more are closed
                             (default 512, or half of RLIMIT_NOFILE when that is lower)
      --access-log <path|->  SDK workers log each request there (combined format + request
                             time + slot); SIGUSR1 reopens it (logrotate)
      --detach               start the workers, print their pids and exit (no supervision,
                             as fcgistarter does)
  -h, --help                 this help
  -V, --version              print the version

Exit status: 0 after a stop, 1 on a runtime error (address in use, command keeps
failing), 2 on a bad command line.
`;

/** How long the servers around the pool get to close once it has ended. */
const CLEANUP_MS = 5000;

export const SPECS: readonly OptionSpec[] = [
  { key: 'port', short: ['p'], long: ['port'], value: true },
  { key: 'address', short: ['a', 'i'], long: ['address', 'interface'], value: true },
  { key: 'socket', short: ['s'], long: ['socket'], value: true },
  { key: 'socket-mode', short: ['M'], long: ['socket-mode'], value: true },
  { key: 'socket-user', short: ['U'], long: ['socket-user'], value: true },
  { key: 'socket-group', short: ['G'], long: ['socket-group'], value: true },
  { key: 'reuseport', long: ['reuseport'], value: false },
  { key: 'command', short: ['c'], long: ['command'], value: true },
  { key: 'workers', short: ['N', 'F'], long: ['workers'], value: true },
  { key: 'backlog', short: ['b'], long: ['backlog'], value: true },
  { key: 'user', short: ['u'], long: ['user'], value: true },
  { key: 'group', short: ['g'], long: ['group'], value: true },
  { key: 'allow-root', long: ['allow-root'], value: false },
  { key: 'cwd', short: ['d'], long: ['cwd'], value: true },
  { key: 'env', short: ['e'], long: ['env'], value: true },
  { key: 'clear-env', long: ['clear-env'], value: false },
  { key: 'max-requests', long: ['max-requests'], value: true },
  { key: 'timeout', long: ['timeout'], value: true },
  { key: 'graceful-timeout', long: ['graceful-timeout'], value: true },
  { key: 'ready-timeout', long: ['ready-timeout'], value: true },
  { key: 'max-lifetime', long: ['max-lifetime'], value: true },
  { key: 'crash-limit', long: ['crash-limit'], value: true },
  { key: 'crash-window', long: ['crash-window'], value: true },
  { key: 'backoff-max', long: ['backoff-max'], value: true },
  { key: 'pidfile', short: ['P'], long: ['pidfile'], value: true },
  { key: 'control', long: ['control'], value: true },
  { key: 'metrics', long: ['metrics'], value: true },
  { key: 'http', long: ['http'], value: true },
  { key: 'script-filename', long: ['script-filename'], value: true },
  { key: 'document-root', long: ['document-root'], value: true },
  { key: 'http-max-connections', long: ['http-max-connections'], value: true },
  { key: 'access-log', long: ['access-log'], value: true },
  { key: 'detach', long: ['detach'], value: false },
  { key: 'help', short: ['h'], long: ['help'], value: false },
  { key: 'version', short: ['V'], long: ['version'], value: false },
];

export const STATUS_SPECS: readonly OptionSpec[] = [
  { key: 'control', long: ['control'], value: true },
  { key: 'pidfile', short: ['P'], long: ['pidfile'], value: true },
  { key: 'json', long: ['json'], value: false },
  { key: 'help', short: ['h'], long: ['help'], value: false },
];

function listenAddress(args: ParsedArgs): ListenAddress | undefined {
  const port = last(args, 'port');
  const socket = last(args, 'socket');
  const address = last(args, 'address');
  if (port !== undefined && socket !== undefined) throw new UserError('give --port or --socket, not both', 2);
  if (address !== undefined && port === undefined) throw new UserError('--address needs --port', 2);
  for (const key of ['socket-mode', 'socket-user', 'socket-group']) {
    if (last(args, key) !== undefined && socket === undefined)
      throw new UserError(`--${key} needs --socket`, 2);
  }
  if (port !== undefined) return { kind: 'tcp', host: address ?? '127.0.0.1', port: parsePort(port) };
  if (socket !== undefined) {
    if (socket.length === 0) throw new UserError('invalid socket path: empty', 2);
    return { kind: 'unix', path: socket };
  }
  return undefined;
}

function positiveSeconds(text: string, what: string): number {
  const seconds = parseSeconds(text, what);
  if (seconds <= 0) throw new UserError(`invalid ${what} '${text}': must be above 0 seconds`, 2);
  return seconds;
}

function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text))
    throw new UserError(`invalid socket mode '${text}': give octal such as 0660`, 2);
  return Number.parseInt(text, 8);
}

/** The pool options a command line asks for; throws UserError(…, 2) for a bad one. */
export function poolOptionsFromArgs(args: ParsedArgs): PoolOptions {
  const given = last(args, 'command');
  const [first, ...rest] = args.rest;
  const command = given ?? first;
  if (command === undefined || command === '') throw new UserError('no worker command given', 2);
  const listen = listenAddress(args);
  const reusePort = args.flags.has('reuseport');
  if (reusePort && listen?.kind !== 'tcp')
    throw new UserError('--reuseport needs --port (TCP): not with --socket or socket activation', 2);
  if (reusePort && args.flags.has('detach'))
    throw new UserError('--reuseport needs the starter to keep the sockets: not with --detach', 2);
  if (reusePort && process.platform !== 'linux')
    throw new UserError('--reuseport spreads connections over sockets only on Linux', 2);
  const value = (key: string) => last(args, key);
  const mode = value('socket-mode');
  const workers = value('workers');
  const backlog = value('backlog');
  const maxRequests = value('max-requests');
  const timeout = value('timeout');
  const graceful = value('graceful-timeout');
  const readyTimeout = value('ready-timeout');
  const maxLifetime = value('max-lifetime');
  const crashLimit = value('crash-limit');
  const crashWindow = value('crash-window');
  const backoffMax = value('backoff-max');
  const setEnv = args.values.get('env');
  const options: PoolOptions = {
    command,
    args: given !== undefined ? args.rest : rest,
    ...(listen ? { listen } : {}),
    ...(reusePort ? { reusePort } : {}),
    ...(mode !== undefined ? { socketMode: parseMode(mode) } : {}),
    ...(value('socket-user') !== undefined ? { socketUser: value('socket-user')! } : {}),
    ...(value('socket-group') !== undefined ? { socketGroup: value('socket-group')! } : {}),
    workers: workers !== undefined ? parseCount(workers, 'worker count') : availableParallelism(),
    ...(backlog !== undefined ? { backlog: parseCount(backlog, 'backlog') } : {}),
    ...(value('user') !== undefined ? { user: value('user')! } : {}),
    ...(value('group') !== undefined ? { group: value('group')! } : {}),
    allowRoot: args.flags.has('allow-root'),
    ...(value('cwd') !== undefined ? { cwd: value('cwd')! } : {}),
    ...(setEnv ? { setEnv: parseEnvAssignments(setEnv) } : {}),
    ...(args.flags.has('clear-env') ? { clearEnv: true } : {}),
    ...(value('pidfile') !== undefined ? { pidfile: value('pidfile')! } : {}),
    ...(maxRequests !== undefined ? { maxRequests: parseCount(maxRequests, 'max requests') } : {}),
    ...(timeout !== undefined ? { timeout: parseSeconds(timeout, 'timeout') } : {}),
    ...(graceful !== undefined ? { gracefulTimeout: parseSeconds(graceful, 'graceful timeout') } : {}),
    ...(readyTimeout !== undefined ? { readyTimeout: parseSeconds(readyTimeout, 'ready timeout') } : {}),
    ...(maxLifetime !== undefined ? { maxLifetime: positiveSeconds(maxLifetime, 'max lifetime') } : {}),
    ...(crashLimit !== undefined ? { crashLimit: parseCount(crashLimit, 'crash limit') } : {}),
    ...(crashWindow !== undefined ? { crashWindow: positiveSeconds(crashWindow, 'crash window') } : {}),
    ...(backoffMax !== undefined ? { backoffMax: positiveSeconds(backoffMax, 'backoff max') } : {}),
  };
  return options;
}

/**
 * fcgistarter's mode: start the workers and leave them; nothing supervises them. They start as
 * the pool's do (spawnWorker): the same identity, environment and socket.
 */
async function detach(options: PoolOptions): Promise<never> {
  if (!options.listen) throw new UserError('--detach needs --port or --socket', 2);
  const cwd = resolve(options.cwd ?? process.cwd());
  const command = resolveCommand(options.command, options.args ?? [], cwd, process.env);
  const identity = workerIdentity(options);
  const backlog = options.backlog ?? 1024;
  const [socket] = await openSocket(options, backlog, process.env, 1);
  const pids: number[] = [];
  try {
    for (let slot = 1; slot <= (options.workers ?? 1); slot++) {
      const env = workerEnv(process.env, slot, backlog, options);
      const child = await new Promise<ChildProcess>((started, failed) => {
        const launched = spawnWorker(
          { command, socket: socket!, cwd, env, identity, mode: 'detached' },
          failed,
        );
        if (launched) started(launched);
      }).catch((e: Error) => {
        throw new UserError(`cannot start ${command.display}: ${e.message}`);
      });
      child.unref();
      pids.push(child.pid!);
    }
  } catch (e) {
    // With no worker started nobody holds the socket; otherwise its file stays for them.
    if (pids.length === 0) socket!.close();
    throw e;
  }
  for (const pid of pids) process.stdout.write(`${pid}\n`);
  if (options.pidfile) writePidfile(options.pidfile, pids.map((p) => `${p}\n`).join(''));
  // Exit now, not when the loop runs dry: Node's cleanup at a natural exit closes the socket's
  // handle, and libuv then unlinks the unix socket path the workers serve on.
  process.exit(0);
}

/** A control command, as the pool's own action (the same a signal maps to). */
function act(pool: Pool, action: ControlAction): ControlAnswer {
  switch (action.command) {
    case 'reload':
      pool.reload();
      return { ok: true, command: 'reload' };
    case 'scale':
      pool.scale(action.workers);
      return { ok: true, command: 'scale', workers: action.workers };
    case 'recycle': {
      const { desiredWorkers } = pool.status();
      if (action.slot > desiredWorkers)
        return { error: `no slot ${action.slot}: slots are 1 to ${desiredWorkers}` };
      pool.recycle(action.slot);
      return { ok: true, command: 'recycle', slot: action.slot };
    }
    case 'stop':
      void pool.stop();
      return { ok: true, command: 'stop' };
  }
}

/** What --http and its options ask of the front; the pool's own address is its upstream. */
function httpFrontOptions(args: ParsedArgs, http: string, socket: ListeningSocket) {
  const address = socket.address;
  const upstream =
    address.kind === 'tcp'
      ? { host: address.host, port: socket.port ?? address.port }
      : address.kind === 'unix'
        ? { path: address.path }
        : null;
  if (!upstream) throw new UserError('--http needs --port or --socket (not socket activation)', 2);
  const scriptFilename = last(args, 'script-filename');
  const documentRoot = last(args, 'document-root');
  const maxConnections = last(args, 'http-max-connections');
  return {
    listen: parseHostPort(http),
    upstream,
    ...(scriptFilename ? { scriptFilename } : {}),
    ...(documentRoot ? { documentRoot } : {}),
    ...(maxConnections !== undefined
      ? { maxConnections: parseCount(maxConnections, 'HTTP connection limit') }
      : {}),
  };
}

async function supervise(args: ParsedArgs, options: PoolOptions): Promise<number> {
  const control =
    last(args, 'control') ?? (options.pidfile ? controlPathForPidfile(options.pidfile) : undefined);
  // Refused before any worker starts; startControlServer checks again as it binds.
  if (control) await refuseToReplace(control, 'control socket');
  const accessLog = last(args, 'access-log');
  const pool = await startPool({
    ...options,
    handleSignals: true,
    // Set like -e, so that --clear-env keeps it.
    ...(accessLog !== undefined
      ? { setEnv: { ...options.setEnv, [ENV_ACCESS_LOG]: accessLogPath(accessLog) } }
      : {}),
  });
  const cleanups: (() => Promise<void>)[] = [];
  try {
    if (accessLog !== undefined) {
      const stop = forwardReopen(
        () => pool.status(),
        (message) => process.stderr.write(`fcgi-prefork: ${message}\n`),
      );
      cleanups.push(async () => stop());
    }
    if (control) {
      const server = await startControlServer(
        control,
        () => pool.status(),
        (action) => act(pool, action),
      );
      cleanups.push(() => server.close());
    }
    const http = last(args, 'http');
    const metrics = last(args, 'metrics');
    if (http || metrics) {
      const fronts = await startFronts({
        ...(http ? { http: httpFrontOptions(args, http, pool.socket) } : {}),
        ...(metrics ? { metrics: parseHostPort(metrics) } : {}),
        status: () => pool.status(),
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.group !== undefined ? { group: options.group } : {}),
      });
      cleanups.push(() => fronts.close());
      if (http) process.stderr.write(`fcgi-prefork: HTTP on http://${formatAddress(parseHostPort(http))}/\n`);
    }
  } catch (e) {
    await pool.stop();
    for (const cleanup of cleanups) await cleanup();
    throw e;
  }
  const code = await pool.done;
  // The pool has ended: so does the starter, whatever a front's open connections would keep
  // waiting for (a starter alive with no workers is one systemd never restarts).
  const closed = (async () => {
    for (const cleanup of cleanups) await cleanup();
  })();
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, CLEANUP_MS).unref())]);
  return code;
}

async function status(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, STATUS_SPECS);
  if (args.flags.has('help')) {
    process.stdout.write('Usage: fcgi-prefork status [--control <path> | --pidfile <path>] [--json]\n');
    return 0;
  }
  if (args.rest.length > 0) throw new UserError(`unexpected argument '${args.rest[0]}'`, 2);
  const control = last(args, 'control');
  const pidfile = last(args, 'pidfile');
  if (!control && !pidfile) throw new UserError('status needs --control <path> or --pidfile <path>', 2);
  const path = control ?? controlPathFromPidfile(pidfile!);
  const state = await queryStatus(path);
  process.stdout.write(
    args.flags.has('json') ? `${JSON.stringify(state, null, 2)}\n` : `${formatStatus(state)}\n`,
  );
  return 0;
}

const CTL_USAGE =
  'Usage: fcgi-prefork ctl [--control <path> | --pidfile <path>] reload | scale <n> | recycle <slot> | stop\n';

/** `fcgi-prefork ctl`: one command to a running starter; prints its JSON answer. */
async function ctl(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, STATUS_SPECS);
  if (args.flags.has('help')) {
    process.stdout.write(CTL_USAGE);
    return 0;
  }
  if (args.flags.has('json')) throw new UserError('ctl answers JSON always: no --json', 2);
  const line = args.rest.join(' ');
  const command = parseControlCommand(line);
  if ('error' in command)
    throw new UserError(args.rest.length === 0 ? 'ctl needs a command' : command.error, 2);
  const control = last(args, 'control');
  const pidfile = last(args, 'pidfile');
  if (!control && !pidfile) throw new UserError('ctl needs --control <path> or --pidfile <path>', 2);
  const answer = await sendControl(control ?? controlPathFromPidfile(pidfile!), line);
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (typeof answer === 'object' && answer !== null && 'error' in answer)
    throw new UserError(`the starter refused: ${String(answer.error)}`);
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'status') return status(argv.slice(1));
  if (argv[0] === 'ctl') return ctl(argv.slice(1));
  if (argv[0] === 'top') return runTop(argv.slice(1));
  if (argv[0] === 'request') {
    return runRequestCommand(argv.slice(1));
  }
  const args = parseArgs(argv, SPECS);
  if (args.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.flags.has('version')) {
    process.stdout.write(`fcgi-prefork ${packageVersion()} (Node ${process.version})\n`);
    return 0;
  }
  const options = poolOptionsFromArgs(args);
  if (args.flags.has('detach')) return detach(options);
  return supervise(args, options);
}

function run(): void {
  // Descriptors we inherited without close-on-exec would pass into every worker: close them
  // first, keeping only a socket systemd passed us.
  const keep = new Set<number>();
  if (process.env.LISTEN_PID === String(process.pid)) {
    const count = Number(process.env.LISTEN_FDS) || 0;
    for (let fd = 3; fd < 3 + count; fd++) keep.add(fd);
  }
  if (process.env.NODE_CHANNEL_FD) keep.add(Number(process.env.NODE_CHANNEL_FD));
  closeInheritedDescriptors(keep);

  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Done: nothing left open (a connection a server still waits on) keeps the process.
      setTimeout(() => process.exit(code), 1000).unref();
    },
    (err: unknown) => {
      if (isUserError(err)) {
        process.stderr.write(`fcgi-prefork: ${err.message}\n`);
        if (err.exitCode === 2) process.stderr.write("Try 'fcgi-prefork --help' for more information.\n");
        process.exitCode = err.exitCode;
        return;
      }
      process.stderr.write(`fcgi-prefork: internal error: ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = 70;
    },
  );
}

/** Run as a program (node, tsx, the npm bin link), not when a test imports the parser. */
function isMain(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) run();
