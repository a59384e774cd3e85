import { type StdioOptions, spawnSync } from 'node:child_process';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { type CreateServerHandle, createServerHandle, type ServerHandle } from '../node-internals.js';
import { formatAddress, type ListenAddress } from './address.js';
import { describeErrno, UserError } from './errors.js';
import { refuseToReplace, socketFile } from './socket-file.js';

/**
 * The one listening socket of a pool. The starter holds it (so it outlives every child) and
 * hands `fd` to each child as fd 0, but never polls or accepts on it: a libuv listen() here
 * would race the children for connections.
 */
export interface ListeningSocket {
  readonly fd: number;
  /** What was bound, or the inherited fd under socket activation. */
  readonly address: ListenAddress | { readonly kind: 'fd'; readonly fd: number };
  /** For logs: `127.0.0.1:9000`, `/run/app.sock`, `fd 3 (systemd)`. */
  readonly description: string;
  /** Port actually bound (useful with port 0), for TCP. */
  readonly port: number | undefined;
  /** Closes the socket and removes a unix socket file. Idempotent. */
  close(): void;
  /**
   * Puts the socket (its open file description, shared with every worker) back in
   * non-blocking mode, the mode it starts in. Spawning a child with it as fd 0 makes it
   * blocking (libuv does that to a child's fds 0-2), and a Node worker's accept loop then
   * blocks in accept(2) until a connection comes, deaf to signals (the starter avoids that
   * spawn for Node workers: starter/command.ts). Absent only when Node cannot wrap the fd.
   */
  setNonBlocking?(): void;
}

