import type { ResolvedOptions } from './options.js';

/**
 * What a connection is waiting for, and so which of its deadlines runs:
 * - send: its output is past the high-water mark and the peer is not reading it;
 * - params: a new connection, or a request whose params are not complete (slow clients);
 * - body: a request's body, between two of its records (only while we read);
 * - idle: nothing, between kept-alive requests;
 * - none: requests are with the application, which takes its time.
 * Reading stops while output waits, so nothing else can progress then.
 */
export type Deadline = 'send' | 'params' | 'body' | 'idle' | 'none';

/** What the choice depends on: a connection, as it is now. */
export interface DeadlineState {
  readonly outputStalled: boolean;
  /** Requests begun whose params have not ended. */
  readonly paramsPending: number;
  /** Requests whose params ended and whose body has not. */
  readonly bodyPending: number;
  /** Reading is paused because the application has not read the bodies it has. */
  readonly bodyPaused: boolean;
  readonly activeRequests: number;
  /** Requests completed on the connection. */
  readonly served: number;
}

export function deadlineOf(state: DeadlineState): Deadline {
  if (state.outputStalled) return 'send';
  if (state.paramsPending > 0 || (state.activeRequests === 0 && state.served === 0)) return 'params';
  if (state.bodyPending > 0 && !state.bodyPaused) return 'body';
  return state.activeRequests === 0 ? 'idle' : 'none';
}

/** Milliseconds a connection may wait in `deadline`. */
export function timeoutOf(deadline: Deadline, options: ResolvedOptions): number {
  switch (deadline) {
    case 'send':
      return options.sendTimeout;
    case 'params':
      return options.headerTimeout;
    case 'body':
      return options.bodyTimeout;
    case 'idle':
      return options.keepAliveTimeout;
    default:
      return Number.POSITIVE_INFINITY;
  }
}

/** What a connection past its deadline gets: dropped with a log line, or (idle) closed quietly. */
export function expiryMessage(deadline: Deadline, options: ResolvedOptions): string | null {
  const ms = timeoutOf(deadline, options);
  switch (deadline) {
    case 'send':
      return `output not read for ${ms} ms`;
    case 'params':
      return `no complete request within ${ms} ms`;
    case 'body':
      return `no request body record within ${ms} ms`;
    default:
      return null;
  }
}
