import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Front, startFront } from './front.js';
import { freePort } from './net.js';
import { findProgram } from './peers.js';

/**
 * A real nginx (Debian nginx-light) as the HTTP front of a FastCGI app, for end-to-end tests:
 * its own prefix directory, one server on a free 127.0.0.1 port, every path passed to one
 * FastCGI upstream with Debian's fastcgi_params. Callers check the peer with
 * peer('nginx', 'nginx-light') first.
 */
export interface NginxOptions {
  readonly fastcgi: { host: string; port: number } | { path: string };
  /** fastcgi_keep_conn on: one FastCGI connection carries many requests. */
  readonly keepConn?: boolean;
  /** Upstream `keepalive N`: idle FastCGI connections nginx keeps per worker (needs keepConn). */
  readonly keepalive?: number;
}

export type Nginx = Front;

export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const port = await freePort();
  const upstream =
    'path' in options.fastcgi
      ? `unix:${options.fastcgi.path}`
      : `${options.fastcgi.host}:${options.fastcgi.port}`;
  return startNginxHttp(
    `client_max_body_size 64m;
upstream app {
  server ${upstream};
  ${options.keepalive ? `keepalive ${options.keepalive};` : ''}
}
server {
  listen 127.0.0.1:${port};
  location / {
    include /etc/nginx/fastcgi_params;
    fastcgi_pass app;
    ${options.keepConn ? 'fastcgi_keep_conn on;' : ''}
  }
}`,
    port,
  );
}

/**
 * nginx with the given contents of its `http { }` block (e.g. a shipped example file), started
 * once it accepts on 127.0.0.1:port, one of the ports that block listens on.
 */
export async function startNginxHttp(http: string, port: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  // master_process off: one process to stop; temp paths inside the prefix so a large request
  // body spooled to disk lands in the test's own directory.
  const conf = `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
access_log off;
client_body_temp_path ${dir}/body;
fastcgi_temp_path ${dir}/fastcgi;
${http}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return startFront(
    'nginx',
    findProgram('nginx') ?? 'nginx',
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'],
    port,
    dir,
  );
}
