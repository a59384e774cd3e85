import type { Socket } from 'node:net';
import { IncomingMessage, ServerResponse, storeHeader } from '../src/node-internals.js';

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

/** A CGI head without its hop-by-hop lines. */
function dropHopByHop(head: string): string {
  let out = '';
  for (const line of head.slice(0, -2).split('\r\n')) {
    if (line !== '' && !HOP_BY_HOP.test(line)) out += `${line}\r\n`;
  }
  return `${out}\r\n`;
}

/** The CGI head for a head node:http wrote as HTTP; contentLength: what node:http knows of the body. */
export function httpHeadToCgi(head: string, contentLength: number | undefined): string {
  const firstEnd = head.indexOf('\r\n');
  // "HTTP/1.1 200 OK" → "200 OK"
  const status = head.slice(head.indexOf(' ') + 1, firstEnd);
  const end = head.endsWith(CLOSE) ? head.length - CLOSE.length : head.length - 2;
  // From the status line's CRLF: every header line follows a CRLF, and the block ends with one.
  const block = head.slice(firstEnd, end);
  let out = `Status: ${status}${block}`;
  if (ANY_HOP_BY_HOP.test(block)) out = dropHopByHop(`${out}\r\n`).slice(0, -2);
  // node:http knows the length of `res.end(body)` but only writes it when it would chunk.
  const code = Number(status.slice(0, 3));
  if (
    !ANY_CONTENT_LENGTH.test(out) &&
    contentLength !== undefined &&
    code >= 200 &&
    code !== 204 &&
    code !== 304
  ) {
    out += `Content-Length: ${contentLength}\r\n`;
  }
  return `${out}\r\n`;
}

// node:http internals a response's head is built from (Node 20 to 26; probed in node-internals.ts).
interface NodeResponse {
  statusCode: number;
  statusMessage: string;
  sendDate: boolean;
  shouldKeepAlive: boolean;
  useChunkedEncodingByDefault: boolean;
  chunkedEncoding: boolean;
  _header: string | null;
  _removedConnection: boolean;
  _removedTE: boolean;
  _defaultKeepAlive: boolean;
  _storeHeader(firstLine: string, headers: unknown): void;
}

// Given "Status: 200 OK\r\n" where it expects "HTTP/1.1 200 OK\r\n", node:http builds the CGI
// head itself, Content-Length included when it knows the body's length: nothing has to read
// the head again, or copy it, on its way out. The head is text node:http joined piece by piece,
// and making it one string to read it cost more than all the rest of the conversion.
function storeCgiHeader(this: NodeResponse, _statusLine: string, headers: unknown): void {
  (storeHeader as unknown as NodeResponse['_storeHeader']).call(
    this,
    `Status: ${this.statusCode} ${this.statusMessage}\r\n`,
    headers,
  );
  // The application set a header of the connection's own (rare): node:http wrote it, and for
  // Transfer-Encoding would frame the body in chunks.
  if (!this._removedConnection || !this._removedTE || !this._defaultKeepAlive) {
    this.chunkedEncoding = false;
    this._header = dropHopByHop(this._header ?? '\r\n');
  }
}

function writeCgiHeadsBy(res: NodeResponse): void {
  res.sendDate = false;
  res.shouldKeepAlive = false;
  // With Transfer-Encoding "removed", node:http writes Content-Length when it knows the
  // length, and otherwise no framing at all: what CGI wants.
  res.useChunkedEncodingByDefault = true;
  res._removedTE = true;
  // No Connection line either.
  res._removedConnection = true;
  res._storeHeader = storeCgiHeader;
}

/** Whether this Node's http builds CGI heads as above: checked once, on a response of its own. */
function nodeWritesCgiHeads(): boolean {
  if (!storeHeader) return false;
  try {
    const req = new IncomingMessage(null as unknown as Socket);
    req.method = 'GET';
    const res = new ServerResponse(req);
    writeCgiHeadsBy(res as unknown as NodeResponse);
    res.setHeader('X-A', '1');
    res.end('ok');
    const streamed = new ServerResponse(req);
    writeCgiHeadsBy(streamed as unknown as NodeResponse);
    streamed.setHeader('Transfer-Encoding', 'chunked');
    streamed.write('a');
    return (
      (res as unknown as NodeResponse)._header === 'Status: 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\n' &&
      (streamed as unknown as NodeResponse)._header === 'Status: 200 OK\r\n\r\n' &&
      !(streamed as unknown as NodeResponse).chunkedEncoding
    );
  } catch {
    return false;
  }
}

/** node:http builds this Node's response heads as CGI heads (see cgiResponse); else they are converted as written. */
export const NODE_WRITES_CGI_HEADS = nodeWritesCgiHeads();

/**
 * Makes a node:http response for a FastCGI request: no Date or Connection of its own, no
 * chunking, and (where this Node allows, as it does from 20 on) its head built as a CGI head.
 */
export function cgiResponse(res: ServerResponse): void {
  if (NODE_WRITES_CGI_HEADS) writeCgiHeadsBy(res as unknown as NodeResponse);
  else {
    res.sendDate = false;
    res.shouldKeepAlive = false;
    res.useChunkedEncodingByDefault = false;
  }
}
