import { chmodSync } from 'node:fs';
import { peer } from './peers.js';
import { type Running, start } from './processes.js';

// perl (perl-base, essential in Debian) stands in for systemd's notify socket: Node has no unix
// datagram sockets.
export const perl = peer('perl', 'perl-base');

export interface NotifySocket {
  readonly path: string;
  readonly listener: Running;
  /** Messages so far, each as its fields in order (BARRIER=1 left out). */
  messages(): string[][];
}

/** A unix datagram socket at `path`, as systemd's NOTIFY_SOCKET, writable by anyone (a service user). */
export async function notifySocket(path: string): Promise<NotifySocket> {
  const listener = start(perl.path!, [
    '-MIO::Socket::UNIX',
    '-e',
    '$|=1; my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM(), Local => $ARGV[0]) or die "$!\\n";' +
      ' print "listening\\n"; while (defined $s->recv(my $m, 65536)) { $m =~ s/\\n/\\t/g; print "$m\\n"; }',
    path,
  ]);
  await listener.waitFor(/^listening$/m);
  chmodSync(path, 0o666);
  return {
    path,
    listener,
    // BARRIER=1 is systemd-notify waiting until the manager has read the message before it.
    messages: () =>
      listener
        .output()
        .split('\n')
        .slice(1)
        .filter((line) => line !== '' && line !== 'BARRIER=1')
        .map((line) => line.split('\t')),
  };
}

/** The value of NAME= in one message. */
export function field(message: readonly string[] | undefined, name: string): string | undefined {
  return message?.find((f) => f.startsWith(`${name}=`))?.slice(name.length + 1);
}
