import {
  FCGI_ABORT_REQUEST,
  FCGI_BEGIN_REQUEST,
  FCGI_END_REQUEST,
  FCGI_HEADER_LEN,
  FCGI_MAX_CONTENT_LENGTH,
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
   * chunk (zero-copy), otherwise one buffer the decoder assembled. Valid after the callback
   * returns: the decoder never reuses it.
   */
  readonly content: Buffer;
}

export interface DecoderOptions {
  /** Largest contentLength accepted; a larger record is a RECORD_TOO_LARGE error. Default 65535 (all). */
  readonly maxRecordLength?: number;
}

export interface Decoder {
  /**
   * Feed bytes with any chunk boundaries; every record completed by them is passed to the
   * callback, in order, before push returns. Throws ProtocolError on invalid input, and again on
   * every later push: a stream that went wrong once cannot be resynchronised.
   */
  push(chunk: Uint8Array): void;
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

export function createDecoder(onRecord: (record: FcgiRecord) => void, options: DecoderOptions = {}): Decoder {
  const maxRecordLength = options.maxRecordLength ?? FCGI_MAX_CONTENT_LENGTH;
  const header = Buffer.alloc(FCGI_HEADER_LEN);
  let headerFill = 0;
  let state = HEADER;
  let type = 0;
  let requestId = 0;
  let contentLength = 0;
  let paddingLength = 0;
  let body: Buffer = EMPTY;
  let bodyFill = 0;
  let paddingLeft = 0;
  let failure: ProtocolError | null = null;

  function fail(err: ProtocolError): never {
    failure = err;
    throw err;
  }

  // Reads and checks one header; leaves type/requestId/contentLength/paddingLength set.
  function readHeader(buf: Uint8Array, at: number): void {
    const version = buf[at]!;
    type = buf[at + 1]!;
    requestId = (buf[at + 2]! << 8) | buf[at + 3]!;
    contentLength = (buf[at + 4]! << 8) | buf[at + 5]!;
    paddingLength = buf[at + 6]!;
    if (version !== FCGI_VERSION_1) {
      fail(new ProtocolError('BAD_VERSION', `record version ${version}, expected ${FCGI_VERSION_1}`));
    }
    if (contentLength > maxRecordLength) {
      fail(
        new ProtocolError(
          'RECORD_TOO_LARGE',
          `${recordTypeName(type)} record of ${contentLength} bytes is over the limit of ${maxRecordLength}`,
        ),
      );
    }
    const fixed = fixedBodyLength(type);
    if (fixed >= 0 && contentLength !== fixed) {
      fail(
        new ProtocolError(
          'BAD_BODY_LENGTH',
          `${recordTypeName(type)} record has a ${contentLength}-byte body, expected ${fixed}`,
        ),
      );
    }
  }

  function emit(content: Buffer): void {
    onRecord({ type, requestId, content });
  }

  function push(input: Uint8Array): void {
    if (failure) throw failure;
    const chunk = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (state === HEADER) {
        if (headerFill === 0 && end - pos >= FCGI_HEADER_LEN) {
          readHeader(chunk, pos);
          pos += FCGI_HEADER_LEN;
        } else {
          const n = Math.min(FCGI_HEADER_LEN - headerFill, end - pos);
          chunk.copy(header, headerFill, pos, pos + n);
          headerFill += n;
          pos += n;
          if (headerFill < FCGI_HEADER_LEN) return;
          headerFill = 0;
          readHeader(header, 0);
        }
        if (end - pos >= contentLength) {
          // Fast path: the whole body is in this chunk, hand out a view of it.
          const content = contentLength === 0 ? EMPTY : chunk.subarray(pos, pos + contentLength);
          pos += contentLength;
          const skip = Math.min(paddingLength, end - pos);
          pos += skip;
          paddingLeft = paddingLength - skip;
          state = paddingLeft > 0 ? PADDING : HEADER;
          emit(content);
          continue;
        }
        body = Buffer.allocUnsafe(contentLength);
        bodyFill = 0;
        state = BODY;
      }
      if (state === BODY) {
        const n = Math.min(contentLength - bodyFill, end - pos);
        chunk.copy(body, bodyFill, pos, pos + n);
        bodyFill += n;
        pos += n;
        if (bodyFill < contentLength) return;
        const content = body;
        body = EMPTY;
        bodyFill = 0;
        paddingLeft = paddingLength;
        state = paddingLeft > 0 ? PADDING : HEADER;
        emit(content);
        continue;
      }
      // PADDING
      const skip = Math.min(paddingLeft, end - pos);
      pos += skip;
      paddingLeft -= skip;
      if (paddingLeft === 0) state = HEADER;
    }
  }

  return {
    push,
    end() {
      if (failure) throw failure;
      if (state !== HEADER || headerFill > 0) {
        const where = state === HEADER ? 'header' : state === BODY ? 'body' : 'padding';
        fail(new ProtocolError('TRUNCATED', `stream ended inside a record ${where}`));
      }
    },
    get buffered() {
      return headerFill + bodyFill;
    },
  };
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
