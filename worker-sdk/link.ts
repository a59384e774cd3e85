import {
  ENV_GRACEFUL_TIMEOUT,
  ENV_MAX_REQUESTS,
  ENV_PREFORK,
  isStarterMessage,
  STATS_INTERVAL_MS,
  type WorkerMessage,
} from '../src/link.js';
import { InFlightRequests } from './in-flight.js';
import type { FcgiServer, RequestObserver } from './server.js';

/**
 * A worker's side of life under a starter. On SIGTERM/SIGINT (any starter) it stops
 * accepting, finishes in-flight requests and exits 0. Under fcgi-prefork (FCGI_PREFORK=1 and
 * an IPC channel) it also reports ready and its counters, retires after FCGI_MAX_REQUESTS,
 * and exits when the starter dies, so no orphan pool keeps serving an old version.
 */
export function attachStarterLink(server: FcgiServer, observe: (observer: RequestObserver) => void): void {
  const graceSeconds = Number(process.env[ENV_GRACEFUL_TIMEOUT] ?? 30);
  const graceMs = Number.isFinite(graceSeconds) ? graceSeconds * 1000 : 30_000;
  let stopping = false;

  const send = (message: WorkerMessage) => {
    if (process.connected && process.send) process.send(message, undefined, {}, () => {});
  };

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

  const linked = process.env[ENV_PREFORK] === '1' && typeof process.send === 'function';
  if (!linked) return;

  const inFlight = new InFlightRequests();
  observe((req, res) => inFlight.track(req, res));
  const stats = () =>
    send({
      type: 'fcgi-prefork:stats',
      requests: server.requestsServed,
      active: server.requestsActive,
      oldestActiveMs: server.oldestActiveMs(),
      current: inFlight.oldest(),
    });
  send({ type: 'fcgi-prefork:ready' });
  setInterval(stats, STATS_INTERVAL_MS).unref();

  const maxRequests = Number(process.env[ENV_MAX_REQUESTS]);
  if (Number.isInteger(maxRequests) && maxRequests > 0) {
    server.on('requestEnd', (served: number) => {
      if (served < maxRequests || stopping) return;
      send({ type: 'fcgi-prefork:retiring', reason: `served ${served} requests (--max-requests)` });
      stats();
      stop('');
    });
  }

  process.on('message', (message: unknown) => {
    if (isStarterMessage(message)) stop('');
  });
  // The channel closes when the starter dies (even by kill -9). If that happened while this
  // worker was still loading, the 'disconnect' has come and gone: process.connected says so.
  process.on('disconnect', () => stop('starter is gone'));
  if (!process.connected) stop('starter is gone');
  // The IPC channel must not keep a stopped worker alive.
  process.channel?.unref();
}
