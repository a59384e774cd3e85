/** Headers of a CGI response: names lower-case, repeated ones (set-cookie) as arrays. */
export type ResponseHeaders = Record<string, string | string[]>;

export interface CgiHead {
  readonly status: number;
  readonly statusText: string;
  readonly headers: ResponseHeaders;
}

/** Where the header block ends in `buf` (index after the blank line), or -1. Accepts LF or CRLF. */
export function findHeadEnd(buf: Buffer): number {
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}

/**
 * Parses a CGI header block (RFC 3875 6.3): `Status: 404 Not Found` sets the status; a
 * `Location` without a status means 302; otherwise 200.
 */
export function parseCgiHead(text: string): CgiHead {
  const headers: ResponseHeaders = Object.create(null) as ResponseHeaders;
  let status = 0;
  let statusText = '';
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'status') {
      const match = /^(\d{3})\s*(.*)$/.exec(value);
      if (match) {
        status = Number(match[1]);
        statusText = match[2] ?? '';
      }
      continue;
    }
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  if (status === 0) status = headers.location !== undefined ? 302 : 200;
  return { status, statusText, headers };
}
