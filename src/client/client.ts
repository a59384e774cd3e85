import type { Readable } from 'node:stream';
import {
  FCGI_MAX_CONNS,
  FCGI_MAX_REQS,
  FCGI_MPXS_CONNS,
  FCGI_RESPONDER,
  type PairsInput,
  type Params,
} from '../protocol/index.js';
import type { ResponseHeaders } from './cgi-response.js';
import { type Body, ClientConnection, type Exchange, type Target } from './connection.js';
import { FastCgiClientError } from './errors.js';

export interface ClientOptions {
  /** Connections at once (default 16). */
  readonly connections?: number;
  /** FCGI_KEEP_CONN: reuse connections (default true). */
  readonly keepConn?: boolean;
  /**
   * Several requests on one connection: true, false, or 'auto' (default), which asks the
   * server with FCGI_GET_VALUES on the first connection and multiplexes if FCGI_MPXS_CONNS=1.
   */
  readonly multiplex?: boolean | 'auto';
  /** Requests at once on one multiplexed connection (default 128). */
  readonly requestsPerConnection?: number;
  /** Milliseconds to connect (default 10 s). */
  readonly connectTimeout?: number;
  /** Milliseconds from sending a request to its response head (default 60 s). */
  readonly responseTimeout?: number;
}

export interface RequestOptions {
  /** CGI params: SCRIPT_FILENAME, REQUEST_METHOD, REQUEST_URI, HTTP_*, … */
  readonly params: PairsInput;
  /** FCGI_STDIN: the request body. */
  readonly body?: Body;
  /** FCGI_DATA, for the FILTER role. */
  readonly data?: Body;
  /** FCGI_RESPONDER (default), FCGI_AUTHORIZER or FCGI_FILTER. */
  readonly role?: number;
  /** Aborts with FCGI_ABORT_REQUEST. */
  readonly signal?: AbortSignal;
  readonly responseTimeout?: number;
}

export interface ClientResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: ResponseHeaders;
  /** FCGI_STDOUT after the CGI head. */
  readonly body: Readable;
  /** FCGI_STDERR, complete when the request ends. */
  readonly stderr: Promise<string>;
  /** END_REQUEST's statuses, when the request ends. */
  readonly end: Promise<{ readonly appStatus: number; readonly protocolStatus: number }>;
}

export interface BufferedResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: ResponseHeaders;
  readonly body: Buffer;
  readonly stderr: string;
  readonly appStatus: number;
  readonly protocolStatus: number;
}

export interface Client {
  request(options: RequestOptions): Promise<ClientResponse>;
  /** request() and read everything. */
  requestAll(options: RequestOptions): Promise<BufferedResponse>;
  /** FCGI_GET_VALUES (by default FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS) on a new connection. */
  getValues(names?: readonly string[]): Promise<Params>;
  close(): void;
}

