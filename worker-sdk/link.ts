import net from 'node:net';
import {
  ENV_GRACEFUL_TIMEOUT,
  ENV_LINK_FD,
  ENV_MAX_REQUESTS,
  ENV_PREFORK,
  isStarterMessage,
  STATS_INTERVAL_MS,
  type WorkerMessage,
} from '../src/link.js';
import { encodeLine, LineReader, MAX_LINK_LINE } from '../src/link-stream.js';
import { InFlightRequests } from './in-flight.js';
import type { FcgiServer, RequestObserver } from './server.js';

/** Output queued on the link past which stats are dropped: a starter not reading gets no more. */
const MAX_QUEUED = 4 * MAX_LINK_LINE;

/** A worker's end of the link to its starter (src/link.ts). */
export interface StarterLink {
  /** Queues one message without blocking; a droppable one is dropped while output is queued. */
  send(message: WorkerMessage, droppable?: boolean): void;
  /** Bytes written but not yet taken by the starter. */
  readonly queued: number;
}

/**
 * Opens the link fcgi-prefork gave this worker (FCGI_PREFORK=1, FCGI_LINK_FD), or returns
 * `null` when there is none. `onStop` runs when the starter asks the worker to stop; `onGone`
 * when the link closes, which is when the starter has died (even by kill -9, even before this
 * worker got here). The link never keeps the process alive.
 */
export function openStarterLink(onStop: () => void, onGone: () => void): StarterLink | null {
  const fd = Number(process.env[ENV_LINK_FD]);
  if (process.env[ENV_PREFORK] !== '1' || !Number.isInteger(fd) || fd < 3) return null;
  // Ours alone: a process this worker runs is not linked to the starter.
  delete process.env[ENV_LINK_FD];
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, readable: true, writable: true });
  } catch {
    return null; // not open, or not a socket: run unlinked
  }
  const reader = new LineReader();
  socket.on('data', (chunk: Buffer) => {
    const lines = reader.push(chunk);
    if (lines === 'overflow') return;
    for (const line of lines) {
      try {
        if (isStarterMessage(JSON.parse(line))) onStop();
      } catch {
        // not a line of ours: nothing to do
      }
    }
  });
  socket.on('error', () => {});
  socket.on('end', onGone);
  socket.on('close', onGone);
  socket.unref();
  return {
    send(message, droppable = false) {
      if (socket.destroyed || !socket.writable) return;
      if (droppable && socket.writableLength > MAX_QUEUED) return;
      const line = encodeLine(message);
      if (line) socket.write(line);
    },
    get queued() {
      return socket.writableLength;
    },
  };
}

/**
 * A worker's side of life under a starter. On SIGTERM/SIGINT (any starter) it stops
 * accepting, finishes in-flight requests and exits 0. Under fcgi-prefork (a link, see
 * openStarterLink) it also reports ready and its counters, retires after FCGI_MAX_REQUESTS,
 * and exits when the starter dies, so no orphan pool keeps serving an old version.
 */
export function attachStarterLink(server: FcgiServer, observe: (observer: RequestObserver) => void): void {
  const graceSeconds = Number(process.env[ENV_GRACEFUL_TIMEOUT] ?? 30);
  const graceMs = Number.isFinite(graceSeconds) ? graceSeconds * 1000 : 30_000;
  let stopping = false;

  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    if (why)
      console.error(`fcgi worker ${process.pid}: ${why}; finishing ${server.requestsActive} request(s)`);
    // Bounded: past the graceful timeout the process goes anyway.
    setTimeout(() => process.exit(0), graceMs).unref();
    server.close(() => process.exit(0));
  };

  process.once('SIGTERM', () => stop(''));
  process.once('SIGINT', () => stop(''));

  const link = openStarterLink(
    () => stop(''),
    () => stop('starter is gone'),
  );
  if (!link) return;

  const inFlight = new InFlightRequests();
  observe((req, res) => inFlight.track(req, res));
  const stats = () =>
    link.send(
      {
        type: 'fcgi-prefork:stats',
        requests: server.requestsServed,
        active: server.requestsActive,
        oldestActiveMs: server.oldestActiveMs(),
        current: inFlight.oldest(),
      },
      true,
    );
  link.send({ type: 'fcgi-prefork:ready' });
  setInterval(stats, STATS_INTERVAL_MS).unref();

  const maxRequests = Number(process.env[ENV_MAX_REQUESTS]);
  if (Number.isInteger(maxRequests) && maxRequests > 0) {
    server.on('requestEnd', (served: number) => {
      if (served < maxRequests || stopping) return;
      link.send({ type: 'fcgi-prefork:retiring', reason: `served ${served} requests (--max-requests)` });
      stats();
      stop('');
    });
  }
}
