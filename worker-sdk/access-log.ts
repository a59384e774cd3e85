import { createWriteStream, type WriteStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FcgiIncomingMessage } from './connection.js';
import { requestParams } from './request-params.js';

/**
 * The access log of an SDK worker: one line per request in the combined log format, plus the
 * request time in seconds and the worker's slot (FCGI_WORKER_ID):
 *
 *   127.0.0.1 - - [21/May/2025:10:00:00 +0000] "GET /x HTTP/1.1" 200 12 "-" "curl/8.5" 0.003 2
 *
 * Each worker appends to the file itself (O_APPEND: lines from several workers do not overwrite
 * each other), through a WriteStream: the write happens on libuv's thread pool, never in the
 * event loop. Lines queue in memory while the disk is slow, up to MAX_QUEUED bytes; past that
 * they are dropped and counted, so a stuck disk cannot grow a worker without bound.
 * SIGUSR1 reopens the file (logrotate's postrotate, as with nginx), the starter forwards it.
 */
export interface AccessLog {
  readonly observe: (req: FcgiIncomingMessage, res: ServerResponse) => void;
  reopen(): void;
  /** Flushes what is queued and closes the file. */
  close(callback?: () => void): void;
  /** Lines dropped because the queue was full. */
  readonly dropped: number;
}

export const MAX_QUEUED = 1024 * 1024;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

let lastSecond = Number.NaN;
let lastTime = '';

/** formatLogTime, made once a second: every request of that second shares it. */
function logTimeOf(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastTime = formatLogTime(new Date(ms));
  }
  return lastTime;
}

/** `[10/Oct/2000:13:55:36 -0700]`, in local time as Apache and nginx write it. */
export function formatLogTime(date: Date): string {
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${two(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}:${two(date.getHours())}:${two(
    date.getMinutes(),
  )}:${two(date.getSeconds())} ${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** As nginx: `"`, `\` and bytes outside printable ASCII become \xHH, so a line stays one line. */
export function escapeField(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`
      : encodeURIComponent(c).replace(/%/g, '\\x');
  });
}

function field(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text ? escapeField(text) : '-';
}

export interface LogEntry {
  readonly remoteAddress: string | undefined;
  readonly remoteUser: string | undefined;
  /** When the request began, in ms since the epoch. */
  readonly time: number;
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly status: number;
  readonly bytes: number | undefined;
  readonly referer: string | string[] | undefined;
  readonly userAgent: string | string[] | undefined;
  readonly seconds: number;
  readonly slot: string;
}

export function formatLogLine(e: LogEntry): string {
  return `${field(e.remoteAddress)} - ${field(e.remoteUser)} [${logTimeOf(e.time)}] "${escapeField(
    `${e.method} ${e.url} HTTP/${e.httpVersion}`,
  )}" ${e.status} ${e.bytes ? e.bytes : '-'} "${field(e.referer)}" "${field(e.userAgent)}" ${e.seconds.toFixed(3)} ${e.slot}\n`;
}

/** `path` is a file, appended to; `-` is the worker's stdout. */
export function openAccessLog(
  path: string,
  log: (message: string) => void,
  slot = process.env.FCGI_WORKER_ID ?? '-',
  clock: () => number = Date.now,
): AccessLog {
  let dropped = 0;
  let reported = 0;
  const open = (): WriteStream => {
    const stream =
      path === '-'
        ? createWriteStream('', { fd: 1, autoClose: false })
        : createWriteStream(path, { flags: 'a', mode: 0o640 });
    // One line per failure kind, not per request: a full disk must not flood the error log.
    stream.once('error', (err: NodeJS.ErrnoException) =>
      log(`fcgi worker: access log ${path}: ${err.code ?? err.message}; lines are dropped until SIGUSR1`),
    );
    stream.on('error', () => {});
    return stream;
  };
  let stream = open();

  // The lines of one turn of the event loop go out as one write: a write per line cost more
  // than the request it logs.
  let pending = '';
  const flush = () => {
    const lines = pending;
    pending = '';
    if (lines !== '' && !stream.destroyed) stream.write(lines);
  };
  const write = (line: string) => {
    if (stream.destroyed || stream.writableLength + pending.length > MAX_QUEUED) {
      dropped++;
      if (dropped >= reported * 2 + 1) {
        reported = dropped;
        log(`fcgi worker: access log ${path} is not keeping up: ${dropped} line(s) dropped`);
      }
      return;
    }
    if (pending === '') setImmediate(flush);
    pending += line;
  };

  const observe = (req: FcgiIncomingMessage, res: ServerResponse) => {
    const started = clock();
    res.once('close', () => {
      const length = Number(res.getHeader('content-length'));
      write(
        formatLogLine({
          remoteAddress: req.socket?.remoteAddress,
          remoteUser: requestParams(req).value('REMOTE_USER'),
          time: started,
          method: req.method ?? '-',
          url: req.url ?? '-',
          httpVersion: req.httpVersion,
          status: res.statusCode,
          bytes: Number.isFinite(length) ? length : undefined,
          referer: req.headers.referer,
          userAgent: req.headers['user-agent'],
          seconds: (clock() - started) / 1000,
          slot,
        }),
      );
    });
  };

  return {
    observe,
    reopen() {
      flush();
      const old = stream;
      stream = open();
      old.end();
    },
    close(callback) {
      flush();
      stream.end(callback);
    },
    get dropped() {
      return dropped;
    },
  };
}
