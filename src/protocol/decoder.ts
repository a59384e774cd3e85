import {
  FCGI_ABORT_REQUEST,
  FCGI_BEGIN_REQUEST,
  FCGI_DATA,
  FCGI_END_REQUEST,
  FCGI_HEADER_LEN,
  FCGI_MAX_CONTENT_LENGTH,
  FCGI_PARAMS,
  FCGI_UNKNOWN_TYPE,
  FCGI_VERSION_1,
  recordTypeName,
} from './constants.js';
import { ProtocolError } from './errors.js';

/** One FastCGI record as it came off the wire, padding removed. */
export interface FcgiRecord {
  readonly type: number;
  readonly requestId: number;
  /**
   * The record's content. A view into the pushed chunk when the record arrived whole in one
   * chunk (zero-copy), otherwise one buffer the decoder assembled. The decoder never reuses it;
   * a view lasts as long as the caller leaves its chunk alone (copy it to keep it past the
   * callback when chunks come from a reused read buffer).
   */
  readonly content: Buffer;
}

/**
 * Takes each record's content where it lies: bytes start..end of buf, good only during the call
 * (a view of a pushed chunk, or a buffer the decoder assembled for a record that straddled
 * chunks). For a reader that takes a record apart at once, as the worker does: no view and no
 * record object is made for it.
 */
export type RecordSink = (type: number, requestId: number, buf: Buffer, start: number, end: number) => void;

export interface DecoderOptions {
  /** Largest contentLength accepted; a larger record is a RECORD_TOO_LARGE error. Default 65535 (all). */
  readonly maxRecordLength?: number;
  /**
   * Deliver the content of stream records (PARAMS, STDIN, STDOUT, STDERR, DATA) that straddle
   * chunks as several non-empty pieces, each a view of its chunk, instead of copying them into
   * one buffer. Readers of a stream never see record boundaries anyway; this makes a large
   * body cost no copy at all. An empty piece still only ever means the stream's end.
   */
  readonly fragments?: boolean;
}

export interface Decoder {
  /**
   * Feed bytes with any chunk boundaries; every record completed by them is passed to the
   * callback, in order, before push returns. Throws ProtocolError on invalid input, and again on
   * every later push: a stream that went wrong once cannot be resynchronised. `length`: only
   * the first that many bytes of chunk are new (a reused read buffer).
   */
  push(chunk: Uint8Array, length?: number): void;
  /** The stream ended: throws a TRUNCATED ProtocolError if it ended inside a record. */
  end(): void;
  /** Bytes held for a record not yet complete. */
  readonly buffered: number;
}

const EMPTY = Buffer.alloc(0);

// Where the decoder is inside the current record.
const HEADER = 0;
const BODY = 1;
const PADDING = 2;
/** Inside a stream record delivered in pieces. */
const FRAGMENT = 3;

function isStreamType(type: number): boolean {
  return type >= FCGI_PARAMS && type <= FCGI_DATA;
}

/** Fixed body lengths the spec gives some record types; a record that disagrees is malformed. */
function fixedBodyLength(type: number): number {
  switch (type) {
    case FCGI_BEGIN_REQUEST:
    case FCGI_END_REQUEST:
    case FCGI_UNKNOWN_TYPE:
      return 8;
    case FCGI_ABORT_REQUEST:
      return 0;
    default:
      return -1;
  }
}

/**
 * The decoder's state machine. A class rather than closures: a server makes one per
 * connection, and its methods should not be created again for each.
 */
class RecordDecoder implements Decoder {
  private readonly sink: RecordSink;
  private readonly maxRecordLength: number;
  private readonly fragments: boolean;
  private header: Buffer | null = null;
  private headerFill = 0;
  private state = HEADER;
  private type = 0;
  private requestId = 0;
  private contentLength = 0;
  private paddingLength = 0;
  private body: Buffer = EMPTY;
  private bodyFill = 0;
  private paddingLeft = 0;
  private failure: ProtocolError | null = null;

  constructor(sink: RecordSink, maxRecordLength: number, fragments: boolean) {
    this.sink = sink;
    this.maxRecordLength = maxRecordLength;
    this.fragments = fragments;
  }

  get buffered(): number {
    return this.headerFill + (this.state === BODY ? this.bodyFill : 0);
  }

  private fail(err: ProtocolError): never {
    this.failure = err;
    throw err;
  }

  // Reads and checks one header; leaves type/requestId/contentLength/paddingLength set.
  private readHeader(buf: Uint8Array, at: number): void {
    const version = buf[at]!;
    const type = buf[at + 1]!;
    const contentLength = (buf[at + 4]! << 8) | buf[at + 5]!;
    this.type = type;
    this.requestId = (buf[at + 2]! << 8) | buf[at + 3]!;
    this.contentLength = contentLength;
    this.paddingLength = buf[at + 6]!;
    if (version !== FCGI_VERSION_1) {
      this.fail(new ProtocolError('BAD_VERSION', `record version ${version}, expected ${FCGI_VERSION_1}`));
    }
    if (contentLength > this.maxRecordLength) {
      this.fail(
        new ProtocolError(
          'RECORD_TOO_LARGE',
          `${recordTypeName(type)} record of ${contentLength} bytes is over the limit of ${this.maxRecordLength}`,
        ),
      );
    }
    const fixed = fixedBodyLength(type);
    if (fixed >= 0 && contentLength !== fixed) {
      this.fail(
        new ProtocolError(
          'BAD_BODY_LENGTH',
          `${recordTypeName(type)} record has a ${contentLength}-byte body, expected ${fixed}`,
        ),
      );
    }
  }

