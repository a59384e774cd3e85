/**
 * node:http writes a response head as HTTP ("HTTP/1.1 404 Not Found\r\n…"); a FastCGI
 * responder sends CGI headers instead: the status as a `Status:` header, and none of the
 * hop-by-hop headers that belong to the front's own connection.
 */
const HOP_BY_HOP = /^(?:connection|keep-alive|transfer-encoding):/i;

export function httpHeadToCgi(head: string, contentLength: number | undefined): string {
  const firstEnd = head.indexOf('\r\n');
  // "HTTP/1.1 200 OK" → "200 OK"
  const status = head.slice(head.indexOf(' ') + 1, firstEnd);
  let out = `Status: ${status}\r\n`;
  let hasLength = false;
  let at = firstEnd + 2;
  const end = head.length - 2; // the blank line
  while (at < end) {
    let next = head.indexOf('\r\n', at);
    if (next < 0) next = end;
    const line = head.slice(at, next);
    if (!HOP_BY_HOP.test(line)) {
      out += `${line}\r\n`;
      if (!hasLength && (line.charCodeAt(0) | 0x20) === 0x63 && /^content-length:/i.test(line))
        hasLength = true;
    }
    at = next + 2;
  }
  // node:http knows the length of `res.end(body)` but only writes it when it would chunk.
  const code = Number(status.slice(0, 3));
  if (!hasLength && contentLength !== undefined && code >= 200 && code !== 204 && code !== 304) {
    out += `Content-Length: ${contentLength}\r\n`;
  }
  return `${out}\r\n`;
}
