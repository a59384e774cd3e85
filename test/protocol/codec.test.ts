import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createDecoder,
  createParamsDecoder,
  createRecordReader,
  decodeNameValuePairs,
  encodeBeginRequest,
  encodeEndRequest,
  encodeNameValuePairs,
  encodeParams,
  encodeRecord,
  encodeResponseEnd,
  encodeStream,
  encodeTextRecord,
  encodeUnknownType,
  FCGI_ABORT_REQUEST,
  FCGI_BEGIN_REQUEST,
  FCGI_DATA,
  FCGI_END_REQUEST,
  FCGI_GET_VALUES,
  FCGI_KEEP_CONN,
  FCGI_PARAMS,
  FCGI_RESPONDER,
  FCGI_STDERR,
  FCGI_STDIN,
  FCGI_STDOUT,
  FCGI_UNKNOWN_TYPE,
  type FcgiRecord,
  ProtocolError,
  paddingFor,
  paramsFromPairs,
  parseBeginRequestBody,
  parseEndRequestBody,
  parseUnknownTypeBody,
} from '../../src/protocol/index.js';

function decodeAll(
  bytes: Buffer,
  chunkSizes: number[] = [bytes.length],
  maxRecordLength?: number,
): FcgiRecord[] {
  const records: FcgiRecord[] = [];
  const decoder = createDecoder(
    (r) => records.push({ ...r, content: Buffer.from(r.content) }),
    maxRecordLength === undefined ? {} : { maxRecordLength },
  );
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const size = Math.max(1, chunkSizes[i++ % chunkSizes.length]!);
    decoder.push(bytes.subarray(at, at + size));
    at += size;
  }
  decoder.end();
  return records;
}

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return 'no error';
}

const STREAM_TYPES = [FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR, FCGI_DATA];
const streamRecord = fc.record({
  type: fc.constantFrom(...STREAM_TYPES),
  requestId: fc.integer({ min: 1, max: 0xffff }),
  content: fc.uint8Array({ maxLength: 300 }),
});

