// Issue 18, item 8: the --http front forwarded request paths nginx refuses. A real starter, a
// real worker (which logs each request it sees), and a raw TCP client sending the exact bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestPath } from '../../starter/front-path.js';
import { stopAll } from '../helpers/processes.js';
import { type FrontStarter, rawHttp, startFrontStarter, statuses } from './front-raw.js';

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`;

describe('the --http front refuses paths that leave the document root or carry control bytes', () => {
  let front: FrontStarter;
  beforeAll(async () => {
    front = await startFrontStarter(['--allow-root', '--document-root', '/var/www']);
  });
  afterAll(stopAll);

  it.each([
    ['/%2e%2e/%2e%2e/%2e%2e/tmp/evil.php', 'encoded .. above the root'],
    ['/../../../tmp/evil.php', 'plain .. above the root'],
    ['/app/%2e%2e/%2e%2e/tmp/evil.php', '.. climbing past the root from below'],
    ['/%2E%2E%2f%2E%2E%2ftmp/evil.php', 'upper-case escapes and an encoded slash'],
    ['/evil.php%00.jpg', 'NUL'],
    ['/evil.php%0d%0aX-Injected:%20yes', 'CR LF'],
    ['/evil.php%0a', 'LF'],
    ['/evil%zz.php', 'a bad escape'],
    ['/evil%ff.php', 'a byte that is not UTF-8'],
  ])('%s (%s): 400, and the worker never sees it', async (target) => {
    const { text, closed } = await rawHttp(front.httpPort, get(target));
    expect(statuses(text)).toEqual([400]);
    expect(closed).toBe(true);
    expect(front.starter.output()).not.toMatch(/saw ".*evil/);
  });

  it('forwards a path with . and .. inside the root, normalised as nginx does', async () => {
    const { text } = await rawHttp(front.httpPort, get('/a/./b/..//%2e/c/%2e%2e/params?x=%2e%2e'));
    expect(statuses(text), text + front.starter.output()).toEqual([200]);
    const params = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
    expect(params.SCRIPT_FILENAME).toBe('/var/www/a/params');
    expect(params.SCRIPT_NAME).toBe('/a/params');
    expect(params.DOCUMENT_URI).toBe('/a/params');
    // As nginx's $request_uri and $query_string: as sent.
    expect(params.REQUEST_URI).toBe('/a/./b/..//%2e/c/%2e%2e/params?x=%2e%2e');
    expect(params.QUERY_STRING).toBe('x=%2e%2e');
    expect(front.starter.output()).toContain('saw "/a/./b/..//%2e/c/%2e%2e/params?x=%2e%2e"');
  });
});

describe('requestPath', () => {
  it('decodes, resolves and merges as ngx_http_parse_complex_uri', () => {
    expect(requestPath('/')).toEqual({ ok: true, path: '/' });
    expect(requestPath('/a//b/./c/')).toEqual({ ok: true, path: '/a/b/c/' });
    expect(requestPath('/a/b/..')).toEqual({ ok: true, path: '/a/' });
    expect(requestPath('/a/..')).toEqual({ ok: true, path: '/' });
    expect(requestPath('/caf%C3%A9?q')).toEqual({ ok: true, path: '/café' });
    expect(requestPath('http://host:8080/x/../y?z')).toEqual({ ok: true, path: '/y' });
    expect(requestPath('*')).toMatchObject({ ok: false });
    expect(requestPath('host:443')).toMatchObject({ ok: false });
    expect(requestPath('/..')).toMatchObject({ ok: false, reason: 'the path climbs above the root' });
    expect(requestPath('/%')).toMatchObject({ ok: false, reason: 'a bad percent escape in the path' });
  });
});
