import type { IncomingMessage } from 'node:http';
import { addHeaderLines } from '../src/node-internals.js';
import { lastValue, type PairSpans } from '../src/protocol/index.js';

/** What node:http's IncomingMessage needs, read off the CGI params (RFC 3875 names). */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /**
   * [name, value, name, value, …] as node:http keeps them; names lower-case, each once (a name
   * sent twice keeps its last value). node:http makes req.headers of them when it is first read.
   */
  readonly rawHeaders: string[];
  /** CONTENT_LENGTH as sent ('' or absent when there is no body). */
  readonly contentLength: string | undefined;
  readonly https: boolean;
}

// HTTP_ACCEPT_LANGUAGE → accept-language, remembered: a front sends the same few headers again
// and again. They are kept by the param's length, and a name is found by two of its chars and
// one compare: cutting it out to look it up by hash cost more than the rest of the header.
// `seen` is the last head that had it, `at` where it is in that head's raw headers: a header
// sent twice is found without a search. The names come from peers: few are kept, short ones,
// a few of each length, and one full length takes turns, so a peer's junk costs lookups nothing
// and cannot keep the usual names out for long.
interface HeaderName {
  readonly param: string;
  readonly header: string;
  seen: number;
  at: number;
}
const headerNames: HeaderName[][] = [];
const HEADER_NAMES_KEPT = 512;
const HEADER_NAMES_PER_LENGTH = 16;
const LONGEST_NAME_KEPT = 64;
let headerNamesKept = 0;
let nextTurn = 0;
/** Heads built so far, for HeaderName.seen. */
let heads = 0;

/**
 * The name of the header param at..at+length of text. `head`: the head being built; `mayKeep`:
 * false once it has had a name that was not kept (a name it found neither way before must not
 * be kept halfway through it).
 */
function headerName(
  text: string,
  at: number,
  length: number,
  head: number,
  mayKeep: boolean,
): HeaderName | string {
  const sameLength = headerNames[length];
  if (sameLength !== undefined) {
    for (const name of sameLength) if (nameIs(text, at, length, name.param)) return name;
  }
  const param = text.substring(at, at + length);
  const header = param.slice(5).toLowerCase().replaceAll('_', '-');
  if (length > LONGEST_NAME_KEPT || !mayKeep) return header;
  const name = { param, header, seen: 0, at: 0 };
  if (sameLength === undefined) {
    if (headerNamesKept >= HEADER_NAMES_KEPT) return header;
    headerNamesKept++;
    headerNames[length] = [name];
  } else if (sameLength.length < HEADER_NAMES_PER_LENGTH && headerNamesKept < HEADER_NAMES_KEPT) {
    headerNamesKept++;
    sameLength.push(name);
  } else {
    // Not one this head has: where its header is would be lost.
    const turn = nextTurn++ % sameLength.length;
    if (sameLength[turn]!.seen === head) return header;
    sameLength[turn] = name;
  }
  return name;
}

/** Takes out the pairs marked '' in one pass. */
function closeUp(rawHeaders: string[]): void {
  let to = 0;
  for (let from = 0; from < rawHeaders.length; from += 2) {
    if (rawHeaders[from] === '') continue;
    rawHeaders[to] = rawHeaders[from]!;
    rawHeaders[to + 1] = rawHeaders[from + 1]!;
    to += 2;
  }
  rawHeaders.length = to;
}

// A name that may be the one wanted: the same length and two of its chars. Telling it apart
// for sure takes a string compare (pairValue), left until the value is used.
function looksLike(text: string, at: number, length: number, name: string): boolean {
  return (
    length === name.length &&
    text.charCodeAt(at + length - 1) === name.charCodeAt(length - 1) &&
    text.charCodeAt(at + 1) === name.charCodeAt(1)
  );
}

function nameIs(text: string, at: number, length: number, name: string): boolean {
  return looksLike(text, at, length, name) && text.startsWith(name, at);
}

/**
 * The value of the pair at index i of spans.at (-1: none) if its name is `name`. The pair was
 * the last that looked like it; if it only looked like it, the last pair truly named so is
 * found the slow way.
 */
function pairValue(text: string, spans: PairSpans, i: number, name: string): string | undefined {
  if (i < 0) return undefined;
  const at = spans.at;
  if (text.substring(at[i]!, at[i + 1]!) === name) return text.substring(at[i + 1]!, at[i + 2]!);
  return lastValue(text, spans, name);
}

/**
 * One pass over the pairs in the order the front sent them, reading names in place, then only
 * the values used become strings. A name sent twice keeps its last value, as in req.params.
 * REMOTE_ADDR and REMOTE_PORT are not read here: the request's socket reads them if asked.
 */
