import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CurrentRequest } from '../src/link.js';

/** URIs longer than this are cut before they go to the starter (its `top` shows one line). */
export const CURRENT_URI_MAX = 200;

interface Entry {
  readonly method: string;
  readonly url: string;
  readonly startedAt: number;
}

/**
 * The requests a worker is running, for the starter's `top` and status (as php-fpm's full
 * status shows each child's request). Only the oldest is reported: the one an operator
 * chasing a stuck pool looks for.
 */
export class InFlightRequests {
  private readonly live = new Set<Entry>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** Called as each request is dispatched; forgets it when its response closes. */
  track(req: IncomingMessage, res: ServerResponse): void {
    const entry: Entry = { method: req.method ?? '', url: req.url ?? '', startedAt: this.clock() };
    this.live.add(entry);
    res.once('close', () => this.live.delete(entry));
  }

  oldest(): CurrentRequest | null {
    // A Set keeps insertion order: the first entry is the oldest.
    for (const entry of this.live)
      return {
        method: entry.method.slice(0, 16),
        uri: entry.url.slice(0, CURRENT_URI_MAX),
        startedAt: entry.startedAt,
      };
    return null;
  }
}
