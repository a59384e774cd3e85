import { createClient } from '../../src/client/client.js';
import type { Target } from '../../src/client/connection.js';

/** One GET over a fresh connection (no keep-conn), as a front would send it; resolves with the body. */
export async function fcgiGet(target: Target, uri = '/', timeoutMs = 10_000): Promise<string> {
  const client = createClient(target, {
    keepConn: false,
    multiplex: false,
    connections: 1,
    responseTimeout: timeoutMs,
  });
  try {
    const question = uri.indexOf('?');
    const response = await client.requestAll({
      params: {
        REQUEST_METHOD: 'GET',
        REQUEST_URI: uri,
        SCRIPT_NAME: question < 0 ? uri : uri.slice(0, question),
        QUERY_STRING: question < 0 ? '' : uri.slice(question + 1),
        SERVER_PROTOCOL: 'HTTP/1.1',
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body.toString()}`);
    return response.body.toString();
  } finally {
    client.close();
  }
}
