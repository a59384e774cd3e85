import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Front, startFront } from './front.js';
import { freePort } from './net.js';
import { findProgram } from './peers.js';
import { childrenOf, isAlive, until } from './processes.js';

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

export interface Nginx extends Front {
  /**
   * With masterProcess: swaps in a new `http { }` block as `nginx -s reload` does (SIGHUP), and
   * resolves once the old worker has finished its requests and exited.
   */
  reload(http: string): Promise<void>;
}

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
 * once it accepts on 127.0.0.1:port, one of the ports that block listens on. By default without
 * a master process (one process to stop); `masterProcess` for a test that reloads.
 */
export async function startNginxHttp(
  http: string,
  port: number,
  options: { masterProcess?: boolean } = {},
): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  // Temp paths inside the prefix so a large request body spooled to disk lands in the test's
  // own directory. 4096 connections: the scaling benchmark's 512 clients each hold an upstream
  // connection too.
  const write = (block: string) =>
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off;
${options.masterProcess ? 'master_process on;\nworker_processes 1;' : 'master_process off;'}
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
access_log off;
client_body_temp_path ${dir}/body;
fastcgi_temp_path ${dir}/fastcgi;
${block}
}
`,
    );
  write(http);
  const front = await startFront(
    'nginx',
    findProgram('nginx') ?? 'nginx',
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'],
    port,
    dir,
  );
  const reload = async (block: string) => {
    if (!options.masterProcess) throw new Error('reload needs startNginxHttp(…, { masterProcess: true })');
    const old = await childrenOf(front.pid);
    write(block);
    process.kill(front.pid, 'SIGHUP');
    await until(() => old.every((pid) => !isAlive(pid)), 15_000, 'the old nginx worker to exit');
  };
  return { ...front, reload };
}
