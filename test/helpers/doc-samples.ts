import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The code blocks of the docs, for test/docs/samples.test.ts (its header describes the
 * `<!-- sample: … -->` markers). Pure text work: finding fences and markers, splitting
 * command lines, matching excerpts, normalising output.
 */
export interface Sample {
  /** Markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** First word of the info string ('' when the fence has none). */
  readonly lang: string;
  /** What follows `sample:` in the marker on the line before the fence, or null if unmarked. */
  readonly marker: string | null;
  /** The block's lines, each ending in \n. */
  readonly code: string;
}

/** README.md, docs/*.md and every examples/**\/README.md. */
export function docFiles(root: string): string[] {
  const files = ['README.md'];
  for (const name of readdirSync(join(root, 'docs')).sort())
    if (name.endsWith('.md')) files.push(`docs/${name}`);
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === 'README.md') files.push(relative(root, path));
    }
  };
  walk(join(root, 'examples'));
  return files;
}

const MARKER = /^\s*<!--\s*sample:\s*(.*?)\s*-->\s*$/;
const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;

/** The fenced blocks of one file, and the lines of markers that no fence follows. */
export function extractSamples(root: string, file: string): { samples: Sample[]; strayMarkers: number[] } {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const samples: Sample[] = [];
  const markerLines = new Set<number>();
  lines.forEach((text, i) => {
    if (MARKER.test(text)) markerLines.add(i);
  });
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end]!)) end++;
    const body = lines
      .slice(i + 1, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
    const marker = i > 0 ? (MARKER.exec(lines[i - 1]!)?.[1] ?? null) : null;
    if (marker !== null) markerLines.delete(i - 1);
    samples.push({ file, line: i + 1, lang, marker, code: body.map((l) => `${l}\n`).join('') });
    i = end;
  }
  return { samples, strayMarkers: [...markerLines].map((i) => i + 1) };
}

/** A marker split into words; "double quoted" words keep their spaces. */
export function markerWords(marker: string): string[] {
  return [...marker.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * The commands of a shell block: `\` continuations joined, comments and blank lines dropped,
 * each split into words as sh would for plain words and '…'/"…" quotes. Lines using pipes,
 * redirections, `;`, `&&` or substitutions are refused: the test runs programs, not a shell.
 */
export function shellCommands(code: string): { line: string; words: string[] }[] {
  const commands: { line: string; words: string[] }[] = [];
  for (const line of code.replace(/\\\n/g, ' ').split('\n')) {
    const words: string[] = [];
    let word: string | null = null;
    let quote: string | null = null;
    for (const ch of line) {
      if (quote) {
        if (ch === quote) quote = null;
        else word += ch;
      } else if (ch === "'" || ch === '"') {
        quote = ch;
        word ??= '';
      } else if (/\s/.test(ch)) {
        if (word !== null) words.push(word);
        word = null;
      } else if (ch === '#' && word === null) {
        break;
      } else if ('|&;<>`$()'.includes(ch)) {
        throw new Error(
          `shell syntax '${ch}' in \`${line.trim()}\`: samples are run as programs, not by a shell`,
        );
      } else {
        word = (word ?? '') + ch;
      }
    }
    if (quote) throw new Error(`unclosed quote in \`${line.trim()}\``);
    if (word !== null) words.push(word);
    if (words.length > 0) commands.push({ line: line.trim(), words });
  }
  return commands;
}

/**
 * Whether `excerpt` appears in `text` line for line; a line of just `...` in the excerpt stands
 * for any number of lines of the file.
 */
export function containsExcerpt(text: string, excerpt: string): boolean {
  const lines = text.split('\n');
  const chunks: string[][] = [[]];
  for (const line of excerpt.replace(/\n$/, '').split('\n')) {
    if (line.trim() === '...') chunks.push([]);
    else chunks[chunks.length - 1]!.push(line);
  }
  let from = 0;
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    let at = from;
    while (at + chunk.length <= lines.length && !chunk.every((l, k) => lines[at + k] === l)) at++;
    if (at + chunk.length > lines.length) return false;
    from = at + chunk.length;
  }
  return true;
}

/**
 * Output compared modulo what changes from run to run: every number (pids, sizes, counts,
 * ports) and every duration (5s, 3m12s, 1h2m) reads `#`, an HTTP Date header reads `Date: #`, and runs of
 * blanks are one space (table columns widen with their values); CRLF is LF, and leading and
 * trailing blank lines do not count.
 */
export function normaliseOutput(text: string): string {
  return text
    .replace(/\r\n/g, '\n')
    .replace(/^Date: .*$/gim, 'Date: #')
    .replace(/\b(?:\d+h)?(?:\d+m)?\d+[hms]\b/g, '#')
    .replace(/\d+(?:\.\d+)?/g, '#')
    .replace(/[ \t]+/g, ' ')
    .replace(/ $/gm, '')
    .trim();
}
