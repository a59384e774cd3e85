import {
  FCGI_ABORT_REQUEST,
  FCGI_BEGIN_REQUEST,
  FCGI_END_REQUEST,
  FCGI_GET_VALUES,
  FCGI_GET_VALUES_RESULT,
  FCGI_HEADER_LEN,
  FCGI_NULL_REQUEST_ID,
  FCGI_PARAMS,
  FCGI_STDOUT,
  FCGI_UNKNOWN_TYPE,
  FCGI_VERSION_1,
} from './constants.js';
import type { FastBuffer } from './fast-buffer.js';
import { encodeNameValuePairs, type PairsInput } from './name-value.js';

/**
 * Content per record when a stream is split: the largest multiple of 8 under 65535, so that
 * full records need no padding and their content goes out as views of the caller's buffer.
 */
export const MAX_RECORD_CONTENT = 65528;

const ZEROS = Buffer.alloc(8);

/** Padding that brings a record to a multiple of 8 bytes, as the spec recommends. */
export function paddingFor(contentLength: number): number {
  return (8 - (contentLength & 7)) & 7;
}

// At most 7 bytes: a loop costs less than Buffer#fill's argument checks, once per record.
function zeroPadding(buf: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) buf[i] = 0;
}

/** Writes a record header at `at`. */
export function writeHeader(
  target: Uint8Array,
  at: number,
  type: number,
  requestId: number,
  contentLength: number,
  paddingLength: number,
): void {
  target[at] = FCGI_VERSION_1;
  target[at + 1] = type;
  target[at + 2] = requestId >>> 8;
  target[at + 3] = requestId & 0xff;
  target[at + 4] = contentLength >>> 8;
  target[at + 5] = contentLength & 0xff;
  target[at + 6] = paddingLength;
  target[at + 7] = 0;
}

/**
 * One record, header + content + padding, in a single new buffer. For small records (control
 * records, short writes); large content goes through encodeStream, which does not copy it.
 */
export function encodeRecord(type: number, requestId: number, content?: Uint8Array): Buffer {
  const length = content ? content.length : 0;
  const buf = Buffer.allocUnsafe(FCGI_HEADER_LEN + length + paddingFor(length));
  writeRecord(buf, 0, type, requestId, content);
  return buf;
}

/** Writes one record into `target` at `at` (recordRoom bytes free there); returns how many it wrote. */
export function writeRecord(
  target: Buffer,
  at: number,
  type: number,
  requestId: number,
  content?: Uint8Array,
): number {
  const length = content ? content.length : 0;
  // Not past 65535: frameRecord refuses that, and the bytes must not be written first.
  if (content && length > 0 && length <= 0xffff) target.set(content, at + FCGI_HEADER_LEN);
  return frameRecord(target, at, type, requestId, length);
}

/** Bytes a record of `contentLength` bytes may take: header, content, at most 7 of padding. */
export function recordRoom(contentLength: number): number {
  return FCGI_HEADER_LEN + contentLength + 7;
}

/**
 * Around content already written at `at` + 8: the header before it and the padding after;
 * returns the record's whole length.
 */
function frameRecord(target: Buffer, at: number, type: number, requestId: number, length: number): number {
  if (length > 0xffff)
    throw new RangeError(`record content of ${length} bytes is over 65535; use encodeStream`);
  const padding = paddingFor(length);
  writeHeader(target, at, type, requestId, length, padding);
  const end = at + FCGI_HEADER_LEN + length + padding;
  zeroPadding(target, end - padding, end);
  return end - at;
}

/**
 * One record whose content is `text` in `encoding`, written straight into the record's buffer
 * (no intermediate Buffer.from). The text must encode to at most 65535 bytes.
 */
export function encodeTextRecord(
  type: number,
  requestId: number,
  text: string,
  encoding: BufferEncoding = 'utf8',
): Buffer {
  const buf = Buffer.allocUnsafe(textRecordRoom(text, encoding));
  return buf.subarray(0, writeTextRecord(buf, 0, type, requestId, text, encoding));
}

/** Bytes that writeTextRecord may need for `text`: exact for one-byte encodings, an upper bound for UTF-8. */
export function textRecordRoom(text: string, encoding: BufferEncoding = 'utf8'): number {
  const bytes = encoding === 'latin1' || encoding === 'ascii' || encoding === 'binary' ? text.length : -1;
  // A UTF-16 code unit is at most 3 bytes of UTF-8; other encodings are measured.
  const most =
    bytes >= 0
      ? bytes
      : encoding === 'utf8' || encoding === 'utf-8'
        ? text.length * 3
        : Buffer.byteLength(text, encoding);
  return recordRoom(most);
}

/**
 * Writes a text record into `target` at `at`, which has textRecordRoom(text) bytes free there;
 * returns how many it wrote. Writing first and measuring after spares UTF-8 text a second pass.
 */
