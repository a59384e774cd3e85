import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { waitServing } from '../helpers/fcgi.js';
import { freePort } from '../helpers/net.js';
import { ROOT, startCli, stopAll } from '../helpers/processes.js';

// No container engine or cluster here: the manifests and the Dockerfile are checked for
// consistency, and the container's args and probe commands run against a real pool.
const DIR = join(ROOT, 'examples', 'kubernetes');

afterEach(stopAll);

interface Container {
  name: string;
  args: string[];
  ports: { name: string; containerPort: number; protocol: string }[];
  readinessProbe: { exec: { command: string[] } };
  livenessProbe: { exec: { command: string[] } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  resources: { limits: { cpu: string } };
  securityContext: { allowPrivilegeEscalation: boolean };
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: a manifest is checked field by field below
  spec: any;
}

const docs = parseAllDocuments(readFileSync(join(DIR, 'fcgi-prefork.yaml'), 'utf8')).map((doc) => {
  expect(doc.errors).toEqual([]);
  return doc.toJS() as Manifest;
});
const deployment = docs.find((d) => d.kind === 'Deployment')!;
const service = docs.find((d) => d.kind === 'Service')!;
const container = (deployment?.spec.template.spec.containers as Container[] | undefined)?.[0];

/** The value after a flag in an argument list. */
function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
}

/** The Dockerfile's instructions, continuation lines joined. */
function dockerfile(): { instruction: string; value: string }[] {
  const text = readFileSync(join(DIR, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const space = line.indexOf(' ');
      return { instruction: line.slice(0, space).toUpperCase(), value: line.slice(space + 1).trim() };
    });
}

const steps = dockerfile();
const json = (instruction: string) =>
  JSON.parse(steps.filter((s) => s.instruction === instruction).at(-1)!.value) as string[];

/**
 * How this checkout runs an argument list of the image: `fcgi-prefork` is the CLI under tsx, the
 * built example its source, the pod's 0.0.0.0:9000 a free loopback port (tests bind loopback).
 */
function here(args: readonly string[], port: number): string[] {
  const out = args.map((a) =>
    a === '0.0.0.0'
      ? '127.0.0.1'
      : a === '9000'
        ? String(port)
        : a === '127.0.0.1:9000'
          ? `127.0.0.1:${port}`
          : a === 'dist/examples/hello.js'
            ? 'examples/hello.ts'
            : a,
  );
  // The image runs as the unprivileged `node`; a root test run has to allow root workers.
  return process.getuid?.() === 0 && args[0] !== 'request' ? ['--allow-root', ...out] : out;
}

describe('examples/kubernetes manifests', () => {
  it('a Deployment and a Service whose selectors, labels and ports agree', () => {
    expect(deployment).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment' });
    expect(service).toMatchObject({ apiVersion: 'v1', kind: 'Service' });
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(Object.keys(deployment.spec.selector.matchLabels).length).toBeGreaterThan(0);
    expect(labels).toMatchObject(service.spec.selector);
    expect(Object.keys(service.spec.selector).length).toBeGreaterThan(0);

    const c = container!;
    const port = Number(flag(c.args, '--port'));
    expect(flag(c.args, '--address')).toBe('0.0.0.0'); // reachable from the Service, not just the pod
    const [servicePort] = service.spec.ports;
    const named = c.ports.find((p) => p.name === servicePort.targetPort);
    expect(named).toMatchObject({ containerPort: port, protocol: 'TCP' });
    expect(servicePort.port).toBe(port);
    // Both probes ask the pool itself, on the port it listens on.
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      const command = probe.exec.command;
      expect(command.slice(0, 3)).toEqual(['fcgi-prefork', 'request', '--get-values']);
      expect(flag(command, '--connect')).toBe(`127.0.0.1:${port}`);
    }
    // No more workers than CPUs the container may use.
    expect(Number(flag(c.args, '--workers'))).toBeLessThanOrEqual(Number(c.resources.limits.cpu));
  });

  it('a grace period longer than the preStop pause plus --graceful-timeout', () => {
    const c = container!;
    const preStop = c.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    const graceful = Number(flag(c.args, '--graceful-timeout'));
    expect(graceful).toBeGreaterThan(0);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(
      Number(preStop[1]) + graceful,
    );
    expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
  });

  it('a Dockerfile on node:26-slim, npm ci, the build, a non-root user, and the Deployment’s args as CMD', () => {
    const froms = steps.filter((s) => s.instruction === 'FROM').map((s) => s.value.split(' ')[0]);
    expect(froms.length).toBeGreaterThan(0);
    for (const from of froms) expect(from).toBe('node:26-slim');
    const runs = steps.filter((s) => s.instruction === 'RUN').map((s) => s.value);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    const build = runs.find((r) => /\btsc -p tsconfig\.image\.json\b/.test(r));
    expect(build).toBeDefined();
    // The worker CMD names is what that build emits: dist/ + a source it includes, as .js.
    const include = JSON.parse(/echo '(\{.*\})'/.exec(build!)![1]!).include as string[];
    const worker = json('CMD').at(-1)!;
    expect(worker).toMatch(/^dist\/.*\.js$/);
    expect(include).toContain(worker.slice('dist/'.length).replace(/\.js$/, '.ts'));
    // Every COPY from the build context names something this repository has.
    for (const copy of steps.filter((s) => s.instruction === 'COPY' && !s.value.startsWith('--from'))) {
      const sources = copy.value.split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
    const user = steps.filter((s) => s.instruction === 'USER').at(-1)?.value;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(json('ENTRYPOINT').at(-1)).toBe('fcgi-prefork');
    expect(json('CMD')).toEqual(container!.args);
    const expose = steps.find((s) => s.instruction === 'EXPOSE')?.value;
    expect(Number(expose)).toBe(Number(flag(json('CMD'), '--port')));
  });

  it('the container args start a pool, the probe command passes against it, and fails once it stops', async () => {
    const port = await freePort();
    const pool = startCli(here(container!.args, port));
    await pool.waitFor(/listening on/);
    await waitServing({ host: '127.0.0.1', port }, Number(flag(container!.args, '--workers')));

    for (const probe of [container!.readinessProbe, container!.livenessProbe]) {
      const [program, ...args] = probe.exec.command;
      expect(program).toBe('fcgi-prefork');
      const run = startCli(here(args, port));
      expect(await run.exited).toBe(0);
      expect(run.output()).toMatch(/^FCGI_MAX_CONNS=\d+\nFCGI_MAX_REQS=\d+\nFCGI_MPXS_CONNS=1\n$/);
    }

    // What the kubelet does after preStop: SIGTERM, and the pool stops gracefully.
    expect(await pool.stop()).toBe(0);
    const [, ...args] = container!.readinessProbe.exec.command;
    const down = startCli(here(args, port));
    expect(await down.exited).toBe(1);
    expect(down.output().trim().split('\n')).toHaveLength(1);
    expect(down.output()).toMatch(/^fcgi-prefork: /);
  });
});
