import { existsSync } from 'node:fs';
import { findProgram } from '../../test/helpers/peers.js';

/** Every program the benchmarks compare against, with the Debian package that has it. */
export interface PeerProgram {
  readonly program: string;
  readonly debian: string;
}

export const REQUIRED_PEERS: readonly PeerProgram[] = [
  { program: 'wrk', debian: 'wrk' },
  { program: 'nginx', debian: 'nginx-light' },
  { program: 'go', debian: 'golang-go' },
  { program: 'gcc', debian: 'gcc' },
  { program: 'php-cgi', debian: 'php-cgi' },
  { program: 'fcgistarter', debian: 'apache2-utils' },
  { program: 'spawn-fcgi', debian: 'spawn-fcgi' },
];

/** libfcgi's header, for the C peer. */
const LIBFCGI_HEADER = '/usr/include/fcgiapp.h';

/** One entry per missing peer, naming the package to install; empty when all are there. */
export function missingPeers(
  programs: readonly string[],
  peers: readonly PeerProgram[] = REQUIRED_PEERS,
): string[] {
  const missing: string[] = [];
  for (const { program, debian } of peers)
    if (programs.includes(program) && !findProgram(program))
      missing.push(`${program} (apt-get install ${debian})`);
  if (programs.includes('gcc') && !existsSync(LIBFCGI_HEADER))
    missing.push(`${LIBFCGI_HEADER} (apt-get install libfcgi-dev)`);
  return missing;
}

/** Exits 1 with one line when a peer the benchmark needs is not installed: no partial tables. */
export function requirePeers(programs: readonly string[] = REQUIRED_PEERS.map((p) => p.program)): void {
  const missing = missingPeers(programs);
  if (missing.length === 0) return;
  console.error(`bench: missing peers: ${missing.join(', ')}`);
  process.exit(1);
}
