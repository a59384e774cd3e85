import { delegateMembers, widenInstanceOf } from './fetch-delegate.js';

/**
 * A Response that keeps the string or bytes it was made from, and its status and headers, and
 * makes undici's Response only when something needs more (the body stream, clone(), text()…).
 * Installed as the global Response (`overrideGlobalObjects`), it lets a handler's usual
 * `new Response('text', init)` be written at once, without a body stream and its reader.
 * What it cannot keep as it is (a stream, a Blob, form data, an unusual status, header values
 * to normalize) goes to undici's Response at once, which also refuses what is wrong as ever.
 */

/** A header name (an HTTP token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A value Headers keeps as it is: no surrounding whitespace, nothing it refuses or Node would. */
const PLAIN_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;
/** A status text undici takes (a reason-phrase). */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Statuses whose response has no body (the Response constructor refuses one). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const TEXT_TYPE = 'text/plain;charset=UTF-8';
const JSON_TYPE = 'application/json';

type Pair = [name: string, value: string];

/**
 * The headers of an init as Headers would list them (lower-case, sorted), with the body's
 * content type when they have none; null for anything but a plain record of plain values.
 */
function plainPairs(headers: unknown, contentType: Pair | null): Pair[] | null {
  const pairs: Pair[] = [];
  let typed = false;
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null) return null;
    const proto = Object.getPrototypeOf(headers);
    if (proto !== Object.prototype && proto !== null) return null;
    const record = headers as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const value = record[key];
      if (typeof value !== 'string' || !TOKEN.test(key) || !PLAIN_VALUE.test(value)) return null;
      const name = key.toLowerCase();
      for (const pair of pairs) if (pair[0] === name) return null; // Headers would join them
      if (name === 'content-type') typed = true;
      pairs.push([name, value]);
    }
  }
  if (contentType !== null && !typed) pairs.push(contentType);
  if (pairs.length > 1) pairs.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return pairs;
}

export interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  /** Pairs as Headers lists them, or the Headers themselves once the handler has read them. */
  readonly headers: readonly Pair[] | Headers;
  readonly body: string | Uint8Array | null;
}

export interface ResponseClass {
  /** The global Response to install. */
  readonly GlobalResponse: typeof Response;
  /** A kept response not yet made into undici's: what to write. Null for any other. */
  kept(response: Response): ResponseHead | null;
}

export function keptResponses(): ResponseClass {
  const UndiciResponse = globalThis.Response;

  class KeptResponse {
    #status = 200;
    #statusText = '';
    #body: string | Uint8Array | null = null;
    #pairs: Pair[] | null = null;
    #headers: Headers | undefined;
    #response: Response | undefined;

    /** The content type a string body gave, for Response.json to make its own. */
    #defaultType: Pair | null = null;

    constructor(body?: ConstructorParameters<typeof Response>[0], init?: ResponseInit | null) {
      const status = init?.status ?? 200;
      const statusText = init?.statusText ?? '';
      const text = typeof body === 'string';
      const type: Pair | null = text ? ['content-type', TEXT_TYPE] : null;
      const pairs =
        (body == null || text || body instanceof Uint8Array) &&
        (init == null || typeof init === 'object') &&
        Number.isInteger(status) &&
        status >= 200 &&
        status <= 599 &&
        !(body != null && NULL_BODY_STATUS.has(status)) &&
        typeof statusText === 'string' &&
        REASON_PHRASE.test(statusText)
          ? plainPairs(init?.headers, type)
          : null;
      if (pairs === null) {
        this.#response = new UndiciResponse(body, init ?? undefined);
        return;
      }
      this.#status = status;
      this.#statusText = statusText;
      // undici copies bytes: a later change to the caller's array is not sent.
      this.#body = body instanceof Uint8Array ? body.slice() : ((body ?? null) as string | null);
      this.#pairs = pairs;
      if (type !== null && pairs.includes(type)) this.#defaultType = type;
    }

    /** undici's Response for this one, made on first need from what is known so far. */
    static response(kept: KeptResponse): Response {
      kept.#response ??= new UndiciResponse(kept.#body, {
        status: kept.#status,
        statusText: kept.#statusText,
        headers: kept.#headers ?? kept.#pairs!,
      });
      return kept.#response;
    }

    static kept(value: unknown): ResponseHead | null {
      if (typeof value !== 'object' || value === null || !(#pairs in value) || value.#response) return null;
      return {
        status: value.#status,
        statusText: value.#statusText,
        headers: value.#headers ?? value.#pairs!,
        body: value.#body,
      };
    }

    static json(data: unknown, init?: ResponseInit): Response {
      const body = JSON.stringify(data);
      if (body === undefined) return UndiciResponse.json(data, init); // refused as undici does
      const kept = new KeptResponse(body, init);
      if (kept.#response) return UndiciResponse.json(data, init);
      if (kept.#defaultType) kept.#defaultType[1] = JSON_TYPE;
      return kept as unknown as Response;
    }

    get status(): number {
      return this.#response ? this.#response.status : this.#status;
    }

    get statusText(): string {
      return this.#response ? this.#response.statusText : this.#statusText;
    }

    get ok(): boolean {
      const status = this.status;
      return status >= 200 && status <= 299;
    }

    get headers(): Headers {
      // Once handed out, the same object, even after undici's Response is made: what the
      // handler sets on it later is what is sent.
      if (this.#headers) return this.#headers;
      if (this.#response) return this.#response.headers;
      this.#headers = new Headers(this.#pairs!);
      return this.#headers;
    }

    get bodyUsed(): boolean {
      return this.#response?.bodyUsed ?? false;
    }
  }

  // undici's own Responses (fetch(), Response.redirect()) are Responses too.
  widenInstanceOf(KeptResponse, UndiciResponse);
  Object.setPrototypeOf(KeptResponse, UndiciResponse);
  Object.setPrototypeOf(KeptResponse.prototype, UndiciResponse.prototype);
  delegateMembers(KeptResponse, UndiciResponse, KeptResponse.response);

  return {
    GlobalResponse: KeptResponse as unknown as typeof Response,
    kept: (response) => KeptResponse.kept(response),
  };
}
