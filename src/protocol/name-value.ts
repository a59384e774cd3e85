import { ProtocolError } from './errors.js';

/**
 * FastCGI name-value pairs (spec section 3.4). Names and values are byte strings: they are
 * decoded as latin1, which maps each byte to one char and back without loss, as node:http does
 * for header values. Encoding writes a string as latin1 when every char fits in a byte, else as
 * UTF-8, so text given in JavaScript reaches the peer as the bytes it expects.
 */
export type Params = Record<string, string>;

/** Default limit on the total size of one PARAMS (or GET_VALUES) stream. */
export const DEFAULT_MAX_PARAMS_LENGTH = 1024 * 1024;

export interface ParamsDecoderOptions {
  /** Bytes one stream of pairs may total; more is a PARAMS_TOO_LARGE error. Default 1 MiB. */
  readonly maxLength?: number;
}

/** Pairs in the order they came, flat as node:http's rawHeaders: [name, value, name, value, …]. */
export type ParamPairs = string[];

export interface ParamsDecoder {
  /** Content of one PARAMS record; a pair may continue in the next. */
  push(content: Uint8Array): void;
  /** The empty record that ends the stream arrived: returns the pairs, or throws NAME_VALUE_OVERRUN. */
  end(): Params;
  /**
   * The same end, the pairs as a flat list. Cheaper than end() when the caller reads them once:
   * building an object of ~20 properties costs more than decoding them.
   */
  endPairs(): ParamPairs;
}

/** An object of pairs; a name given twice keeps its last value. */
export function paramsFromPairs(pairs: readonly string[]): Params {
  const params = Object.create(null) as Params;
  for (let i = 0; i < pairs.length; i += 2) params[pairs[i]!] = pairs[i + 1]!;
  return params;
}

// Node's Buffer has these one-encoding fast paths at run time; @types/node does not declare them.
interface FastBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, at: number): number;
  utf8Write(s: string, at: number): number;
}

// The pairs are read from one latin1 string of the record's bytes (char code = byte): one call
// into C++ per record instead of two per pair, and substrings for the names and values. That is
// what makes decoding nginx's ~20 params cost about a quarter of what slicing each one does.

// A length of 1 byte (top bit clear) or 4 bytes (top bit set, 31 bits); the caller checked the bytes are there.
function readLength(s: string, at: number): number {
  const b0 = s.charCodeAt(at);
  if (b0 < 0x80) return b0;
  return (
    (b0 & 0x7f) * 0x1000000 +
    (s.charCodeAt(at + 1) << 16) +
    (s.charCodeAt(at + 2) << 8) +
    s.charCodeAt(at + 3)
  );
}

function lengthSize(b0: number): number {
  return b0 < 0x80 ? 1 : 4;
}

/**
 * Parses every complete pair in s (the bytes as latin1) into out. Returns the offset of the
 * first char not consumed, and in `need` the total bytes the next (incomplete) pair needs from
 * that offset.
 */
function parsePairs(s: string, out: ParamPairs, limit: number, need: { n: number }): number {
  const end = s.length;
  let pos = 0;
  while (pos < end) {
    const nameSize = lengthSize(s.charCodeAt(pos));
    if (end - pos < nameSize + 1) {
      need.n = end - pos + 1;
      return pos;
    }
    const nameLength = readLength(s, pos);
    const valueAt = pos + nameSize;
    const valueSize = lengthSize(s.charCodeAt(valueAt));
    if (end - valueAt < valueSize) {
      need.n = end - pos + 1;
      return pos;
    }
    const valueLength = readLength(s, valueAt);
    const pairLength = nameSize + valueSize + nameLength + valueLength;
    if (nameLength > limit || valueLength > limit || pairLength > limit) {
      throw new ProtocolError(
        'BAD_NAME_VALUE_LENGTH',
        `name-value pair declares ${nameLength}+${valueLength} bytes, over the limit of ${limit}`,
      );
    }
    if (end - pos < pairLength) {
      need.n = pairLength;
      return pos;
    }
    const nameAt = valueAt + valueSize;
    const dataAt = nameAt + nameLength;
    out.push(s.substring(nameAt, dataAt), s.substring(dataAt, dataAt + valueLength));
    pos += pairLength;
  }
  need.n = 0;
  return pos;
}

