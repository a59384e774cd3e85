// Issue 18, item 3: FCGI_WEB_SERVER_ADDRS must fail closed. A peer that connects, sends a whole
// request and resets at once (SO_LINGER 0) is gone before the worker accepts it: its address
// reads undefined, and what it sent is still there to read. Such a connection must be closed
// before a byte is read, on both accept paths (bare stream handles, and net.Socket where Node
// internals are not used: --pending-deprecation).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GET, rawConnect, requestRecords } from '../helpers/fcgi-raw.js';
import { stopAll, until } from '../helpers/processes.js';
import { expectBounded, expectNobody, expectServes, startTarget, type Target } from './worker-target.js';

afterEach(stopAll);

const ATTACKS = 100;

/** Connects, sends a whole request, and resets (RST) once the kernel has taken it. */
function connectSendReset(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(Buffer.concat(requestRecords(1, GET('/attack'))), () => {
        socket.resetAndDestroy();
        resolve();
      });
    });
  });
}

/** While the worker is stopped, every attack is reset before the worker can accept it. */
async function attackWhileStopped(target: Target): Promise<void> {
  process.kill(target.pid, 'SIGSTOP');
  try {
    for (let i = 0; i < ATTACKS; i++) await connectSendReset(target.port);
  } finally {
    process.kill(target.pid, 'SIGCONT');
  }
}

const unknownRefusals = (target: Target) =>
  target.output().match(/refused connection from a peer whose address is unknown/g)?.length ?? 0;

describe.each([
  ['stream handles', {}],
  ['net.Socket (--pending-deprecation)', { NODE_OPTIONS: '--pending-deprecation' }],
])('FCGI_WEB_SERVER_ADDRS, accepting as %s', (_path, env: Record<string, string>) => {
  it(`closes ${ATTACKS} connect-send-reset peers unread, and no request reaches the handler`, async () => {
    const target = await startTarget({ ...env, FCGI_WEB_SERVER_ADDRS: '10.9.9.9' });
    expectNobody(target.pid);
    await attackWhileStopped(target);
    // Every attack was accepted, and refused as a peer without an address (not handled).
    await until(async () => unknownRefusals(target) + target.handled() >= ATTACKS, 10_000, 'every attack');
    expect(target.handled()).toBe(0);
    expect(unknownRefusals(target)).toBe(ATTACKS);
    // A peer that stays connected is refused by its address, as before.
    const plain = await rawConnect({ port: target.port });
    plain.send(...requestRecords(1, GET('/plain')));
    await plain.closed;
    // The worker logs the refusal as it closes: the line may reach us after the close did.
    const refusedByAddress = /refused connection from 127\.0\.0\.1: not in FCGI_WEB_SERVER_ADDRS/;
    await until(() => refusedByAddress.test(target.output()), 5000, 'the refusal line');
    expect(target.output()).toMatch(refusedByAddress);
    expect(target.handled()).toBe(0);
    expectBounded(target);
  });

  it('closes them also when their address would be allowed: unknown is not allowed', async () => {
    const target = await startTarget({ ...env, FCGI_WEB_SERVER_ADDRS: '127.0.0.1' });
    await attackWhileStopped(target);
    await until(async () => unknownRefusals(target) + target.handled() >= ATTACKS, 10_000, 'every attack');
    expect(target.handled()).toBe(0);
    // An allowed front that stays connected is served.
    expect(await expectServes(target)).toMatch(/^ok \d+\n$/);
    // The worker's "handled" line may reach us after its response did.
    await until(() => target.handled() >= 1, 5000, 'the handled line');
    expect(target.handled()).toBe(1);
  });
});
