import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The published package must run on plain Node, without tsx or the sources: pack it the way
// `npm publish` would, install the tarball somewhere else and run what a user runs.
const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'fcgi-prefork-pack-'));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      npm_config_loglevel: 'error',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    },
  });
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('installs from the tarball and runs without the sources', { timeout: 240_000 }, () => {
    run('npm', ['pack', '--pack-destination', work], root);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBe(`fcgi-prefork-${version}.tgz`);

    const app = join(work, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', join(work, tarball!)], app);

    expect(run('npx', ['--no-install', 'fcgi-prefork', '--version'], app).trim()).toContain(version);

    // Every export resolves to built JavaScript.
    const script = `
      const p = await import('fcgi-prefork/protocol');
      const w = await import('fcgi-prefork/worker');
      const c = await import('fcgi-prefork/client');
      const s = await import('fcgi-prefork');
      console.log(p.FCGI_BEGIN_REQUEST, typeof w.createServer, typeof c.createClient, typeof s.startPool);
    `;
    expect(run('node', ['--input-type=module', '-e', script], app).trim()).toBe(
      '1 function function function',
    );
  });
});
