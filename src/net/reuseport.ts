import { spawn } from 'node:child_process';
import net from 'node:net';
import { createServerHandle, REUSE_PORT_FLAG } from '../node-internals.js';
import { formatAddress } from './address.js';
import { describeErrno, UserError } from './errors.js';
import {
  bindTcp,
  errnoName,
  type ListeningSocket,
  listenWithoutAccepting,
  type ServerHandle,
  tcpListeningSocket,
} from './listen.js';

/**
 * Where this Node takes the SO_REUSEPORT flag at bind (net's `reusePort`, 22.12 and later), the
 * sockets are made here like the one shared socket: bound by libuv, made to listen by a
 * throwaway process, never polled (listenNatively).
 *
 * A Node before 22.12 cannot set SO_REUSEPORT on a TCP socket (net's reusePort arrived then), and
 * the option must be set before bind(2). So perl, in Debian's essential base, makes the
 * sockets: SO_REUSEADDR + SO_REUSEPORT, bind, listen(2) with our backlog, close-on-exec
 * cleared; then it execs a one-shot Node that wraps each fd in a raw TCP handle and sends it
 * to us over the IPC channel. A raw handle arrives as a handle ('net.Native'), not a
 * net.Server: nothing here listens on it through libuv, so this process never accepts.
 *
 * With `probe`, perl first binds the address without SO_REUSEPORT: that fails against any
 * listener already there, even another reuseport group of the same user, which the kernel
 * would otherwise let us join silently.
 */
const PERL = `
use strict;
use Socket qw(AF_INET AF_INET6 SOCK_STREAM SOL_SOCKET SO_REUSEADDR SO_REUSEPORT inet_pton
  pack_sockaddr_in pack_sockaddr_in6 unpack_sockaddr_in unpack_sockaddr_in6);
use Fcntl qw(F_SETFD);
my ($node, $script, $host, $port, $count, $backlog, $probe) = @ARGV;
sub fail { print STDERR "$_[0] ", $! + 0; exit 1 }
my $family = index($host, ':') >= 0 ? AF_INET6 : AF_INET;
my $addr = inet_pton($family, $host) or do { $! = 22; fail('bind') };
sub sockaddr { $family == AF_INET6 ? pack_sockaddr_in6($_[0], $addr) : pack_sockaddr_in($_[0], $addr) }
if ($probe && $port) {
  socket(my $p, $family, SOCK_STREAM, 0) or fail('socket');
  setsockopt($p, SOL_SOCKET, SO_REUSEADDR, 1) or fail('setsockopt');
  bind($p, sockaddr($port)) or fail('bind');
  close($p);
}
my @sockets;
for (1 .. $count) {
  socket(my $s, $family, SOCK_STREAM, 0) or fail('socket');
  setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or fail('setsockopt');
  setsockopt($s, SOL_SOCKET, SO_REUSEPORT, 1) or fail('setsockopt');
  bind($s, sockaddr($port)) or fail('bind');
  my $name = getsockname($s);
  ($port) = $family == AF_INET6 ? unpack_sockaddr_in6($name) : unpack_sockaddr_in($name);
  listen($s, $backlog) or fail('listen');
  fcntl($s, F_SETFD, 0) or fail('fcntl');
  push @sockets, $s;
}
exec { $node } $node, '-e', $script, map { fileno($_) } @sockets;
fail('exec');
`;

// Runs as `node -e`: one handle per message (Node sends handles one at a time, each acked);
// the channel stays referenced until the starter has them all and disconnects.
const SENDER = `
process.channel.ref();
const { TCP, constants } = process.binding('tcp_wrap');
for (const fd of process.argv.slice(1).map(Number)) {
  const handle = new TCP(constants.SERVER);
  const err = handle.open(fd);
  if (err) { process.stderr.write('open ' + -err); process.exit(1); }
  process.send({ fd }, handle);
}
`;

const TIMEOUT_MS = 10_000;

export interface ReusePortOptions {
  /** First refuse an address anything already listens on (not for adding to our own group). */
  readonly probe: boolean;
}

/**
 * `count` listening TCP sockets with SO_REUSEPORT, all bound to host:port (port 0: one free
 * port for all), held by this process and never polled. The kernel spreads new connections
 * over the sockets of the group by a hash of the connection's addresses.
 */
export function listenReusePort(
  host: string,
  port: number,
  count: number,
  backlog: number,
  options: ReusePortOptions,
): Promise<ListeningSocket[]> {
  const what = formatAddress({ kind: 'tcp', host, port });
  if (net.isIP(host) === 0) throw new UserError(`invalid address '${host}': give an IPv4 or IPv6 address`, 2);
  if (REUSE_PORT_FLAG !== null && createServerHandle) {
    return Promise.resolve(listenNatively(host, port, count, backlog, options, REUSE_PORT_FLAG));
  }
  return new Promise((resolve, reject) => {
    const handles: ServerHandle[] = [];
    let stderr = '';
    let settled = false;
    const child = spawn(
      'perl',
      [
        '-e',
        PERL,
        process.execPath,
        SENDER,
        host,
        String(port),
        String(count),
        String(backlog),
        options.probe ? '1' : '0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    );
    const fail = (error: UserError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const handle of handles) handle.close();
      child.kill('SIGKILL');
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new UserError(`cannot listen on ${what}: no sockets from the SO_REUSEPORT helper`)),
      TIMEOUT_MS,
    );
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      fail(
        new UserError(
          e.code === 'ENOENT'
            ? '--reuseport needs perl (it sets SO_REUSEPORT, which this Node cannot): perl not found'
            : `cannot run perl for --reuseport: ${e.message}`,
        ),
      ),
    );
    child.on('message', (_message: unknown, handle: unknown) => {
      if (!handle) return;
      handles.push(handle as ServerHandle);
      if (handles.length === count) child.disconnect();
    });
    child.on('exit', () => {
      if (settled) return;
      if (handles.length < count) {
        const [step, errno] = stderr.trim().split(/\s+/);
        const code = errno !== undefined && /^\d+$/.test(errno) ? errnoName(-Number(errno)) : undefined;
        fail(
          new UserError(
            step === 'bind'
              ? `${what} ${describeErrno(code)}`
              : `cannot listen on ${what}: ${code ? describeErrno(code) : stderr.trim() || 'helper failed'}`,
          ),
        );
        return;
      }
      settled = true;
      clearTimeout(timer);
      const name: { port?: number } = {};
      handles[0]!.getsockname(name);
      resolve(handles.map((handle) => tcpListeningSocket(handle, host, name.port ?? port)));
    });
  });
}

function listenNatively(
  host: string,
  port: number,
  count: number,
  backlog: number,
  options: ReusePortOptions,
  flag: number,
): ListeningSocket[] {
  // Bound without SO_REUSEPORT, the probe fails against any listener there, even another
  // reuseport group of the same user, which the kernel would otherwise let us join silently.
  if (options.probe && port !== 0) bindTcp(host, port, 0).handle.close();
  const handles: ServerHandle[] = [];
  let bound = port;
  try {
    for (let i = 0; i < count; i++) {
      const next = bindTcp(host, bound, flag);
      handles.push(next.handle);
      bound = next.port;
    }
    listenWithoutAccepting(handles, backlog, formatAddress({ kind: 'tcp', host, port: bound }));
  } catch (e) {
    for (const handle of handles) handle.close();
    throw e;
  }
  return handles.map((handle) => tcpListeningSocket(handle, host, bound));
}
