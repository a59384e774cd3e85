import { spawn } from 'node:child_process';

/**
 * sd_notify(3) for a Type=notify unit. Node has no unix datagram sockets, so each message is
 * sent by systemd-notify(1) with --pid=<our pid>, which
 * - adds MAINPID=<our pid>;
 * - as root, sends with SCM_CREDENTIALS naming our pid, so even NotifyAccess=main accepts it;
 *   unprivileged, the kernel refuses that and it sends as itself: the unit needs
 *   NotifyAccess=all (examples/systemd/fcgi-prefork.service sets it);
 * - then waits on a BARRIER=1 until the manager has read the message, so it is still alive
 *   when the manager looks up which unit the sender belongs to (the classic systemd-notify race).
 * Messages leave one at a time, in the order given.
 */
export interface Notifier {
  /** Queues one message, e.g. ['READY=1', 'STATUS=2 workers ready']. */
  notify(fields: readonly string[]): void;
  /** Resolves once every queued message has been handed over (or given up on). */
  flushed(): Promise<void>;
}

/** CLOCK_MONOTONIC in microseconds (what RELOADING=1 pairs with): libuv's hrtime is that clock. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** A notifier when NOTIFY_SOCKET is set (we run under a Type=notify unit), else null. */
export function createNotifier(env: NodeJS.ProcessEnv, log: (message: string) => void): Notifier | null {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return null;
  const program = 'systemd-notify';
  let tail = Promise.resolve();
  let disabled = false;
  let warned = false;

  const send = (fields: readonly string[]) =>
    new Promise<void>((resolve) => {
      if (disabled) return resolve();
      const child = spawn(program, [`--pid=${process.pid}`, ...fields], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { PATH: env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: socket },
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        disabled = true;
        log(
          e.code === 'ENOENT'
            ? `NOTIFY_SOCKET is set but ${program} is not installed (apt-get install systemd); not notifying systemd`
            : `cannot run ${program}: ${e.message}; not notifying systemd`,
        );
        resolve();
      });
      child.once('close', (code) => {
        if (code !== 0 && code !== null && !warned) {
          warned = true; // once: a broken NOTIFY_SOCKET would otherwise log on every message
          const why = stderr.trim().split('\n')[0] || `exit code ${code}`;
          log(`sd_notify ${fields[0]} failed: ${why}`);
        }
        resolve();
      });
    });

  return {
    notify(fields) {
      tail = tail.then(() => send(fields));
    },
    flushed: () => tail,
  };
}
