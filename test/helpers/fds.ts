// What a process's descriptors are, read from /proc: the tests of how workers get the socket.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { childrenOf, until } from './processes.js';

/** The descriptors of `pid` that point at `target` (as readlink shows it: `socket:[123]`). */
export function fdsPointingAt(pid: number, target: string): number[] {
  const out: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) out.push(Number(fd));
    } catch {
      // closed meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

/** Whether `fd` of `pid` is in non-blocking mode (O_NONBLOCK in its file status flags). */
export function isNonBlocking(pid: number, fd = 0): boolean {
  const flags = Number.parseInt(
    /^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]!,
    8,
  );
  return (flags & 0o4000) !== 0;
}

/**
 * SIGKILLs one child of `parent` and resolves once its replacement has been spawned (not
 * necessarily listening yet), with the one killed and one that was left.
 */
export async function killOneAwaitRespawn(parent: number): Promise<{ victim: number; survivor: number }> {
  const [victim, survivor] = await childrenOf(parent);
  process.kill(victim!, 'SIGKILL');
  await until(
    async () => (await childrenOf(parent)).some((pid) => pid !== victim && pid !== survivor),
    10_000,
    'the respawned worker',
  );
  return { victim: victim!, survivor: survivor! };
}
