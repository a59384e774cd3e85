import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IN_CI, peer } from './peers.js';

/**
 * Rootful podman for test/deploy, with runc: crun, podman's default, fails on this kind of host
 * (cgroups v1 hybrid). The images come from .ci/deploy-images (no image registry is reachable):
 * a missing one skips with the reason, and fails under CI=true, like a missing peer.
 */
const podmanPeer = peer('podman', 'podman');
const runc = peer('runc', 'runc');

/**
 * Rootful podman asks runc for 1048576 open files (and as many processes) whatever the host's
 * hard limit is, and setrlimit fails without CAP_SYS_RESOURCE. `--ulimit` fixes that for `run`,
 * but not for the infra container of `kube play` (nor for `exec`): so runc goes through this
 * wrapper, which lowers the two limits in the spec it is given to its own hard limits.
 */
function runtimeWrapper(dir: string, runcPath: string): string {
  const path = join(dir, 'runc');
  const limit = (name: string, hard: string) =>
    `s/\\{"type":"${name}","hard":[0-9]+,"soft":[0-9]+\\}/{"type":"${name}","hard":${hard},"soft":${hard}}/`;
  writeFileSync(
    path,
    `#!/bin/sh
# The spec of a container (create: --bundle <dir>/config.json) or of a process (exec: --process).
spec=
previous=
for arg in "$@"; do
  [ "$previous" = --bundle ] && spec=$arg/config.json
  [ "$previous" = --process ] && spec=$arg
  previous=$arg
done
# The hard limits of this process: runc's, as podman's.
files=$(awk '/^Max open files/ { print $5 }' /proc/self/limits)
processes=$(awk '/^Max processes/ { print $4 }' /proc/self/limits)
if [ -n "$spec" ] && [ -f "$spec" ]; then
  case "$files$processes" in
  *[!0-9]*) ;; # unlimited: nothing to lower
  *) sed -i -E '${limit('RLIMIT_NOFILE', `'"$files"'`)}; ${limit('RLIMIT_NPROC', `'"$processes"'`)}' "$spec" || exit 1 ;;
  esac
fi
exec ${runcPath} "$@"
`,
    { mode: 0o755 },
  );
  return path;
}

const confDir = mkdtempSync(join(tmpdir(), 'fcgi-podman-'));
const containersConf = join(confDir, 'containers.conf');
if (runc.path)
  writeFileSync(
    containersConf,
    `[engine]\nruntime = "runc"\n[engine.runtimes]\nrunc = ["${runtimeWrapper(confDir, runc.path)}"]\n`,
  );

/** Why the podman tests cannot run here (skip), or null. */
export const podmanSkipReason: string | null = podmanPeer.skipReason ?? runc.skipReason;

/** Removes the runtime wrapper; call after every container of the file is removed. */
export function removePodmanConf(): void {
  rmSync(confDir, { recursive: true, force: true });
}

export interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `podman args…` without blocking the event loop (a load loop may be running). */
export function podmanRun(args: readonly string[], timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      podmanPeer.path ?? 'podman',
      args,
      {
        env: { ...process.env, CONTAINERS_CONF: containersConf },
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `podman args…`, its stdout; throws with podman's stderr when it fails. */
export async function podman(args: readonly string[], timeoutMs?: number): Promise<string> {
  const result = await podmanRun(args, timeoutMs);
  if (result.code !== 0)
    throw new Error(`podman ${args.join(' ')}: exit ${result.code}\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** `podman exec <container> args…`, its stdout; throws when the command fails. */
export function inside(container: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  return podman(['exec', container, ...args], timeoutMs);
}

/** Skip reason for images .ci/deploy-images builds; under CI=true a missing one throws. */
export function imagesSkipReason(images: readonly string[]): string | null {
  if (podmanSkipReason) return podmanSkipReason;
  for (const image of images) {
    const exists = spawnSync(podmanPeer.path!, ['image', 'exists', image]);
    if (exists.status === 0) continue;
    const reason = `image ${image} missing (bash .ci/deploy-images builds it)`;
    if (IN_CI) throw new Error(`CI=true but ${reason}: .ci/run must build it`);
    return reason;
  }
  return null;
}

/** A container, pod or image name no other run (or other file of this run) uses. */
export function uniqueName(what: string): string {
  return `fcgi-test-${what}-${process.pid}-${Date.now().toString(36)}`;
}

/** The host pid of a container's first process. */
export async function hostPid(container: string): Promise<number> {
  return Number((await podman(['inspect', '--format', '{{.State.Pid}}', container])).trim());
}
