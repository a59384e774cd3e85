import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
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

/** A libuv TCP/pipe handle as net._createServerHandle returns it: bound, not polled. */
export interface ServerHandle {
  readonly fd: number;
  getsockname(out: { port?: number; address?: string }): number;
  /** uv_stream_set_blocking: O_NONBLOCK off (true) or on (false); 0 or a negative errno. */
  setBlocking(blocking: boolean): number;
  close(): void;
}

type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd?: number,
) => ServerHandle | number;

const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })
  ._createServerHandle;

/**
 * Makes a bound socket listen without polling it: a throwaway Node process gets it as fd 0,
 * calls listen(2) with our backlog and exits before its event loop could accept. The listen
 * state lives in the kernel, so it stays after the helper exits. The helper leaves the socket
 * blocking (spawn made its fd 0 so, and Node restores that on exit); it is set back to
 * non-blocking through the handle, the mode Node workers need.
 */
function listenWithoutAccepting(handle: ServerHandle, backlog: number, what: string): void {
  const script =
    "const s=require('net').createServer();" +
    "s.on('error',e=>{process.stderr.write(String(e.code||e.message));process.exit(1)});" +
    's.listen({fd:0},Number(process.argv[1]),()=>process.exit(0))';
  const result = spawnSync(process.execPath, ['-e', script, String(backlog)], {
    stdio: [handle.fd, 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (result.error) throw new UserError(`cannot listen on ${what}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new UserError(`cannot listen on ${what}: ${describeErrno(result.stderr.trim() || undefined)}`);
  }
  handle.setBlocking(false);
}

export function errnoName(code: number): string {
  try {
    return getSystemErrorName(code);
  } catch {
    return String(code);
  }
}

function listenTcp(host: string, port: number, backlog: number): ListeningSocket {
  const what = formatAddress({ kind: 'tcp', host, port });
  const family = net.isIP(host);
  if (family === 0) throw new UserError(`invalid address '${host}': give an IPv4 or IPv6 address`, 2);
  // libuv sets SO_REUSEADDR, so a restart rebinds while old connections sit in TIME_WAIT.
  const handle = createServerHandle(host, port, family);
  if (typeof handle === 'number') throw new UserError(`${what} ${describeErrno(errnoName(handle))}`);
  // libuv defers a failed bind to listen(), and listen(2) on an unbound socket picks a random
  // port: ask now, while the error is still there to be seen.
  const name: { port?: number } = {};
  const err = handle.getsockname(name);
  if (err !== 0) {
    handle.close();
    throw new UserError(`${what} ${describeErrno(errnoName(err))}`);
  }
  try {
    listenWithoutAccepting(handle, backlog, what);
  } catch (e) {
    handle.close();
    throw e;
  }
  return tcpListeningSocket(handle, host, name.port ?? port);
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
  const handle = createServerHandle(file.bindPath, -1, -1);
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
    listenWithoutAccepting(handle, backlog, path);
    file.publish(options);
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
    handle = createServerHandle(null, 0, 0, fd); // an fd given: no address, no port
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
