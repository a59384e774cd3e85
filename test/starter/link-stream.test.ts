import { describe, expect, it } from 'vitest';
import { encodeLine, LineReader } from '../../src/link-stream.js';

const b = (s: string) => Buffer.from(s, 'utf8');

describe('the link line reader', () => {
  it('returns whole lines, across chunks and several to a chunk', () => {
    const r = new LineReader(100);
    expect(r.push(b('{"a":'))).toEqual([]);
    expect(r.pending).toBe(5);
    expect(r.push(b('1}\n{"b":2}\n{"c"'))).toEqual(['{"a":1}', '{"b":2}']);
    expect(r.push(b(':3}\n'))).toEqual(['{"c":3}']);
    expect(r.pending).toBe(0);
  });

  it('keeps a character split between chunks whole', () => {
    const r = new LineReader(100);
    const line = b('"é€"\n');
    expect(r.push(line.subarray(0, 2))).toEqual([]);
    expect(r.push(line.subarray(2, 5))).toEqual([]);
    expect(r.push(line.subarray(5))).toEqual(['"é€"']);
  });

  it('takes a line of exactly the cap and refuses one byte more, then reads nothing', () => {
    const r = new LineReader(8);
    expect(r.push(b('12345678\n'))).toEqual(['12345678']);
    expect(r.push(b('1234'))).toEqual([]);
    expect(r.push(b('56789'))).toBe('overflow');
    expect(r.pending).toBe(0);
    expect(r.push(b('\n{}\n'))).toBe('overflow');
  });

  it('holds no more than the cap however much comes without a newline', () => {
    const r = new LineReader(64 * 1024);
    const chunk = Buffer.alloc(16 * 1024, 0x41);
    let result: string[] | 'overflow' = [];
    let fed = 0;
    while (result !== 'overflow' && fed < 10_000_000) {
      result = r.push(chunk);
      fed += chunk.length;
      expect(r.pending).toBeLessThanOrEqual(64 * 1024);
    }
    expect(result).toBe('overflow');
    expect(fed).toBe(80 * 1024);
  });

  it('refuses a long line that arrives in one chunk with its newline', () => {
    const r = new LineReader(8);
    expect(r.push(b('ok\n123456789\n'))).toBe('overflow');
  });

  it('encodes a message as one line, and refuses one over the cap', () => {
    expect(encodeLine({ type: 'x', s: 'a\nb' })?.toString()).toBe('{"type":"x","s":"a\\nb"}\n');
    expect(encodeLine({ s: 'x'.repeat(100) }, 50)).toBeNull();
  });
});
