import type { Readable, Writable } from 'node:stream';

/**
 * Copies a child's output to ours a line at a time, each line prefixed with the worker's slot
 * and pid, so the lines of N workers interleave readably. A last line without a newline is
 * flushed when the child's stream ends.
 */
export function prefixLines(source: Readable, target: Writable, prefix: string): void {
  let partial = '';
  source.setEncoding('utf8');
  source.on('data', (chunk: string) => {
    const text = partial + chunk;
    const last = text.lastIndexOf('\n');
    if (last < 0) {
      partial = text;
      return;
    }
    partial = text.slice(last + 1);
    const lines = text.slice(0, last).split('\n');
    let out = '';
    for (const line of lines) out += `${prefix}${line}\n`;
    target.write(out);
  });
  source.on('end', () => {
    if (partial) target.write(`${prefix}${partial}\n`);
    partial = '';
  });
}
