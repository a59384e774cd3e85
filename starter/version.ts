import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This package's version, found from starter/ under tsx and from dist/starter/ when built. */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'fcgi-prefork' && pkg.version) return pkg.version;
    } catch {
      // not here; one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
