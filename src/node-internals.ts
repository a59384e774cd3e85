import type * as Http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';

/**
 * Every Node internal this project uses, probed here and nowhere else, and exported as what
 * this Node offers: null (or false) where it does not, and each user then takes its fallback.
 * They are the fast paths node:http and net use themselves; a Node that renames one costs
 * speed, never correctness.
 *
 * FCGI_HIDE_INTERNALS (a comma-separated list of the names below, or `all`) hides some, to
 * run the fallbacks on a Node that has them; the tests use it. Under --pending-deprecation,
 * where process.binding warns, no binding is used.
 */
export type InternalName =
  | 'stream_wrap'
  | 'tcp_wrap'
  | 'createServerHandle'
  | '_storeHeader'
  | '_addHeaderLines'
  | 'kNeedDrain'
  | 'onread'
  | 'undici_state'
  | 'reusePort';

export const INTERNAL_NAMES: readonly InternalName[] = [
  'stream_wrap',
  'tcp_wrap',
  'createServerHandle',
  '_storeHeader',
  '_addHeaderLines',
  'kNeedDrain',
  'onread',
  'undici_state',
  'reusePort',
];

const hiddenList = (process.env.FCGI_HIDE_INTERNALS ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);

function hidden(name: InternalName): boolean {
  return hiddenList.includes(name) || hiddenList.includes('all');
}

/** Whether deprecations that are pending warn in this process (process.binding would). */
export const PENDING_DEPRECATION =
  process.execArgv.includes('--pending-deprecation') ||
  (process.env.NODE_OPTIONS ?? '').includes('--pending-deprecation') ||
  process.env.NODE_PENDING_DEPRECATION === '1';

