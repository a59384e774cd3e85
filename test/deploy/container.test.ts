import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { createClient } from '../../src/client/client.js';
import type { Target } from '../../src/client/connection.js';
import { fcgiGet, waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { peer } from '../helpers/peers.js';
import {
  hostPid,
  imagesSkipReason,
  inside,
  podman,
  podmanRun,
  removePodmanConf,
  uniqueName,
} from '../helpers/podman.js';
import { CLI, childrenOf, ROOT, start, stopAll } from '../helpers/processes.js';

// examples/kubernetes for real: the Dockerfile built with podman on the local node:26-slim
// (.ci/deploy-images), the image run as it is, then the manifest played as a pod. Ports are
// published on 127.0.0.1 only.
const DIR = join(ROOT, 'examples', 'kubernetes');
const BASE = 'docker.io/library/node:26-slim';
const skip = imagesSkipReason([BASE]);
const nsenter = peer('nsenter', 'util-linux');

const docs = parseAllDocuments(readFileSync(join(DIR, 'fcgi-prefork.yaml'), 'utf8')).map(
  // biome-ignore lint/suspicious/noExplicitAny: a manifest, edited field by field below
  (doc) => doc.toJS() as any,
);
const deployment = docs.find((d) => d.kind === 'Deployment');
const pool = deployment.spec.template.spec.containers[0];
/** The image the manifest names, which the test builds from the Dockerfile. */
const IMAGE: string = pool.image;
const WORKERS = Number(pool.args[pool.args.indexOf('--workers') + 1]);
const GRACEFUL = Number(pool.args[pool.args.indexOf('--graceful-timeout') + 1]);

/** Uid, capabilities and no_new_privs of a process, from the host's /proc. */
function credentials(pid: number): { uid: string; capEff: string; noNewPrivs: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)![1]!;
  return { uid: field('Uid'), capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs') };
}

/** Every process of a container, from its first one (tini) down. */
async function processTree(first: number): Promise<number[]> {
  const all = [first];
  for (let i = 0; i < all.length; i++) all.push(...(await childrenOf(all[i]!)));
  return all;
}

/**
 * GET /stream?n=… of examples/hello.ts (a chunk every 20 ms): `started` once the head has come,
 * so the request is in a worker; `body` is everything, or rejects if it was cut.
 */
async function streaming(target: Target, chunks: number): Promise<{ body: Promise<string> }> {
  const client = createClient(target, { keepConn: false, connections: 1, responseTimeout: 60_000 });
  const uri = `/stream?n=${chunks}`;
  const response = await client.request({
    params: {
      REQUEST_METHOD: 'GET',
      REQUEST_URI: uri,
      SCRIPT_NAME: '/stream',
      QUERY_STRING: `n=${chunks}`,
      SERVER_PROTOCOL: 'HTTP/1.1',
      REMOTE_ADDR: '127.0.0.1',
    },
  });
  expect(response.status).toBe(200);
  const body = (async () => {
    let text = '';
    for await (const chunk of response.body) text += chunk.toString();
    const end = await response.end;
    client.close();
    if (end.protocolStatus !== 0) throw new Error(`protocol status ${end.protocolStatus}`);
    return text;
  })();
  return { body };
}

/** A container's output: the starter writes to stderr. */
async function logs(container: string): Promise<string> {
  const result = await podmanRun(['logs', container]);
  return result.stdout + result.stderr;
}

/** waitServing, and on failure what the container said, so a failed start explains itself. */
async function serving(container: string, target: Target): Promise<void> {
  try {
    await waitServing(target, WORKERS, 30_000);
  } catch (error) {
    const state = await podmanRun(['inspect', '--format', '{{json .State}}', container]);
    throw new Error(
      `${(error as Error).message}\nstate: ${state.stdout}${state.stderr}\nlogs:\n${await logs(container)}`,
    );
  }
}

const everyChunk = (n: number) => Array.from({ length: n }, (_, i) => `chunk ${i}\n`).join('');

describe.skipIf(skip)('examples/kubernetes: the image and the pod, with podman', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcgi-container-'));
  const names: string[] = [];
  const pods: string[] = [];

  beforeAll(async () => {
    // Layers are cached: after the first build only changed sources are built again.
    await podman(['build', '--pull=never', '-f', join(DIR, 'Dockerfile'), '-t', IMAGE, ROOT], 900_000);
  }, 900_000);

  afterAll(async () => {
    await stopAll();
    for (const name of names) await podmanRun(['rm', '--force', '--time', '0', name]);
    for (const file of pods) await podmanRun(['kube', 'down', file]);
    removePodmanConf();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  describe('the image, run as it is', () => {
    const name = uniqueName('image');
    let target: { host: string; port: number };

    beforeAll(async () => {
      const port = await freePort();
      target = { host: '127.0.0.1', port };
      names.push(name);
      await podman(['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:9000`, IMAGE]);
      await serving(name, target);
    }, 60_000);

    it('serves requests from the host, every process as the image’s non-root user', async () => {
      expect(await fcgiGet(target)).toMatch(/^Hello from fcgi-prefork worker \d \(pid \d+\)/);
      expect((await podman(['inspect', '--format', '{{.Config.User}}', name])).trim()).toBe('node');
      const tree = await processTree(await hostPid(name));
      expect(tree).toHaveLength(1 + 1 + WORKERS); // tini, the starter, its workers
      for (const pid of tree) expect(credentials(pid).uid, String(pid)).toBe('1000\t1000\t1000\t1000');
    });

    it('the probes’ commands succeed inside it', async () => {
      for (const probe of [pool.readinessProbe, pool.livenessProbe]) {
        const output = await inside(name, probe.exec.command);
        expect(output).toMatch(/^FCGI_MAX_CONNS=\d+\nFCGI_MAX_REQS=\d+\nFCGI_MPXS_CONNS=1\n$/);
      }
    });

    it('replaces a worker killed with kill -9 inside', { timeout: 60_000 }, async () => {
      const victim = /\(pid (\d+)\)/.exec(await fcgiGet(target))![1]!;
      await inside(name, ['sh', '-c', `kill -9 ${victim}`]);
      // Two workers answer again, and neither is the one killed.
      await waitServing(target, WORKERS, 30_000);
      for (let i = 0; i < WORKERS * 6; i++)
        expect(/\(pid (\d+)\)/.exec(await fcgiGet(target))![1]).not.toBe(victim);
      expect(await logs(name)).toContain(`(pid ${victim}) killed by SIGKILL`);
    });

    it('podman stop (SIGTERM through tini) answers the requests in flight, within the graceful timeout, exit 0', {
      timeout: 90_000,
    }, async () => {
      const inFlight = await Promise.all(Array.from({ length: 4 }, () => streaming(target, 100)));
      // As long as the kubelet's grace period: the starter's own timeout must end it first.
      const stop = await podmanRun(['stop', '--time', String(GRACEFUL + 15), name], 60_000);
      expect(stop.code).toBe(0);
      for (const request of inFlight) expect(await request.body).toBe(everyChunk(100));
      const state = JSON.parse(await podman(['inspect', '--format', '{{json .State}}', name])) as {
        ExitCode: number;
        Status: string;
      };
      expect(state).toMatchObject({ Status: 'exited', ExitCode: 0 });
      expect(await logs(name)).toMatch(/SIGTERM: stopping[\s\S]*stopped/);
    });
  });

  describe('the manifest, with podman kube play', () => {
    const name = uniqueName('kube');
    const file = join(dir, 'fcgi-prefork.yaml');
    const container = `${name}-pod-0-pool`;
    let target: { host: string; port: number };

    beforeAll(async () => {
      const port = await freePort();
      target = { host: '127.0.0.1', port };
      // What podman needs on one machine, and nothing else: podman 4 publishes a containerPort on
      // the host's 0.0.0.0 under its own number, which Kubernetes does not, so two replicas would
      // both bind it; here one replica, on 127.0.0.1 and a free port, under a name of this run.
      const edited = docs.map((doc) => structuredClone(doc));
      const d = edited.find((doc) => doc.kind === 'Deployment');
      d.metadata.name = name;
      d.spec.replicas = 1;
      Object.assign(d.spec.template.spec.containers[0].ports[0], { hostIP: '127.0.0.1', hostPort: port });
      writeFileSync(file, edited.map((doc) => stringify(doc)).join('---\n'));
      pods.push(file);
      await podman(['kube', 'play', file]);
      await serving(container, target);
    }, 60_000);

    it('runs the pod as the manifest says: uid 1000, no capabilities, read-only root, and serves', async () => {
      const inspect = JSON.parse(await podman(['inspect', container]))[0] as {
        HostConfig: { ReadonlyRootfs: boolean };
      };
      expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
      for (const pid of await processTree(await hostPid(container))) {
        const c = credentials(pid);
        expect(c.uid, String(pid)).toBe('1000\t1000\t1000\t1000');
        expect(c.capEff).toBe('0000000000000000'); // drop: ["ALL"]
        expect(c.noNewPrivs).toBe('1'); // allowPrivilegeEscalation: false
      }
      expect(await fcgiGet(target)).toMatch(/^Hello from fcgi-prefork worker \d \(pid \d+\)/);
    });

    it('the probes: liveness as podman’s healthcheck, both commands inside the pod', async () => {
      // podman turns the livenessProbe into a healthcheck (it ignores the readinessProbe).
      const health = await podmanRun(['healthcheck', 'run', container]);
      expect(health.code).toBe(0);
      for (const probe of [pool.readinessProbe, pool.livenessProbe])
        expect(await inside(container, probe.exec.command)).toMatch(/^FCGI_MAX_CONNS=\d+\n/);
    });

    it.skipIf(nsenter.skipReason)(
      'podman pod stop, then podman kube down: a request in flight in the pod is answered',
      {
        timeout: 90_000,
      },
      async () => {
        // From the host's CLI in the pod's network namespace, on its loopback, as the probes
        // connect: podman stops the pod's infra container (its network) along with the pool, which
        // would cut a connection through the published port while the pool still drains.
        const net = `/proc/${await hostPid(container)}/ns/net`;
        const request = start(
          nsenter.path!,
          [
            `--net=${net}`,
            '--',
            process.execPath,
            '--import',
            'tsx',
            CLI,
            'request',
            '--connect',
            '127.0.0.1:9000',
            '/stream?n=100',
          ],
          { cwd: ROOT },
        );
        await request.waitFor(/chunk 0\n/);
        // podman before 5.1 kills a pod's containers at once on `kube down` (containers/podman#22397);
        // `pod stop` sends the stop signal (SIGTERM, to tini) and waits, as the kubelet does.
        const stop = await podmanRun(['pod', 'stop', `${name}-pod-0`], 60_000);
        expect(stop.code, stop.stderr).toBe(0);
        expect(await request.exited, request.output()).toBe(0);
        expect(request.output()).toContain(everyChunk(100));
        expect(await podman(['inspect', '--format', '{{.State.ExitCode}}', container])).toBe('0\n');
        expect(await logs(container)).toMatch(/SIGTERM: stopping[\s\S]*stopped/);
        const down = await podmanRun(['kube', 'down', file], 60_000);
        expect(down.code, down.stderr).toBe(0);
        pods.splice(pods.indexOf(file), 1);
        expect((await podmanRun(['container', 'exists', container])).code).toBe(1);
      },
    );
  });
});