  private emit(buf: Buffer, start: number, end: number): void {
    this.sink(this.type, this.requestId, buf, start, end);
  }

  push(input: Uint8Array, length = input.length): void {
    if (this.failure) throw this.failure;
    const chunk = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const end = Math.min(length, chunk.length);
    let pos = 0;
    while (pos < end) {
      if (this.state === HEADER) {
        if (this.headerFill === 0 && end - pos >= FCGI_HEADER_LEN) {
          this.readHeader(chunk, pos);
          pos += FCGI_HEADER_LEN;
        } else {
          // A header split across chunks: gather it.
          if (!this.header) this.header = Buffer.alloc(FCGI_HEADER_LEN);
          const header = this.header;
          const n = Math.min(FCGI_HEADER_LEN - this.headerFill, end - pos);
          chunk.copy(header, this.headerFill, pos, pos + n);
          this.headerFill += n;
          pos += n;
          if (this.headerFill < FCGI_HEADER_LEN) return;
          this.headerFill = 0;
          this.readHeader(header, 0);
        }
        const contentLength = this.contentLength;
        if (end - pos >= contentLength) {
          // Fast path: the whole body is in this chunk, handed out where it lies.
          const start = pos;
          pos += contentLength;
          const skip = Math.min(this.paddingLength, end - pos);
          pos += skip;
          this.paddingLeft = this.paddingLength - skip;
          this.state = this.paddingLeft > 0 ? PADDING : HEADER;
          this.emit(chunk, start, start + contentLength);
          continue;
        }
        if (this.fragments && isStreamType(this.type)) {
          this.bodyFill = 0;
          this.state = FRAGMENT;
          continue;
        }
        this.body = Buffer.allocUnsafe(contentLength);
        this.bodyFill = 0;
        this.state = BODY;
      }
      if (this.state === FRAGMENT) {
        const n = Math.min(this.contentLength - this.bodyFill, end - pos);
        const start = pos;
        this.bodyFill += n;
        pos += n;
        if (this.bodyFill === this.contentLength) {
          this.bodyFill = 0;
          this.paddingLeft = this.paddingLength;
          this.state = this.paddingLeft > 0 ? PADDING : HEADER;
        }
        this.emit(chunk, start, pos);
        continue;
      }
      if (this.state === BODY) {
        const n = Math.min(this.contentLength - this.bodyFill, end - pos);
        chunk.copy(this.body, this.bodyFill, pos, pos + n);
        this.bodyFill += n;
        pos += n;
        if (this.bodyFill < this.contentLength) return;
        const content = this.body;
        this.body = EMPTY;
        this.bodyFill = 0;
        this.paddingLeft = this.paddingLength;
        this.state = this.paddingLeft > 0 ? PADDING : HEADER;
        this.emit(content, 0, content.length);
        continue;
      }
      // PADDING
      const skip = Math.min(this.paddingLeft, end - pos);
      pos += skip;
      this.paddingLeft -= skip;
      if (this.paddingLeft === 0) this.state = HEADER;
    }
  }

  end(): void {
    if (this.failure) throw this.failure;
    if (this.state !== HEADER || this.headerFill > 0) {
      const where = this.state === HEADER ? 'header' : this.state === PADDING ? 'padding' : 'body';
      this.fail(new ProtocolError('TRUNCATED', `stream ended inside a record ${where}`));
    }
  }
}

/** A decoder that hands each record to `sink` where it lies, without making a record of it. */
export function createRecordReader(sink: RecordSink, options: DecoderOptions = {}): Decoder {
  return new RecordDecoder(
    sink,
    options.maxRecordLength ?? FCGI_MAX_CONTENT_LENGTH,
    options.fragments ?? false,
  );
}

export function createDecoder(onRecord: (record: FcgiRecord) => void, options: DecoderOptions = {}): Decoder {
  return createRecordReader(
    (type, requestId, buf, start, end) =>
      onRecord({
        type,
        requestId,
        // A buffer the decoder assembled is handed out whole; it never reuses one.
        content: start === end ? EMPTY : start === 0 && end === buf.length ? buf : buf.subarray(start, end),
      }),
    options,
  );
}

export interface BeginRequestBody {
  readonly role: number;
  readonly flags: number;
}

/** The body of an FCGI_BEGIN_REQUEST record (the decoder has checked its length). */
export function parseBeginRequestBody(content: Uint8Array): BeginRequestBody {
  return { role: (content[0]! << 8) | content[1]!, flags: content[2]! };
}

export interface EndRequestBody {
  readonly appStatus: number;
  readonly protocolStatus: number;
}

/** The body of an FCGI_END_REQUEST record (the decoder has checked its length). */
export function parseEndRequestBody(content: Uint8Array): EndRequestBody {
  const appStatus = ((content[0]! << 24) | (content[1]! << 16) | (content[2]! << 8) | content[3]!) >>> 0;
  return { appStatus, protocolStatus: content[4]! };
}

/** The record type named by an FCGI_UNKNOWN_TYPE body. */
export function parseUnknownTypeBody(content: Uint8Array): number {
  return content[0]!;
}