function binding(name: string): Record<string, unknown> | null {
  const proc = process as unknown as { binding?: (name: string) => unknown };
  if (PENDING_DEPRECATION || typeof proc.binding !== 'function') return null;
  try {
    const value = proc.binding(name);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

// --- libuv handles ---------------------------------------------------------------------------

export interface StreamWrapBinding {
  /** Write and shutdown requests: plain objects the caller gives its fields. */
  WriteWrap: new () => object;
  ShutdownWrap: new () => object;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** A libuv TCP/pipe handle made to listen: bound, not polled. */
export interface ServerHandle {
  readonly fd: number;
  getsockname(out: { port?: number; address?: string }): number;
  /** uv_stream_set_blocking: O_NONBLOCK off (true) or on (false); 0 or a negative errno. */
  setBlocking(blocking: boolean): number;
  close(): void;
}

interface RawServerHandle extends ServerHandle {
  open(fd: number): number;
  bind(address: string, port: number, flags?: number): number;
  bind6(address: string, port: number, flags?: number): number;
}

interface TcpWrapBinding {
  TCP: (new (type: number) => RawServerHandle) & { prototype: Record<string, unknown> };
  constants: { SERVER: number; UV_TCP_REUSEPORT?: number };
}

const tcpWrapBinding = ((): TcpWrapBinding | null => {
  if (hidden('tcp_wrap')) return null;
  const tcp = binding('tcp_wrap') as Partial<TcpWrapBinding> | null;
  if (typeof tcp?.TCP !== 'function' || typeof tcp.constants?.SERVER !== 'number') return null;
  return tcp as TcpWrapBinding;
})();

/** Node's stream_wrap binding, with the TCP handle methods an accepted connection is used by. */
export const streamWrap = ((): StreamWrapBinding | null => {
  if (hidden('stream_wrap') || !tcpWrapBinding) return null;
  const wrap = binding('stream_wrap') as Partial<StreamWrapBinding> | null;
  const proto = tcpWrapBinding.TCP.prototype;
  const methods = ['readStart', 'readStop', 'useUserBuffer', 'writeBuffer', 'writev', 'shutdown', 'close'];
  if (
    typeof wrap?.WriteWrap !== 'function' ||
    typeof wrap.ShutdownWrap !== 'function' ||
    !(wrap.streamBaseState instanceof Int32Array) ||
    typeof wrap.kReadBytesOrError !== 'number' ||
    typeof wrap.kLastWriteWasAsync !== 'number' ||
    !methods.every((m) => typeof proto[m] === 'function')
  )
    return null;
  return wrap as StreamWrapBinding;
})();

/**
 * Makes a bound, unpolled server handle: (address, port, family) for TCP, (path, -1, -1) for a
 * unix socket, (null, 0, 0, fd) to wrap an inherited socket; a negative errno on failure.
 */
export type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd?: number,
  flags?: number,
) => ServerHandle | number;

const netCreateServerHandle = (net as unknown as { _createServerHandle?: CreateServerHandle })
  ._createServerHandle;

/** What net._createServerHandle does, from the tcp_wrap and pipe_wrap bindings. */
function bindingCreateServerHandle(tcp: TcpWrapBinding): CreateServerHandle | null {
  const pipe = binding('pipe_wrap') as {
    Pipe?: new (type: number) => RawServerHandle;
    constants?: { SERVER?: number };
  } | null;
  const Pipe = pipe?.Pipe;
  const pipeServer = pipe?.constants?.SERVER;
  if (typeof Pipe !== 'function' || typeof pipeServer !== 'number') return null;
  return (address, port, addressType, fd, flags = 0) => {
    if (typeof fd === 'number' && fd >= 0) {
      // Only ever made to set the socket's blocking mode, which is the same call for both kinds.
      const handle = new tcp.TCP(tcp.constants.SERVER);
      const err = handle.open(fd);
      return err ? err : handle;
    }
    const isPipe = port === -1 && addressType === -1;
    const handle = isPipe ? new Pipe(pipeServer) : new tcp.TCP(tcp.constants.SERVER);
    const err = isPipe
      ? handle.bind(address ?? '', 0)
      : addressType === 6
        ? handle.bind6(address ?? '::', port, flags)
        : handle.bind(address ?? '0.0.0.0', port, flags);
    if (err) {
      handle.close();
      return err;
    }
    return handle;
  };
}

/** net._createServerHandle, or the same made of the bindings; null where neither is offered. */
export const createServerHandle: CreateServerHandle | null = hidden('createServerHandle')
  ? tcpWrapBinding && bindingCreateServerHandle(tcpWrapBinding)
  : typeof netCreateServerHandle === 'function'
    ? netCreateServerHandle
    : tcpWrapBinding && bindingCreateServerHandle(tcpWrapBinding);

/**
 * The flag that makes createServerHandle set SO_REUSEPORT before bind(2), where this Node
 * takes one (net's own `reusePort`, from 22.12 and 23.1): null elsewhere, and --reuseport
 * falls back to a perl helper that sets it.
 */
export const REUSE_PORT_FLAG = ((): number | null => {
  const flag = tcpWrapBinding?.constants.UV_TCP_REUSEPORT;
  if (hidden('reusePort') || typeof flag !== 'number' || !createServerHandle) return null;
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const netHasReusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  return netHasReusePort ? flag : null;
})();

// --- node:http -------------------------------------------------------------------------------

/**
 * node:http, required rather than imported: an ESM import of a builtin reads every export, and
 * node:http's WebSocket, CloseEvent and MessageEvent getters load undici (Node 22 and later),
 * several MiB that a worker without fetch never needs.
 */
const http = createRequire(import.meta.url)('node:http') as typeof Http;
export const { IncomingMessage, ServerResponse } = http;
export type IncomingMessage = Http.IncomingMessage;
export type ServerResponse = Http.ServerResponse;

/** ServerResponse#_storeHeader: node:http builds a response head with it. */
export type StoreHeader = (this: Http.ServerResponse, firstLine: string, headers: unknown) => void;

export const storeHeader: StoreHeader | null = hidden('_storeHeader')
  ? null
  : typeof (ServerResponse.prototype as unknown as { _storeHeader?: unknown })._storeHeader === 'function'
    ? (ServerResponse.prototype as unknown as { _storeHeader: StoreHeader })._storeHeader
    : null;

/** IncomingMessage#_addHeaderLines: req.headers made of the raw headers when first read. */
export type AddHeaderLines = (this: Http.IncomingMessage, headers: string[], n: number) => void;

export const addHeaderLines: AddHeaderLines | null = hidden('_addHeaderLines')
  ? null
  : typeof (IncomingMessage.prototype as unknown as { _addHeaderLines?: unknown })._addHeaderLines ===
      'function'
    ? (IncomingMessage.prototype as unknown as { _addHeaderLines: AddHeaderLines })._addHeaderLines
    : null;

/**
 * A ServerResponse's "a write was refused, emit drain" flag, found by its description on a
 * response of our own: a response that writes past a congested connection clears it itself.
 */
export const kNeedDrain: symbol | null = hidden('kNeedDrain')
  ? null
  : (Object.getOwnPropertySymbols(
      new ServerResponse(new IncomingMessage(null as unknown as net.Socket)),
    ).find((s) => s.description === 'kNeedDrain') ?? null);

/**
 * The two fields net.Socket's `onread` option sets (its buffer and callback), found by value
 * on a probe socket: set on an accepted socket, they make its reads go into one buffer.
 */
export const onreadFields = ((): { buffer: symbol; callback: symbol } | null => {
  if (hidden('onread')) return null;
  const buffer = Buffer.alloc(1);
  const callback = () => {};
  // A probe: the callback is never called, so its type (@types/node wants a boolean) is moot.
  const probe = new net.Socket({ onread: { buffer, callback } } as unknown as net.SocketConstructorOpts);
  const record = probe as unknown as Record<symbol, unknown>;
  const symbols = Object.getOwnPropertySymbols(probe);
  const bufferField = symbols.find((s) => record[s] === buffer);
  const callbackField = symbols.find((s) => record[s] === callback);
  probe.destroy();
  return bufferField && callbackField ? { buffer: bufferField, callback: callbackField } : null;
})();

// --- undici (the global fetch classes) --------------------------------------------------------

let kState: symbol | null | undefined;

/**
 * The string or bytes a Response was made from, read from undici's private state (found by
 * its description, on the first Response seen: looking at load would load undici into every
 * worker), or null: a body of another shape, one already read, or a Node whose undici keeps
 * it elsewhere. Only ever a shortcut: the caller reads the body's stream when this is null.
 */
export function responseBodySource(response: Response): string | Uint8Array | null {
  if (kState === undefined)
    kState = hidden('undici_state')
      ? null
      : (Object.getOwnPropertySymbols(response).find((s) => s.description === 'state') ?? null);
  if (kState === null || response.bodyUsed) return null;
  const state = (response as unknown as Record<symbol, unknown>)[kState] as
    | { body?: { source?: unknown } | null }
    | undefined;
  const source = state?.body?.source;
  return typeof source === 'string' || source instanceof Uint8Array ? source : null;
}

/** Which internals this Node offers (after FCGI_HIDE_INTERNALS), for --version and tests. */
export function internalsOffered(): Record<InternalName, boolean> {
  return {
    stream_wrap: streamWrap !== null,
    tcp_wrap: tcpWrapBinding !== null,
    createServerHandle: createServerHandle !== null && createServerHandle === netCreateServerHandle,
    _storeHeader: storeHeader !== null,
    _addHeaderLines: addHeaderLines !== null,
    kNeedDrain: kNeedDrain !== null,
    onread: onreadFields !== null,
    undici_state: !hidden('undici_state'),
    reusePort: REUSE_PORT_FLAG !== null,
  };
}