/** A pooled FastCGI client: keep-conn connections, multiplexed when the server allows it. */
export function createClient(target: Target, options: ClientOptions = {}): Client {
  const maxConnections = options.connections ?? 16;
  const keepConn = options.keepConn ?? true;
  const perConnection = options.requestsPerConnection ?? 128;
  const connectTimeout = options.connectTimeout ?? 10_000;
  const defaultResponseTimeout = options.responseTimeout ?? 60_000;
  const connections = new Set<ClientConnection>();
  const waiters: { resolve: (c: ClientConnection) => void; reject: (e: Error) => void }[] = [];
  let connecting = 0;
  let multiplex: boolean | null =
    options.multiplex === 'auto' || options.multiplex === undefined ? null : options.multiplex;
  let closed = false;

  const capacity = () => (multiplex && keepConn ? perConnection : 1);
  // Connections handed to a caller that has not started its request on them yet: between
  // acquire() and start() a connection must not look free to another caller.
  const reserved = new Map<ClientConnection, number>();
  const load = (connection: ClientConnection) => connection.active + (reserved.get(connection) ?? 0);

  function reserve(connection: ClientConnection): ClientConnection {
    reserved.set(connection, (reserved.get(connection) ?? 0) + 1);
    return connection;
  }

  function unreserve(connection: ClientConnection): void {
    const n = (reserved.get(connection) ?? 1) - 1;
    if (n > 0) reserved.set(connection, n);
    else reserved.delete(connection);
  }

  function usable(connection: ClientConnection): boolean {
    return !connection.closed && !connection.retired && load(connection) < capacity();
  }

  async function open(): Promise<ClientConnection> {
    connecting++;
    try {
      const connection = await ClientConnection.connect(target, connectTimeout);
      if (multiplex === null) {
        const values = await connection
          .getValues([FCGI_MPXS_CONNS], connectTimeout)
          .catch(() => ({}) as Params);
        multiplex = (values as Params)[FCGI_MPXS_CONNS] === '1';
      }
      connections.add(connection);
      reserve(connection);
      connection.socket.once('close', () => {
        connections.delete(connection);
        reserved.delete(connection);
        pump();
      });
      return connection;
    } finally {
      connecting--;
    }
  }

  // Which connection takes the next request: an idle one; else a new one while under the
  // limit; else the least busy that still has room (multiplexing). Spreading first matters:
  // behind one listening socket every connection may land on another worker process, while
  // requests multiplexed on one connection all land on the same one.
  function pick(): ClientConnection | 'open' | null {
    let best: ClientConnection | null = null;
    for (const connection of connections) {
      if (!usable(connection)) continue;
      if (load(connection) === 0) return connection;
      if (!best || load(connection) < load(best)) best = connection;
    }
    if (connections.size + connecting < maxConnections) return 'open';
    return best;
  }

  function pump(): void {
    while (waiters.length > 0) {
      const choice = pick();
      if (choice === null) return;
      const waiter = waiters.shift()!;
      if (choice === 'open') open().then(waiter.resolve, waiter.reject);
      else waiter.resolve(reserve(choice));
    }
  }

  function acquire(): Promise<ClientConnection> {
    if (closed) return Promise.reject(new FastCgiClientError('CLOSED', 'the client is closed'));
    const choice = pick();
    if (choice === 'open') return open();
    if (choice) return Promise.resolve(reserve(choice));
    return new Promise((resolve, reject) => {
      waiters.push({ resolve, reject });
    });
  }

  async function request(req: RequestOptions): Promise<ClientResponse> {
    const signal = req.signal;
    if (signal?.aborted) throw new FastCgiClientError('ABORTED', 'the request was aborted');
    const connection = await acquire();
    let exchange: Exchange;
    try {
      exchange = connection.start({
        params: req.params,
        role: req.role ?? FCGI_RESPONDER,
        keepConn,
        body: req.body,
        data: req.data,
      });
    } finally {
      unreserve(connection);
    }
    const onAbort = () => exchange.abort(new FastCgiClientError('ABORTED', 'the request was aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = req.responseTimeout ?? defaultResponseTimeout;
    const timer = setTimeout(
      () => exchange.abort(new FastCgiClientError('TIMEOUT', `no response within ${timeoutMs} ms`)),
      timeoutMs,
    );
    void exchange.end.then(
      () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        pump();
      },
      () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        pump();
      },
    );
    try {
      const head = await exchange.head;
      clearTimeout(timer);
      return { ...head, body: exchange.body, stderr: exchange.stderr, end: exchange.end };
    } catch (err) {
      clearTimeout(timer);
      throw err;
    }
  }

  return {
    request,
    async requestAll(req) {
      const response = await request(req);
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      const { appStatus, protocolStatus } = await response.end;
      return {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        body: Buffer.concat(chunks),
        stderr: await response.stderr,
        appStatus,
        protocolStatus,
      };
    },
    async getValues(names = [FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS]) {
      const connection = await ClientConnection.connect(target, connectTimeout);
      try {
        return await connection.getValues(names, connectTimeout);
      } finally {
        connection.close();
      }
    },
    close() {
      closed = true;
      for (const connection of connections) connection.close();
      for (const waiter of waiters.splice(0))
        waiter.reject(new FastCgiClientError('CLOSED', 'the client is closed'));
    },
  };
}
