/**
 * The front process: the --http front and the metrics endpoint, run as the worker user by a
 * root starter (starter/front-process.ts), as nginx runs its workers. It gets its listening
 * sockets as descriptors the starter bound, reaches the pool over FastCGI like any client,
 * and reads pool snapshots from fd 0, one JSON line each; it never writes to the starter.
 * When fd 0 ends, the starter is gone, and so is this process.
 */
import type { Target } from '../src/client/connection.js';
import { startHttpFront } from './http-front.js';
import { startMetricsServer } from './metrics.js';
import type { PoolStatus } from './pool.js';

/** What the starter hands over, as JSON in argv[2]. */
export interface FrontChildConfig {
  readonly http?: {
    readonly fd: number;
    readonly upstream: Target;
    readonly scriptFilename?: string;
    readonly documentRoot?: string;
    readonly maxConnections?: number;
  };
  readonly metrics?: { readonly fd: number };
}

/** Splits fd 0 into lines and keeps the last complete one as the pool's status. */
function followSnapshots(onSnapshot: (status: PoolStatus) => void): void {
  let partial = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    const last = lines.at(-1);
    if (last) onSnapshot(JSON.parse(last) as PoolStatus);
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
}

async function main(config: FrontChildConfig): Promise<void> {
  let status: PoolStatus | null = null;
  followSnapshots((snapshot) => {
    status = snapshot;
  });
  const closers: (() => Promise<void>)[] = [];
  // Ctrl-C and a hangup reach the whole process group: the starter decides when this ends.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  process.once('SIGTERM', () => {
    void Promise.all(closers.map((close) => close())).then(() => process.exit(0));
  });
  if (config.http) {
    const { fd, ...rest } = config.http;
    const front = await startHttpFront({ listen: { fd }, ...rest });
    closers.push(() => front.close());
  }
  if (config.metrics) {
    const server = await startMetricsServer({ fd: config.metrics.fd }, () => status);
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as FrontChildConfig).catch((err: unknown) => {
  process.stderr.write(`fcgi-prefork: front process: ${(err as Error).message}\n`);
  process.exit(1);
});
