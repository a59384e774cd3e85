import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ResponseHeaders } from '../src/client/cgi-response.js';

/**
 * Whether the front may pass a worker's response head on, as nginx checks an upstream's: the
 * body length it declares (if any), or why the answer is 502 instead. A worker is not trusted
 * to frame the client's connection: a second Content-Length or a 1xx status (a CGI status is
 * always final; 101 would hand the client's connection over) is refused.
 */
export type ResponseFraming =
  | { readonly ok: true; readonly contentLength: number | undefined }
  | { readonly ok: false; readonly reason: string };

export function responseFraming(status: number, headers: ResponseHeaders): ResponseFraming {
  if (status < 200 || status > 999) return { ok: false, reason: `status ${status} is not a final status` };
  const declared = headers['content-length'];
  if (Array.isArray(declared))
    return { ok: false, reason: `duplicate Content-Length: ${declared.join(', ')}` };
  if (declared === undefined) return { ok: true, contentLength: undefined };
  if (!/^\d{1,15}$/.test(declared)) return { ok: false, reason: `invalid Content-Length: ${declared}` };
  return { ok: true, contentLength: Number(declared) };
}

/** How a body compared with its Content-Length: all of it, more (cut there), or less. */
export type BodyOutcome = 'exact' | 'long' | 'short';

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Copies a worker's body to the client with backpressure, never past `declared` bytes: what
 * follows them would be read by a keep-alive client as the next response. Stops reading at
 * the first byte too many. The caller ends or closes the response by the outcome.
 */
export async function copyFramedBody(
  body: Readable,
  res: ServerResponse,
  declared: number | undefined,
): Promise<BodyOutcome> {
  let sent = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const room = declared === undefined ? chunk.length : declared - sent;
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    sent += piece.length;
    if (piece.length > 0 && !res.write(piece)) await drained(res);
    if (piece.length < chunk.length) return 'long';
  }
  return declared !== undefined && sent < declared ? 'short' : 'exact';
}
