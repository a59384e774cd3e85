import type { ParamPairs } from '../src/protocol/index.js';

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
  /** CONTENT_LENGTH as sent ('' or absent when there is no body). */
  readonly contentLength: string | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly https: boolean;
}

/** HTTP_ACCEPT_LANGUAGE → accept-language */
function headerName(param: string): string {
  return param.slice(5).toLowerCase().replaceAll('_', '-');
}

function dropHeader(rawHeaders: string[], header: string): void {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i] === header) {
      rawHeaders.splice(i, 2);
      return;
    }
  }
}

/**
 * One pass over the pairs in the order the front sent them. A name sent twice keeps its last
 * value, as in req.params.
 */
export function buildRequestHead(pairs: ParamPairs): RequestHead {
  const rawHeaders: string[] = [];
  const headers: Record<string, string> = {};
  let method: string | undefined;
  let requestUri: string | undefined;
  let query: string | undefined;
  let scriptName: string | undefined;
  let pathInfo: string | undefined;
  let protocol: string | undefined;
  let contentType: string | undefined;
  let contentLength: string | undefined;
  let remoteAddress: string | undefined;
  let remotePort: string | undefined;
  let https: string | undefined;
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]!;
    const value = pairs[i + 1]!;
    // HTTP_*: 72 is 'H'.
    if (name.charCodeAt(0) === 72 && name.length > 5 && name.startsWith('HTTP_')) {
      // nginx sends the body's type and length twice, as HTTP_* and as the CGI params below;
      // node:http has each header once (a fetch Request would see "a, a").
      if (name === 'HTTP_CONTENT_TYPE' || name === 'HTTP_CONTENT_LENGTH') continue;
      const header = headerName(name);
      // The same param twice: the last value wins, in both views.
      if (Object.hasOwn(headers, header)) dropHeader(rawHeaders, header);
      rawHeaders.push(header, value);
      headers[header] = value;
      continue;
    }
    switch (name) {
      case 'REQUEST_METHOD':
        method = value;
        break;
      case 'REQUEST_URI':
        requestUri = value;
        break;
      case 'QUERY_STRING':
        query = value;
        break;
      case 'SCRIPT_NAME':
        scriptName = value;
        break;
      case 'PATH_INFO':
        pathInfo = value;
        break;
      case 'SERVER_PROTOCOL':
        protocol = value;
        break;
      case 'CONTENT_TYPE':
        contentType = value;
        break;
      case 'CONTENT_LENGTH':
        contentLength = value;
        break;
      case 'REMOTE_ADDR':
        remoteAddress = value;
        break;
      case 'REMOTE_PORT':
        remotePort = value;
        break;
      case 'HTTPS':
        https = value;
        break;
    }
  }
  // CGI moves these two out of HTTP_*.
  if (contentType) {
    rawHeaders.push('content-type', contentType);
    headers['content-type'] = contentType;
  }
  if (contentLength) {
    rawHeaders.push('content-length', contentLength);
    headers['content-length'] = contentLength;
  }

  let url = requestUri;
  if (!url) {
    url = `${scriptName ?? ''}${pathInfo ?? ''}` || '/';
    if (query) url += `?${query}`;
  }
  let major = 1;
  let minor = 1;
  if (protocol !== undefined && protocol !== 'HTTP/1.1') {
    const version = /^HTTP\/(\d+)\.(\d+)$/.exec(protocol);
    if (version) {
      major = Number(version[1]);
      minor = Number(version[2]);
    }
  }
  const port = remotePort ? Number(remotePort) : undefined;
  return {
    method: method ?? 'GET',
    url,
    httpVersion: major === 1 && minor === 1 ? '1.1' : `${major}.${minor}`,
    httpVersionMajor: major,
    httpVersionMinor: minor,
    rawHeaders,
    headers,
    contentLength,
    remoteAddress,
    remotePort: Number.isInteger(port) ? port : undefined,
    https: https !== undefined && https !== '' && https.toLowerCase() !== 'off',
  };
}