describe('record encoder and decoder', () => {
  it('round-trips any stream record under any chunking, 1 byte at a time included', () => {
    fc.assert(
      fc.property(
        fc.array(streamRecord, { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }),
        (records, chunks) => {
          const bytes = Buffer.concat(records.map((r) => encodeRecord(r.type, r.requestId, r.content)));
          for (const sizes of [chunks, [1]]) {
            const decoded = decodeAll(bytes, sizes);
            expect(decoded.map((r) => [r.type, r.requestId, [...r.content]])).toEqual(
              records.map((r) => [r.type, r.requestId, [...r.content]]),
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pads every record to a multiple of 8 bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), (n) => {
        const record = encodeRecord(FCGI_STDOUT, 1, Buffer.alloc(n));
        expect(record.length % 8).toBe(0);
        expect(record[6]).toBe(paddingFor(n));
        expect(paddingFor(n)).toBe((8 - (n % 8)) % 8);
      }),
    );
  });

  it('splits content over 65535 bytes into several records without copying it', () => {
    const data = Buffer.alloc(200_000, 7);
    const list = encodeStream(FCGI_STDIN, 3, data);
    const views = list.filter((b) => b.buffer === data.buffer);
    expect(views.length).toBe(4);
    const decoded = decodeAll(Buffer.concat(list));
    expect(decoded.every((r) => r.content.length <= 0xffff)).toBe(true);
    expect(Buffer.concat(decoded.map((r) => r.content)).equals(data)).toBe(true);
    expect(encodeStream(FCGI_STDIN, 3, Buffer.alloc(0))).toEqual([]);
  });

  it('hands out views of the pushed chunk when a record arrives whole', () => {
    const bytes = encodeRecord(FCGI_STDIN, 1, Buffer.from('hello'));
    let content: Buffer | null = null;
    createDecoder((r) => {
      content = r.content;
    }).push(bytes);
    expect((content as unknown as Buffer).buffer).toBe(bytes.buffer);
  });

  it('encodes and parses the fixed bodies', () => {
    const [begin, end, unknown] = decodeAll(
      Buffer.concat([
        encodeBeginRequest(9, FCGI_RESPONDER, FCGI_KEEP_CONN),
        encodeEndRequest(9, 0xfffffffe, 3),
        encodeUnknownType(77),
      ]),
    );
    expect(parseBeginRequestBody(begin!.content)).toEqual({ role: FCGI_RESPONDER, flags: FCGI_KEEP_CONN });
    expect(parseEndRequestBody(end!.content)).toEqual({ appStatus: 0xfffffffe, protocolStatus: 3 });
    expect(parseUnknownTypeBody(unknown!.content)).toBe(77);
  });

  it('writes a text record as the bytes of its encoding, padded, the same as from a buffer', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 3000, unit: 'binary' }),
        fc.constantFrom<BufferEncoding>('utf8', 'latin1', 'utf16le'),
        (text, encoding) => {
          const record = encodeTextRecord(FCGI_STDOUT, 7, text, encoding);
          expect(record.equals(encodeRecord(FCGI_STDOUT, 7, Buffer.from(text, encoding)))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    expect(() => encodeTextRecord(FCGI_STDOUT, 1, 'x'.repeat(70_000))).toThrow(RangeError);
  });

  it('ends a response with the empty STDOUT record and END_REQUEST in one buffer', () => {
    const end = encodeResponseEnd(513, 0xfffffffe, 2);
    expect(
      end.equals(Buffer.concat([encodeRecord(FCGI_STDOUT, 513), encodeEndRequest(513, 0xfffffffe, 2)])),
    ).toBe(true);
  });
});

describe('name-value pairs', () => {
  const pair = fc.tuple(fc.string({ minLength: 1, maxLength: 200 }), fc.string({ maxLength: 400 }));

  it('round-trip with 1- and 4-byte lengths, split over records at any point', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(pair, { selector: ([n]) => n, maxLength: 20 }),
        fc.integer({ min: 1, max: 50 }),
        (pairs, split) => {
          const content = encodeNameValuePairs(pairs);
          const decoder = createParamsDecoder();
          for (let at = 0; at < content.length; at += split) decoder.push(content.subarray(at, at + split));
          const out = decoder.end();
          // Decoded as latin1 bytes: compare the bytes each side means. Entries, not objects:
          // a pair named __proto__ must come back as a plain pair.
          const bytes = (t: string) =>
            Buffer.from(t, [...t].some((c) => c.charCodeAt(0) > 0xff) ? 'utf8' : 'latin1').toString('latin1');
          const expected = pairs.map(([n, v]) => [bytes(n), bytes(v)]).sort();
          expect(Object.entries(out).sort()).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the pairs in the order sent, and an object where a repeated name keeps its last value', () => {
    const content = encodeNameValuePairs([
      ['B', '1'],
      ['A', '2'],
      ['B', '3'],
      ['__proto__', 'x'],
    ]);
    const decoder = createParamsDecoder();
    decoder.push(content);
    expect(decoder.endPairs()).toEqual(['B', '1', 'A', '2', 'B', '3', '__proto__', 'x']);
    const params = paramsFromPairs(decoder.endPairs());
    expect(Object.entries(params)).toEqual([
      ['B', '3'],
      ['A', '2'],
      ['__proto__', 'x'],
    ]);
    expect(Object.getPrototypeOf(params)).toBe(null);
  });

  it('uses a 4-byte length above 127 bytes', () => {
    const content = encodeNameValuePairs([['N', 'v'.repeat(128)]]);
    expect(content[0]).toBe(1);
    expect(content[1]).toBe(0x80);
    expect(content.readUInt32BE(1) & 0x7fffffff).toBe(128);
  });

  it('decodes a PARAMS stream whose pairs straddle records', () => {
    const params = { SCRIPT_FILENAME: '/srv/index.php', LONG: 'x'.repeat(70_000), QUERY_STRING: 'a=1' };
    const records = decodeAll(Buffer.concat(encodeParams(5, params)), [1000]);
    expect(records.length).toBeGreaterThan(2);
    const decoder = createParamsDecoder();
    for (const r of records) if (r.content.length > 0) decoder.push(r.content);
    expect({ ...decoder.end() }).toEqual(params);
  });
});

describe('strictness: malformed input gives a typed ProtocolError, never anything else', () => {
  const valid = encodeRecord(FCGI_STDIN, 1, Buffer.from('abc'));
  const corpus: [string, () => unknown, string][] = [
    ['bad version', () => decodeAll(Buffer.from([2, 5, 0, 1, 0, 0, 0, 0])), 'BAD_VERSION'],
    ['version 0', () => decodeAll(Buffer.from([0, 1, 0, 1, 0, 8, 0, 0])), 'BAD_VERSION'],
    ['truncated header', () => decodeAll(valid.subarray(0, 5)), 'TRUNCATED'],
    ['truncated body', () => decodeAll(valid.subarray(0, 10)), 'TRUNCATED'],
    ['truncated padding', () => decodeAll(valid.subarray(0, valid.length - 1)), 'TRUNCATED'],
    [
      'record over the limit',
      () => decodeAll(encodeRecord(FCGI_STDIN, 1, Buffer.alloc(5000)), undefined, 4096),
      'RECORD_TOO_LARGE',
    ],
    [
      'BEGIN_REQUEST of 7 bytes',
      () => decodeAll(Buffer.from([1, 1, 0, 1, 0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])),
      'BAD_BODY_LENGTH',
    ],
    ['BEGIN_REQUEST of 0 bytes', () => decodeAll(Buffer.from([1, 1, 0, 1, 0, 0, 0, 0])), 'BAD_BODY_LENGTH'],
    [
      'END_REQUEST of 9 bytes',
      () => decodeAll(encodeRecord(FCGI_END_REQUEST, 1, Buffer.alloc(9))),
      'BAD_BODY_LENGTH',
    ],
    ['UNKNOWN_TYPE of 0 bytes', () => decodeAll(encodeRecord(FCGI_UNKNOWN_TYPE, 0)), 'BAD_BODY_LENGTH'],
    [
      'ABORT_REQUEST with a body',
      () => decodeAll(encodeRecord(FCGI_ABORT_REQUEST, 1, Buffer.alloc(1))),
      'BAD_BODY_LENGTH',
    ],
    ['name length past the data', () => decodeNameValuePairs(Buffer.from([10, 1, 65])), 'NAME_VALUE_OVERRUN'],
    [
      'value length past the data',
      () => decodeNameValuePairs(Buffer.from([1, 20, 65, 66])),
      'NAME_VALUE_OVERRUN',
    ],
    ['4-byte length cut short', () => decodeNameValuePairs(Buffer.from([0x80, 0, 0])), 'NAME_VALUE_OVERRUN'],
    [
      'value of 2^31-1 bytes',
      () => decodeNameValuePairs(Buffer.from([1, 0xff, 0xff, 0xff, 0xff, 65])),
      'BAD_NAME_VALUE_LENGTH',
    ],
    [
      'name of 100 MB',
      () => decodeNameValuePairs(Buffer.from([0x85, 0xf5, 0xe1, 0x00, 1, 65])),
      'BAD_NAME_VALUE_LENGTH',
    ],
    [
      'params over the total limit',
      () => {
        const d = createParamsDecoder({ maxLength: 100 });
        d.push(encodeNameValuePairs([['A', 'x'.repeat(60)]]));
        d.push(encodeNameValuePairs([['B', 'x'.repeat(60)]]));
      },
      'PARAMS_TOO_LARGE',
    ],
  ];
  for (const [name, fn, code] of corpus) {
    it(name, () => expect(errorCode(fn)).toBe(code));
  }

  it('passes an unknown record type through, for an UNKNOWN_TYPE reply', () => {
    const records = decodeAll(
      Buffer.concat([encodeRecord(42, 0, Buffer.from('x')), encodeRecord(0, 0), valid]),
    );
    expect(records.map((r) => r.type)).toEqual([42, 0, FCGI_STDIN]);
  });

  it('accepts zero-length everything', () => {
    const records = decodeAll(
      Buffer.concat(
        [FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_GET_VALUES].map((t) =>
          encodeRecord(t, t === FCGI_GET_VALUES ? 0 : 1),
        ),
      ),
    );
    expect(records.map((r) => r.content.length)).toEqual([0, 0, 0, 0]);
    expect({ ...decodeNameValuePairs(Buffer.alloc(0)) }).toEqual({});
    expect({ ...decodeNameValuePairs(Buffer.from([1, 0, 65])) }).toEqual({ A: '' });
  });

  it('stays failed after an error instead of resynchronising on garbage', () => {
    const decoder = createDecoder(() => {});
    expect(errorCode(() => decoder.push(Buffer.from([9, 9, 9, 9, 9, 9, 9, 9])))).toBe('BAD_VERSION');
    expect(errorCode(() => decoder.push(valid))).toBe('BAD_VERSION');
  });

  it('survives 100,000 random and mutated byte strings with nothing but ProtocolError', () => {
    const seed = Buffer.concat([
      encodeBeginRequest(1, FCGI_RESPONDER, FCGI_KEEP_CONN),
      ...encodeParams(1, { SCRIPT_FILENAME: '/x', REQUEST_METHOD: 'POST', HTTP_HOST: 'h'.repeat(200) }),
      encodeRecord(FCGI_STDIN, 1, Buffer.from('body')),
      encodeRecord(FCGI_STDIN, 1),
    ]);
    let state = 12345;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) >>> 0;
      return state % n;
    };
    let errors = 0;
    for (let i = 0; i < 100_000; i++) {
      let bytes: Buffer;
      if (i % 2 === 0) {
        bytes = Buffer.alloc(rand(64));
        for (let j = 0; j < bytes.length; j++) bytes[j] = rand(256);
        if (bytes.length > 0 && rand(2) === 0) bytes[0] = 1; // mostly past the version check
      } else {
        bytes = Buffer.from(seed);
        for (let k = rand(4) + 1; k > 0; k--) bytes[rand(bytes.length)] = rand(256);
        if (rand(4) === 0) bytes = bytes.subarray(0, rand(bytes.length));
      }
      try {
        const params = createParamsDecoder({ maxLength: 4096 });
        const decoder = createDecoder(
          (r) => {
            if (r.type === FCGI_PARAMS) {
              if (r.content.length > 0) params.push(r.content);
              else params.end();
            }
          },
          { maxRecordLength: 8192 },
        );
        const cut = rand(bytes.length + 1);
        decoder.push(bytes.subarray(0, cut));
        decoder.push(bytes.subarray(cut));
        decoder.end();
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(10_000);
  });
});

describe('differential: the same records as fastcgi-stream on valid input', () => {
  // fastcgi-stream (the usual Node parser, kept only as an oracle) throws a TypeError on
  // unknown types and pads records wrongly on output, so it only reads here, and only
  // inputs it handles: known types, ASCII pairs that each fit in one record.
  const require = createRequire(import.meta.url);
  const { FastCGIStream } = require('fastcgi-stream') as {
    FastCGIStream: new (s: EventEmitter) => EventEmitter;
  };

  const ascii = fc.stringMatching(/^[A-Za-z0-9_./=-]{1,40}$/);
  const record = fc.oneof(
    fc.record({
      kind: fc.constant('begin' as const),
      id: fc.integer({ min: 1, max: 0xffff }),
      role: fc.constantFrom(1, 2, 3),
      flags: fc.constantFrom(0, 1),
    }),
    fc.record({
      kind: fc.constant('params' as const),
      id: fc.integer({ min: 1, max: 0xffff }),
      pairs: fc.uniqueArray(fc.tuple(ascii, ascii), { selector: ([n]) => n, maxLength: 8 }),
    }),
    fc.record({
      kind: fc.constant('stdin' as const),
      id: fc.integer({ min: 1, max: 0xffff }),
      data: fc.uint8Array({ minLength: 1, maxLength: 200 }),
    }),
    fc.record({
      kind: fc.constant('end' as const),
      id: fc.integer({ min: 1, max: 0xffff }),
      app: fc.integer({ min: 0, max: 1000 }),
      status: fc.constantFrom(0, 1, 2, 3),
    }),
  );

  it('decodes every record alike', () => {
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 64 }),
        (list, chunk) => {
          const bytes = Buffer.concat(
            list.map((r) =>
              r.kind === 'begin'
                ? encodeBeginRequest(r.id, r.role, r.flags)
                : r.kind === 'params'
                  ? encodeRecord(FCGI_PARAMS, r.id, encodeNameValuePairs(r.pairs))
                  : r.kind === 'stdin'
                    ? encodeRecord(FCGI_STDIN, r.id, r.data)
                    : encodeEndRequest(r.id, r.app, r.status),
            ),
          );
          const ours = decodeAll(bytes, [chunk]).map((r) => {
            if (r.type === FCGI_BEGIN_REQUEST)
              return [r.requestId, 'begin', parseBeginRequestBody(r.content)];
            if (r.type === FCGI_END_REQUEST) return [r.requestId, 'end', parseEndRequestBody(r.content)];
            if (r.type === FCGI_PARAMS)
              return [r.requestId, 'params', Object.entries(decodeNameValuePairs(r.content)).sort()];
            return [r.requestId, 'stdin', [...r.content]];
          });
          const source = new EventEmitter();
          const theirs: unknown[] = [];
          new FastCGIStream(source).on(
            'record',
            (id: number, rec: Record<string, unknown> & { TYPE: number }) => {
              if (rec.TYPE === FCGI_BEGIN_REQUEST)
                theirs.push([id, 'begin', { role: rec.role, flags: rec.flags }]);
              else if (rec.TYPE === FCGI_END_REQUEST)
                theirs.push([id, 'end', { appStatus: rec.appStatus, protocolStatus: rec.protocolStatus }]);
              else if (rec.TYPE === FCGI_PARAMS)
                theirs.push([id, 'params', [...(rec.params as [string, string][])].sort()]);
              else theirs.push([id, 'stdin', [...(rec.data as Buffer)]]);
            },
          );
          for (let at = 0; at < bytes.length; at += chunk)
            source.emit('data', bytes.subarray(at, at + chunk));
          expect(ours).toEqual(theirs);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('fragments mode', () => {
  it('delivers straddling stream records as non-empty views, and fixed records whole', () => {
    fc.assert(
      fc.property(
        fc.array(streamRecord, { maxLength: 8 }),
        fc.integer({ min: 1, max: 50 }),
        (records, chunk) => {
          const bytes = Buffer.concat([
            ...records.map((r) => encodeRecord(r.type, r.requestId, r.content)),
            encodeBeginRequest(1, FCGI_RESPONDER, 0),
          ]);
          const pieces: FcgiRecord[] = [];
          const decoder = createDecoder((r) => pieces.push(r), { fragments: true });
          for (let at = 0; at < bytes.length; at += chunk) decoder.push(bytes.subarray(at, at + chunk));
          decoder.end();
          const begin = pieces.pop()!;
          expect(begin.type).toBe(FCGI_BEGIN_REQUEST);
          expect(begin.content.length).toBe(8);
          // Joining the pieces of each record gives the records back.
          const joined: [number, number, number[]][] = [];
          for (const r of records) joined.push([r.type, r.requestId, []]);
          let k = -1;
          let left = 0;
          for (const piece of pieces) {
            if (left === 0) {
              k++;
              left = records[k]!.content.length;
              if (left === 0) {
                expect(piece.content.length).toBe(0);
                continue;
              }
            }
            expect(piece.content.length).toBeGreaterThan(0);
            expect([piece.type, piece.requestId]).toEqual([records[k]!.type, records[k]!.requestId]);
            joined[k]![2].push(...piece.content);
            left -= piece.content.length;
          }
          expect(joined).toEqual(records.map((r) => [r.type, r.requestId, [...r.content]]));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('record reader', () => {
  it('hands out each record where it lies: in the pushed chunk when whole, else in a buffer of its own', () => {
    const params = encodeRecord(FCGI_PARAMS, 1, Buffer.from('abc'));
    const bytes = Buffer.concat([encodeBeginRequest(1, FCGI_RESPONDER, FCGI_KEEP_CONN), params]);
    const seen: [number, number, boolean, string][] = [];
    const reader = createRecordReader((type, requestId, buf, start, end) =>
      seen.push([type, requestId, buf === bytes, buf.subarray(start, end).toString('hex')]),
    );
    reader.push(bytes);
    // The same PARAMS record split over two pushes: assembled, not a view of either.
    reader.push(params.subarray(0, 10));
    reader.push(params.subarray(10));
    reader.end();
    expect(seen).toEqual([
      [FCGI_BEGIN_REQUEST, 1, true, '0001010000000000'],
      [FCGI_PARAMS, 1, true, Buffer.from('abc').toString('hex')],
      [FCGI_PARAMS, 1, false, Buffer.from('abc').toString('hex')],
    ]);
  });

  it('gives the same records as the decoder for any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(streamRecord, { maxLength: 8 }),
        fc.integer({ min: 1, max: 50 }),
        (records, chunk) => {
          const bytes = Buffer.concat(records.map((r) => encodeRecord(r.type, r.requestId, r.content)));
          const fromReader: [number, number, string][] = [];
          const reader = createRecordReader((type, requestId, buf, start, end) =>
            fromReader.push([type, requestId, buf.subarray(start, end).toString('hex')]),
          );
          for (let at = 0; at < bytes.length; at += chunk) reader.push(bytes.subarray(at, at + chunk));
          reader.end();
          expect(fromReader).toEqual(
            decodeAll(bytes, [chunk]).map((r) => [r.type, r.requestId, r.content.toString('hex')]),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
