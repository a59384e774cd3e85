import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import {
  createHosts,
  type Host,
  killHost,
  netnsSkipReason,
  pidsIn,
  removeHosts,
  removeStale,
  setLink,
  startIn,
} from '../helpers/netns.js';
import { type Nginx, startNginxHttp } from '../helpers/nginx.js';
import { peer } from '../helpers/peers.js';
import { CLI, ROOT, type Running, stopAll, until } from '../helpers/processes.js';
import { httpLoop } from '../reliability/loop.js';

/**
 * Scale-out with existing parts: three "machines" (network namespaces, each joined to this one
 * by a veth pair) each run an fcgi-prefork pool of examples/hello.ts on its own address, and a
 * real nginx here balances over them with examples/scale-out/nginx.conf (addresses replaced).
 * Under load (GETs and every 5th a POST) one host goes away: its starter gets SIGTERM (graceful
 * drain); every process of the host gets SIGKILL (a crash); the host is marked `down` and nginx
 * reloaded before the SIGTERM (a planned stop); its link goes down (cut off the network).
 * nginx's $upstream_addr, sent back in a header, says which host answered each request and
 * which hosts were tried before it.
 */
const nginxPeer = peer('nginx', 'nginx-light');
const netnsSkip = netnsSkipReason();
const skipReason = nginxPeer.skipReason ?? netnsSkip;

const PORT = 9000;
const CONCURRENCY = 8;
/** How long the load goes on after the stopped host's last process is gone. */
const AFTER_MS = 1000;
/** After the host is gone, responses it sent before may still be on their way for this long. */
const SETTLE_MS = 100;
/** fastcgi_read_timeout in the test (60 s as shipped): how long a request waits on a lost host. */
const READ_TIMEOUT_S = 2;

interface Outcome {
  readonly at: number;
  readonly status: number;
  /** Every host tried, in order; the last one answered (for a 200). */
  readonly tried: string[];
}

