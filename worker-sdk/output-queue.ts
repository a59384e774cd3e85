import type { Transport } from '../src/net/index.js';
import {
  encodeStream,
  FCGI_HEADER_LEN,
  FCGI_NULL_REQUEST_ID,
  FCGI_STDOUT,
  FCGI_UNKNOWN_TYPE,
  RESPONSE_END_LENGTH,
  recordRoom,
  textRecordRoom,
  writeHeader,
  writeRecord,
  writeResponseEnd,
  writeTextRecord,
} from '../src/protocol/index.js';

/** Data smaller than this is copied into the tail; larger goes out as views of it (writev). */
const COPY_LIMIT = 16 * 1024;
/**
 * Size of a connection's buffer for small records: some short responses. Under 4 KiB, so it
 * is a slice of node's Buffer pool, not an allocation of its own.
 */
const TAIL_SIZE = 2048;
/**
 * The first one is smaller: a connection the front does not keep uses it once, for one short
 * response, and every pool used up is 8 KiB more for the garbage collector to sweep.
 */
const FIRST_TAIL_SIZE = 256;
const EMPTY_TAIL = Buffer.alloc(0);
const UNKNOWN_TYPE_LENGTH = FCGI_HEADER_LEN + 8;

/**
 * Bytes queued on a connection (here and in the transport) past which it stops reading: a peer
 * that sends requests and never reads the answers (unknown record types, GET_VALUES) must not
 * grow the worker. Reading resumes once the queue is down to OUTPUT_LOW_WATER.
 */
export const OUTPUT_HIGH_WATER = 256 * 1024;
export const OUTPUT_LOW_WATER = 64 * 1024;

/** What a queue tells the connection it writes for. */
export interface OutputOwner {
  /** A flush wrote what was queued; ok: the transport is under its own high-water mark. */
  flushed(ok: boolean): void;
}

/**
 * A connection's records on their way to its transport. Small records (most responses, every
 * response's end, management replies) are written one after another into the tail and go out
 * as one view of it: no buffer of their own, no joining before the write. The bytes handed out
 * are never written again (the transport may still hold them); a full tail is left to the views
 * of it and a new one taken. Everything queued in one turn of the event loop goes out in one
 * write (flushAll), or at once when the owner asks (flush).
 */
export class OutputQueue {
  private readonly transport: Transport;
  private readonly owner: OutputOwner;
  private out: Buffer[] = [];
  /** Bytes in `out` and in the tail, not yet written. */
  private outBytes = 0;
  private tail: Buffer = EMPTY_TAIL;
  /** The tail's bytes from tailStart to tailEnd are records not yet in `out`. */
  private tailStart = 0;
  private tailEnd = 0;
  scheduled = false;
  /** The transport is closed: nothing more is written. */
  closed = false;

  constructor(transport: Transport, owner: OutputOwner) {
    this.transport = transport;
    this.owner = owner;
  }

  /** Bytes queued and not yet taken by the kernel: the bound a peer that never reads runs into. */
  get queued(): number {
    return this.outBytes + this.transport.writableLength;
  }

  get pending(): boolean {
    return this.out.length > 0 || this.tailEnd > this.tailStart;
  }

  /** FCGI_STDOUT content of a request. */
  stdout(requestId: number, data: string | Uint8Array, encoding?: BufferEncoding): void {
    if (typeof data === 'string') {
      // A string this short fits one record (at most 3 bytes a char), written in place.
      if (data.length <= COPY_LIMIT) {
        const tail = this.room(textRecordRoom(data, encoding));
        this.appended(writeTextRecord(tail, this.tailEnd, FCGI_STDOUT, requestId, data, encoding));
      } else this.push(encodeStream(FCGI_STDOUT, requestId, Buffer.from(data, encoding)));
    } else if (data.length <= COPY_LIMIT) {
      const tail = this.room(recordRoom(data.length));
      this.appended(writeRecord(tail, this.tailEnd, FCGI_STDOUT, requestId, data));
    } else this.push(encodeStream(FCGI_STDOUT, requestId, data));
  }

