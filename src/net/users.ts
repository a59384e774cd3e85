import { execFileSync } from 'node:child_process';
import { UserError } from './errors.js';

/** Resolves a user name or numeric id through NSS (getent), as spawn-fcgi's getpwnam does. */
export function lookupUser(name: string): { uid: number; gid: number; name: string } {
  const entry = getent('passwd', name);
  if (!entry) {
    if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name), name };
    throw new UserError(`unknown user '${name}'`, 2);
  }
  const [user, , uid, gid] = entry.split(':');
  return { uid: Number(uid), gid: Number(gid), name: user ?? name };
}

export function lookupGroup(name: string): number {
  const entry = getent('group', name);
  if (!entry) {
    if (/^\d+$/.test(name)) return Number(name);
    throw new UserError(`unknown group '${name}'`, 2);
  }
  return Number(entry.split(':')[2]);
}

function getent(database: string, key: string): string | null {
  try {
    return (
      execFileSync('getent', [database, key], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() || null
    );
  } catch {
    return null;
  }
}
