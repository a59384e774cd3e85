import net from 'node:net';
import {
  createDecoder,
  encodeBeginRequest,
  encodeParams,
  encodeRecord,
  FCGI_END_REQUEST,
  FCGI_STDERR,
  FCGI_STDIN,
  FCGI_STDOUT,
  type FcgiRecord,
  parseEndRequestBody,
} from '../../src/protocol/index.js';

/**
 * A connection that speaks raw records, for tests that must control every byte: send any
 * records (valid or not) and look at every record the server sends back.
 */
export interface RawConnection {
  readonly socket: net.Socket;
  readonly records: FcgiRecord[];
  send(...buffers: Buffer[]): void;
  /** Resolves when a record matching `test` has arrived (or rejects after timeoutMs). */
  waitFor(test: (r: FcgiRecord) => boolean, timeoutMs?: number): Promise<FcgiRecord>;
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>;
  isClosed(): boolean;
  close(): void;
}

export async function rawConnect(target: {
  host?: string;
  port?: number;
  path?: string;
  localAddress?: string;
}): Promise<RawConnection> {
  const socket =
    target.path !== undefined
      ? net.connect(target.path)
      : net.connect({
          port: target.port!,
          host: target.host ?? '127.0.0.1',
          ...(target.localAddress ? { localAddress: target.localAddress } : {}),
        });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  const records: FcgiRecord[] = [];
  const waiters = new Set<() => void>();
  const decoder = createDecoder((r) => {
    records.push({ type: r.type, requestId: r.requestId, content: Buffer.from(r.content) });
    for (const w of waiters) w();
  });
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      for (const w of waiters) w();
      resolve();
    }),
  );
  return {
    socket,
    records,
    send: (...buffers) => {
      for (const b of buffers) socket.write(b);
    },
    waitFor(test, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = records.find(test);
          if (found) {
            done();
            resolve(found);
          } else if (isClosed) {
            done();
            reject(
              new Error(
                `connection closed; records: ${records.map((r) => `${r.type}/${r.requestId}`).join(' ')}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`timed out; records: ${records.map((r) => `${r.type}/${r.requestId}`).join(' ')}`),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    closed,
    isClosed: () => isClosed,
    close: () => socket.destroy(),
  };
}

/** The records of one whole request: BEGIN, PARAMS (+ end), STDIN (+ end). */
export function requestRecords(
  id: number,
  params: Record<string, string>,
  options: { body?: Buffer | string; keepConn?: boolean; role?: number } = {},
): Buffer[] {
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  return [
    encodeBeginRequest(id, options.role ?? 1, options.keepConn ? 1 : 0),
    ...encodeParams(id, params),
    ...(body.length > 0 ? [encodeRecord(FCGI_STDIN, id, body)] : []),
    encodeRecord(FCGI_STDIN, id),
  ];
}

export interface RawResponse {
  readonly stdout: string;
  readonly stderr: string;
  readonly appStatus: number;
  readonly protocolStatus: number;
}

/** Waits for END_REQUEST of `id` and gathers what came before it. */
export async function responseOf(conn: RawConnection, id: number, timeoutMs = 5000): Promise<RawResponse> {
  const end = await conn.waitFor((r) => r.type === FCGI_END_REQUEST && r.requestId === id, timeoutMs);
  const mine = conn.records.filter((r) => r.requestId === id);
  const text = (type: number) =>
    Buffer.concat(mine.filter((r) => r.type === type).map((r) => r.content)).toString('latin1');
  return { stdout: text(FCGI_STDOUT), stderr: text(FCGI_STDERR), ...parseEndRequestBody(end.content) };
}

export const GET = (uri = '/', extra: Record<string, string> = {}): Record<string, string> => ({
  REQUEST_METHOD: 'GET',
  REQUEST_URI: uri,
  SERVER_PROTOCOL: 'HTTP/1.1',
  REMOTE_ADDR: '127.0.0.1',
  REMOTE_PORT: '40000',
  HTTP_HOST: 'example.test',
  ...extra,
});
