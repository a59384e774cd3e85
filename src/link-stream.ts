/**
 * The framing of the link between the starter and an SDK worker: one JSON message a line, on
 * a plain socketpair. A line is read whole before it is parsed, so a peer could make the
 * reader hold anything it writes before its newline; this reader holds at most `maxLine`
 * bytes, and a longer line ends the stream (the peer is broken or hostile, not slow).
 */

/** The longest line either side sends or accepts, newline excluded. */
export const MAX_LINK_LINE = 64 * 1024;

const NEWLINE = 0x0a;

export class LineReader {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private overflowed = false;

  constructor(private readonly maxLine: number = MAX_LINK_LINE) {}

  /**
   * The complete lines in `chunk` (with what came before it), without their newlines, or
   * `'overflow'` once a line has run past the cap; nothing more is read after that.
   */
  push(chunk: Buffer): string[] | 'overflow' {
    if (this.overflowed) return 'overflow';
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      if (this.heldBytes + (nl - start) > this.maxLine) return this.overflow();
      const part = chunk.subarray(start, nl);
      lines.push(
        this.heldBytes === 0 ? part.toString('utf8') : Buffer.concat([...this.held, part]).toString('utf8'),
      );
      this.held = [];
      this.heldBytes = 0;
      start = nl + 1;
    }
    const rest = chunk.length - start;
    if (rest > 0) {
      if (this.heldBytes + rest > this.maxLine) return this.overflow();
      // A copy: the caller's chunk may be a slice of a larger pooled buffer.
      this.held.push(Buffer.from(chunk.subarray(start)));
      this.heldBytes += rest;
    }
    return lines;
  }

  /** Bytes held for a line not yet complete. */
  get pending(): number {
    return this.heldBytes;
  }

  private overflow(): 'overflow' {
    this.overflowed = true;
    this.held = [];
    this.heldBytes = 0;
    return 'overflow';
  }
}

/** One message as a line; `null` if it would be longer than the reader on the other side takes. */
export function encodeLine(message: unknown, maxLine: number = MAX_LINK_LINE): Buffer | null {
  const line = Buffer.from(`${JSON.stringify(message)}\n`, 'utf8');
  return line.length - 1 > maxLine ? null : line;
}
