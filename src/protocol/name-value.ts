import { ProtocolError } from './errors.js';
import type { FastBuffer } from './fast-buffer.js';

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
  /** Content of one PARAMS record (bytes start..end of it); a pair may continue in the next. */
  push(content: Uint8Array, start?: number, end?: number): void;
  /** The empty record that ends the stream arrived: returns the pairs, or throws NAME_VALUE_OVERRUN. */
  end(): Params;
  /** The same end, the pairs as a flat list in the order sent. */
  endPairs(): ParamPairs;
  /**
   * The same end for a reader that wants only some pairs: the stream's bytes as latin1 text,
   * checked, with where each pair lies in it put in `spans`. Nothing is cut out of the text:
   * for nginx's ~20 params, making a string of every name and value costs more than the rest
   * of decoding them.
   */
  endText(spans: PairSpans): string;
}

/**
 * Where each pair of a stream's text lies: for pair i, at[3i] is where its name starts,
 * at[3i+1] where its value starts (the name's end) and at[3i+2] where the value ends. One
 * holder serves stream after stream; it grows as needed.
 */
export interface PairSpans {
  count: number;
  at: Int32Array;
}

export function createPairSpans(): PairSpans {
  return { count: 0, at: new Int32Array(3 * 32) };
}

/** An object of pairs; a name given twice keeps its last value. */
export function paramsFromPairs(pairs: readonly string[]): Params {
  const params = Object.create(null) as Params;
  for (let i = 0; i < pairs.length; i += 2) params[pairs[i]!] = pairs[i + 1]!;
  return params;
}

/**
 * The pairs of a stream's text as a flat list [name, value, …]: scanPairs, then every name
 * and value cut out. `spans` is only used meanwhile.
 */
export function pairsFromText(text: string, limit: number, spans: PairSpans = createPairSpans()): ParamPairs {
  scanPairs(text, limit, spans);
  const pairs: ParamPairs = new Array(spans.count * 2);
  const at = spans.at;
  for (let i = 0; i < spans.count; i++) {
    pairs[2 * i] = text.substring(at[3 * i]!, at[3 * i + 1]!);
    pairs[2 * i + 1] = text.substring(at[3 * i + 1]!, at[3 * i + 2]!);
  }
  return pairs;
}

// A stream is read as one latin1 string of its bytes (char code = byte): one call into C++ per
// record instead of two per pair, and the pairs are found in it by offset.

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

function overrun(text: string, pos: number, need: number): ProtocolError {
  return new ProtocolError(
    'NAME_VALUE_OVERRUN',
    `params stream ended inside a name-value pair (${text.length - pos} bytes of ${need})`,
  );
}

/**
 * Finds every pair of a whole stream's text (its bytes as latin1) and puts where each lies in
 * `spans`. Throws BAD_NAME_VALUE_LENGTH for a pair over `limit`, NAME_VALUE_OVERRUN when the
 * text ends inside a pair.
 */
export function scanPairs(text: string, limit: number, spans: PairSpans): void {
  const end = text.length;
  let at = spans.at;
  let count = 0;
  let pos = 0;
  while (pos < end) {
    const nameSize = lengthSize(text.charCodeAt(pos));
    if (end - pos < nameSize + 1) throw overrun(text, pos, end - pos + 1);
    const nameLength = readLength(text, pos);
    const valueAt = pos + nameSize;
    const valueSize = lengthSize(text.charCodeAt(valueAt));
    if (end - valueAt < valueSize) throw overrun(text, pos, end - pos + 1);
    const valueLength = readLength(text, valueAt);
    const pairLength = nameSize + valueSize + nameLength + valueLength;
    if (nameLength > limit || valueLength > limit || pairLength > limit) {
      throw new ProtocolError(
        'BAD_NAME_VALUE_LENGTH',
        `name-value pair declares ${nameLength}+${valueLength} bytes, over the limit of ${limit}`,
      );
    }
    if (end - pos < pairLength) throw overrun(text, pos, pairLength);
    if (3 * count + 3 > at.length) {
      const grown = new Int32Array(at.length * 2);
      grown.set(at);
      at = grown;
      spans.at = grown;
    }
    const nameAt = valueAt + valueSize;
    at[3 * count] = nameAt;
    at[3 * count + 1] = nameAt + nameLength;
    at[3 * count + 2] = nameAt + nameLength + valueLength;
    count++;
    pos += pairLength;
  }
  spans.count = count;
}

/** The last value of `name` among the pairs scanPairs found in `text`; undefined when not there. */
export function lastValue(text: string, spans: PairSpans, name: string): string | undefined {
  const at = spans.at;
  for (let i = 3 * (spans.count - 1); i >= 0; i -= 3) {
    if (at[i + 1]! - at[i]! === name.length && text.startsWith(name, at[i]!))
      return text.substring(at[i + 1]!, at[i + 2]!);
  }
  return undefined;
}

/** A stream of name-value pairs split over any number of records (a class: one per request). */
class PairsDecoder implements ParamsDecoder {
  private readonly limit: number;
  private total = 0;
  private text = '';
  /**
   * From the second record on, the stream gathers here: a string per record joined to the rest
   * would cost a string object each, many times the bytes of a peer's one-byte records.
   */
  private bytes: Buffer | null = null;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(input: Uint8Array, start = 0, end = input.length): void {
    if (end <= start) return;
    const had = this.total;
    this.total += end - start;
    if (this.total > this.limit) {
      throw new ProtocolError('PARAMS_TOO_LARGE', `params total over the limit of ${this.limit} bytes`);
    }
    const content = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (had === 0) {
      // Most fronts send a stream in one record. A pair may straddle records: the stream is read
      // whole, at its end. The text is a copy, so it pins no chunk of the connection.
      this.text = (content as FastBuffer).latin1Slice(start, end);
      return;
    }
    let bytes = this.bytes;
    if (!bytes || bytes.length < this.total) {
      const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(2 * this.total, 1024)));
      if (bytes) bytes.copy(grown, 0, 0, had);
      else (grown as FastBuffer).latin1Write(this.text, 0);
      this.text = '';
      bytes = grown;
      this.bytes = grown;
    }
    content.copy(bytes, had, start, end);
  }

  private whole(): string {
    if (this.bytes) {
      this.text = (this.bytes as FastBuffer).latin1Slice(0, this.total);
      this.bytes = null;
    }
    return this.text;
  }

  end(): Params {
    return paramsFromPairs(this.endPairs());
  }

  endPairs(): ParamPairs {
    return pairsFromText(this.whole(), this.limit);
  }

  endText(spans: PairSpans): string {
    const text = this.whole();
    scanPairs(text, this.limit, spans);
    return text;
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