describe.skipIf(skipReason)(
  `scale-out over network namespaces${skipReason ? ` (${skipReason})` : ''}`,
  () => {
    let hosts: Host[] = [];
    const starters = new Map<string, Running>();
    let nginx: Nginx | undefined;
    let front = 0;

    beforeAll(async () => {
      await removeStale();
      hosts = createHosts(3);
    });
    afterAll(async () => {
      await stopAll();
      await removeHosts();
    });

    beforeEach(async () => {
      for (const host of hosts) {
        const running = starters.get(host.ns);
        if (running && running.child.exitCode === null && running.child.signalCode === null) continue;
        await killHost(host.ns); // what a killed host left, if anything
        starters.set(
          host.ns,
          startIn(
            host,
            // On that host: fcgi-prefork -a <address> -p 9000 -N 1 examples/hello.ts (one worker
            // each: the test is about hosts, and four pools would only slow it down).
            [
              process.execPath,
              '--import',
              'tsx',
              CLI,
              '-a',
              host.address,
              '-p',
              String(PORT),
              '-N',
              '1',
              '--allow-root',
              'examples/hello.ts',
            ],
            { cwd: ROOT, env: { ...process.env, FCGI_WEB_SERVER_ADDRS: host.peerAddress } },
          ),
        );
      }
      await Promise.all(hosts.map((host) => waitServing({ host: host.address, port: PORT }, 1)));
      front = await freePort();
      nginx = await startNginxHttp(conf(), front, { masterProcess: true });
    });
    afterEach(async () => {
      await nginx?.stop();
      nginx = undefined;
    });

    /**
     * The shipped file with this run's addresses (and `down` on the hosts given): each edit must
     * apply, so the example cannot drift from what is tested. The header is the test's window on
     * nginx's choices.
     */
    function conf(down: readonly Host[] = []): string {
      const edits: [RegExp | string, string][] = [
        ...hosts.map((host, i): [string, string] => [
          `server 10.0.0.1${i + 1}:9000`,
          `server ${host.address}:${PORT}${down.includes(host) ? ' down' : ''}`,
        ]),
        ['listen 80;', `listen 127.0.0.1:${front};`],
        ['include fastcgi_params;', 'include /etc/nginx/fastcgi_params;'],
        ['fastcgi_read_timeout 60s;', `fastcgi_read_timeout ${READ_TIMEOUT_S}s;`],
        [
          'fastcgi_pass fcgi_prefork_hosts;',
          'fastcgi_pass fcgi_prefork_hosts; add_header X-Upstream $upstream_addr always;',
        ],
      ];
      let text = readFileSync(join(ROOT, 'examples', 'scale-out', 'nginx.conf'), 'utf8');
      for (const [from, to] of edits) {
        const before = text;
        text = text.replace(from, to);
        expect(text, `edit ${from} applies`).not.toBe(before);
      }
      return text;
    }

    /**
     * Load through nginx; `stop` takes a host away 600 ms in and resolves once it is gone. The
     * load goes on for AFTER_MS more. Prints and returns what each host did before and after.
     */
    async function loadAndStop(victim: Host, stop: () => Promise<void>, afterMs = AFTER_MS) {
      const outcomes: Outcome[] = [];
      let goneAt: number | undefined;
      const started = Date.now();
      const load = httpLoop(
        `${nginx!.url}/`,
        CONCURRENCY,
        () => (goneAt !== undefined && Date.now() > goneAt + afterMs) || Date.now() > started + 15_000,
        20_000,
        {
          postEvery: 5,
          postBody: 'order=1',
          onResponse: (res: http.IncomingMessage) => {
            const header = res.headers['x-upstream'];
            outcomes.push({
              at: Date.now(),
              status: res.statusCode ?? 0,
              tried: typeof header === 'string' ? header.split(', ') : [],
            });
          },
        },
      );
      await new Promise((r) => setTimeout(r, 600));
      const stoppedAt = Date.now();
      await stop();
      goneAt = Date.now();
      const result = await load;

      const key = (address: string) => address.replace(`:${PORT}`, '');
      const served = (from: number, to: number) => {
        const counts: Record<string, number> = Object.fromEntries(hosts.map((h) => [h.address, 0]));
        for (const o of outcomes)
          if (o.status === 200 && o.at >= from && o.at < to) counts[key(o.tried.at(-1)!)]! += 1;
        return counts;
      };
      const before = served(0, stoppedAt);
      // A response that left the host just before it went can reach the client a moment later.
      const settled = goneAt + SETTLE_MS;
      const during = served(stoppedAt, settled);
      const after = served(settled, Number.POSITIVE_INFINITY);
      // Attempts nginx made on the victim after it was gone: the tries that failed over.
      const triedAfter = outcomes.filter(
        (o) => o.at > settled && o.tried.slice(0, -1).some((t) => key(t) === victim.address),
      ).length;
      const retried = outcomes.filter((o) => o.tried.length > 1).length;
      const failed = Object.fromEntries(result.failures);
      console.log(
        `scale-out, ${victim.address} stopped after ${stoppedAt - started} ms, gone ${goneAt - stoppedAt} ms later: ` +
          `${result.sent} sent, ${result.ok} ok, failed ${JSON.stringify(failed)}, ${retried} retried by nginx; ` +
          `served before ${JSON.stringify(before)}, during ${JSON.stringify(during)}, after ${JSON.stringify(after)}; ` +
          `requests that tried ${victim.address} after it was gone: ${triedAfter}`,
      );
      return { result, failed, before, after, triedAfter };
    }

    function expectSpreadAndTakeover(victim: Host, outcome: Awaited<ReturnType<typeof loadAndStop>>): void {
      // Before the stop every host served; afterwards the two others carried the whole load.
      for (const host of hosts) expect(outcome.before[host.address], host.address).toBeGreaterThan(0);
      expect(outcome.after[victim.address]).toBe(0);
      for (const host of hosts)
        if (host !== victim) expect(outcome.after[host.address], host.address).toBeGreaterThan(50);
      // max_fails=3 fail_timeout=10s: at most CONCURRENCY requests can be under way on the host
      // when it goes, and after max_fails more failures nginx leaves it out for fail_timeout.
      expect(outcome.triedAfter).toBeLessThanOrEqual(3 + CONCURRENCY);
    }

    /**
     * No GET failed; POSTs only with a 502 and at most one per connection nginx had to the host.
     * nginx resends a GET whose host closed or reset the connection before the response header,
     * never a POST it had already sent (fastcgi_next_upstream without non_idempotent).
     */
    function expectOnlyPostsLost(failed: Record<string, number>): void {
      expect(Object.keys(failed).filter((k) => k !== 'POST 502')).toEqual([]);
      expect(failed['POST 502'] ?? 0).toBeLessThanOrEqual(CONCURRENCY);
    }

    it('SIGTERM to one host: it drains, the others take over, no GET fails', async () => {
      const victim = hosts[0]!;
      const starter = starters.get(victim.ns)!;
      const outcome = await loadAndStop(victim, async () => {
        // A half-second request in progress on the host (straight to it) is answered in full.
        const slow = fcgiGet({ host: victim.address, port: PORT }, '/stream?n=25');
        await new Promise((r) => setTimeout(r, 100));
        starter.child.kill('SIGTERM');
        expect(await slow).toMatch(/chunk 0\n[\s\S]*chunk 24\n$/);
        expect(await starter.exited).toBe(0);
        await until(() => pidsIn(victim.ns).length === 0, 10_000, 'the host to be empty');
      });
      // A POST fails here only if nginx sent it, as the host stopped, on a connection the host was
      // closing: an idle kept-alive one, or one still queued on the listening socket when that
      // closed. No server-side close avoids both; taking the host out of nginx first does (below).
      expectOnlyPostsLost(outcome.failed);
      expectSpreadAndTakeover(victim, outcome);
    });

    it('SIGKILL of every process of one host: GETs fail over, only POSTs in flight can fail', async () => {
      const victim = hosts[1]!;
      const outcome = await loadAndStop(victim, () => killHost(victim.ns));
      // The POSTs in flight on the host when it died are lost; the GETs are resent.
      expectOnlyPostsLost(outcome.failed);
      expectSpreadAndTakeover(victim, outcome);
    });

    it('taken out of nginx first (down + reload), then SIGTERM: no request fails at a host, not even a POST', async () => {
      const victim = hosts[2]!;
      const starter = starters.get(victim.ns)!;
      const outcome = await loadAndStop(victim, async () => {
        // What an operator does: mark the host down, reload nginx (the old nginx worker finishes
        // its requests and closes its connections to the host), then stop the host.
        await nginx!.reload(conf([victim]));
        starter.child.kill('SIGTERM');
        expect(await starter.exited).toBe(0);
        await until(() => pidsIn(victim.ns).length === 0, 10_000, 'the host to be empty');
      });
      // Every request nginx passed on was answered: no 502/504, POSTs included, and nginx never
      // tried the host again. What remains is nginx's own reload: a client connection can be
      // reset as the old nginx worker exits (ECONNRESET at the client, no host involved), at
      // most one per client.
      expect(
        Object.keys(outcome.failed).filter((k) => k !== 'ECONNRESET' && k !== 'POST ECONNRESET'),
      ).toEqual([]);
      const resets = (outcome.failed.ECONNRESET ?? 0) + (outcome.failed['POST ECONNRESET'] ?? 0);
      expect(resets).toBeLessThanOrEqual(CONCURRENCY);
      expectSpreadAndTakeover(victim, outcome);
      expect(outcome.triedAfter).toBe(0);
    });

    it('a host cut off the network: requests wait for the timeouts; GETs then fail over, sent POSTs get 504', async () => {
      const victim = hosts[0]!;
      try {
        const outcome = await loadAndStop(
          victim,
          async () => setLink(victim, false),
          READ_TIMEOUT_S * 1000 + 1500,
        );
        // No answer at all: a request already sent (also on a kept-alive connection) waits
        // fastcgi_read_timeout, a new connection fastcgi_connect_timeout; then a GET goes to the
        // next host and a POST gets 504. Requests stuck there hold their client, so at most one
        // per client.
        expect(Object.keys(outcome.failed).filter((k) => k !== 'POST 504')).toEqual([]);
        expect(outcome.failed['POST 504'] ?? 0).toBeLessThanOrEqual(CONCURRENCY);
        expectSpreadAndTakeover(victim, outcome);
      } finally {
        setLink(victim, true);
      }
    });
  },
);
