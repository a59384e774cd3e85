import { Readable } from 'node:stream';
import type { FcgiIncomingMessage } from './connection.js';
import { delegateMembers, widenInstanceOf } from './fetch-delegate.js';
import { plainUrl, requestUrlText } from './fetch-url.js';
import { requestParams } from './request-params.js';

/**
 * The Request a fetch handler gets, made of the node:http request underneath. Its signal is
 * made when first read and aborted by `abortRequest` (the front aborted the request, or the
 * connection dropped): handing undici's Request a signal to follow costs a WeakRef and a
 * FinalizationRegistry entry per request, and the garbage collection they bring.
 *
 * Two kinds, made on first use (extending the global Request loads undici, which a createServer
 * worker never needs):
 * - lazy (`overrideGlobalObjects`, the default): a Request whose url, method and headers are
 *   read off the node request, and whose undici Request is made only when something needs
 *   more (the body, clone(), any other member). The global Request becomes a subclass that
 *   takes one as its input, and the global fetch() takes one too.
 * - eager: a subclass of the global Request, made at once, the globals left alone.
 */
export interface RequestFactory {
  make(req: FcgiIncomingMessage): Request;
}

const kAbort = Symbol('abort');

interface Abortable {
  [kAbort](): void;
}

/** The front aborted the request or the connection dropped: the request's signal aborts. */
export function abortRequest(request: Request): void {
  (request as unknown as Abortable)[kAbort]();
}

/** Aborted when told, its controller made when the signal is first read. */
class LazySignal {
  #controller: AbortController | undefined;
  #aborted = false;

  abort(): void {
    this.#aborted = true;
    this.#controller?.abort();
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort();
    }
    return this.#controller.signal;
  }
}

/** The node request's headers as fetch Headers, leaving out any value fetch refuses (control chars). */
function headersOf(req: FcgiIncomingMessage): Headers {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    try {
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // left out rather than failing the request
    }
  }
  return headers;
}

interface Target {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly path: string;
}

function targetOf(req: FcgiIncomingMessage): Target {
  // The host from the raw headers: reading req.headers would have node:http build it first.
  const raw = req.rawHeaders;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === 'host') host = raw[i + 1];
  host ||= requestParams(req).value('SERVER_NAME') || 'localhost';
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  return { scheme, host, path: req.url ?? '/' };
}

function initOf(req: FcgiIncomingMessage, method: string, headers: Headers): RequestInit {
  const body =
    method === 'GET' || method === 'HEAD' ? null : (Readable.toWeb(req) as ReadableStream<Uint8Array>);
  return { method, headers, body, duplex: 'half' } as RequestInit;
}

/** The eager kind: undici's Request, made at once, with a signal of our own. */
export function eagerRequests(): RequestFactory {
  class FastCgiRequest extends Request implements Abortable {
    readonly #signal = new LazySignal();

    [kAbort](): void {
      this.#signal.abort();
    }

    static signalOf(request: FastCgiRequest): AbortSignal {
      return request.#signal.signal;
    }
  }
  // Request declares signal as a property, which a subclass may not redeclare as an accessor.
  Object.defineProperty(FastCgiRequest.prototype, 'signal', {
    get(this: FastCgiRequest) {
      return FastCgiRequest.signalOf(this);
    },
    enumerable: true,
    configurable: true,
  });
  return {
    make(req) {
      const { scheme, host, path } = targetOf(req);
      const method = req.method ?? 'GET';
      return new FastCgiRequest(requestUrlText(scheme, host, path), initOf(req, method, headersOf(req)));
    },
  };
}

/** Methods the Request constructor keeps as they are; any other is checked and normalized by it. */
const PLAIN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

export interface LazyRequests extends RequestFactory {
  /** The global Request to install: one made of a lazy Request takes its undici Request. */
  readonly GlobalRequest: typeof Request;
  /** For fetch(): the undici Request a lazy one stands for, anything else as it is. */
  unwrap<T>(input: T): T;
}

/** The lazy kind, and the global Request that takes it as input. */
export function lazyRequests(): LazyRequests {
  const UndiciRequest = globalThis.Request;

  class LazyRequest implements Abortable {
    readonly #req: FcgiIncomingMessage;
    readonly #url: string;
    readonly #method: string;
    // Made when the signal is read or the request aborted: most requests are neither.
    #signal: LazySignal | undefined;
    #headers: Headers | undefined;
    #request: Request | undefined;

    constructor(req: FcgiIncomingMessage, url: string, method: string, request?: Request) {
      this.#req = req;
      this.#url = url;
      this.#method = method;
      this.#request = request;
    }

    /** undici's Request for this one, made on first need from what is known so far. */
    static request(lazy: LazyRequest): Request {
      lazy.#request ??= new UndiciRequest(lazy.#url, initOf(lazy.#req, lazy.#method, lazy.headers));
      return lazy.#request;
    }

    static is(value: unknown): value is LazyRequest {
      return typeof value === 'object' && value !== null && #req in value;
    }

    get url(): string {
      return this.#url;
    }

    get method(): string {
      return this.#method;
    }

    get headers(): Headers {
      // Once handed out, the same object: a change made to it is in what a later Request copies.
      this.#headers ??= this.#request ? this.#request.headers : headersOf(this.#req);
      return this.#headers;
    }

    get signal(): AbortSignal {
      this.#signal ??= new LazySignal();
      return this.#signal.signal;
    }

    get bodyUsed(): boolean {
      return this.#request?.bodyUsed ?? false;
    }

    [kAbort](): void {
      this.#signal ??= new LazySignal();
      this.#signal.abort();
    }
  }

  class GlobalRequest extends UndiciRequest {
    constructor(input: ConstructorParameters<typeof Request>[0], init?: RequestInit) {
      super(LazyRequest.is(input) ? LazyRequest.request(input) : input, init);
    }
  }

  // Requests made by undici itself (fetch, clone()) are Requests too.
  widenInstanceOf(GlobalRequest, UndiciRequest);
  Object.setPrototypeOf(LazyRequest.prototype, GlobalRequest.prototype);
  delegateMembers(LazyRequest, UndiciRequest, LazyRequest.request);

  return {
    GlobalRequest,
    make(req) {
      const { scheme, host, path } = targetOf(req);
      const method = req.method ?? 'GET';
      const url = PLAIN_METHODS.has(method) ? plainUrl(scheme, host, path) : null;
      if (url !== null) return new LazyRequest(req, url, method) as unknown as Request;
      // Anything unusual is made at once, to be normalized, or refused, as it always was.
      const request = new UndiciRequest(
        requestUrlText(scheme, host, path),
        initOf(req, method, headersOf(req)),
      );
      return new LazyRequest(req, request.url, request.method, request) as unknown as Request;
    },
    unwrap<T>(input: T): T {
      return LazyRequest.is(input) ? (LazyRequest.request(input) as T) : input;
    },
  };
}
