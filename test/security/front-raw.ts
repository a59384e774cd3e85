import net from 'node:net';
import { join } from 'node:path';
import { buildCgiParams } from '../../src/client/cgi-params.js';
import { createClient } from '../../src/client/client.js';
import { freePort } from '../helpers/net.js';
import { type Running, startCli } from '../helpers/processes.js';

/** The worker that breaks response framing on purpose (see the file). */
export const HOSTILE_WORKER = join(import.meta.dirname, 'front-hostile-worker.ts');

export interface RawExchange {
  /** Every byte the server sent, as latin1. */
  readonly text: string;
  /** The server closed the connection (FIN or reset) before `waitMs` of silence. */
  readonly closed: boolean;
}

/**
 * Sends exactly `bytes` on a new connection and collects what comes back until the server
 * closes, or until it has been silent for `waitMs` (then the connection is still open).
 */
export function rawHttp(port: number, bytes: string | Buffer, waitMs = 1500): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), waitMs);
    };
    socket.once('connect', () => {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
      arm();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      arm();
    });
    socket.once('end', () => finish(true));
    socket.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') finish(true);
      else reject(e);
    });
  });
}

/** The status codes of the responses in a raw byte stream, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

export interface FrontStarter {
  readonly starter: Running;
  readonly fcgiPort: number;
  readonly httpPort: number;
}

/** One FastCGI GET straight to the pool (no front): its status. */
export async function fastcgiGet(port: number, path: string): Promise<number> {
  const client = createClient({ host: '127.0.0.1', port });
  try {
    const response = await client.requestAll({
      params: buildCgiParams({ method: 'GET', url: path, headers: [] }),
    });
    return response.status;
  } finally {
    client.close();
  }
}

/**
 * The real starter with the hostile worker and `--http` on a free port, plus `extra` options;
 * resolves once a worker has answered, so what a test times is the front, not a worker's start.
 */
export async function startFrontStarter(
  extra: readonly string[],
  worker = HOSTILE_WORKER,
): Promise<FrontStarter> {
  const fcgiPort = await freePort();
  const httpPort = await freePort();
  const argv = ['-p', String(fcgiPort), '-N', '1', '--http', `127.0.0.1:${httpPort}`, ...extra, worker];
  const starter = startCli(argv);
  await starter.waitFor(/HTTP on http:\/\/127\.0\.0\.1:\d+\//);
  await fastcgiGet(fcgiPort, '/ready');
  return { starter, fcgiPort, httpPort };
}
