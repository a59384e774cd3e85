import type { IncomingMessage } from 'node:http';
import {
  createPairSpans,
  lastValue,
  type PairSpans,
  type Params,
  pairsFromText,
  paramsFromPairs,
  scanPairs,
} from '../src/protocol/index.js';
import { buildRequestHead, type RequestHead } from './request-head.js';

/**
 * One request's FastCGI params, and the one place that maps them to the request: the node:http
 * head (request-head.ts), the client's address for req.socket, single values (a fetch Request's
 * host) and the whole record (req.params). The text is the stream's bytes as latin1, checked
 * when its end arrived; whatever is read besides the head is found in it when first asked: most
 * requests never ask, and cutting ~20 pairs into strings costs more than decoding them.
 */
export class RequestParams {
  readonly text: string;
  private spans: PairSpans | null = null;
  private record: Params | null = null;

  constructor(text: string) {
    this.text = text;
  }

  /** What node:http needs; `spans` holds where the pairs lie, from the scan the stream's end made. */
  head(spans: PairSpans): RequestHead {
    return buildRequestHead(this.text, spans);
  }

  /** The last value sent for `name`; undefined when not sent. */
  value(name: string): string | undefined {
    if (!this.spans) {
      this.spans = createPairSpans();
      scanPairs(this.text, Number.POSITIVE_INFINITY, this.spans);
    }
    return lastValue(this.text, this.spans, name);
  }

  /** Every param, a name sent twice keeping its last value: made once, when first read. */
  all(): Params {
    this.record ??= paramsFromPairs(pairsFromText(this.text, Number.POSITIVE_INFINITY));
    return this.record;
  }

  /** The HTTP client's address (REMOTE_ADDR), not the front's. */
  get remoteAddress(): string | undefined {
    return this.value('REMOTE_ADDR');
  }

  get remotePort(): number | undefined {
    const port = Number(this.value('REMOTE_PORT') || Number.NaN);
    return Number.isInteger(port) ? port : undefined;
  }
}

// req.params and req.fcgiParams are own accessors, so they survive Express's prototype swap;
// assigning req.params (Express does, with its route params) replaces only it.
const kParams = Symbol('fcgi.params');

type ParamsHolder = { [kParams]: RequestParams };

const PARAMS: PropertyDescriptor = {
  get(this: ParamsHolder) {
    return this[kParams].all();
  },
  set(this: ParamsHolder, value: unknown) {
    Object.defineProperty(this, 'params', { value, writable: true, enumerable: true, configurable: true });
  },
  enumerable: true,
  configurable: true,
};

const FCGI_PARAMS_PROPERTY: PropertyDescriptor = {
  get(this: ParamsHolder) {
    return this[kParams].all();
  },
  enumerable: true,
  configurable: true,
};

/** Gives a request its params: req.params, req.fcgiParams, and requestParams(req). */
export function attachParams(req: IncomingMessage, params: RequestParams): void {
  (req as unknown as ParamsHolder)[kParams] = params;
  // Two defineProperty calls cost half of one defineProperties.
  Object.defineProperty(req, 'params', PARAMS);
  Object.defineProperty(req, 'fcgiParams', FCGI_PARAMS_PROPERTY);
}

/** The params object of a request the worker made. */
export function requestParams(req: IncomingMessage): RequestParams {
  return (req as unknown as ParamsHolder)[kParams];
}
