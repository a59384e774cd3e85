import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** Open descriptors of this process above stderr, with whether each is close-on-exec. */
export function listDescriptors(): { fd: number; cloexec: boolean }[] {
  const out: { fd: number; cloexec: boolean }[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return out; // no procfs: nothing we can check
  }
  for (const name of names) {
    const fd = Number(name);
    if (fd <= 2) continue;
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // the directory handle readdir used, gone already
    }
    const flags = /^flags:\s+([0-7]+)/m.exec(info);
    if (!flags) continue;
    out.push({ fd, cloexec: (Number.parseInt(flags[1]!, 8) & O_CLOEXEC) !== 0 });
  }
  return out;
}

/**
 * Closes every descriptor this process inherited without close-on-exec, except `keep`.
 * libuv opens its own descriptors close-on-exec, but spawn passes the rest straight into
 * every child (fcgistarter and spawn-fcgi leak them this way). Returns the fds closed.
 */
export function closeInheritedDescriptors(keep: ReadonlySet<number>): number[] {
  const closed: number[] = [];
  for (const { fd, cloexec } of listDescriptors()) {
    if (cloexec || keep.has(fd)) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // closed between listing and now
    }
  }
  return closed;
}