export function buildRequestHead(text: string, spans: PairSpans): RequestHead {
  const rawHeaders: string[] = [];
  const head = ++heads;
  /** Where each header not among the remembered names is in rawHeaders, made when one comes. */
  let uncached: Map<string, number> | undefined;
  /** Headers sent again later, left as '' in rawHeaders. */
  let dropped = 0;
  // Where the last pair that looks like each name is in spans.at; -1: none.
  let method = -1;
  let requestUri = -1;
  let query = -1;
  let scriptName = -1;
  let pathInfo = -1;
  let protocol = -1;
  let contentType = -1;
  let contentLength = -1;
  let https = -1;
  const at = spans.at;
  for (let i = 0; i < 3 * spans.count; i += 3) {
    const nameAt = at[i]!;
    const valueAt = at[i + 1]!;
    const length = valueAt - nameAt;
    switch (text.charCodeAt(nameAt)) {
      case 72: // H
        if (
          length > 5 &&
          text.charCodeAt(nameAt + 4) === 95 && // HTTP_
          text.charCodeAt(nameAt + 1) === 84 &&
          text.charCodeAt(nameAt + 2) === 84 &&
          text.charCodeAt(nameAt + 3) === 80
        ) {
          // nginx sends the body's type and length twice, as HTTP_* and as the CGI params
          // below; node:http has each header once (a fetch Request would see "a, a").
          if (
            nameIs(text, nameAt, length, 'HTTP_CONTENT_TYPE') ||
            nameIs(text, nameAt, length, 'HTTP_CONTENT_LENGTH')
          )
            continue;
          const name = headerName(text, nameAt, length, head, uncached === undefined);
          // The same param twice: the last value wins, where the last one was sent. The earlier
          // one is marked ('' is no header's name) and the list closed up once, at the end.
          let header: string;
          let before: number | undefined;
          if (typeof name === 'string') {
            header = name;
            uncached ??= new Map();
            before = uncached.get(header);
            uncached.set(header, rawHeaders.length);
          } else {
            header = name.header;
            if (name.seen === head) before = name.at;
            name.seen = head;
            name.at = rawHeaders.length;
          }
          if (before !== undefined) {
            rawHeaders[before] = '';
            dropped++;
          }
          rawHeaders.push(header, text.substring(valueAt, at[i + 2]!));
        } else if (looksLike(text, nameAt, length, 'HTTPS')) https = i;
        continue;
      case 82: // R
        if (looksLike(text, nameAt, length, 'REQUEST_METHOD')) method = i;
        else if (looksLike(text, nameAt, length, 'REQUEST_URI')) requestUri = i;
        continue;
      case 81: // Q
        if (looksLike(text, nameAt, length, 'QUERY_STRING')) query = i;
        continue;
      case 83: // S
        if (looksLike(text, nameAt, length, 'SCRIPT_NAME')) scriptName = i;
        else if (looksLike(text, nameAt, length, 'SERVER_PROTOCOL')) protocol = i;
        continue;
      case 80: // P
        if (looksLike(text, nameAt, length, 'PATH_INFO')) pathInfo = i;
        continue;
      case 67: // C
        if (looksLike(text, nameAt, length, 'CONTENT_TYPE')) contentType = i;
        else if (looksLike(text, nameAt, length, 'CONTENT_LENGTH')) contentLength = i;
        continue;
    }
  }
  if (dropped > 0) closeUp(rawHeaders);
  // CGI moves these two out of HTTP_*.
  const type = pairValue(text, spans, contentType, 'CONTENT_TYPE');
  if (type) rawHeaders.push('content-type', type);
  const bodyLength = pairValue(text, spans, contentLength, 'CONTENT_LENGTH');
  if (bodyLength) rawHeaders.push('content-length', bodyLength);

  let url = pairValue(text, spans, requestUri, 'REQUEST_URI');
  if (!url) {
    url =
      `${pairValue(text, spans, scriptName, 'SCRIPT_NAME') ?? ''}${pairValue(text, spans, pathInfo, 'PATH_INFO') ?? ''}` ||
      '/';
    const search = pairValue(text, spans, query, 'QUERY_STRING');
    if (search) url += `?${search}`;
  }
  const version = pairValue(text, spans, protocol, 'SERVER_PROTOCOL');
  let major = 1;
  let minor = 1;
  if (version !== undefined && version !== 'HTTP/1.1') {
    const parts = /^HTTP\/(\d+)\.(\d+)$/.exec(version);
    if (parts) {
      major = Number(parts[1]);
      minor = Number(parts[2]);
    }
  }
  const secure = pairValue(text, spans, https, 'HTTPS');
  return {
    method: pairValue(text, spans, method, 'REQUEST_METHOD') ?? 'GET',
    url,
    httpVersion: major === 1 && minor === 1 ? '1.1' : `${major}.${minor}`,
    httpVersionMajor: major,
    httpVersionMinor: minor,
    rawHeaders,
    contentLength: bodyLength,
    https: secure !== undefined && secure !== '' && secure.toLowerCase() !== 'off',
  };
}

// node:http makes req.headers of the raw headers when it is first read, as it does for its own
// requests: most handlers of a hello world never read it. (Done here where a Node lacks it.)
export function setRawHeaders(req: IncomingMessage, rawHeaders: string[]): void {
  if (addHeaderLines) addHeaderLines.call(req, rawHeaders, rawHeaders.length);
  else {
    req.rawHeaders = rawHeaders;
    const headers: Record<string, string> = {};
    for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!] = rawHeaders[i + 1]!;
    req.headers = headers;
  }
}
