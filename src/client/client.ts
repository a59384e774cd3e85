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

  function usable(connection: ClientConnection): boolean {
    return !connection.closed && !connection.retired && connection.active < capacity();
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
      connection.socket.once('close', () => {
        connections.delete(connection);
        pump();
      });
      return connection;
    } finally {
      connecting--;
    }
  }

  function pump(): void {
    while (waiters.length > 0) {
      const free = [...connections].find(usable);
      if (free) {
        waiters.shift()!.resolve(free);
        continue;
      }
      if (connections.size + connecting >= maxConnections) return;
      const waiter = waiters.shift()!;
      open().then(waiter.resolve, waiter.reject);
    }
  }

  function acquire(): Promise<ClientConnection> {
    if (closed) return Promise.reject(new FastCgiClientError('CLOSED', 'the client is closed'));
    for (const connection of connections) if (usable(connection)) return Promise.resolve(connection);
    if (connections.size + connecting < maxConnections) return open();
    return new Promise((resolve, reject) => {
      waiters.push({ resolve, reject });
    });
  }

  async function request(req: RequestOptions): Promise<ClientResponse> {
    const signal = req.signal;
    if (signal?.aborted) throw new FastCgiClientError('ABORTED', 'the request was aborted');
    const connection = await acquire();
    const exchange: Exchange = connection.start({
      params: req.params,
      role: req.role ?? FCGI_RESPONDER,
      keepConn,
      body: req.body,
      data: req.data,
    });
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
