import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Front, startFront } from './front.js';
import { findProgram } from './peers.js';

/**
 * A real lighttpd (Debian lighttpd) running `site` (e.g. examples/lighttpd/fcgi-prefork.conf
 * with test ports), with its own document root and upload dir in a temp dir, in the
 * foreground (-D), its main server on 127.0.0.1:port; started once it accepts there. Callers
 * check the peer with peer('lighttpd', 'lighttpd') first.
 */
export async function startLighttpd(site: string, port: number): Promise<Front> {
  const dir = mkdtempSync(join(tmpdir(), 'lighttpd-'));
  // No server.errorlog: lighttpd -D then logs to stderr, which start() keeps.
  const conf = `server.document-root = "${dir}"
server.upload-dirs = ( "${dir}" )
server.bind = "127.0.0.1"
server.port = ${port}
include "${dir}/site.conf"
`;
  writeFileSync(join(dir, 'lighttpd.conf'), conf);
  writeFileSync(join(dir, 'site.conf'), site);
  return startFront(
    'lighttpd',
    findProgram('lighttpd') ?? 'lighttpd',
    ['-D', '-f', join(dir, 'lighttpd.conf')],
    port,
    dir,
  );
}
