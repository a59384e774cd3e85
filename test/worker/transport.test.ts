import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/client.js';
import {
  acceptStreamHandles,
  STREAM_HANDLES,
  type Transport,
  type TransportEvents,
} from '../../src/net/index.js';
import { createServer } from '../../worker-sdk/index.js';
import { freePort, waitForListen } from '../helpers/net.js';
import { ROOT, start, stopAll } from '../helpers/processes.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await stopAll();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Accepted {
  transport: Transport;
  events: string[];
  data: Buffer[];
  ended: Promise<void>;
  closed: Promise<void>;
  drained: () => Promise<void>;
}

/** A net.Server whose connections come as stream-handle transports, taken in turn with next(). */
async function handleServer(): Promise<{ port: number; next(): Promise<Accepted> }> {
  const server = net.createServer(() => {
    throw new Error('a connection came as a net.Socket');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((r) => server.close(r)));
  const queue: Accepted[] = [];
  const waiting: ((a: Accepted) => void)[] = [];
  const taken = acceptStreamHandles(
    server,
    (transport) => {
      let ended!: () => void;
      let closed!: () => void;
      let drain: (() => void) | null = null;
      const accepted: Accepted = {
        transport,
        events: [],
        data: [],
        ended: new Promise((r) => {
          ended = r;
        }),
        closed: new Promise((r) => {
          closed = r;
        }),
        drained: () =>
          new Promise((r) => {
            drain = r;
          }),
      };
      const events: TransportEvents = {
        onData(buffer, length) {
          // Valid only during the call: copied out.
          accepted.data.push(Buffer.from(buffer.subarray(0, length)));
        },
        onEnd() {
          accepted.events.push('end');
          ended();
        },
        onDrain() {
          accepted.events.push('drain');
          drain?.();
        },
        onClose() {
          accepted.events.push('close');
          closed();
        },
      };
      transport.start(events);
      closers.push(() => {
        transport.destroy();
        return accepted.closed;
      });
      const waiter = waiting.shift();
      if (waiter) waiter(accepted);
      else queue.push(accepted);
    },
    (err) => {
      throw err;
    },
  );
  expect(taken).toBe(true);
  return {
    port: (server.address() as AddressInfo).port,
    next: () => {
      const first = queue.shift();
      return first ? Promise.resolve(first) : new Promise((r) => waiting.push(r));
    },
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
    socket.once('error', reject);
    closers.push(async () => socket.destroy());
  });
}

function readAll(socket: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  socket.on('data', (part: Buffer) => parts.push(part));
  return new Promise((resolve) => socket.once('end', () => resolve(Buffer.concat(parts))));
}

describe('connections as stream handles, without net.Socket', () => {
  it('are available on this Node', () => {
    expect(STREAM_HANDLES).toBe(true);
  });

  it('read into the shared buffer, write in order, tell the peer’s address, half-close both ways', async () => {
    const server = await handleServer();
    const client = await connect(server.port);
    const accepted = await server.next();
    const { transport } = accepted;
    expect(transport.sharedReads).toBe(true);
    expect(transport.remoteAddress).toBe('127.0.0.1');
    expect(transport.remotePort).toBe(client.localPort);
    expect(transport.localPort).toBe(client.remotePort);
    const sent = randomBytes(1024 * 1024);
    const received = readAll(client);
    client.end(sent);
    await accepted.ended;
    expect(sha(Buffer.concat(accepted.data))).toBe(sha(sent));
    // After the peer's FIN it can still be answered.
    expect(transport.write(Buffer.from('one '))).toBe(true);
    transport.writev([Buffer.from('two '), Buffer.from('three')]);
    transport.end();
    expect((await received).toString()).toBe('one two three');
    await accepted.closed;
    expect(accepted.events).toEqual(['end', 'close']);
    expect(transport.write(Buffer.from('late'))).toBe(false);
  });

  it('hold back reads while paused, and apply backpressure to writes with a drain after', async () => {
    const server = await handleServer();
    const client = await connect(server.port);
    const accepted = await server.next();
    const { transport } = accepted;
    transport.pause();
    client.write('while paused');
    await new Promise((r) => setTimeout(r, 100));
    expect(accepted.data).toEqual([]);
    transport.resume();
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(accepted.data).toString()).toBe('while paused');
    // The peer reads nothing: a large write stays queued.
    client.pause();
    const big = randomBytes(16 * 1024 * 1024);
    expect(transport.write(big)).toBe(false);
    expect(transport.writableLength).toBeGreaterThan(0);
    const drained = accepted.drained();
    const received = readAll(client);
    client.resume();
    await drained;
    expect(transport.writableLength).toBe(0);
    transport.end();
    expect(sha(await received)).toBe(sha(big));
    client.end();
    await accepted.closed;
  });

  it('drop a peer that never closes its side after ours, and close at once on destroy', async () => {
    const server = await handleServer();
    const lingering = await connect(server.port);
    const first = await server.next();
    const ended = new Promise((r) => lingering.once('end', r).resume());
    const started = Date.now();
    first.transport.end();
    await ended;
    await first.closed;
    expect(Date.now() - started).toBeGreaterThan(4000);
    expect(Date.now() - started).toBeLessThan(8000);
    const destroyed = await connect(server.port);
    const second = await server.next();
    const gone = new Promise((r) => destroyed.once('end', r).resume());
    second.transport.destroy();
    await second.closed;
    await gone;
  }, 15_000);
});

