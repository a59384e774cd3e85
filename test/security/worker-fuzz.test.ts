// Issue 18: a fast-check run of 1,000,000 records into live connections of a real worker (the
// SDK fixture, as nobody). Each run is one connection: a few requests, each a coherent script
// (begin, params in pieces, body in pieces, maybe an abort), interleaved, with management
// records and noise among them, and in one run of five one record replaced by a malformed one.
// The worker must never crash, close each connection (after answering, or at the malformed
// record) with at most one log line, keep its memory bounded, and go on serving.
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeBeginRequest,
  encodeGetValues,
  encodeNameValuePairs,
  encodeRecord,
  FCGI_ABORT_REQUEST,
  FCGI_DATA,
  FCGI_PARAMS,
  FCGI_STDIN,
} from '../../src/protocol/index.js';
import { stopAll } from '../helpers/processes.js';
import { expectBounded, expectNobody, expectServes, startTarget, type Target } from './worker-target.js';

const RECORDS_PER_RUN = 200;
const RUNS = 5000;

interface Script {
  readonly role: number;
  readonly keepConn: boolean;
  readonly uri: string;
  readonly pairs: [string, string][];
  readonly paramsPieces: number;
  readonly body: Uint8Array;
  readonly bodyPieces: number;
  readonly data: Uint8Array;
  readonly abort: boolean;
}

const name = fc.oneof(
  fc.constantFrom(
    'HTTP_HOST',
    'HTTP_X_A',
    'CONTENT_TYPE',
    'CONTENT_LENGTH',
    'HTTPS',
    'REMOTE_ADDR',
    'SERVER_NAME',
  ),
  fc.string({ maxLength: 12 }),
);
const value = fc.oneof(fc.constantFrom('', '0', '5', '999999999999', 'on'), fc.string({ maxLength: 40 }));

const script: fc.Arbitrary<Script> = fc.record({
  role: fc.constantFrom(1, 1, 1, 1, 2, 3, 0, 9),
  keepConn: fc.integer({ min: 0, max: 9 }).map((n) => n < 9),
  uri: fc.constantFrom('/', '/echo', '/headers', '/echo?x=1'),
  pairs: fc.array(fc.tuple(name, value), { maxLength: 8 }),
  paramsPieces: fc.integer({ min: 1, max: 4 }),
  body: fc.uint8Array({ maxLength: 300 }),
  bodyPieces: fc.integer({ min: 1, max: 3 }),
  data: fc.uint8Array({ maxLength: 50 }),
  abort: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

/** Records the worker should take one way or another, in any order. */
const noise: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .array(fc.constantFrom('FCGI_MAX_CONNS', 'FCGI_MPXS_CONNS', 'constructor', '__proto__', 'x'), {
      maxLength: 4,
    })
    .map((names) => encodeGetValues(names)),
  fc.integer({ min: 12, max: 255 }).map((type) => encodeRecord(type, 0)),
  // Records of a request id that is not active are ignored (spec 3.3).
  fc
    .constantFrom(FCGI_PARAMS, FCGI_STDIN, FCGI_DATA, FCGI_ABORT_REQUEST)
    .map((type) => encodeRecord(type, 200)),
);

/** A record that breaks the protocol: the worker closes the connection at it. */
const malformed: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ minLength: 8, maxLength: 40 }).map((bytes) => {
    const buf = Buffer.from(bytes);
    buf[0] = 2 + (buf[0]! % 250); // not version 1
    return buf;
  }),
  fc.integer({ min: 0, max: 7 }).map((n) => {
    const buf = encodeRecord(1, 1, Buffer.alloc(n)); // BEGIN_REQUEST without its 8 bytes
    return buf;
  }),
  fc
    .constantFrom(3, 6, 7, 10, 11)
    .map((type) => encodeRecord(type, 1, Buffer.alloc(type === 3 || type === 11 ? 8 : 3))),
  fc.constantFrom(FCGI_PARAMS, FCGI_STDIN).map((type) => encodeRecord(type, 0, Buffer.from('x'))),
);

/** `bytes` in at most n pieces, none empty: an empty record ends a stream. */
function pieces(bytes: Uint8Array, n: number): Buffer[] {
  const out: Buffer[] = [];
  const size = Math.max(1, Math.ceil(bytes.length / n));
  for (let at = 0; at < bytes.length; at += size) out.push(Buffer.from(bytes.subarray(at, at + size)));
  return out;
}

