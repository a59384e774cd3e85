import { describe } from 'vitest';
import { editedExample } from '../helpers/front.js';
import { startLighttpd } from '../helpers/lighttpd.js';
import { peer } from '../helpers/peers.js';
import { describeFrontPools } from './front-pools.js';

/**
 * A real lighttpd (mod_fastcgi) running examples/lighttpd/fcgi-prefork.conf as shipped (only its
 * ports and socket path changed) in front of a TCP and a unix-socket pool of examples/hello.ts
 * under the starter.
 */
const lighttpdPeer = peer('lighttpd', 'lighttpd');

describe.skipIf(lighttpdPeer.skipReason)('lighttpd with examples/lighttpd/fcgi-prefork.conf', () => {
  describeFrontPools([
    {
      label: 'as shipped: a FastCGI connection per request',
      start: (ports) =>
        startLighttpd(
          editedExample('examples/lighttpd/fcgi-prefork.conf', [
            ['127.0.0.1:8080', `127.0.0.1:${ports.tcpFront}`],
            ['127.0.0.1:8081', `127.0.0.1:${ports.unixFront}`],
            ['"port" => 9000', `"port" => ${ports.pool}`],
            ['"socket" => "/run/fcgi-prefork/app.sock"', `"socket" => "${ports.socket}"`],
          ]),
          ports.tcpFront,
        ),
      keepsConnections: false,
    },
  ]);
});
