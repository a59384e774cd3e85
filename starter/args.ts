import { UserError } from '../src/net/errors.js';

/** One option of a command line: its names and whether it takes a value. */
export interface OptionSpec {
  readonly key: string;
  readonly short?: readonly string[];
  readonly long: readonly string[];
  readonly value: boolean;
}

export interface ParsedArgs {
  readonly values: Map<string, string[]>;
  readonly flags: Set<string>;
  /** The first non-option argument and everything after it (the worker command). */
  readonly rest: string[];
}

/**
 * getopt-style parsing: `-p 9000`, `-p9000`, `--port 9000`, `--port=9000`, bundled short flags
 * (`-hV`), `--` to end options. Options stop at the first argument that is not one, so the
 * worker command keeps its own flags (`fcgi-prefork -p 9000 php-cgi -d x=1`).
 */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[]): ParsedArgs {
  const byShort = new Map<string, OptionSpec>();
  const byLong = new Map<string, OptionSpec>();
  for (const spec of specs) {
    for (const s of spec.short ?? []) byShort.set(s, spec);
    for (const l of spec.long) byLong.set(l, spec);
  }
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const set = (spec: OptionSpec, value: string | undefined, name: string) => {
    if (!spec.value) {
      if (value !== undefined) throw new UserError(`option ${name} takes no value`, 2);
      flags.add(spec.key);
      return;
    }
    if (value === undefined) throw new UserError(`option ${name} needs a value`, 2);
    const list = values.get(spec.key);
    if (list) list.push(value);
    else values.set(spec.key, [value]);
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new UserError(`unknown option --${name}`, 2);
      const inline = eq < 0 ? undefined : arg.slice(eq + 1);
      const value = spec.value && inline === undefined ? argv[++i] : inline;
      set(spec, value, `--${name}`);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const name = arg[j]!;
        const spec = byShort.get(name);
        if (!spec) throw new UserError(`unknown option -${name}`, 2);
        if (spec.value) {
          const attached = arg.slice(j + 1);
          set(spec, attached.length > 0 ? attached : argv[++i], `-${name}`);
          break;
        }
        set(spec, undefined, `-${name}`);
      }
      continue;
    }
    break;
  }
  return { values, flags, rest: argv.slice(i) };
}

/** The last value given for an option (a later flag overrides an earlier one, as in getopt loops). */
export function last(args: ParsedArgs, key: string): string | undefined {
  const list = args.values.get(key);
  return list ? list[list.length - 1] : undefined;
}

export function parseCount(text: string, what: string, min = 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UserError(`invalid ${what} '${text}': must be an integer of at least ${min}`, 2);
  }
  return Number(text);
}

export function parseSeconds(text: string, what: string): number {
  if (!/^\d+(\.\d+)?$/.test(text))
    throw new UserError(`invalid ${what} '${text}': must be a number of seconds`, 2);
  return Number(text);
}
