// Issue 18, item 8: a worker (compromised, or just wrong) framed the client's connection. A
// real starter, the hostile worker of this directory, and a raw keep-alive client pipelining
// a second request behind the first, so a desynchronised connection would show.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from '../helpers/processes.js';
import { type FrontStarter, rawHttp, startFrontStarter, statuses } from './front-raw.js';

const keepAlive = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`;
const pipelined = (path: string) => `${keepAlive(path)}GET /next HTTP/1.1\r\nHost: app\r\n\r\n`;

function bodyOf(text: string): string {
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

describe('the --http front frames worker responses as nginx does', () => {
  let front: FrontStarter;
  beforeAll(async () => {
    front = await startFrontStarter(['--allow-root']);
  });
  afterAll(stopAll);

  it('keeps a connection alive across well-framed responses', async () => {
    const { text, closed } = await rawHttp(front.httpPort, pipelined('/ok'));
    expect(statuses(text)).toEqual([200, 200]);
    expect(text).toContain('ok /ok\n');
    expect(text).toContain('ok /next\n');
    expect(closed).toBe(false);
  });

  it('cuts a body longer than its Content-Length there and closes: no smuggled response', async () => {
    const { text, closed } = await rawHttp(front.httpPort, pipelined('/cl-long'));
    expect(statuses(text)).toEqual([200]);
    expect(text).toMatch(/content-length: 11\r\n/i);
    expect(bodyOf(text)).toBe('hello world');
    expect(text).not.toContain('X-Smuggled');
    expect(closed).toBe(true);
    await front.starter.waitFor(
      /http: a worker's body for GET \/cl-long is longer than its Content-Length 11: cut there, client connection closed/,
    );
  });

  it('stops reading a long body at the cut, and the front serves on after it', async () => {
    for (let round = 0; round < 3; round++) {
      const { text, closed } = await rawHttp(front.httpPort, pipelined('/cl-huge'));
      expect(statuses(text)).toEqual([200]);
      expect(bodyOf(text)).toBe('x'.repeat(11));
      expect(closed).toBe(true);
    }
    const { text } = await rawHttp(front.httpPort, pipelined('/ok'));
    expect(statuses(text)).toEqual([200, 200]);
  });

  it('closes after a body shorter than its Content-Length: the next response never follows', async () => {
    const { text, closed } = await rawHttp(front.httpPort, pipelined('/cl-short'));
    expect(statuses(text)).toEqual([200]);
    expect(text).toMatch(/content-length: 100\r\n/i);
    expect(bodyOf(text)).toBe('0123456789');
    expect(closed).toBe(true);
    await front.starter.waitFor(
      /http: a worker's body for GET \/cl-short is shorter than its Content-Length 100/,
    );
  });

  it.each([
    ['/cl-dup', /duplicate Content-Length: 2, 40/],
    ['/cl-bad', /invalid Content-Length: 1x/],
    ['/status-100', /status 100 is not a final status/],
    ['/status-101', /status 101 is not a final status/],
  ])('answers %s with 502, nothing of the worker’s head forwarded', async (path, logged) => {
    const { text } = await rawHttp(front.httpPort, pipelined(path));
    // The connection stays usable: the 502 is the front's own, well framed.
    expect(statuses(text)).toEqual([502, 200]);
    expect(text).not.toMatch(/content-length: 40|Upgrade|Switching|not final/i);
    expect(text).toContain('ok /next\n');
    await front.starter.waitFor(logged);
  });

  it('passes a HEAD response whose Content-Length describes the GET body', async () => {
    const { text, closed } = await rawHttp(
      front.httpPort,
      `HEAD /cl-short HTTP/1.1\r\nHost: app\r\n\r\n${keepAlive('/next')}`,
    );
    expect(statuses(text)).toEqual([200, 200]);
    expect(text).toContain('ok /next\n');
    expect(closed).toBe(false);
  });
});