export interface UnixSocketOptions {
  /** File mode of the socket file, e.g. 0o660. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

export type { ServerHandle } from '../node-internals.js';

/** A bound, unpolled handle of this Node's; a UserError where it offers no way to make one. */
function serverHandle(...args: Parameters<CreateServerHandle>): ServerHandle | number {
  if (!createServerHandle)
    throw new UserError(
      `this Node (${process.version}) offers no way to bind a socket without accepting on it ` +
        '(net._createServerHandle, or the tcp_wrap binding): run fcgi-prefork on Node 22, 24 or 26, ' +
        'or give it the socket by socket activation',
    );
  return createServerHandle(...args);
}

/**
 * Makes bound sockets listen without polling them: a throwaway process gets them as fds 0, 3,
 * 4…, calls listen(2) on each with our backlog and exits. The listen state lives in the
 * kernel, so it stays after the helper exits. perl (in Debian's essential set) starts in a
 * fraction of Node's time; where there is none, Node does it and exits before its event loop
 * could accept (the 'listening' callbacks run before it first polls). spawn leaves fd 0
 * blocking; each socket is set back to non-blocking through its handle, the mode Node workers
 * need.
 */
export function listenWithoutAccepting(
  handles: readonly ServerHandle[],
  backlog: number,
  what: string,
): void {
  const childFds = handles.map((_, i) => (i === 0 ? 0 : i + 2)).map(String);
  const stdio: StdioOptions = [
    handles[0]!.fd,
    'ignore',
    'pipe',
    ...handles.slice(1).map((handle) => handle.fd),
  ];
  const perl = spawnSync('perl', ['-e', PERL_LISTEN, String(backlog), ...childFds], {
    stdio,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const result =
    (perl.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
      ? spawnSync(process.execPath, ['-e', NODE_LISTEN, String(backlog), ...childFds], {
          stdio,
          encoding: 'utf8',
        })
      : perl;
  if (result.error) throw new UserError(`cannot listen on ${what}: ${result.error.message}`);
  if (result.status !== 0) {
    // perl says errno's number, Node its code.
    const said = result.stderr.trim();
    const code = /^\d+$/.test(said) ? errnoName(-Number(said)) : said || undefined;
    throw new UserError(`cannot listen on ${what}: ${describeErrno(code)}`);
  }
  for (const handle of handles) handle.setBlocking(false);
}

/** listen(2) on each fd given, with the backlog first; on failure, errno's number on stderr. */
const PERL_LISTEN =
  'my $b = shift; for my $fd (@ARGV) { open(my $s, "+<&=", $fd) or do { print STDERR $! + 0; exit 1 }; ' +
  'listen($s, $b) or do { print STDERR $! + 0; exit 1 } }';

/** The same in Node, where there is no perl. */
const NODE_LISTEN =
  "const net=require('net'),fds=process.argv.slice(2).map(Number);let left=fds.length;" +
  'for(const fd of fds){const s=net.createServer();' +
  "s.on('error',e=>{process.stderr.write(String(e.code||e.message));process.exit(1)});" +
  's.listen({fd},Number(process.argv[1]),()=>{if(--left===0)process.exit(0)})}';

export function errnoName(code: number): string {
  try {
    return getSystemErrorName(code);
  } catch {
    return String(code);
  }
}

/**
 * A TCP handle bound to host:port (with createServerHandle's flags, such as SO_REUSEPORT's),
 * not listening, and the port it got; a UserError naming the bind's failure.
 */
export function bindTcp(host: string, port: number, flags = 0): { handle: ServerHandle; port: number } {
  const what = formatAddress({ kind: 'tcp', host, port });
  const family = net.isIP(host);
  if (family === 0) throw new UserError(`invalid address '${host}': give an IPv4 or IPv6 address`, 2);
  // libuv sets SO_REUSEADDR, so a restart rebinds while old connections sit in TIME_WAIT.
  const handle = serverHandle(host, port, family, undefined, flags);
  if (typeof handle === 'number') throw new UserError(`${what} ${describeErrno(errnoName(handle))}`);
  // libuv defers a failed bind to listen(), and listen(2) on an unbound socket picks a random
  // port: ask now, while the error is still there to be seen.
  const name: { port?: number } = {};
  const err = handle.getsockname(name);
  if (err !== 0) {
    handle.close();
    throw new UserError(`${what} ${describeErrno(errnoName(err))}`);
  }
  return { handle, port: name.port ?? port };
}

function listenTcp(host: string, port: number, backlog: number): ListeningSocket {
  const what = formatAddress({ kind: 'tcp', host, port });
  const { handle, port: bound } = bindTcp(host, port);
  try {
    listenWithoutAccepting([handle], backlog, what);
  } catch (e) {
    handle.close();
    throw e;
  }
  return tcpListeningSocket(handle, host, bound);
}

/** A listening TCP handle this process holds but never polls, as a ListeningSocket. */
export function tcpListeningSocket(handle: ServerHandle, host: string, port: number): ListeningSocket {
  let closed = false;
  return {
    fd: handle.fd,
    address: { kind: 'tcp', host, port },
    description: formatAddress({ kind: 'tcp', host, port }),
    port,
    close() {
      if (closed) return;
      closed = true;
      handle.close();
    },
    setNonBlocking() {
      if (!closed) handle.setBlocking(false);
    },
  };
}

async function listenUnix(
  path: string,
  backlog: number,
  options: UnixSocketOptions,
): Promise<ListeningSocket> {
  await refuseToReplace(path);
  // Bound, made to listen and given its mode and owner where no one else can reach it, then
  // renamed into place: see socket-file.ts.
  const file = socketFile(path);
  const handle = serverHandle(file.bindPath, -1, -1);
  if (typeof handle === 'number') {
    file.release();
    throw new UserError(`cannot bind ${path}: ${describeErrno(errnoName(handle))}`);
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    handle.close();
    file.release();
  };
  try {
    // Mode and owner in force before listen(2): no client connects while they are not.
    file.publish(options);
    listenWithoutAccepting([handle], backlog, path);
  } catch (e) {
    close();
    throw e;
  }
  return {
    fd: handle.fd,
    address: { kind: 'unix', path },
    description: path,
    port: undefined,
    close,
    setNonBlocking() {
      if (!closed) handle.setBlocking(false);
    },
  };
}

/** Binds and listens on a TCP address or unix socket path, never accepting in this process. */
export async function listenSocket(
  address: ListenAddress,
  backlog: number,
  unix: UnixSocketOptions = {},
): Promise<ListeningSocket> {
  return address.kind === 'tcp'
    ? listenTcp(address.host, address.port, backlog)
    : listenUnix(address.path, backlog, unix);
}

/** First fd passed by systemd socket activation. */
export const SD_LISTEN_FDS_START = 3;

/**
 * The socket systemd (or systemd-socket-activate) passed, or null when none was. Sockets
 * passed to another process (LISTEN_PID names a wrapper that forked us) are an error, not
 * "none": that fd 3 is not ours, and falling back silently would hide a broken unit.
 */
export function systemdSocket(env: NodeJS.ProcessEnv = process.env): ListeningSocket | null {
  if (env.LISTEN_PID === undefined && env.LISTEN_FDS === undefined) return null;
  if (env.LISTEN_PID !== String(process.pid)) {
    throw new UserError(
      `socket activation: LISTEN_PID=${env.LISTEN_PID ?? '(unset)'} names another process, not this one (pid ${process.pid}); ` +
        'start fcgi-prefork itself, not through a wrapper that forks (sh -c, npx, the tsx CLI)',
    );
  }
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1)
    throw new UserError(`socket activation: LISTEN_FDS=${env.LISTEN_FDS ?? '(unset)'} passes no socket`);
  const fd = SD_LISTEN_FDS_START;
  // A handle on the fd, never listened on nor polled, only to put the socket back in
  // non-blocking mode after each spawn, as for a socket we bound ourselves. Not closed:
  // closing it would close systemd's socket.
  let handle: ServerHandle | number;
  try {
    handle = createServerHandle?.(null, 0, 0, fd) ?? -1; // an fd given: no address, no port
  } catch {
    handle = -1;
  }
  return {
    fd,
    address: { kind: 'fd', fd },
    description: `fd ${fd} (socket activation)`,
    port: undefined,
    close() {
      // systemd owns the socket; it stays open for the next activation.
    },
    ...(typeof handle === 'number'
      ? {}
      : {
          setNonBlocking() {
            handle.setBlocking(false);
          },
        }),
  };
}
