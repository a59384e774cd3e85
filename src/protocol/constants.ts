// FastCGI 1.0 constants, by the names the specification gives them (section 8, fastcgi.h).

/** Listening socket file number: a FastCGI application accepts on fd 0. */
export const FCGI_LISTENSOCK_FILENO = 0;

/** Number of bytes in a record header. */
export const FCGI_HEADER_LEN = 8;

/** Value of the version component of a record header. */
export const FCGI_VERSION_1 = 1;

// Record types.
export const FCGI_BEGIN_REQUEST = 1;
export const FCGI_ABORT_REQUEST = 2;
export const FCGI_END_REQUEST = 3;
export const FCGI_PARAMS = 4;
export const FCGI_STDIN = 5;
export const FCGI_STDOUT = 6;
export const FCGI_STDERR = 7;
export const FCGI_DATA = 8;
export const FCGI_GET_VALUES = 9;
export const FCGI_GET_VALUES_RESULT = 10;
export const FCGI_UNKNOWN_TYPE = 11;
export const FCGI_MAXTYPE = FCGI_UNKNOWN_TYPE;

/** Request id of management records. */
export const FCGI_NULL_REQUEST_ID = 0;

/** Mask for the flags component of a BEGIN_REQUEST body. */
export const FCGI_KEEP_CONN = 1;

// Roles in a BEGIN_REQUEST body.
export const FCGI_RESPONDER = 1;
export const FCGI_AUTHORIZER = 2;
export const FCGI_FILTER = 3;

// Protocol status in an END_REQUEST body.
export const FCGI_REQUEST_COMPLETE = 0;
export const FCGI_CANT_MPX_CONN = 1;
export const FCGI_OVERLOADED = 2;
export const FCGI_UNKNOWN_ROLE = 3;

// Variable names for GET_VALUES / GET_VALUES_RESULT records.
export const FCGI_MAX_CONNS = 'FCGI_MAX_CONNS';
export const FCGI_MAX_REQS = 'FCGI_MAX_REQS';
export const FCGI_MPXS_CONNS = 'FCGI_MPXS_CONNS';

/** Largest content a single record can carry (contentLength is 16 bits). */
export const FCGI_MAX_CONTENT_LENGTH = 0xffff;

/** Names of the record types, for logs and errors. */
export const RECORD_TYPE_NAMES: Readonly<Record<number, string>> = {
  [FCGI_BEGIN_REQUEST]: 'FCGI_BEGIN_REQUEST',
  [FCGI_ABORT_REQUEST]: 'FCGI_ABORT_REQUEST',
  [FCGI_END_REQUEST]: 'FCGI_END_REQUEST',
  [FCGI_PARAMS]: 'FCGI_PARAMS',
  [FCGI_STDIN]: 'FCGI_STDIN',
  [FCGI_STDOUT]: 'FCGI_STDOUT',
  [FCGI_STDERR]: 'FCGI_STDERR',
  [FCGI_DATA]: 'FCGI_DATA',
  [FCGI_GET_VALUES]: 'FCGI_GET_VALUES',
  [FCGI_GET_VALUES_RESULT]: 'FCGI_GET_VALUES_RESULT',
  [FCGI_UNKNOWN_TYPE]: 'FCGI_UNKNOWN_TYPE',
};

export function recordTypeName(type: number): string {
  return RECORD_TYPE_NAMES[type] ?? `unknown type ${type}`;
}
