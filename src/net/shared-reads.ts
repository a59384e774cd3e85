import type net from 'node:net';
import { onreadFields } from '../node-internals.js';

/**
 * Reads of an accepted socket into one buffer shared by every connection of the process, as
 * node:http's own parser reads. By default each read(2) of a net.Socket gets a fresh 64 KiB
 * allocation, shrunk to what arrived, wrapped in a Buffer and pushed through the stream
 * machinery: about 0.6 µs a read here, for a worker answering a request per read.
 *
 * Node does this for the sockets it is given `onread` for, which an accepted socket cannot
 * be. So the two fields that option sets (found in node-internals.ts) are set on the accepted
 * one before its first read; node's own read path, pause() and
 * resume() then treat it as they treat an `onread` socket. Where that is not possible (another
 * Node), the caller gets false and reads 'data' as usual.
 */
/** Node's `onread` callback: the byte count, then the buffer (reads go on; pause() stops them). */
export type SharedReadCallback = (length: number, buffer: Buffer) => void;

interface SocketWithHandle {
  _handle: { useUserBuffer?: (buffer: Uint8Array) => void } | null;
}

const SHARED_BUFFER_SIZE = 64 * 1024;
let shared: Buffer | null = null;

/** The process's one read buffer: what a read delivers is valid only until the next. */
export function sharedReadBuffer(): Buffer {
  shared ??= Buffer.allocUnsafe(SHARED_BUFFER_SIZE);
  return shared;
}

const fields = onreadFields;

/**
 * Makes an accepted socket read into the shared buffer, calling onRead with the byte count and
 * the buffer for each read: the bytes are valid only until onRead returns. Call it before the
 * socket's first read, in the 'connection' listener (reads happen on a later turn of the event
 * loop). False when this Node cannot: use 'data' instead.
 */
export function readIntoSharedBuffer(socket: net.Socket, onRead: SharedReadCallback): boolean {
  const handle = (socket as unknown as SocketWithHandle)._handle;
  if (!fields || !handle || typeof handle.useUserBuffer !== 'function') return false;
  const buffer = sharedReadBuffer();
  const record = socket as unknown as Record<symbol, unknown>;
  record[fields.buffer] = buffer;
  record[fields.callback] = onRead;
  handle.useUserBuffer(buffer);
  return true;
}
