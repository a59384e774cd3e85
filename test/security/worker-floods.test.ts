// Issue 18, item 7: one peer must not exhaust a worker's memory or stall it. Each attack is sent
// by a real peer to a real worker (the SDK fixture, as nobody); under each, the worker's peak
// RSS (VmHWM) stays under 256 MiB and it keeps serving a normal request on another connection.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeNameValuePairs,
  encodeBeginRequest,
  encodeGetValues,
  encodeNameValuePairs,
  encodeRecord,
  encodeStream,
  FCGI_GET_VALUES_RESULT,
  FCGI_PARAMS,
  FCGI_STDIN,
  FCGI_UNKNOWN_TYPE,
} from '../../src/protocol/index.js';
import { GET, rawConnect, requestRecords, responseOf } from '../helpers/fcgi-raw.js';
import { sleep, stopAll } from '../helpers/processes.js';
import { expectBounded, expectNobody, expectServes, startTarget } from './worker-target.js';

afterEach(stopAll);

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/**
 * Writes the chunks `next` gives until it gives none, the worker closes the connection, or the
 * worker stops taking bytes for `stallMs` (what a peer sees of a worker that stopped reading).
 */
async function pour(
  socket: net.Socket,
  next: () => Buffer | null,
  stallMs = 1000,
): Promise<{ sent: number; outcome: 'done' | 'closed' | 'stalled' }> {
  let sent = 0;
  for (;;) {
    if (socket.destroyed) return { sent, outcome: 'closed' };
    const chunk = next();
    if (!chunk) return { sent, outcome: 'done' };
    sent += chunk.length;
    if (socket.write(chunk)) continue;
    const outcome = await new Promise<'drain' | 'closed' | 'stalled'>((resolve) => {
      const timer = setTimeout(() => finish('stalled'), stallMs);
      const onDrain = () => finish('drain');
      const onClose = () => finish('closed');
      const finish = (how: 'drain' | 'closed' | 'stalled') => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        resolve(how);
      };
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
    if (outcome !== 'drain') return { sent, outcome };
  }
}

const closed = (socket: net.Socket) =>
  socket.destroyed
    ? Promise.resolve()
    : new Promise<void>((resolve) => socket.once('close', () => resolve()));

/** The begin and unfinished params (983 KB) of request `id`: the params never end. */
function unfinishedParams(id: number, filler: string): Buffer {
  const params = encodeNameValuePairs([
    ['REQUEST_METHOD', 'GET'],
    ['HTTP_X_FILLER', filler],
  ]);
  return Buffer.concat([encodeBeginRequest(id, 1, 1), ...encodeStream(FCGI_PARAMS, id, params)]);
}
const FILLER = 'x'.repeat(983_000);

describe('a worker under floods from one peer', () => {
  it.each([
    ['stream handles', {}],
    ['net.Socket (--pending-deprecation)', { NODE_OPTIONS: '--pending-deprecation' }],
  ])(
    'stops reading a peer that never reads its unknown-type replies, and drops it after sendTimeout (%s)',
    async (path, env: Record<string, string>) => {
      const target = await startTarget({ ...env, SEND_TIMEOUT: '3000' });
      expectNobody(target.pid);
      const flood = await connect(target.port);
      flood.pause(); // the replies are never read
      // 8-byte records of an unknown management type, each answered with 16 bytes: 64 MiB of
      // them would be 128 MiB of replies, and far more in buffers, were they all read.
      const chunk = Buffer.concat(Array.from({ length: 8192 }, () => encodeRecord(99, 0)));
      const limit = 64 * 1024 * 1024;
      let given = 0;
      const { sent, outcome } = await pour(flood, () => {
        given += chunk.length;
        return given <= limit ? chunk : null;
      });
      expect(outcome).toBe('stalled');
      expect(sent).toBeLessThan(limit);
      // Stalled on the flood, the worker serves another connection.
      expect(await expectServes(target)).toMatch(/^ok /);
      const memory = expectBounded(target);
      // The flood's connection is dropped once its output has waited sendTimeout.
      await closed(flood);
      await target.proc.waitFor(/closing connection from 127\.0\.0\.1:\d+: output not read for 3000 ms/);
      await expectServes(target);
      expectBounded(target);
      console.log(
        `unknown-type flood, ${path}: ${(sent / 2 ** 20).toFixed(1)} MiB taken, peak RSS ${memory.peak} KiB`,
      );
    },
  );

  it('closes a connection whose multiplexed unfinished params pass its limit', async () => {
    const target = await startTarget();
    const flood = await connect(target.port);
    // Up to 320 requests with 983 KB of params each that never end (the issue sent 3,000).
    let id = 0;
    const { sent, outcome } = await pour(flood, () => (id < 320 ? unfinishedParams(++id, FILLER) : null));
    await closed(flood);
    expect(['closed', 'done', 'stalled']).toContain(outcome);
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    await target.proc.waitFor(
      /closing connection from 127\.0\.0\.1:\d+: params of the requests on this connection over the limit of 4194304 bytes/,
    );
    expect(await expectServes(target)).toMatch(/^ok /);
    const memory = expectBounded(target);
    console.log(
      `params flood, one connection: ${(sent / 2 ** 20).toFixed(1)} MiB sent, peak RSS ${memory.peak} KiB`,
    );
  });

  it('holds the params of all connections under the worker’s limit, dropping the biggest holders first', async () => {
    const target = await startTarget();
    // 24 connections, each holding 4 unfinished 983 KB params (3.9 MB, under the connection's
    // limit): 94 MB in all, over the worker's 32 MiB.
    const floods = await Promise.all(Array.from({ length: 24 }, () => connect(target.port)));
    await Promise.all(
      floods.map((flood) => {
        let id = 0;
        return pour(flood, () => (id < 4 ? unfinishedParams(++id, FILLER) : null));
      }),
    );
    await target.proc.waitFor(/params of all requests in progress over the limit of 33554432 bytes/);
    await sleep(500);
    const open = floods.filter((f) => !f.destroyed).length;
    expect(open).toBeGreaterThan(0);
    expect(open).toBeLessThan(floods.length);
    // With the worker's params all held, a normal request still gets in: a holder makes room.
    expect(await expectServes(target)).toMatch(/^ok /);
    const memory = expectBounded(target);
    for (const flood of floods) flood.destroy();
    console.log(`params flood, 24 connections: ${open} kept, peak RSS ${memory.peak} KiB`);
  });

  it('holds params sent a byte a record at about their size, not an object per record', async () => {
    const target = await startTarget();
    // Per request: its begin, then 1,000,000 PARAMS records of one byte each (16 bytes on the
    // wire with header and padding), never ended; four requests on each of two connections.
    const oneByteRecords = (id: number): Buffer => {
      const count = 1_000_000;
      const buf = Buffer.alloc(count * 16);
      for (let i = 0, at = 0; i < count; i++, at += 16) {
        buf[at] = 1;
        buf[at + 1] = FCGI_PARAMS;
        buf[at + 2] = id >> 8;
        buf[at + 3] = id & 0xff;
        buf[at + 5] = 1; // content length
        buf[at + 6] = 7; // padding
        buf[at + 8] = 97;
      }
      return Buffer.concat([encodeBeginRequest(id, 1, 1), buf]);
    };
    const floods = await Promise.all([connect(target.port), connect(target.port)]);
    // A GET_VALUES behind them: its answer comes once the worker has read all of them.
    const through = floods.map((flood) => new Promise((resolve) => flood.once('data', resolve)));
    const results = await Promise.all(
      floods.map((flood) => {
        let id = 0;
        return pour(
          flood,
          () => (id < 4 ? oneByteRecords(++id) : id++ === 4 ? encodeGetValues(['x']) : null),
          5000,
        );
      }),
    );
    expect(results.map((r) => r.outcome)).toEqual(['done', 'done']);
    await Promise.all(through);
    expect(await expectServes(target)).toMatch(/^ok /);
    expect(floods.every((f) => !f.destroyed)).toBe(true);
    const memory = expectBounded(target);
    for (const flood of floods) flood.destroy();
    console.log(`one-byte params records, 8 x 1 MB: peak RSS ${memory.peak} KiB`);
  });

  it('reads 1 MB of distinct HTTP_* names in linear time, serving another connection meanwhile', async () => {
    const target = await startTarget();
    const pairs: [string, string][] = [
      ['REQUEST_METHOD', 'GET'],
      ['REQUEST_URI', '/headers'],
    ];
    const names = 74_000;
    for (let i = 0; i < names; i++) pairs.push([`HTTP_X_${i.toString(36)}`, 'v']);
    const params = encodeNameValuePairs(pairs);
    // As in the issue: 74,000 names in 1 MB, within the default maxParamsLength (1 MiB).
    expect(params.length).toBeGreaterThan(900_000);
    expect(params.length).toBeLessThanOrEqual(1024 * 1024);
    const big = await rawConnect({ port: target.port });
    const startedAt = Date.now();
    big.send(encodeBeginRequest(1, 1, 0), ...encodeStream(FCGI_PARAMS, 1, params));
    big.send(encodeRecord(FCGI_PARAMS, 1), encodeRecord(FCGI_STDIN, 1));
    const [answer, other] = await Promise.all([responseOf(big, 1, 20_000), expectServes(target)]);
    const took = Date.now() - startedAt;
    expect(answer.stdout).toMatch(new RegExp(`\\r\\n\\r\\n${names}\\n$`));
    expect(other).toMatch(/^ok /);
    // Quadratic, this took 10.4 s; linear it is well under a second, here with room for a busy machine.
    expect(took).toBeLessThan(5000);
    const memory = expectBounded(target);
    console.log(`${names} header names: answered in ${took} ms, peak RSS ${memory.peak} KiB`);
  });

  it('drops a request whose body stops coming (FCGI_BODY_TIMEOUT), not one whose body is slow', async () => {
    const target = await startTarget({ FCGI_BODY_TIMEOUT: '1000' });
    const post = (length: number) =>
      GET('/echo', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(length), CONTENT_TYPE: 'text/plain' });
    // A body record every 400 ms: slow, never 1000 ms without one. Answered.
    const slow = await rawConnect({ port: target.port });
    slow.send(encodeBeginRequest(1, 1, 0), ...encodeStream(FCGI_PARAMS, 1, encodeNameValuePairs(post(50))));
    slow.send(encodeRecord(FCGI_PARAMS, 1));
    for (let i = 0; i < 5; i++) {
      slow.send(encodeRecord(FCGI_STDIN, 1, Buffer.alloc(10, 97)));
      await sleep(400);
    }
    slow.send(encodeRecord(FCGI_STDIN, 1));
    expect((await responseOf(slow, 1)).stdout).toMatch(/\r\n\r\n50\n$/);
    // Params complete, 10 bytes of 100, then nothing: dropped after the timeout.
    const stuck = await rawConnect({ port: target.port });
    stuck.send(encodeBeginRequest(1, 1, 0), ...encodeStream(FCGI_PARAMS, 1, encodeNameValuePairs(post(100))));
    stuck.send(encodeRecord(FCGI_PARAMS, 1), encodeRecord(FCGI_STDIN, 1, Buffer.alloc(10, 97)));
    const since = Date.now();
    expect(await expectServes(target)).toMatch(/^ok /);
    await stuck.closed;
    expect(Date.now() - since).toBeGreaterThanOrEqual(900);
    await target.proc.waitFor(
      /closing connection from 127\.0\.0\.1:\d+: no request body record within 1000 ms/,
    );
    expectBounded(target);
  });

  it('answers GET_VALUES for names that are Object’s own (constructor, __proto__) with nothing', async () => {
    const target = await startTarget();
    const conn = await rawConnect({ port: target.port });
    conn.send(encodeGetValues(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'FCGI_MAX_CONNS']));
    const result = await conn.waitFor((r) => r.type === FCGI_GET_VALUES_RESULT);
    expect({ ...decodeNameValuePairs(result.content) }).toEqual({ FCGI_MAX_CONNS: '10000' });
    // The connection is still good: a request on it is answered.
    conn.send(...requestRecords(1, GET('/')));
    expect((await responseOf(conn, 1)).stdout).toMatch(/ok \d+\n$/);
    expect(conn.records.some((r) => r.type === FCGI_UNKNOWN_TYPE)).toBe(false);
    expect(target.output()).not.toMatch(/TypeError/);
    conn.close();
  });
});
