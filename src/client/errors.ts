/** Why a FastCGI request failed, from the client's side. */
export type ClientErrorCode =
  /** No connection could be made (refused, no such socket, unreachable). */
  | 'CONNECT_FAILED'
  /** The connection closed before the request's END_REQUEST. */
  | 'CONNECTION_RESET'
  /** The server sent bytes that are not valid FastCGI. */
  | 'PROTOCOL_ERROR'
  /** END_REQUEST with FCGI_OVERLOADED. */
  | 'OVERLOADED'
  /** END_REQUEST with FCGI_CANT_MPX_CONN. */
  | 'CANT_MPX_CONN'
  /** END_REQUEST with FCGI_UNKNOWN_ROLE. */
  | 'UNKNOWN_ROLE'
  /** Connect or response timeout. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired; ABORT_REQUEST was sent. */
  | 'ABORTED'
  /** The client was closed. */
  | 'CLOSED';

export class FastCgiClientError extends Error {
  override readonly name = 'FastCgiClientError';
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
