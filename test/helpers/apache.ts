import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Front, startFront } from './front.js';
import { findProgram } from './peers.js';

/** Debian's apache2 package keeps its modules here (none but the core is built in). */
const MODULES = '/usr/lib/apache2/modules';

/**
 * Who Apache's request-serving code runs as: root Apache switches to `User`/`Group`, so a unix
 * socket a root test creates must let this user in. null when not root (Apache stays who it is).
 */
export const APACHE_USER: { user: string; group: string } | null =
  process.getuid?.() === 0 ? { user: 'nobody', group: 'nogroup' } : null;

/**
 * A real Apache httpd 2.4 (Debian apache2) running `site` (e.g. examples/apache/fcgi-prefork.conf
 * with test ports), with its own ServerRoot in a temp dir, mod_proxy_fcgi loaded, in one
 * process (-X), started once it accepts on 127.0.0.1:port, one of the ports `site` listens on.
 * Callers check the peer with peer('apache2', 'apache2') first.
 */
export async function startApache(site: string, port: number): Promise<Front> {
  const dir = mkdtempSync(join(tmpdir(), 'apache-'));
  const conf = `ServerRoot ${dir}
ServerName 127.0.0.1
DefaultRuntimeDir ${dir}
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LogLevel warn
# A test's fetch() opens many client connections at once: with keep-alive, Apache's event MPM
# closes idle ones when its threads are busy, and a request sent on one just then fails.
KeepAlive Off
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule proxy_module ${MODULES}/mod_proxy.so
LoadModule proxy_fcgi_module ${MODULES}/mod_proxy_fcgi.so
${APACHE_USER ? `User ${APACHE_USER.user}\nGroup ${APACHE_USER.group}` : ''}
Include ${dir}/site.conf
`;
  writeFileSync(join(dir, 'httpd.conf'), conf);
  writeFileSync(join(dir, 'site.conf'), site);
  // -X: one process, no children to stop; -f: nothing of /etc/apache2 is read. (Its error log
  // is a file: Apache cannot open /dev/stderr when stderr is the socket Node's spawn gives it.)
  return startFront(
    'apache2',
    findProgram('apache2') ?? 'apache2',
    ['-X', '-f', join(dir, 'httpd.conf')],
    port,
    dir,
    join(dir, 'error.log'),
  );
}
