import http from 'node:http';
import type { TcpAddress } from '../src/net/address.js';
import { describeErrno, UserError } from '../src/net/errors.js';
import type { PoolStatus } from './pool.js';

/** The pool's figures in the Prometheus text exposition format (version 0.0.4). */
export function formatMetrics(status: PoolStatus, now = Date.now()): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const label = (slot: number, pid: number) => `{slot="${slot}",pid="${pid}"}`;
  metric('fcgi_prefork_workers', 'gauge', 'Workers running.', [['', status.totals.workers]]);
  metric('fcgi_prefork_workers_desired', 'gauge', 'Workers wanted.', [['', status.desiredWorkers]]);
  metric('fcgi_prefork_backlog', 'gauge', 'listen(2) backlog of the shared socket.', [['', status.backlog]]);
  metric('fcgi_prefork_generation', 'gauge', 'Reload generation.', [['', status.generation]]);
  metric('fcgi_prefork_uptime_seconds', 'gauge', 'Seconds since the starter started.', [
    ['', Math.floor((now - status.startedAt) / 1000)],
  ]);
  metric('fcgi_prefork_restarts_total', 'counter', 'Workers restarted after an exit.', [
    ['', status.totals.restarts],
  ]);
  metric(
    'fcgi_prefork_worker_requests_total',
    'counter',
    'Requests served by a worker (SDK workers only).',
    status.workers.filter((w) => w.requests !== null).map((w) => [label(w.slot, w.pid), w.requests ?? 0]),
  );
  metric(
    'fcgi_prefork_worker_active_requests',
    'gauge',
    'Requests in progress in a worker (SDK workers only).',
    status.workers.filter((w) => w.active !== null).map((w) => [label(w.slot, w.pid), w.active ?? 0]),
  );
  metric(
    'fcgi_prefork_worker_resident_memory_bytes',
    'gauge',
    'Resident memory of a worker.',
    status.workers.filter((w) => w.rssBytes !== null).map((w) => [label(w.slot, w.pid), w.rssBytes ?? 0]),
  );
  metric(
    'fcgi_prefork_worker_cpu_seconds_total',
    'counter',
    'CPU time (user + system) a worker has used.',
    status.workers.filter((w) => w.cpuSeconds != null).map((w) => [label(w.slot, w.pid), w.cpuSeconds ?? 0]),
  );
  return `${lines.join('\n')}\n`;
}

/** Scrapes at once on the metrics endpoint; more are closed as they come (it is one small page). */
const MAX_METRICS_CONNECTIONS = 64;

/**
 * Serves /metrics on an address, or on a listening descriptor the root starter bound (the
 * unprivileged front process). `status` is null until the first snapshot has come: 503.
 */
export async function startMetricsServer(
  address: TcpAddress | { readonly fd: number },
  status: () => PoolStatus | null,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    const now = status();
    if (!now) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no figures yet\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(formatMetrics(now));
  });
  server.maxConnections = MAX_METRICS_CONNECTIONS;
  const where = 'fd' in address ? `fd ${address.fd}` : `${address.host}:${address.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new UserError(`metrics address ${where} ${describeErrno(e.code)}`)),
    );
    if ('fd' in address) server.listen({ fd: address.fd }, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  return server;
}