describe('a worker on stream handles', () => {
  it('serves on a unix socket (a pipe handle, which has no addresses), with and without keep-conn', async () => {
    const path = join(tmpdir(), `fcgi-prefork-transport-${process.pid}-${Date.now()}.sock`);
    const server = createServer((req, res) => {
      res.end(`${req.url} from ${req.socket.remoteAddress}`);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    closers.push(() => new Promise((r) => server.close(r)));
    for (const keepConn of [false, true]) {
      const client = createClient({ path }, { keepConn, connections: 2 });
      try {
        const answers = await Promise.all(
          [1, 2, 3, 4].map((i) =>
            client.requestAll({
              params: { REQUEST_METHOD: 'GET', REQUEST_URI: `/${i}`, REMOTE_ADDR: '192.0.2.7' },
            }),
          ),
        );
        expect(answers.map((a) => a.body.toString())).toEqual(
          [1, 2, 3, 4].map((i) => `/${i} from 192.0.2.7`),
        );
      } finally {
        client.close();
      }
    }
  });
});

describe('a worker where stream handles cannot be used', () => {
  const helloExample = join(ROOT, 'examples', 'hello.ts');

  it('is told so by the check at load (under --pending-deprecation, where process.binding warns)', () => {
    const probe = `import(${JSON.stringify(join(ROOT, 'src', 'net', 'stream-handle.ts'))}).then((m) => console.log(m.STREAM_HANDLES))`;
    const run = (flags: string[], env: Record<string, string> = {}) =>
      execFileSync(process.execPath, [...flags, '--import', 'tsx', '-e', probe], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
    expect(run([])).toBe('true');
    expect(run(['--pending-deprecation'])).toBe('false');
    expect(run([], { NODE_PENDING_DEPRECATION: '1' })).toBe('false');
    expect(run([], { NODE_OPTIONS: '--pending-deprecation' })).toBe('false');
  });

  for (const fallback of [false, true]) {
    it(`serves the same over ${fallback ? 'net.Socket' : 'stream handles'}, with no warning printed`, async () => {
      const port = await freePort();
      const worker = start(process.execPath, ['--import', 'tsx', helloExample], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port), ...(fallback ? { NODE_PENDING_DEPRECATION: '1' } : {}) },
      });
      await waitForListen({ host: '127.0.0.1', port });
      const body = randomBytes(3 * 1024 * 1024);
      for (const keepConn of [false, true]) {
        const client = createClient({ host: '127.0.0.1', port }, { keepConn, connections: 2 });
        try {
          const params = (uri: string, method = 'GET') => ({
            REQUEST_METHOD: method,
            REQUEST_URI: uri,
            SCRIPT_NAME: uri,
            SERVER_PROTOCOL: 'HTTP/1.1',
            REMOTE_ADDR: '127.0.0.1',
          });
          const hellos = await Promise.all(
            Array.from({ length: 20 }, () => client.requestAll({ params: params('/') })),
          );
          for (const r of hellos) expect(r.body.toString()).toMatch(/^Hello from fcgi-prefork/);
          const echo = await client.requestAll({
            params: { ...params('/echo', 'POST'), CONTENT_LENGTH: String(body.length) },
            body,
          });
          expect(JSON.parse(echo.body.toString())).toEqual({ bytes: body.length, sha256: sha(body) });
        } finally {
          client.close();
        }
      }
      await worker.stop();
      expect(worker.output()).not.toMatch(/Warning/);
    });
  }
});