  /** A response's end: the empty STDOUT record and END_REQUEST. */
  end(requestId: number, appStatus: number, protocolStatus: number): void {
    const tail = this.room(RESPONSE_END_LENGTH);
    writeResponseEnd(tail, this.tailEnd, requestId, appStatus, protocolStatus);
    this.appended(RESPONSE_END_LENGTH);
  }

  /** FCGI_UNKNOWN_TYPE for a management record of a type we do not know. */
  unknownType(type: number): void {
    const tail = this.room(UNKNOWN_TYPE_LENGTH);
    const at = this.tailEnd;
    writeHeader(tail, at, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, 8, 0);
    tail.fill(0, at + FCGI_HEADER_LEN, at + UNKNOWN_TYPE_LENGTH);
    tail[at + FCGI_HEADER_LEN] = type;
    this.appended(UNKNOWN_TYPE_LENGTH);
  }

  /** Whole records, behind what is queued. */
  push(buffers: Buffer[]): void {
    this.sealTail();
    for (const buf of buffers) {
      this.out.push(buf);
      this.outBytes += buf.length;
    }
    this.schedule();
  }

  private room(bytes: number): Buffer {
    if (this.tail.length - this.tailEnd < bytes) {
      this.sealTail();
      this.tail = Buffer.allocUnsafe(Math.max(this.tail === EMPTY_TAIL ? FIRST_TAIL_SIZE : TAIL_SIZE, bytes));
      this.tailStart = 0;
      this.tailEnd = 0;
    }
    return this.tail;
  }

  private appended(bytes: number): void {
    this.tailEnd += bytes;
    this.outBytes += bytes;
    this.schedule();
  }

  /** What the tail holds goes into `out`, behind what is there. */
  private sealTail(): void {
    if (this.tailEnd === this.tailStart) return;
    this.out.push(this.tail.subarray(this.tailStart, this.tailEnd));
    this.tailStart = this.tailEnd;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    scheduleFlushOf(this);
  }

  /** Writes what is queued: from flushAll after the turn's callbacks, or at once when the owner asks. */
  flush(): void {
    if (this.scheduled) {
      this.scheduled = false;
      flushDone();
    } else if (!this.pending) return;
    if (this.closed) return;
    this.sealTail();
    const out = this.out;
    let ok = true;
    if (out.length === 1) ok = this.transport.write(out[0]!);
    else if (out.length > 1) {
      if (this.outBytes <= COPY_LIMIT * 4) ok = this.transport.write(Buffer.concat(out, this.outBytes));
      else ok = this.transport.writev(out);
    }
    this.out = [];
    this.outBytes = 0;
    this.owner.flushed(ok);
  }
}

// One setImmediate per turn of the event loop for every queue with output, not one per
// connection per response: it runs after the turn's 'finish' callbacks, so a whole response and
// its END_REQUEST still go out in one write. When every queue of the batch has flushed early (a
// response ended: the usual case), it is cleared again, so an idle worker's loop does not spin
// once more for nothing.
let flushBatch: OutputQueue[] = [];
let flushImmediate: NodeJS.Immediate | null = null;
/** Queues with a flush scheduled. */
let flushWaiting = 0;

function scheduleFlushOf(queue: OutputQueue): void {
  flushBatch.push(queue);
  flushWaiting++;
  flushImmediate ??= setImmediate(flushAll);
}

function flushDone(): void {
  flushWaiting--;
  if (flushWaiting === 0 && flushImmediate) {
    clearImmediate(flushImmediate);
    flushImmediate = null;
    flushBatch = [];
  }
}

function flushAll(): void {
  const batch = flushBatch;
  flushBatch = [];
  flushImmediate = null;
  // A queue flushed early has nothing left: flush() returns.
  for (const queue of batch) queue.flush();
}
