import type { PairSpans } from '../src/protocol/index.js';

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

// HTTP_ACCEPT_LANGUAGE → accept-language, remembered: a front sends the same few headers again
// and again, and a lookup costs less than lower-casing.
const headerNames = new Map<string, string>();
const HEADER_NAMES_KEPT = 512;

function headerName(param: string): string {
  let name = headerNames.get(param);
  if (name === undefined) {
    name = param.slice(5).toLowerCase().replaceAll('_', '-');
    if (headerNames.size < HEADER_NAMES_KEPT) headerNames.set(param, name);
  }
  return name;
}

function dropHeader(rawHeaders: string[], header: string): void {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i] === header) {
      rawHeaders.splice(i, 2);
      return;
    }
  }
}

// The length and two chars rule out most other names before the full comparison.
function nameIs(text: string, at: number, length: number, name: string): boolean {
  return (
    length === name.length &&
    text.charCodeAt(at + length - 1) === name.charCodeAt(length - 1) &&
    text.charCodeAt(at + 1) === name.charCodeAt(1) &&
    text.substring(at, at + length) === name
  );
}

/**
 * One pass over the pairs in the order the front sent them, reading names in place: only the
 * values used become strings. A name sent twice keeps its last value, as in req.params.
 */
export function buildRequestHead(text: string, spans: PairSpans): RequestHead {
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
  const at = spans.at;
  for (let i = 0; i < 3 * spans.count; i += 3) {
    const nameAt = at[i]!;
    const valueAt = at[i + 1]!;
    const valueEnd = at[i + 2]!;
    const length = valueAt - nameAt;
    switch (text.charCodeAt(nameAt)) {
      case 72: // H
        if (
          length > 5 &&
          text.charCodeAt(nameAt + 4) === 95 &&
          text.substring(nameAt, nameAt + 5) === 'HTTP_'
        ) {
          // nginx sends the body's type and length twice, as HTTP_* and as the CGI params
          // below; node:http has each header once (a fetch Request would see "a, a").
          if (
            nameIs(text, nameAt, length, 'HTTP_CONTENT_TYPE') ||
            nameIs(text, nameAt, length, 'HTTP_CONTENT_LENGTH')
          )
            continue;
          const header = headerName(text.substring(nameAt, valueAt));
          const value = text.substring(valueAt, valueEnd);
          // The same param twice: the last value wins, in both views.
          if (Object.hasOwn(headers, header)) dropHeader(rawHeaders, header);
          rawHeaders.push(header, value);
          headers[header] = value;
        } else if (nameIs(text, nameAt, length, 'HTTPS')) https = text.substring(valueAt, valueEnd);
        continue;
      case 82: // R
        if (nameIs(text, nameAt, length, 'REQUEST_METHOD')) method = text.substring(valueAt, valueEnd);
        else if (nameIs(text, nameAt, length, 'REQUEST_URI')) requestUri = text.substring(valueAt, valueEnd);
        else if (nameIs(text, nameAt, length, 'REMOTE_ADDR'))
          remoteAddress = text.substring(valueAt, valueEnd);
        else if (nameIs(text, nameAt, length, 'REMOTE_PORT')) remotePort = text.substring(valueAt, valueEnd);
        continue;
      case 81: // Q
        if (nameIs(text, nameAt, length, 'QUERY_STRING')) query = text.substring(valueAt, valueEnd);
        continue;
      case 83: // S
        if (nameIs(text, nameAt, length, 'SCRIPT_NAME')) scriptName = text.substring(valueAt, valueEnd);
        else if (nameIs(text, nameAt, length, 'SERVER_PROTOCOL'))
          protocol = text.substring(valueAt, valueEnd);
        continue;
      case 80: // P
        if (nameIs(text, nameAt, length, 'PATH_INFO')) pathInfo = text.substring(valueAt, valueEnd);
        continue;
      case 67: // C
        if (nameIs(text, nameAt, length, 'CONTENT_TYPE')) contentType = text.substring(valueAt, valueEnd);
        else if (nameIs(text, nameAt, length, 'CONTENT_LENGTH'))
          contentLength = text.substring(valueAt, valueEnd);
        continue;
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