export function writeTextRecord(
  target: Buffer,
  at: number,
  type: number,
  requestId: number,
  text: string,
  encoding: BufferEncoding = 'utf8',
): number {
  // The two encodings node:http writes in, straight to their fast paths (write() first works
  // out its arguments and the encoding's name on every call).
  const fast = target as FastBuffer;
  const length =
    encoding === 'utf8'
      ? fast.utf8Write(text, at + FCGI_HEADER_LEN)
      : encoding === 'latin1'
        ? fast.latin1Write(text, at + FCGI_HEADER_LEN)
        : target.write(text, at + FCGI_HEADER_LEN, encoding);
  return frameRecord(target, at, type, requestId, length);
}

/**
 * Data for a stream (STDIN, STDOUT, STDERR, DATA, PARAMS) as a writev-ready list: one header per
 * record, the content as views of `data` (no copy), padding where needed. Empty data gives no
 * records: the stream's end is written by encodeRecord(type, requestId) with no content.
 */
export function encodeStream(type: number, requestId: number, data: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  const length = data.length;
  if (length === 0) return out;
  const source = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const count = Math.ceil(length / MAX_RECORD_CONTENT);
  const headers = Buffer.allocUnsafe(count * FCGI_HEADER_LEN);
  for (let i = 0, at = 0; at < length; i++, at += MAX_RECORD_CONTENT) {
    const n = Math.min(MAX_RECORD_CONTENT, length - at);
    const padding = paddingFor(n);
    const header = headers.subarray(i * FCGI_HEADER_LEN, (i + 1) * FCGI_HEADER_LEN);
    writeHeader(header, 0, type, requestId, n, padding);
    out.push(header, source.subarray(at, at + n));
    if (padding > 0) out.push(ZEROS.subarray(0, padding));
  }
  return out;
}

export function encodeBeginRequest(requestId: number, role: number, flags: number): Buffer {
  const buf = Buffer.alloc(FCGI_HEADER_LEN + 8);
  writeHeader(buf, 0, FCGI_BEGIN_REQUEST, requestId, 8, 0);
  buf[8] = role >>> 8;
  buf[9] = role & 0xff;
  buf[10] = flags;
  return buf;
}

export function encodeAbortRequest(requestId: number): Buffer {
  return encodeRecord(FCGI_ABORT_REQUEST, requestId);
}

export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const buf = Buffer.alloc(FCGI_HEADER_LEN + 8);
  writeHeader(buf, 0, FCGI_END_REQUEST, requestId, 8, 0);
  buf.writeUInt32BE(appStatus >>> 0, 8);
  buf[12] = protocolStatus;
  return buf;
}

/** Bytes of a response's end: the empty STDOUT record and END_REQUEST. */
export const RESPONSE_END_LENGTH = FCGI_HEADER_LEN * 3;

/**
 * The end of a response: the empty record that closes the STDOUT stream and the END_REQUEST
 * after it, in one buffer (an application sends both for every request it completes).
 */
export function encodeResponseEnd(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const buf = Buffer.allocUnsafe(RESPONSE_END_LENGTH);
  writeResponseEnd(buf, 0, requestId, appStatus, protocolStatus);
  return buf;
}

/** Writes a response's end into `target` at `at` (RESPONSE_END_LENGTH bytes, every one set). */
export function writeResponseEnd(
  target: Buffer,
  at: number,
  requestId: number,
  appStatus: number,
  protocolStatus: number,
): void {
  writeHeader(target, at, FCGI_STDOUT, requestId, 0, 0);
  writeHeader(target, at + FCGI_HEADER_LEN, FCGI_END_REQUEST, requestId, 8, 0);
  const body = at + FCGI_HEADER_LEN * 2;
  target.writeUInt32BE(appStatus >>> 0, body);
  target[body + 4] = protocolStatus;
  target[body + 5] = 0;
  target[body + 6] = 0;
  target[body + 7] = 0;
}

export function encodeUnknownType(unknownType: number): Buffer {
  const buf = Buffer.alloc(FCGI_HEADER_LEN + 8);
  writeHeader(buf, 0, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, 8, 0);
  buf[8] = unknownType;
  return buf;
}

/** A PARAMS stream, terminator included: the pairs split over as many records as they need. */
export function encodeParams(requestId: number, pairs: PairsInput): Buffer[] {
  const out = encodeStream(FCGI_PARAMS, requestId, encodeNameValuePairs(pairs));
  out.push(encodeRecord(FCGI_PARAMS, requestId));
  return out;
}

/** A GET_VALUES query: the names with empty values. */
export function encodeGetValues(names: Iterable<string>): Buffer {
  const pairs: [string, string][] = [];
  for (const name of names) pairs.push([name, '']);
  return encodeRecord(FCGI_GET_VALUES, FCGI_NULL_REQUEST_ID, encodeNameValuePairs(pairs));
}

export function encodeGetValuesResult(values: PairsInput): Buffer {
  return encodeRecord(FCGI_GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, encodeNameValuePairs(values));
}
