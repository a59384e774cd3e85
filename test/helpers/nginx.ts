import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForListen } from './net.js';
import { findProgram } from './peers.js';
import { start } from './processes.js';

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

export interface Nginx {
  readonly port: number;
  /** http://127.0.0.1:port, without a trailing slash. */
  readonly url: string;
  /** nginx's own error log so far (stderr). */
  output(): string;
  stop(): Promise<void>;
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
 * once it accepts on 127.0.0.1:port, one of the ports that block listens on.
 */
export async function startNginxHttp(http: string, port: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  // master_process off: one process to stop; temp paths inside the prefix so a large request
  // body spooled to disk lands in the test's own directory. 4096 connections: the scaling
  // benchmark's 512 clients each hold an upstream connection too.
  const conf = `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
access_log off;
client_body_temp_path ${dir}/body;
fastcgi_temp_path ${dir}/fastcgi;
${http}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const nginx = start(findProgram('nginx') ?? 'nginx', [
    '-p',
    dir,
    '-c',
    join(dir, 'nginx.conf'),
    '-e',
    'stderr',
  ]);
  const stop = async () => {
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  // A bad config or a busy port ends nginx at once: say so instead of waiting for the port.
  let up = false;
  const exitedEarly = nginx.exited.then((code) => {
    if (!up) throw new Error(`nginx exited with ${code}`);
  });
  exitedEarly.catch(() => {});
  try {
    await Promise.race([waitForListen({ host: '127.0.0.1', port }), exitedEarly]);
    up = true;
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}; nginx said:\n${nginx.output()}`);
  }
  return { port, url: `http://127.0.0.1:${port}`, output: nginx.output, stop };
}
