import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  containsExcerpt,
  extractSamples,
  markerWords,
  normaliseOutput,
  shellCommands,
} from '../helpers/doc-samples.js';

// The text rules samples.test.ts relies on: if the extractor missed a fence, a block would go
// unchecked without anyone noticing.
const dir = mkdtempSync(join(tmpdir(), 'fcgi-prefork-extractor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('doc sample extraction', () => {
  it('finds every fence (backticks, tildes, indented, longer) and only the marker right above it', () => {
    writeFileSync(
      join(dir, 'a.md'),
      [
        '<!-- sample: shell -->',
        '```sh',
        'ls',
        '```',
        '<!-- sample: figure -->',
        '',
        '~~~',
        'x',
        '~~~',
        '- item',
        '  <!-- sample: script "a b" -->',
        '  ````ts',
        '  ```',
        '  console.log(1);',
        '  ````',
        '<!-- sample: stray -->',
        'text',
      ].join('\n'),
    );
    const { samples, strayMarkers } = extractSamples(dir, 'a.md');
    expect(samples.map((s) => [s.line, s.lang, s.marker, s.code])).toEqual([
      [2, 'sh', 'shell', 'ls\n'],
      [7, '', null, 'x\n'],
      [12, 'ts', 'script "a b"', '```\nconsole.log(1);\n'],
    ]);
    expect(strayMarkers).toEqual([5, 16]);
    expect(markerWords('script "a b"')).toEqual(['script', 'a b']);
  });

  it('splits commands like sh and refuses shell syntax', () => {
    expect(shellCommands("A=1 fcgi-prefork -p 9000 \\\n  -N 2 'x y'  # comment\n\nnpm test\n")).toEqual([
      {
        line: "A=1 fcgi-prefork -p 9000    -N 2 'x y'  # comment",
        words: ['A=1', 'fcgi-prefork', '-p', '9000', '-N', '2', 'x y'],
      },
      { line: 'npm test', words: ['npm', 'test'] },
    ]);
    expect(() => shellCommands('curl x | jq')).toThrow(/shell syntax '\|'/);
  });

  it('matches excerpts line for line, with ... skipping lines in order', () => {
    const file = 'a {\n  b;\n  c;\n}\nd {\n  e;\n}\n';
    expect(containsExcerpt(file, '  b;\n  c;\n')).toBe(true);
    expect(containsExcerpt(file, 'a {\n...\n}\nd {\n')).toBe(true);
    expect(containsExcerpt(file, '  c;\n  b;\n')).toBe(false);
    expect(containsExcerpt(file, 'd {\n...\n  b;\n')).toBe(false);
    expect(containsExcerpt(file, ' b;\n')).toBe(false);
  });

  it('normalises numbers, durations, Date headers and blanks, nothing else', () => {
    expect(normaliseOutput('pid 4120, up 3m12s  \r\n1     71.2 MiB\nDate: Wed, 25 Nov 2026\n')).toBe(
      'pid #, up #\n# # MiB\nDate: #',
    );
    expect(normaliseOutput('is already in use')).not.toBe(normaliseOutput('is in use'));
  });
});
