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

export interface ParamsDecoder {
  /** Content of one PARAMS record; a pair may continue in the next. */
  push(content: Uint8Array): void;
  /** The empty record that ends the stream arrived: returns the pairs, or throws NAME_VALUE_OVERRUN. */
  end(): Params;
}

// Node's Buffer has these one-encoding fast paths at run time; @types/node does not declare them.
interface FastBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, at: number): number;
  utf8Write(s: string, at: number): number;
}

// A length of 1 byte (top bit clear) or 4 bytes (top bit set, 31 bits); the caller checked the bytes are there.
function readLength(buf: Uint8Array, at: number): number {
  const b0 = buf[at]!;
  if (b0 < 0x80) return b0;
  return (b0 & 0x7f) * 0x1000000 + (buf[at + 1]! << 16) + (buf[at + 2]! << 8) + buf[at + 3]!;
}

function lengthSize(b0: number): number {
  return b0 < 0x80 ? 1 : 4;
}

/**
 * Parses every complete pair in buf[start, end) into out. Returns the offset of the first byte
 * not consumed, and in `need` the total bytes the next (incomplete) pair needs from that offset.
 */
function parsePairs(
  buf: FastBuffer,
  start: number,
  end: number,
  out: Params,
  limit: number,
  need: { n: number },
): number {
  let pos = start;
  while (pos < end) {
    const nameSize = lengthSize(buf[pos]!);
    if (end - pos < nameSize + 1) {
      need.n = end - pos + 1;
      return pos;
    }
    const nameLength = readLength(buf, pos);
    const valueAt = pos + nameSize;
    const valueSize = lengthSize(buf[valueAt]!);
    if (end - valueAt < valueSize) {
      need.n = end - pos + 1;
      return pos;
    }
    const valueLength = readLength(buf, valueAt);
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
    out[buf.latin1Slice(nameAt, dataAt)] = buf.latin1Slice(dataAt, dataAt + valueLength);
    pos += pairLength;
  }
  need.n = 0;
  return pos;
}

function newParams(): Params {
  return Object.create(null) as Params;
}

/** A stream of name-value pairs split over any number of records (a class: one per request). */
class PairsDecoder implements ParamsDecoder {
  private readonly limit: number;
  private readonly params: Params = newParams();
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
    const stop = parsePairs(buf as FastBuffer, 0, buf.length, this.params, this.limit, this.need);
    if (stop < buf.length) {
      // Copy the tail: it must not pin the caller's (possibly large) chunk.
      const rest = Buffer.from(buf.subarray(stop));
      this.pending = [rest];
      this.pendingLength = rest.length;
    }
  }

  end(): Params {
    if (this.pendingLength > 0) {
      throw new ProtocolError(
        'NAME_VALUE_OVERRUN',
        `params stream ended inside a name-value pair (${this.pendingLength} bytes of ${this.need.n})`,
      );
    }
    return this.params;
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
