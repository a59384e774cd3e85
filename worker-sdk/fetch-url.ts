/**
 * The URL of a fetch Request made from a node:http request, as the Request constructor would
 * serialize it. The common host and path are already in that form and are joined as text;
 * anything else (upper case, a default port, dot segments, characters the URL parser escapes)
 * is left to the parser: `null` says the caller must parse.
 */

/** A host the URL parser leaves as it is: lower-case names not ending in a number, or a dotted quad. */
const PLAIN_NAME = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z](?:[a-z0-9-]*[a-z0-9])?$/;
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const PLAIN_IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
/** A port as the parser writes it: no leading zero. */
const PLAIN_PORT = /^[1-9]\d{0,4}$/;
/**
 * A path and query of characters no part of the URL parser escapes (no `'`, which a query of
 * a special scheme escapes; no `#`, `\`, spaces or quotes), without dot segments.
 */
const PLAIN_TARGET = /^\/[\w\-.~!$&()*+,;=:@/%]*(?:\?[\w\-.~!$&()*+,;=:@/%?]*)?$/;
const DOT_SEGMENT = /\/\.\.?(?:[/?]|$)|%2e/i;

// The last host found plain, per scheme: a front sends the same one again and again.
const lastPlain = { http: '', https: '' };

function plainHost(host: string, scheme: 'http' | 'https'): boolean {
  if (host === lastPlain[scheme]) return true;
  if (!checkHost(host, scheme)) return false;
  lastPlain[scheme] = host;
  return true;
}

function checkHost(host: string, scheme: 'http' | 'https'): boolean {
  const colon = host.lastIndexOf(':');
  const name = colon === -1 ? host : host.slice(0, colon);
  if (colon !== -1) {
    const port = host.slice(colon + 1);
    if (!PLAIN_PORT.test(port) || Number(port) > 65535) return false;
    if (port === (scheme === 'http' ? '80' : '443')) return false;
  }
  // Punycode labels are decoded and checked by the parser.
  return (PLAIN_NAME.test(name) && !name.includes('--')) || PLAIN_IPV4.test(name);
}

/** `scheme://host/target` when the parser would give the same text back, else null. */
export function plainUrl(scheme: 'http' | 'https', host: string, target: string): string | null {
  if (!plainHost(host, scheme) || !PLAIN_TARGET.test(target) || DOT_SEGMENT.test(target)) return null;
  return `${scheme}://${host}${target}`;
}

/** A host (and port) that cannot change where a path joined to it begins. */
const JOINABLE_HOST = /^[\w.:[\]-]+$/;

/**
 * The URL text the Request is made from, for any host and target: a target that begins with
 * `/` and a host that cannot move it are joined as text for the Request to parse; anything
 * else is resolved against the host first (and against localhost when the host is no host).
 */
export function requestUrlText(scheme: 'http' | 'https', host: string, target: string): string {
  if (target.startsWith('/') && JOINABLE_HOST.test(host)) return `${scheme}://${host}${target}`;
  try {
    return new URL(target, `${scheme}://${host}`).href;
  } catch {
    return new URL(target, `${scheme}://localhost`).href;
  }
}
