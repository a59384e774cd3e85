import type { Params } from '../src/protocol/index.js';

/** What node:http's IncomingMessage needs, read off the CGI params (RFC 3875 names). */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** [name, value, name, value, …] as node:http keeps them; names lower-case. */
  readonly rawHeaders: string[];
  /** The same, as node:http's headers object. */
  readonly headers: Record<string, string>;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly https: boolean;
}

export function buildRequestHead(params: Params): RequestHead {
  const rawHeaders: string[] = [];
  const headers: Record<string, string> = {};
  for (const name in params) {
    // nginx sends the body's type and length twice, as HTTP_* and as the CGI params below;
    // node:http has each header once (a fetch Request would see "a, a").
    if (name === 'HTTP_CONTENT_TYPE' || name === 'HTTP_CONTENT_LENGTH') continue;
    // HTTP_ACCEPT_LANGUAGE → accept-language
    if (name.length > 5 && name.charCodeAt(0) === 72 && name.startsWith('HTTP_')) {
      const header = name.slice(5).toLowerCase().replaceAll('_', '-');
      rawHeaders.push(header, params[name]!);
      headers[header] = params[name]!;
    }
  }
  // CGI moves these two out of HTTP_*.
  const type = params.CONTENT_TYPE;
  if (type) {
    rawHeaders.push('content-type', type);
    headers['content-type'] = type;
  }
  const length = params.CONTENT_LENGTH;
  if (length) {
    rawHeaders.push('content-length', length);
    headers['content-length'] = length;
  }

  let url = params.REQUEST_URI;
  if (!url) {
    const query = params.QUERY_STRING;
    url = `${params.SCRIPT_NAME ?? ''}${params.PATH_INFO ?? ''}` || '/';
    if (query) url += `?${query}`;
  }
  const protocol = params.SERVER_PROTOCOL ?? 'HTTP/1.1';
  const version = /^HTTP\/(\d+)\.(\d+)$/.exec(protocol);
  const major = version ? Number(version[1]) : 1;
  const minor = version ? Number(version[2]) : 1;
  const port = params.REMOTE_PORT ? Number(params.REMOTE_PORT) : undefined;
  const https = params.HTTPS;
  return {
    method: params.REQUEST_METHOD ?? 'GET',
    url,
    httpVersion: `${major}.${minor}`,
    httpVersionMajor: major,
    httpVersionMinor: minor,
    rawHeaders,
    headers,
    remoteAddress: params.REMOTE_ADDR,
    remotePort: Number.isInteger(port) ? port : undefined,
    https: https !== undefined && https !== '' && https.toLowerCase() !== 'off',
  };
}
