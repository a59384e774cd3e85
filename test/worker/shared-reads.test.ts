import { createHash, randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readIntoSharedBuffer } from '../../src/net/index.js';
import {
  encodeBeginRequest,
  encodeParams,
  encodeRecord,
  FCGI_DATA,
  FCGI_FILTER,
  FCGI_STDIN,
} from '../../src/protocol/index.js';
import { createServer, type FcgiServer } from '../../worker-sdk/index.js';
import { GET, rawConnect, responseOf } from '../helpers/fcgi-raw.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('reads into one shared buffer', () => {
  it('works on this Node: an accepted socket reads into the shared buffer, pauses and resumes, and ends', async () => {
    const got: Buffer[] = [];
    const buffers = new Set<Buffer>();
    let ended!: () => void;
    const end = new Promise<void>((r) => {
      ended = r;
    });
    const server = net.createServer((socket) => {
      // Each read is copied out at once: the bytes are only valid inside the callback.
      const ok = readIntoSharedBuffer(socket, (length, buffer) => {
        buffers.add(buffer);
        got.push(Buffer.from(buffer.subarray(0, length)));
        // Stop after the first read for a moment: nothing may arrive while paused.
        if (got.length === 1) {
          socket.pause();
          const seen = got.length;
          setTimeout(() => {
            expect(got.length).toBe(seen);
            socket.resume();
          }, 100);
        }
      });
      expect(ok).toBe(true);
      socket.on('end', () => {
        socket.end();
        ended();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(r)));
    const data = randomBytes(3 * 1024 * 1024);
    const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.end(data);
    await end;
    expect(sha(Buffer.concat(got))).toBe(sha(data));
    expect(got.length).toBeGreaterThan(1);
    // Every read went into the same buffer: that is the point.
    expect(buffers.size).toBe(1);
  });

  it('keeps body bytes a handler reads late intact, for requests interleaved on one connection', async () => {
    const logs: string[] = [];
    const server: FcgiServer = createServer({ log: (m) => logs.push(m) }, async (req, res) => {
      // Read nothing until more reads have gone through the shared buffer.
      await new Promise((r) => setTimeout(r, 200));
      const parts: Buffer[] = [];
      for await (const part of req) parts.push(part as Buffer);
      const data: Buffer[] = [];
      if (req.data) for await (const part of req.data) data.push(part as Buffer);
      res.end(`${sha(Buffer.concat(parts))} ${sha(Buffer.concat(data))}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(r)));
    const conn = await rawConnect({ port: (server.address() as AddressInfo).port });
    const bodies = [1, 2, 3].map(() => randomBytes(300_000));
    const files = [1, 2, 3].map(() => randomBytes(100_000));
    // Whole records of each request, bodies in records of 20,000 bytes.
    const records = (type: number, id: number, data: Buffer) => {
      const out: Buffer[] = [];
      for (let at = 0; at < data.length; at += 20_000)
        out.push(encodeRecord(type, id, data.subarray(at, at + 20_000)));
      return [...out, encodeRecord(type, id)];
    };
    const streams = bodies.map((body, i) => {
      const id = i + 1;
      return [
        encodeBeginRequest(id, FCGI_FILTER, 1),
        Buffer.concat(encodeParams(id, GET(`/${id}`))),
        ...records(FCGI_STDIN, id, body),
        ...records(FCGI_DATA, id, files[i]!),
      ];
    });
    // Round-robin the three requests' records, in small writes, so reads cut records anywhere.
    const wire: Buffer[] = [];
    for (let at = 0; streams.some((s) => at < s.length); at++)
      for (const s of streams) if (at < s.length) wire.push(s[at]!);
    const all = Buffer.concat(wire);
    for (let at = 0; at < all.length; at += 7_001) conn.send(all.subarray(at, at + 7_001));
    for (const [i, body] of bodies.entries()) {
      const { stdout } = await responseOf(conn, i + 1, 10_000);
      expect(stdout.split('\r\n\r\n')[1]).toBe(`${sha(body)} ${sha(files[i]!)}`);
    }
    expect(logs).toEqual([]);
    conn.close();
  });
});