function recordsOf(id: number, s: Script): Buffer[] {
  const params = encodeNameValuePairs([
    ['REQUEST_METHOD', s.body.length > 0 ? 'POST' : 'GET'],
    ['REQUEST_URI', s.uri],
    ...s.pairs,
  ]);
  const out = [encodeBeginRequest(id, s.role, s.keepConn ? 1 : 0)];
  for (const piece of pieces(params, s.paramsPieces)) out.push(encodeRecord(FCGI_PARAMS, id, piece));
  out.push(encodeRecord(FCGI_PARAMS, id));
  if (s.abort) out.push(encodeRecord(FCGI_ABORT_REQUEST, id));
  for (const piece of pieces(s.body, s.bodyPieces)) out.push(encodeRecord(FCGI_STDIN, id, piece));
  out.push(encodeRecord(FCGI_STDIN, id));
  if (s.role === 3) {
    if (s.data.length > 0) out.push(encodeRecord(FCGI_DATA, id, Buffer.from(s.data)));
    out.push(encodeRecord(FCGI_DATA, id));
  }
  return out;
}

interface Run {
  readonly scripts: Script[];
  readonly noise: Buffer[];
  readonly order: number[];
  readonly corrupt: { at: number; record: Buffer } | null;
}

const run: fc.Arbitrary<Run> = fc.record({
  scripts: fc.array(script, { minLength: 1, maxLength: 6 }),
  noise: fc.array(noise, { minLength: RECORDS_PER_RUN, maxLength: RECORDS_PER_RUN }),
  order: fc.array(fc.nat(), { minLength: RECORDS_PER_RUN, maxLength: RECORDS_PER_RUN }),
  corrupt: fc.oneof(
    { arbitrary: fc.constant(null), weight: 4 },
    { arbitrary: fc.record({ at: fc.nat({ max: RECORDS_PER_RUN - 1 }), record: malformed }), weight: 1 },
  ),
});

/**
 * Exactly RECORDS_PER_RUN records: the scripts' records interleaved (each script in its own
 * order, which script goes next chosen by `order`), then noise up to the count.
 */
function recordsOfRun(r: Run): Buffer[] {
  const queues = r.scripts.map((s, i) => recordsOf(i + 1, s));
  const out: Buffer[] = [];
  let k = 0;
  while (out.length < RECORDS_PER_RUN) {
    const live = queues.filter((q) => q.length > 0);
    const pick = r.order[k % r.order.length]! % (live.length + 1);
    if (pick < live.length) out.push(live[pick]!.shift()!);
    else out.push(r.noise[k % r.noise.length]!);
    k++;
    if (live.length === 0)
      while (out.length < RECORDS_PER_RUN) out.push(r.noise[out.length % r.noise.length]!);
  }
  if (r.corrupt) out[r.corrupt.at] = r.corrupt.record;
  return out;
}

/** Sends the records on a new connection, then its FIN; resolves when the worker has closed it. */
function deliver(port: number, records: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the worker did not close the connection within 10 s'));
    }, 10_000);
    socket.on('error', () => {}); // a reset at a malformed record is an answer too
    socket.on('data', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect', () => socket.end(Buffer.concat(records)));
  });
}

describe('fuzzing a live worker', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget();
    expectNobody(target.pid);
  });
  afterAll(stopAll);

  it(`takes ${RUNS * RECORDS_PER_RUN} records on ${RUNS} connections: no crash, bounded memory, still serving`, {
    timeout: 240_000,
  }, async () => {
    let sent = 0;
    let checks = 0;
    await fc.assert(
      fc.asyncProperty(run, async (r) => {
        const records = recordsOfRun(r);
        sent += records.length;
        await deliver(target.port, records);
        // Now and then, mid-run: still the same process, and serving another connection.
        if (++checks % 500 === 0) {
          expectBounded(target);
          await expectServes(target);
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(sent).toBe(RUNS * RECORDS_PER_RUN);
    expect(await expectServes(target)).toMatch(/^ok /);
    const memory = expectBounded(target);
    // Every line it wrote is one of its own: no stack trace, no crash report.
    const lines = target.output().trimEnd().split('\n');
    const strange = lines.filter(
      (line) =>
        !/^(listening \d+|handled \S*|fcgi worker: closing connection from (127\.0\.0\.1:\d+|an unnamed peer \(unix socket, or gone\)): .+)$/.test(
          line,
        ),
    );
    expect(strange).toEqual([]);
    // The scripts went deep: most of their requests reached the handler.
    expect(target.handled()).toBeGreaterThan(RUNS);
    // Why connections were closed, by kind: most at a state the scripts' interleaving breaks.
    const why = new Map<string, number>();
    for (const line of lines) {
      const kind = /^fcgi worker: closing connection from [^:]+(?::\d+)?: (.*)$/.exec(line)?.[1];
      if (kind) why.set(kind.replace(/\d+/g, 'N'), (why.get(kind.replace(/\d+/g, 'N')) ?? 0) + 1);
    }
    const closings = [...why.values()].reduce((a, b) => a + b, 0);
    console.log(
      `fuzz: ${sent} records on ${RUNS} connections, ${target.handled()} requests handled, ${closings} connections closed at a violation, peak RSS ${memory.peak} KiB\n` +
        [...why].map(([kind, n]) => `  ${n} ${kind}`).join('\n'),
    );
  });
});
