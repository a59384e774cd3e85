/**
 * node:http writes a response head as HTTP ("HTTP/1.1 404 Not Found\r\n…"); a FastCGI
 * responder sends CGI headers instead: the status as a `Status:` header, and none of the
 * hop-by-hop headers that belong to the front's own connection.
 */
const HOP_BY_HOP = /^(?:connection|keep-alive|transfer-encoding):/i;
const ANY_HOP_BY_HOP = /\r\n(?:connection|keep-alive|transfer-encoding):/i;
const ANY_CONTENT_LENGTH = /\r\ncontent-length:/i;
/** What node:http ends the head with when told the connection is not kept (as we tell it). */
const CLOSE = 'Connection: close\r\n\r\n';

export function httpHeadToCgi(head: string, contentLength: number | undefined): string {
  const firstEnd = head.indexOf('\r\n');
  // "HTTP/1.1 200 OK" → "200 OK"
  const status = head.slice(head.indexOf(' ') + 1, firstEnd);
  // The usual head: the application's headers, then node:http's own Connection line. One scan
  // of the headers tells whether any line needs dropping; only then are they taken line by line.
  const end = head.endsWith(CLOSE) ? head.length - CLOSE.length : head.length - 2;
  // From the status line's CRLF: every header line follows a CRLF, and the block ends with one.
  const block = head.slice(firstEnd, end);
  let out: string;
  let hasLength: boolean;
  if (!ANY_HOP_BY_HOP.test(block)) {
    out = `Status: ${status}${block}`;
    hasLength = ANY_CONTENT_LENGTH.test(block);
  } else {
    out = `Status: ${status}\r\n`;
    hasLength = false;
    for (const line of block.slice(2).split('\r\n')) {
      if (line === '' || HOP_BY_HOP.test(line)) continue;
      out += `${line}\r\n`;
      if (!hasLength && /^content-length:/i.test(line)) hasLength = true;
    }
  }
  // node:http knows the length of `res.end(body)` but only writes it when it would chunk.
  const code = Number(status.slice(0, 3));
  if (!hasLength && contentLength !== undefined && code >= 200 && code !== 204 && code !== 304) {
    out += `Content-Length: ${contentLength}\r\n`;
  }
  return `${out}\r\n`;
}
