import { describe } from 'vitest';
import { APACHE_USER, startApache } from '../helpers/apache.js';
import { editedExample } from '../helpers/front.js';
import { peer } from '../helpers/peers.js';
import { describeFrontPools, type FrontPorts } from './front-pools.js';

/**
 * A real Apache httpd 2.4 (mod_proxy_fcgi) running examples/apache/fcgi-prefork.conf as shipped
 * (only its ports and socket path changed) in front of a TCP and a unix-socket pool of
 * examples/hello.ts under the starter; then with its enablereuse=on line instead.
 */
const apachePeer = peer('apache2', 'apache2');
const TCP_LINE = '    ProxyPass "/" "fcgi://127.0.0.1:9000/" timeout=60 flushpackets=auto\n';

function shipped(ports: FrontPorts, reuse: boolean): string {
  const edits: [RegExp | string, string][] = [];
  if (reuse) edits.push([TCP_LINE, ''], [/# (ProxyPass .* enablereuse=on ttl=60)/, '$1']);
  edits.push(
    [/8080/g, String(ports.tcpFront)],
    [/8081/g, String(ports.unixFront)],
    [/Listen (\d+)/g, 'Listen 127.0.0.1:$1'],
    [/127\.0\.0\.1:9000/g, `127.0.0.1:${ports.pool}`],
    [/\/run\/fcgi-prefork\/app\.sock/g, ports.socket],
  );
  return editedExample('examples/apache/fcgi-prefork.conf', edits);
}

// A root Apache serves as APACHE_USER: the unix socket is given to it, as -U www-data would.
const socketOwner = APACHE_USER ? ['-U', APACHE_USER.user, '-G', APACHE_USER.group] : [];

describe.skipIf(apachePeer.skipReason)('Apache httpd with examples/apache/fcgi-prefork.conf', () => {
  describeFrontPools([
    {
      label: 'as shipped: a FastCGI connection per request',
      start: (ports) => startApache(shipped(ports, false), ports.unixFront),
      keepsConnections: false,
      socketOwner,
    },
    {
      label: 'with the enablereuse=on line instead: FastCGI connections kept',
      start: (ports) => startApache(shipped(ports, true), ports.unixFront),
      keepsConnections: true,
      socketOwner,
    },
  ]);
});
