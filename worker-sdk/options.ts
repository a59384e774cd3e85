/** Limits and behaviour of a worker; every field has a default. */
export interface WorkerOptions {
  /** Total bytes of one request's PARAMS (default 1 MiB). */
  readonly maxParamsLength?: number;
  /** PARAMS bytes held by the requests in progress on one connection (default 4 MiB); more closes it. */
  readonly maxConnectionParamsLength?: number;
  /** PARAMS bytes held by the requests in progress on all connections (default 32 MiB); more closes the connection that sends them. */
  readonly maxWorkerParamsLength?: number;
  /** Request body bytes; more gets 413 (default 100 MiB). */
  readonly maxBodyLength?: number;
  /** Milliseconds from a connection's start (or its previous request) to complete PARAMS (default 30 s). */
  readonly headerTimeout?: number;
  /**
   * Milliseconds an idle kept-alive connection stays open (default 120 s: longer than nginx's
   * upstream keepalive_timeout of 60 s, so nginx closes first and never writes to a closing one).
   */
  readonly keepAliveTimeout?: number;
  /**
   * Milliseconds a request's body may go without a record once its params are complete (default
   * 60 s, or FCGI_BODY_TIMEOUT): a front that stops sending it is dropped, as nginx's
   * client_body_timeout does. Time the application leaves a body unread does not count.
   */
  readonly bodyTimeout?: number;
  /** Milliseconds output may wait for a peer that does not read it (default 60 s); then the connection is dropped. */
  readonly sendTimeout?: number;
  /** Connections at once, as FCGI_MAX_CONNS (default 10000); more are closed at accept. */
  readonly maxConns?: number;
  /** Requests at once across connections, as FCGI_MAX_REQS (default 10000); more get FCGI_OVERLOADED. */
  readonly maxReqs?: number;
  /** Allowed peer addresses; default from FCGI_WEB_SERVER_ADDRS; empty = any. */
  readonly webServerAddrs?: readonly string[];
  /** Roles served (default all three: responder, authorizer, filter). Others get FCGI_UNKNOWN_ROLE. */
  readonly roles?: readonly ('responder' | 'authorizer' | 'filter')[];
  /**
   * When listening on fd 0: stop gracefully on SIGTERM/SIGINT, and talk to fcgi-prefork
   * (ready, stats, max requests, parent death). Default true.
   */
  readonly worker?: boolean;
  /** Where one-line diagnostics go (default: console.error). */
  readonly log?: (message: string) => void;
  /**
   * Access log file (combined format + request time + slot), appended to; `-` is stdout.
   * Default from FCGI_ACCESS_LOG, which `fcgi-prefork --access-log` sets. SIGUSR1 reopens it.
   */
  readonly accessLog?: string | null;
}

export interface ResolvedOptions {
  readonly maxParamsLength: number;
  readonly maxConnectionParamsLength: number;
  readonly maxWorkerParamsLength: number;
  readonly maxBodyLength: number;
  readonly headerTimeout: number;
  readonly keepAliveTimeout: number;
  readonly bodyTimeout: number;
  readonly sendTimeout: number;
  readonly maxConns: number;
  readonly maxReqs: number;
  readonly webServerAddrs: ReadonlySet<string> | null;
  readonly roles: ReadonlySet<number>;
  readonly worker: boolean;
  readonly log: (message: string) => void;
  readonly accessLog: string | null;
}

const ROLE_NUMBERS = { responder: 1, authorizer: 2, filter: 3 } as const;

/** `::ffff:127.0.0.1` and `127.0.0.1` are the same peer. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Milliseconds from the environment: unset is undefined, anything but a positive integer an error. */
function millisFromEnv(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0)
    throw new RangeError(`${name}='${value}': expected milliseconds, a positive integer`);
  return ms;
}

export function resolveOptions(
  options: WorkerOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOptions {
  const addrs =
    options.webServerAddrs ??
    (env.FCGI_WEB_SERVER_ADDRS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return {
    maxParamsLength: options.maxParamsLength ?? 1024 * 1024,
    maxConnectionParamsLength: options.maxConnectionParamsLength ?? 4 * 1024 * 1024,
    maxWorkerParamsLength: options.maxWorkerParamsLength ?? 32 * 1024 * 1024,
    maxBodyLength: options.maxBodyLength ?? 100 * 1024 * 1024,
    headerTimeout: options.headerTimeout ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeout ?? 120_000,
    bodyTimeout: options.bodyTimeout ?? millisFromEnv('FCGI_BODY_TIMEOUT', env.FCGI_BODY_TIMEOUT) ?? 60_000,
    sendTimeout: options.sendTimeout ?? 60_000,
    maxConns: options.maxConns ?? 10_000,
    maxReqs: options.maxReqs ?? 10_000,
    webServerAddrs: addrs.length > 0 ? new Set(addrs.map(normalizeAddress)) : null,
    roles: new Set((options.roles ?? ['responder', 'authorizer', 'filter']).map((r) => ROLE_NUMBERS[r])),
    worker: options.worker ?? true,
    log: options.log ?? ((message) => console.error(message)),
    accessLog: options.accessLog !== undefined ? options.accessLog : env.FCGI_ACCESS_LOG || null,
  };
}
