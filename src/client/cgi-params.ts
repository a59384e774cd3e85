import type { Params } from '../protocol/index.js';

export interface CgiParamsOptions {
  readonly method: string;
  /** The request target as sent: path and query (`/a/b.php?x=1`). */
  readonly url: string;
  /**
   * The decoded path (nginx's `$uri`) for SCRIPT_NAME, DOCUMENT_URI and SCRIPT_FILENAME, when
   * the caller has normalised it (the --http front does); default: the url's path, decoded.
   */
  readonly path?: string;
  /** `1.1` */
  readonly httpVersion?: string;
  /** Header name/value pairs as received (node:http's rawHeaders layout or entries). */
  readonly headers: readonly (readonly [string, string])[];
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly serverAddress?: string | undefined;
  readonly serverPort?: number | undefined;
  readonly serverName?: string | undefined;
  /** SCRIPT_FILENAME for every request (a single front controller, or php-cgi's index.php). */
  readonly scriptFilename?: string | undefined;
  /** DOCUMENT_ROOT; with no scriptFilename, SCRIPT_FILENAME is the root joined with the path. */
  readonly documentRoot?: string | undefined;
  readonly https?: boolean;
  readonly serverSoftware?: string;
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * CGI/1.1 params for a request, as nginx's `fastcgi_params` builds them: the request line,
 * the connection's addresses, and each header as HTTP_NAME (upper case, '-' → '_').
 * Headers with '_' in their names are dropped, as nginx does by default (they would be
 * indistinguishable from a '-' version), and so is `Proxy` (httpoxy: HTTP_PROXY would
 * become the application's outgoing proxy).
 */
export function buildCgiParams(options: CgiParamsOptions): Params {
  const question = options.url.indexOf('?');
  const path = question < 0 ? options.url : options.url.slice(0, question);
  const query = question < 0 ? '' : options.url.slice(question + 1);
  const scriptName = options.path ?? decodePath(path);
  const root = options.documentRoot ?? '';
  const params: Params = Object.create(null) as Params;
  params.GATEWAY_INTERFACE = 'CGI/1.1';
  params.SERVER_SOFTWARE = options.serverSoftware ?? 'fcgi-prefork';
  params.QUERY_STRING = query;
  params.REQUEST_METHOD = options.method;
  params.SCRIPT_FILENAME = options.scriptFilename ?? `${root.replace(/\/$/, '')}${scriptName}`;
  params.SCRIPT_NAME = scriptName;
  params.REQUEST_URI = options.url;
  params.DOCUMENT_URI = scriptName;
  params.DOCUMENT_ROOT = root;
  params.SERVER_PROTOCOL = `HTTP/${options.httpVersion ?? '1.1'}`;
  params.REQUEST_SCHEME = options.https ? 'https' : 'http';
  if (options.https) params.HTTPS = 'on';
  if (options.remoteAddress) params.REMOTE_ADDR = options.remoteAddress;
  if (options.remotePort !== undefined) params.REMOTE_PORT = String(options.remotePort);
  if (options.serverAddress) params.SERVER_ADDR = options.serverAddress;
  if (options.serverPort !== undefined) params.SERVER_PORT = String(options.serverPort);
  // php-cgi refuses to run without it when cgi.force_redirect is on (Debian's default).
  params.REDIRECT_STATUS = '200';
  let host: string | undefined;
  for (const [rawName, value] of options.headers) {
    const name = rawName.toLowerCase();
    if (name === 'content-type') {
      params.CONTENT_TYPE = value;
      continue;
    }
    if (name === 'content-length') {
      params.CONTENT_LENGTH = value;
      continue;
    }
    if (name.includes('_') || name === 'proxy') continue;
    if (name === 'host') host = value;
    const key = `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
    const existing = params[key];
    params[key] = existing === undefined ? value : `${existing}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  params.SERVER_NAME =
    options.serverName ??
    host?.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') ??
    options.serverAddress ??
    'localhost';
  if (params.CONTENT_TYPE === undefined) params.CONTENT_TYPE = '';
  if (params.CONTENT_LENGTH === undefined) params.CONTENT_LENGTH = '';
  return params;
}

/** node:http's rawHeaders ([name, value, name, value…]) as pairs. */
export function pairsFromRawHeaders(raw: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}
