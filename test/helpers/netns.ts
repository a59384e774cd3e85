import { execFileSync, type SpawnOptions, spawnSync } from 'node:child_process';
import { findProgram, IN_CI } from './peers.js';
import { isAlive, type Running, sleep, start } from './processes.js';

/**
 * Machines for scale-out tests: each "host" is a network namespace joined to this one by a veth
 * pair, with a /30 of 10.201.0.0/16 between the two ends (nothing outside this machine). Names
 * carry the test process's pid (fpso<pid><letter>), so a run can find and remove what a crashed
 * earlier run left behind. Needs root and iproute2.
 */
export interface Host {
  /** The namespace's name, also the name of the veth end in this namespace. */
  readonly ns: string;
  /** The host's address (the veth end inside the namespace). */
  readonly address: string;
  /** This namespace's end of the link: where the host sees nginx come from. */
  readonly peerAddress: string;
}

const PREFIX = 'fpso';
const STALE = new RegExp(`^${PREFIX}(\\d+)[a-z]$`);

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Why namespaces cannot be made here (not root, no iproute2), or null when they can; tries one.
 * Under CI=true (root, .ci/run installs iproute2) that is a failure, never a skip.
 */
export function netnsSkipReason(): string | null {
  let reason: string | null = null;
  if (!findProgram('ip')) reason = 'ip not installed (apt-get install iproute2)';
  else {
    const probe = `${PREFIX}${process.pid}z`;
    const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
    if (added.status === 0) spawnSync('ip', ['netns', 'del', probe]);
    else reason = `cannot create network namespaces (needs root): ${added.stderr.trim().split('\n')[0]}`;
  }
  if (reason && IN_CI) throw new Error(`CI=true but ${reason}`);
  return reason;
}

/**
 * Starts a program on a host with `ip netns exec`, which execs: the child is the program itself,
 * so its pid gets the test's signals.
 */
export function startIn(host: Host, command: readonly string[], options: SpawnOptions = {}): Running {
  return start('ip', ['netns', 'exec', host.ns, ...command], options);
}

/**
 * The host's network cable: down, its end of the veth drops everything, so nginx's packets to
 * it vanish without an answer (no reset, no refusal), as with a power cut seen from outside.
 */
export function setLink(host: Host, up: boolean): void {
  ip('-n', host.ns, 'link', 'set', 'eth0', up ? 'up' : 'down');
}

/** Processes inside a namespace (the host's starter, workers and their helpers). */
export function pidsIn(ns: string): number[] {
  try {
    return ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGKILL every process in the namespace: the host crashes. Resolves once none is left. */
export async function killHost(ns: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const pids = pidsIn(ns);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(20);
  }
  throw new Error(`processes still running in ${ns}: ${pidsIn(ns).join(' ')}`);
}

/** Removes a namespace with whatever runs in it; its veth pair goes with it. */
async function removeNamespace(ns: string): Promise<void> {
  await killHost(ns);
  spawnSync('ip', ['netns', 'del', ns]);
}

/** Removes the namespaces (with their processes) and veths whose owning test pid passes `test`. */
async function removeWhere(test: (pid: number) => boolean): Promise<void> {
  const owned = (name: string) => {
    const pid = STALE.exec(name)?.[1];
    return pid !== undefined && test(Number(pid));
  };
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (owned(name)) await removeNamespace(name);
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1] ?? '';
    if (owned(name)) spawnSync('ip', ['link', 'del', name]);
  }
}

/** Removes what earlier runs left behind (their test process is gone): a crash, a kill -9. */
export const removeStale = (): Promise<void> => removeWhere((pid) => !isAlive(pid));

/** Removes every host of this test process, whatever state they are in (even half made). */
export const removeHosts = (): Promise<void> => removeWhere((pid) => pid === process.pid);

/** A 10.201.x.0/24 that no interface of this machine uses yet (concurrent runs pick apart). */
function freeBlock(): number {
  const used = ip('-4', '-o', 'addr', 'show');
  for (let i = 0; i < 256; i++) {
    const x = (process.pid + i) % 256;
    if (!used.includes(` 10.201.${x}.`)) return x;
  }
  throw new Error('no free 10.201.x.0/24 block');
}

/** Creates `count` hosts (at most 26): namespace, veth pair, a /30 each, links up. */
export function createHosts(count: number): Host[] {
  const block = freeBlock();
  const hosts: Host[] = [];
  for (let i = 0; i < count; i++) {
    const ns = `${PREFIX}${process.pid}${String.fromCharCode(97 + i)}`;
    const peerAddress = `10.201.${block}.${4 * i + 1}`;
    const address = `10.201.${block}.${4 * i + 2}`;
    ip('netns', 'add', ns);
    // The veth end in this namespace is named after the host; the other end, moved into the
    // host at creation, is its eth0.
    ip('link', 'add', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${peerAddress}/30`, 'dev', ns);
    ip('link', 'set', ns, 'up');
    ip('-n', ns, 'addr', 'add', `${address}/30`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    hosts.push({ ns, address, peerAddress });
  }
  return hosts;
}
