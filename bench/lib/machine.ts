import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, type } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../test/helpers/processes.js';
import type { Machine } from './results.js';

/** The Debian packages of the peers, and the npm packages compared against. */
const DEBIAN = [
  'nginx-light',
  'php-cgi',
  'golang-go',
  'libfcgi-dev',
  'apache2-utils',
  'spawn-fcgi',
  'wrk',
  'gcc',
];
const NPM = ['node-fastcgi', 'fastcgi-stream', 'fastcgi-client'];

function debianVersion(pkg: string): string {
  try {
    // dpkg-query's own format syntax, not a template.
    const format = ['$', '{Version}'].join('');
    return execFileSync('dpkg-query', ['-W', '-f', format, pkg], {
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  } catch {
    return 'not installed';
  }
}

function npmVersion(pkg: string): string {
  try {
    return (
      JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'not installed';
  }
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? type();
  } catch {
    return type();
  }
}

export function describeMachine(): Machine {
  const peers: Record<string, string> = {};
  for (const pkg of DEBIAN) peers[`${pkg} (Debian)`] = debianVersion(pkg);
  for (const pkg of NPM) peers[`${pkg} (npm)`] = npmVersion(pkg);
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    kernel: `${type()} ${release()}`,
    os: osName(),
    node: process.version,
    loadAverage: loadavg()[0] ?? 0,
    peers,
  };
}
