import { describe, expect, it } from 'vitest';
import { type DeadlineState, deadlineOf, expiryMessage, timeoutOf } from '../../worker-sdk/deadlines.js';
import { resolveOptions } from '../../worker-sdk/options.js';

const idle: DeadlineState = {
  outputStalled: false,
  paramsPending: 0,
  bodyPending: 0,
  bodyPaused: false,
  activeRequests: 0,
  served: 1,
};

describe('which deadline a connection runs', () => {
  it('waits for params on a new connection and while a request’s params are incomplete', () => {
    expect(deadlineOf({ ...idle, served: 0 })).toBe('params');
    expect(deadlineOf({ ...idle, activeRequests: 2, paramsPending: 1, bodyPending: 1 })).toBe('params');
  });

  it('waits for a body only while it reads, not while the application leaves bodies unread', () => {
    expect(deadlineOf({ ...idle, activeRequests: 1, bodyPending: 1 })).toBe('body');
    expect(deadlineOf({ ...idle, activeRequests: 1, bodyPending: 1, bodyPaused: true })).toBe('none');
  });

  it('has none while the application holds the requests, and idles between kept-alive ones', () => {
    expect(deadlineOf({ ...idle, activeRequests: 1 })).toBe('none');
    expect(deadlineOf(idle)).toBe('idle');
  });

  it('waits for the peer to read before anything else: reading is stopped meanwhile', () => {
    expect(deadlineOf({ ...idle, outputStalled: true, served: 0, paramsPending: 1 })).toBe('send');
  });

  it('takes each timeout from its option, and drops with a line all but an idle connection', () => {
    const options = resolveOptions(
      { headerTimeout: 1, bodyTimeout: 2, sendTimeout: 3, keepAliveTimeout: 4 },
      {},
    );
    expect((['params', 'body', 'send', 'idle'] as const).map((d) => timeoutOf(d, options))).toEqual([
      1, 2, 3, 4,
    ]);
    expect(expiryMessage('body', options)).toBe('no request body record within 2 ms');
    expect(expiryMessage('send', options)).toBe('output not read for 3 ms');
    expect(expiryMessage('idle', options)).toBeNull();
  });

  it('reads FCGI_BODY_TIMEOUT, refuses a value that is not milliseconds, and defaults to 60 s', () => {
    expect(resolveOptions({}, { FCGI_BODY_TIMEOUT: '1500' }).bodyTimeout).toBe(1500);
    expect(resolveOptions({}, {}).bodyTimeout).toBe(60_000);
    expect(() => resolveOptions({}, { FCGI_BODY_TIMEOUT: '10s' })).toThrow(
      "FCGI_BODY_TIMEOUT='10s': expected milliseconds, a positive integer",
    );
  });
});
