/**
 * The path a request target names, as nginx's `$uri`: percent-decoded, then `.` and `..`
 * segments resolved and runs of `/` merged (ngx_http_parse_complex_uri). A target the front
 * must not forward is refused with the reason, and the front answers 400.
 */
export type RequestPath =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly reason: string };

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function refuse(reason: string): RequestPath {
  return { ok: false, reason };
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** `%XX` escapes to bytes; null for a `%` not followed by two hex digits (nginx: 400). */
function percentDecode(raw: string): Uint8Array | null {
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code !== 37) {
      // node:http hands the request line over as latin1: one char per byte.
      bytes[n++] = code & 0xff;
      continue;
    }
    const high = hexValue(raw.charCodeAt(i + 1));
    const low = hexValue(raw.charCodeAt(i + 2));
    if (high < 0 || low < 0) return null;
    bytes[n++] = (high << 4) | low;
    i += 2;
  }
  return bytes.subarray(0, n);
}

/**
 * The decoded, normalised path of `url` (the request target: origin form `/a/b?x`, or the
 * absolute form `http://host/a/b?x` a client may send). Refused: a target that is no path
 * (`*`, authority form), a bad `%` escape, bytes that are not UTF-8, NUL, CR or LF (they
 * would end up in params an application may log or write into headers), and `..` above
 * the root, which would take SCRIPT_FILENAME out of the document root.
 */
export function requestPath(url: string): RequestPath {
  const question = url.indexOf('?');
  let raw = question < 0 ? url : url.slice(0, question);
  const authority = ABSOLUTE_FORM.exec(raw);
  if (authority) raw = raw.slice(authority[0].length) || '/';
  if (!raw.startsWith('/')) return refuse('the request target is not a path');
  const bytes = percentDecode(raw);
  if (!bytes) return refuse('a bad percent escape in the path');
  let decoded: string;
  try {
    decoded = utf8.decode(bytes);
  } catch {
    return refuse('the path is not UTF-8');
  }
  if (/[\0\r\n]/.test(decoded)) return refuse('NUL, CR or LF in the path');
  const segments: string[] = [];
  const parts = decoded.split('/');
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (segments.length === 0) return refuse('the path climbs above the root');
      segments.pop();
      continue;
    }
    segments.push(part);
  }
  const last = parts[parts.length - 1];
  const directory = segments.length > 0 && (last === '' || last === '.' || last === '..');
  return { ok: true, path: `/${segments.join('/')}${directory ? '/' : ''}` };
}
