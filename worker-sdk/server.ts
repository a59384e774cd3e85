import { EventEmitter } from 'node:events';
import { fstatSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { acceptStreamHandles, socketTransport, type Transport } from '../src/net/index.js';
import { FCGI_LISTENSOCK_FILENO } from '../src/protocol/index.js';
import { openAccessLog } from './access-log.js';
import { Connection, type ConnectionContext, type FcgiIncomingMessage } from './connection.js';
import { attachStarterLink } from './link.js';
import { normalizeAddress, resolveOptions, type WorkerOptions } from './options.js';

export type RequestListener = (req: FcgiIncomingMessage, res: ServerResponse) => void | Promise<void>;
/** Sees each request before the handler (the access log, the starter link's request in progress). */
export type RequestObserver = (req: FcgiIncomingMessage, res: ServerResponse) => void;

export interface ListenOptions {
  readonly fd?: number;
  readonly port?: number;
  readonly host?: string;
  readonly path?: string;
  readonly backlog?: number;
}

/** A FastCGI server shaped like node:http's Server: listen, close, 'request' events. */
export interface FcgiServer extends EventEmitter {
  /** No arguments: accept on fd 0, the socket a FastCGI starter passes. */
  listen(callback?: () => void): this;
  listen(port: number, host?: string, callback?: () => void): this;
  listen(port: number, callback?: () => void): this;
  listen(path: string, callback?: () => void): this;
  listen(options: ListenOptions, callback?: () => void): this;
  /** Stops accepting, lets in-flight requests finish, then closes every connection. */
  close(callback?: (err?: Error) => void): this;
  address(): net.AddressInfo | string | null;
  readonly listening: boolean;
  /** Requests completed since start, and in progress now. */
  readonly requestsServed: number;
  readonly requestsActive: number;
  /** Age in ms of the oldest request in progress (0 when idle). */
  oldestActiveMs(): number;
}

/** Thrown by listen() when there is nothing to accept on. */
export class NotListeningSocketError extends Error {
  override readonly name = 'NotListeningSocketError';
}

const NOT_A_SOCKET =
  'fd 0 is not a listening socket: run under fcgi-prefork, spawn-fcgi or fcgistarter, or call listen(port)';

function backlogFromEnv(): number | undefined {
  const value = Number(process.env.FCGI_BACKLOG);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/**
 * A FastCGI application server. `handler` gets node:http's own IncomingMessage and
 * ServerResponse, so Express, Fastify, Koa and Hono apps run unchanged.
 */
export function createServer(handler?: RequestListener, options?: WorkerOptions): FcgiServer;
export function createServer(options: WorkerOptions, handler?: RequestListener): FcgiServer;
export function createServer(
  a?: RequestListener | WorkerOptions,
  b?: RequestListener | WorkerOptions,
): FcgiServer {
  const handler = typeof a === 'function' ? a : typeof b === 'function' ? b : undefined;
  const userOptions = (typeof a === 'object' ? a : typeof b === 'object' ? b : undefined) ?? {};
  const options = resolveOptions(userOptions);
  const emitter = new EventEmitter();
  const connections = new Set<Connection>();
  const netServer = net.createServer({ noDelay: true });
  let served = 0;
  let active = 0;
  /** PARAMS bytes held by the requests in progress, for maxWorkerParamsLength. */
  let paramsHeld = 0;
  /** Accepted connections are TCP: each has a peer address, or is closed (FCGI_WEB_SERVER_ADDRS). */
  let tcp = false;
  let draining = false;
  let closeCallbacks: ((err?: Error) => void)[] = [];
  const observers: RequestObserver[] = [];
  const accessLog = options.accessLog ? openAccessLog(options.accessLog, options.log) : null;
  if (accessLog) {
    observers.push(accessLog.observe);
    process.on('SIGUSR1', () => accessLog.reopen());
  }

  const context: ConnectionContext = {
    options,
    dispatch(req, res, onError) {
      for (const observe of observers) observe(req, res);
      const listeners = emitter.listeners('request') as RequestListener[];
      if (listeners.length === 0) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('No request handler\n');
        return;
      }
      for (const listener of listeners) {
        try {
          const result = listener.call(server, req, res);
          if (result && typeof (result as Promise<void>).then === 'function')
            (result as Promise<void>).then(undefined, onError);
        } catch (err) {
          onError(err);
        }
      }
    },
    active: () => active,
    requestStarted() {
      active++;
    },
    requestEnded() {
      active--;
      served++;
      emitter.emit('requestEnd', served);
    },
    takeParams(bytes, connection) {
      // The worker's params are bounded; one peer holding them must not shut out the others'
      // small requests: the connection holding the most goes first, and that may be this one.
      while (paramsHeld + bytes > options.maxWorkerParamsLength) {
        const hog = mostParams();
        if (!hog || hog === connection || hog.paramsHeld <= connection.paramsHeld) return false;
        hog.fail(
          `params of all requests in progress over the limit of ${options.maxWorkerParamsLength} bytes, the most of them here`,
        );
        if (hog.paramsHeld > 0) return false;
      }
      paramsHeld += bytes;
      return true;
    },
    giveParams(bytes) {
      paramsHeld -= bytes;
    },
    draining: () => draining,
    connectionClosed(connection) {
      connections.delete(connection);
      maybeClosed();
    },
  };

  // Every connection's header and idle deadline, checked a few times per shorter timeout (at
  // most once a second): one interval for all, as node:http has, not a timer per connection.
  const sweepEvery = Math.min(
    1000,
    Math.max(10, Math.min(options.headerTimeout, options.keepAliveTimeout) / 4),
  );
  let sweeper: NodeJS.Timeout | null = null;
  function checkDeadlines(): void {
    const now = Date.now();
    for (const connection of connections) connection.checkDeadline(now);
  }

  function mostParams(): Connection | undefined {
    let most: Connection | undefined;
    for (const connection of connections)
      if (connection.paramsHeld > (most?.paramsHeld ?? 0)) most = connection;
    return most;
  }

  function maybeClosed(): void {
    if (!draining || connections.size > 0 || netServer.listening) return;
    if (sweeper) clearInterval(sweeper);
    sweeper = null;
    const callbacks = closeCallbacks;
    closeCallbacks = [];
    for (const cb of callbacks) cb();
    emitter.emit('close');
  }

  function accepted(transport: Transport): void {
    // FCGI_MAX_CONNS: what the front was told it may open.
    if (draining || connections.size >= options.maxConns) {
      transport.destroy();
      return;
    }
    // FCGI_WEB_SERVER_ADDRS (spec 3.2, TCP only): other peers are closed before a byte is read,
    // and so is a peer whose address is unknown: one that reset at once is gone before getpeername,
    // and what it sent may still be there to read.
    const allowed = options.webServerAddrs;
    if (allowed && tcp) {
      const peer = transport.remoteAddress;
      if (!peer || !allowed.has(normalizeAddress(peer))) {
        options.log(
          `fcgi worker: refused connection from ${peer ?? 'a peer whose address is unknown'}: not in FCGI_WEB_SERVER_ADDRS`,
        );
        transport.destroy();
        return;
      }
    }
    connections.add(new Connection(transport, context));
    sweeper ??= setInterval(checkDeadlines, sweepEvery).unref();
  }

  // Connections come as bare stream handles where this Node allows (no net.Socket each: the
  // cost of one, for a front that opens a connection per request, is more than the request's),
  // else as net.Socket through 'connection'. Hooked on 'listening', before any is accepted.
  netServer.on('listening', () => {
    // A TCP listener has an address object (a unix one a path, or none for an inherited fd).
    const address = netServer.address();
    tcp = address !== null && typeof address === 'object';
    acceptStreamHandles(netServer, accepted, (err) =>
      options.log(`fcgi worker: accept failed: ${err.code ?? err.message}`),
    );
    emitter.emit('listening');
  });
  netServer.on('connection', (socket: net.Socket) => accepted(socketTransport(socket)));
  netServer.on('error', (err) => emitter.emit('error', err));

  function listenOnFd(fd: number, backlog: number | undefined, callback?: () => void): void {
    let isSocket = false;
    try {
      isSocket = fstatSync(fd).isSocket();
    } catch {
      // closed fd
    }
    if (!isSocket) throw new NotListeningSocketError(fd === 0 ? NOT_A_SOCKET : `fd ${fd} is not a socket`);
    // The backlog goes positionally: inside the options object Node ignores it for an fd, and
    // listen(2) would reset the starter's backlog to 511.
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EINVAL' || err.code === 'ENOTSOCK' || err.code === 'EOPNOTSUPP') {
        emitter.emit('error', new NotListeningSocketError(NOT_A_SOCKET));
      }
    };
    netServer.once('error', onError);
    netServer.listen({ fd }, backlog ?? backlogFromEnv() ?? 511, () => {
      netServer.off('error', onError);
      if (fd === FCGI_LISTENSOCK_FILENO && options.worker)
        attachStarterLink(server, (observer) => observers.push(observer));
      callback?.();
    });
  }

  const server: FcgiServer = Object.assign(emitter, {
    listen(...args: unknown[]) {
      const callback = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
      const [first, second] = args;
      if (first === undefined) listenOnFd(FCGI_LISTENSOCK_FILENO, undefined, callback);
      else if (typeof first === 'number')
        netServer.listen(first, typeof second === 'string' ? second : undefined, callback);
      else if (typeof first === 'string') {
        if (/^\d+$/.test(first)) netServer.listen(Number(first), callback);
        else netServer.listen(first, callback);
      } else {
        const o = first as ListenOptions;
        if (o.fd !== undefined) listenOnFd(o.fd, o.backlog, callback);
        else if (o.path !== undefined)
          netServer.listen({ path: o.path, backlog: o.backlog ?? 511 }, callback);
        else
          netServer.listen(
            { port: o.port ?? 0, host: o.host ?? '127.0.0.1', backlog: o.backlog ?? 511 },
            callback,
          );
      }
      return server;
    },
    close(callback?: (err?: Error) => void) {
      draining = true;
      // The log's queued lines are written before the callback (the starter link exits in it).
      if (callback) closeCallbacks.push(accessLog ? (err) => accessLog.close(() => callback(err)) : callback);
      if (netServer.listening) netServer.close(() => maybeClosed());
      for (const connection of connections) connection.drain();
      maybeClosed();
      return server;
    },
    address: () => netServer.address(),
    oldestActiveMs() {
      let oldest = Number.POSITIVE_INFINITY;
      for (const c of connections) oldest = Math.min(oldest, c.oldestRequestStart() ?? oldest);
      return oldest === Number.POSITIVE_INFINITY ? 0 : Date.now() - oldest;
    },
  }) as unknown as FcgiServer;
  Object.defineProperties(server, {
    listening: { get: () => netServer.listening },
    requestsServed: { get: () => served },
    requestsActive: { get: () => active },
  });
  if (handler) emitter.on('request', handler);
  return server;
}

export type { IncomingMessage };
