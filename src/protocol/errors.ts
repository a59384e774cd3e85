/** Why a byte stream is not valid FastCGI 1.0. */
export type ProtocolErrorCode =
  /** The header's version byte is not FCGI_VERSION_1. */
  | 'BAD_VERSION'
  /** A record's contentLength is over the decoder's maxRecordLength. */
  | 'RECORD_TOO_LARGE'
  /** A fixed-size body (BEGIN_REQUEST, END_REQUEST, UNKNOWN_TYPE: 8 bytes; ABORT_REQUEST: 0) has another length. */
  | 'BAD_BODY_LENGTH'
  /** A name-value pair's length runs past the end of its data. */
  | 'NAME_VALUE_OVERRUN'
  /** A 4-byte name-value length whose top bit is not set, or a length that cannot be. */
  | 'BAD_NAME_VALUE_LENGTH'
  /** A PARAMS (or GET_VALUES) stream over the configured total size. */
  | 'PARAMS_TOO_LARGE'
  /** The stream ended inside a record header, body or padding. */
  | 'TRUNCATED';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
