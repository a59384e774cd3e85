/**
 * The link between the starter and a worker it spawned: a socketpair at the worker's fd
 * FCGI_LINK_FD (3), carrying one JSON message a line (src/link-stream.ts caps a line). Not
 * Node's IPC channel: its reader buffers a line without limit and it carries descriptors, and
 * the root starter must bound what a worker can make it hold. The starter opens the link only
 * for children it runs with Node (.js/.mjs/.ts/.mts commands); any other child (php-cgi, a C
 * or Go program) gets no descriptor but fd 0-2, and the starter supervises it by its exit alone.
 *
 * Every message is a plain object with `type` prefixed `fcgi-prefork:`.
 */

/** Worker → starter: accepting on fd 0; a rolling reload may now retire an old worker. */
export interface ReadyMessage {
  readonly type: 'fcgi-prefork:ready';
}

/** Worker → starter, about once a second and when asked: the heartbeat and the counters. */
export interface StatsMessage {
  readonly type: 'fcgi-prefork:stats';
  /** Requests completed since the worker started. */
  readonly requests: number;
  /** Requests in progress now. */
  readonly active: number;
  /** Age in milliseconds of the oldest request in progress (0 when idle): `--timeout` uses it. */
  readonly oldestActiveMs: number;
  /** The oldest request in progress, for `top` and status (absent from older workers). */
  readonly current?: CurrentRequest | null;
}

/** A request in progress as a worker reports it; the starter checks every field (untrusted). */
export interface CurrentRequest {
  readonly method: string;
  /** REQUEST_URI, cut to a bounded length by the worker. */
  readonly uri: string;
  /** Date.now() when the request was dispatched (the starter runs on the same machine). */
  readonly startedAt: number;
}

/** Worker → starter: about to exit on purpose (max requests reached); respawn without backoff. */
export interface RetiringMessage {
  readonly type: 'fcgi-prefork:retiring';
  readonly reason: string;
}

/** Starter → worker: stop accepting, finish in-flight requests, exit 0 (same as SIGTERM). */
export interface StopMessage {
  readonly type: 'fcgi-prefork:stop';
}

export type WorkerMessage = ReadyMessage | StatsMessage | RetiringMessage;
export type StarterMessage = StopMessage;

/** The longest `reason` a retiring worker may give: it goes into the starter's log. */
export const MAX_REASON_LENGTH = 200;

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isDuration = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * What a worker sent over the link, checked for shape and bounds: the message, or `null` for
 * anything that is not what an SDK worker sends (the link carries nothing else). The starter
 * runs as root and the worker may be compromised: nothing but these fields, of these types, is
 * ever read.
 */
export function parseWorkerMessage(value: unknown): WorkerMessage | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const m = value as Record<string, unknown>;
  const type = m.type;
  switch (type) {
    case 'fcgi-prefork:ready':
      return { type };
    case 'fcgi-prefork:stats': {
      const oldest = m.oldestActiveMs ?? 0;
      if (!isCount(m.requests) || !isCount(m.active) || !isDuration(oldest)) return null;
      return { type, requests: m.requests, active: m.active, oldestActiveMs: oldest };
    }
    case 'fcgi-prefork:retiring': {
      if (typeof m.reason !== 'string' || m.reason.length > MAX_REASON_LENGTH) return null;
      // One log line, whatever the worker put in it.
      return { type, reason: m.reason.replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ') };
    }
    default:
      return null;
  }
}

export function isStarterMessage(value: unknown): value is StarterMessage {
  return (
    typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'fcgi-prefork:stop'
  );
}

/** Environment the starter sets for each child. */
export const ENV_WORKER_ID = 'FCGI_WORKER_ID';
export const ENV_BACKLOG = 'FCGI_BACKLOG';
/** Requests after which an SDK worker retires (already jittered per child by the starter). */
export const ENV_MAX_REQUESTS = 'FCGI_MAX_REQUESTS';
/** Seconds an SDK worker gives in-flight requests on SIGTERM before it exits anyway. */
export const ENV_GRACEFUL_TIMEOUT = 'FCGI_GRACEFUL_TIMEOUT';
/** Set to "1" for children of fcgi-prefork. */
export const ENV_PREFORK = 'FCGI_PREFORK';
/** The worker's descriptor of the link, set for the children that get one (Node workers). */
export const ENV_LINK_FD = 'FCGI_LINK_FD';
/** Where the link is in a worker: the first descriptor after stdio. */
export const LINK_FD = 3;

/** How often an SDK worker sends stats (its heartbeat), in milliseconds. */
export const STATS_INTERVAL_MS = 1000;