/** A stream of name-value pairs split over any number of records (a class: one per request). */
class PairsDecoder implements ParamsDecoder {
  private readonly limit: number;
  private readonly pairs: ParamPairs = [];
  private readonly need = { n: 0 };
  private total = 0;
  // Bytes of a pair that began in an earlier record; joined once enough have arrived.
  private pending: Buffer[] = [];
  private pendingLength = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(input: Uint8Array): void {
    if (input.length === 0) return;
    this.total += input.length;
    if (this.total > this.limit) {
      throw new ProtocolError('PARAMS_TOO_LARGE', `params total over the limit of ${this.limit} bytes`);
    }
    const content = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let buf: Buffer;
    if (this.pendingLength === 0) {
      buf = content;
    } else {
      this.pending.push(content);
      this.pendingLength += content.length;
      if (this.pendingLength < this.need.n) return;
      buf = Buffer.concat(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
    }
    const stop = parsePairs(
      (buf as FastBuffer).latin1Slice(0, buf.length),
      this.pairs,
      this.limit,
      this.need,
    );
    if (stop < buf.length) {
      // Copy the tail: it must not pin the caller's (possibly large) chunk.
      const rest = Buffer.from(buf.subarray(stop));
      this.pending = [rest];
      this.pendingLength = rest.length;
    }
  }

  end(): Params {
    return paramsFromPairs(this.endPairs());
  }

  endPairs(): ParamPairs {
    if (this.pendingLength > 0) {
      throw new ProtocolError(
        'NAME_VALUE_OVERRUN',
        `params stream ended inside a name-value pair (${this.pendingLength} bytes of ${this.need.n})`,
      );
    }
    return this.pairs;
  }
}

/** Decodes a stream of name-value pairs split over any number of records. */
export function createParamsDecoder(options: ParamsDecoderOptions = {}): ParamsDecoder {
  return new PairsDecoder(options.maxLength ?? DEFAULT_MAX_PARAMS_LENGTH);
}

/** Decodes the pairs in one buffer (a GET_VALUES or GET_VALUES_RESULT body). */
export function decodeNameValuePairs(content: Uint8Array, maxLength = DEFAULT_MAX_PARAMS_LENGTH): Params {
  const decoder = createParamsDecoder({ maxLength });
  decoder.push(content);
  return decoder.end();
}

export type PairsInput = Iterable<readonly [string, string]> | Readonly<Record<string, string>>;

function entries(pairs: PairsInput): Iterable<readonly [string, string]> {
  return Symbol.iterator in pairs ? (pairs as Iterable<readonly [string, string]>) : Object.entries(pairs);
}

// One byte per char when every char is latin1; else UTF-8.
function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

function byteLength(s: string): number {
  return isLatin1(s) ? s.length : Buffer.byteLength(s, 'utf8');
}

function writeString(buf: FastBuffer, s: string, at: number): number {
  return isLatin1(s) ? buf.latin1Write(s, at) : buf.utf8Write(s, at);
}

function writeLength(buf: Buffer, n: number, at: number): number {
  if (n < 0x80) {
    buf[at] = n;
    return at + 1;
  }
  buf.writeUInt32BE((n | 0x80000000) >>> 0, at);
  return at + 4;
}

const MAX_PAIR_PART = 0x7fffffff;

/** Encodes pairs into one buffer (record content, no header), sized exactly before writing. */
export function encodeNameValuePairs(pairs: PairsInput): Buffer {
  const list: [string, string, number, number][] = [];
  let size = 0;
  for (const [name, value] of entries(pairs)) {
    const n = byteLength(name);
    const v = byteLength(value);
    if (n > MAX_PAIR_PART || v > MAX_PAIR_PART) throw new RangeError(`name-value pair ${name} is too long`);
    size += (n < 0x80 ? 1 : 4) + (v < 0x80 ? 1 : 4) + n + v;
    list.push([name, value, n, v]);
  }
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [name, value, n, v] of list) {
    at = writeLength(buf, n, at);
    at = writeLength(buf, v, at);
    at += writeString(buf as FastBuffer, name, at);
    at += writeString(buf as FastBuffer, value, at);
  }
  return buf;
}
