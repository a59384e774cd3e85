/**
 * Every code block of the docs (README.md, docs/*.md, examples/**\/README.md) is checked for
 * real, so the docs cannot rot. The line right before each fence says how, as an HTML comment
 * (invisible once rendered):
 *
 *   <!-- sample: worker /hello "hello /hello from" -->   TypeScript/JS: type-checked (tsc, the
 *       project's strict options; `fcgi-prefork/…` imports resolve through package.json's
 *       exports, mapped from dist/ back to the sources), then run as the worker of the real starter
 *       (`fcgi-prefork -p <free port> -N 1 <sample>`); a FastCGI GET of /hello with the params
 *       `fcgi-prefork request` sends must answer 200 with a body containing the quoted text.
 *   <!-- sample: client "200 text/plain" -->   type-checked, then run with tsx while the test's
 *       pool serves (table below); must exit 0 with the quoted text in its output.
 *   <!-- sample: script "text" -->   the same, without a pool.
 *   <!-- sample: shell -->   every command runs, as described below.
 *   <!-- sample: parse -->   commands that change the system (installing units, systemctl):
 *       not run; every `fcgi-prefork` invocation in the block must parse with the starter's
 *       own parser (starter/args.ts with the option lists of starter/cli.ts and
 *       starter/request-command.ts), and there must be one.
 *   <!-- sample: output -->, <!-- sample: output exit=1 -->   `$ command` lines, each followed
 *       by what it prints: each runs (9000 etc. always mean the test's pools here, so
 *       `fcgi-prefork -p 9000 …` meets a busy port), prints that modulo normaliseOutput (every
 *       number reads #: pids, times, sizes, counts; `Date:` headers; runs of blanks) and exits
 *       with that status (default 0).
 *   <!-- sample: usage -->   each line is a synopsis line of `fcgi-prefork --help` (less a
 *       trailing `(…)` remark).
 *   <!-- sample: excerpt examples/nginx/fcgi-prefork.conf -->   configuration (nginx, Apache,
 *       lighttpd, systemd, yaml…): the block appears verbatim in that file, which the e2e
 *       tests run as shipped; a line of just `...` skips any number of the file's lines.
 *   <!-- sample: figure -->   a drawing (no language on the fence): nothing to run.
 * An unmarked fence, an unknown marker, or a marker with no fence under it fails the test.
 *
 * Shell commands are programs with arguments (no pipes or redirections); `#` starts a comment.
 *   - `fcgi-prefork` is the starter from these sources, as a global install would provide it.
 *   - `npm start` runs package.json's start script (through the table, as a server);
 *     `npm install`/`npm ci` are not run; `npm test` and `npm run <script>` are not run either
 *     (the suite would run itself; benchmarks take minutes): their script must exist.
 *   - A command that starts a server (the starter, except `request`/`status`/`--help`; or any
 *     other command naming a port or /run path from the table) runs until it answers on its
 *     addresses (FastCGI: a complete response; the starter's --http: 200), then gets Ctrl-C
 *     (SIGINT to its process group) and must exit 0 (or 130 through npm, npx or tsx, which
 *     report the signal as a shell would) leaving no process behind. Any other command must exit 0.
 *   - When the test runs as root (as CI does) commands run as `nobody`, as on a real machine,
 *     except those naming a user or group (-u/-g/-U/-G), which need root: those are skipped
 *     when the test is not root, and fail under CI=true. A command naming a peer program
 *     (php-cgi, cgi-fcgi, spawn-fcgi, fcgistarter, nginx) skips without it, as peer() does.
 *
 * Substitutions, applied to shell, output and client samples; nothing else is rewritten:
 *   in the docs          in a command that starts a server    anywhere else
 *   9000                 a free port                          the test's pool: examples/hello.ts, 2 workers
 *   8080                 a free port                          (refused)
 *   /run/<path>          a fresh path in a temp dir           /run/app.ctl: the pool's control socket;
 *                                                             /run/php.sock: a php-cgi pool (1 worker)
 *   /var/www/index.php   test/fixtures/php/hello.php          (same)
 *   @form.txt            @<a temp file holding a=1&b=2>       (same)
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCgiParams } from '../../src/client/cgi-params.js';
import { createClient } from '../../src/client/client.js';
import type { Target } from '../../src/client/connection.js';
import { formatAddress, parseHostPort } from '../../src/net/address.js';
import { type ParsedArgs, parseArgs } from '../../starter/args.js';
import { poolOptionsFromArgs, SPECS, STATUS_SPECS } from '../../starter/cli.js';
import type { PoolOptions } from '../../starter/pool.js';
import { SPECS as REQUEST_SPECS } from '../../starter/request-command.js';
import {
  containsExcerpt,
  docFiles,
  extractSamples,
  markerWords,
  normaliseOutput,
  type Sample,
  shellCommands,
} from '../helpers/doc-samples.js';
import { freePort } from '../helpers/net.js';
import { IN_CI, peer } from '../helpers/peers.js';
import { CLI, quietEnv, ROOT, type Running, sleep, start, stopAll, until } from '../helpers/processes.js';

const found = docFiles(ROOT).map((file) => ({ file, ...extractSamples(ROOT, file) }));
const samples = found.flatMap((f) => f.samples);

// ---- what each marker means -------------------------------------------------------------

const SCRIPT_LANGS = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);
const SHELL_LANGS = new Set(['sh', 'shell', 'bash']);
type Check = (sample: Sample, words: string[], skip: (reason: string) => void) => Promise<void>;

/** The check a sample's marker names, or why it has none. */
function checkFor(sample: Sample): { check: Check; words: string[] } | { error: string } {
  if (sample.marker === null) return { error: 'no <!-- sample: … --> marker on the line before the fence' };
  const words = markerWords(sample.marker);
  const kind = words[0] ?? '';
  const arity: Record<string, [number, (lang: string) => boolean]> = {
    worker: [3, (l) => SCRIPT_LANGS.has(l)],
    client: [2, (l) => SCRIPT_LANGS.has(l)],
    script: [2, (l) => SCRIPT_LANGS.has(l)],
    shell: [1, (l) => SHELL_LANGS.has(l)],
    parse: [1, (l) => SHELL_LANGS.has(l)],
    output: [words[1]?.startsWith('exit=') ? 2 : 1, () => true],
    usage: [1, (l) => l === ''],
    excerpt: [2, () => true],
    figure: [1, (l) => l === ''],
  };
  const rule = arity[kind];
  if (!rule) return { error: `unknown sample kind '${kind}'` };
  if (words.length !== rule[0])
    return { error: `'${kind}' takes ${rule[0] - 1} argument(s): ${sample.marker}` };
  if (!rule[1](sample.lang)) return { error: `'${kind}' does not fit a \`\`\`${sample.lang} block` };
  const checks: Record<string, Check> = {
    worker: checkWorker,
    client: checkScript,
    script: checkScript,
    shell: checkShell,
    parse: checkParse,
    output: checkOutput,
    usage: checkUsage,
    excerpt: checkExcerpt,
    figure: async () => {},
  };
  return { check: checks[kind]!, words };
}

// ---- the environment samples run in -----------------------------------------------------

const AS_ROOT = process.getuid?.() === 0;
const work = mkdtempSync(join(tmpdir(), 'fcgi-prefork-docs-'));
mkdirSync(join(ROOT, 'test', 'docs', '.tmp'), { recursive: true });
const sampleDir = mkdtempSync(join(ROOT, 'test', 'docs', '.tmp', 'samples-'));
chmodSync(sampleDir, 0o755);
/** Root runs the docs' commands as nobody, as a real machine would. */
const user = AS_ROOT
  ? {
      uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })),
    }
  : {};
if (AS_ROOT && spawnSync('test', ['-r', join(ROOT, 'examples', 'hello.ts')], user).status !== 0)
  throw new Error(`the doc samples run as nobody, who cannot read ${ROOT}: check out where others can read`);
mkdirSync(join(work, 'home'));
mkdirSync(join(work, 'bin'));
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
writeFileSync(
  join(work, 'bin', 'fcgi-prefork'),
  `#!/bin/sh\nexec '${process.execPath}' --import '${TSX}' '${CLI}' "$@"\n`,
  { mode: 0o755 },
);
writeFileSync(join(work, 'form.txt'), 'a=1&b=2');
if (AS_ROOT) for (const dir of [work, join(work, 'home')]) chownSync(dir, user.uid!, user.gid!);

/** A user's shell: the shim first on PATH, no npm_* variables from the `npm test` running us. */
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(quietEnv()).filter(([k]) => !/^npm_/i.test(k))),
  PATH: `${join(work, 'bin')}:${process.env.PATH}`,
  HOME: join(work, 'home'),
};

let fresh = 0;
const freshPath = (doc: string) => join(work, `${++fresh}-${basename(doc)}`);

function shared<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make();
    return made;
  };
}

/** The pool every `9000` of a client means: examples/hello.ts, 2 workers, a control socket. */
const pool = shared(async () => {
  const port = await freePort();
  const control = join(work, 'app.ctl');
  const proc = start(
    process.execPath,
    ['--import', TSX, CLI, '-p', String(port), '-N', '2', '--control', control, 'examples/hello.ts'],
    { cwd: ROOT, env, ...user },
  );
  await untilAnswers({ host: '127.0.0.1', port }, proc);
  return { port, control };
});

const php = peer('php-cgi', 'php-cgi');
/** The php-cgi pool behind /run/php.sock. */
const phpPool = shared(async () => {
  const socket = join(work, 'php.sock');
  const proc = start(process.execPath, ['--import', TSX, CLI, '-s', socket, '-N', '1', php.path!], {
    cwd: ROOT,
    env: { ...env, PHP_FCGI_CHILDREN: '0' },
    ...user,
  });
  await untilAnswers({ path: socket }, proc);
  return { socket };
});

const PHP_SCRIPT = join(ROOT, 'test', 'fixtures', 'php', 'hello.php');

/** Applies the substitution table of the header. */
async function substitute(text: string, server: boolean): Promise<string> {
  const ports = new Map<string, number>();
  const portFor = async (doc: string) => {
    if (!ports.has(doc)) ports.set(doc, await freePort());
    return ports.get(doc)!;
  };
  let out = text
    .replaceAll('/var/www/index.php', PHP_SCRIPT)
    .replaceAll('@form.txt', `@${join(work, 'form.txt')}`);
  if (server) {
    for (const doc of ['9000', '8080'])
      if (new RegExp(`\\b${doc}\\b`).test(out))
        out = out.replace(new RegExp(`\\b${doc}\\b`, 'g'), String(await portFor(doc)));
    const paths = new Map<string, string>();
    return out.replace(/\/run\/[\w./-]+/g, (doc) => {
      if (!paths.has(doc)) paths.set(doc, freshPath(doc));
      return paths.get(doc)!;
    });
  }
  if (/\b8080\b/.test(out))
    throw new Error('8080 outside a command that starts a server: nothing listens there');
  if (/\b9000\b/.test(out)) out = out.replace(/\b9000\b/g, String((await pool()).port));
  if (out.includes('/run/app.ctl')) out = out.replaceAll('/run/app.ctl', (await pool()).control);
  if (out.includes('/run/php.sock')) out = out.replaceAll('/run/php.sock', (await phpPool()).socket);
  const unknown = /\/run\/[\w./-]+/.exec(out);
  if (unknown) throw new Error(`${unknown[0]}: no test pool stands for it (see the table)`);
  return out;
}

/** Resolves once a FastCGI GET at target gets a complete response (any status). */
async function fcgiAnswer(target: Target, uri = '/'): Promise<{ status: number; body: string }> {
  const client = createClient(target, {
    keepConn: false,
    multiplex: false,
    connections: 1,
    responseTimeout: 10_000,
  });
  try {
    const params = buildCgiParams({
      method: 'GET',
      url: uri,
      headers: [['Host', 'localhost']],
      remoteAddress: '127.0.0.1',
      serverName: 'localhost',
      documentRoot: ROOT,
    });
    const res = await client.requestAll({ params });
    return { status: res.status, body: res.body.toString() };
  } finally {
    client.close();
  }
}

async function untilAnswers(target: Target, proc: Running, check?: () => Promise<boolean>): Promise<void> {
  await until(
    async () => {
      if (proc.child.exitCode !== null)
        throw new Error(`exited ${proc.child.exitCode} before serving:\n${proc.output()}`);
      try {
        if (check) return await check();
        await fcgiAnswer(target);
        return true;
      } catch {
        return false;
      }
    },
    20_000,
    `an answer at ${JSON.stringify(target)}; output:\n${proc.output()}`,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${proc.output()}`);
  });
}

// ---- TypeScript and JavaScript ----------------------------------------------------------

const scriptFile = (s: Sample) =>
  join(
    sampleDir,
    `${s.file.replace(/[^a-z0-9]+/gi, '-')}-L${s.line}.${s.lang.startsWith('t') ? 'ts' : 'mjs'}`,
  );

/**
 * The samples' own tsconfig: the project's options, and the package's exports mapped from
 * dist/ to the sources, so `import … from 'fcgi-prefork/worker'` means what it will mean
 * to a user, checked against the code as it is. tsx reads the same mapping.
 */
const tsconfig = join(sampleDir, 'tsconfig.json');

const scripts = samples.filter((s) => SCRIPT_LANGS.has(s.lang));
for (const s of scripts) writeFileSync(scriptFile(s), s.code);
{
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, { default: string }>;
  };
  const paths: Record<string, string[]> = {};
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (sub.endsWith('.json')) continue;
    const source = target.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');
    paths[pkg.name + sub.slice(1)] = [join(ROOT, source)];
  }
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { paths, allowJs: true, checkJs: true },
      include: [],
      files: scripts.map(scriptFile),
    }),
  );
}

/** tsc over every script sample at once: its diagnostics, one a line, prefixed by file name. */
const typecheck = shared(async () => {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  return promisify(execFile)(process.execPath, [tsc, '-p', tsconfig, '--pretty', 'false'], {
    cwd: sampleDir,
  }).then(
    () => [],
    (e: { stdout?: string; message: string }) => {
      const lines = (e.stdout ?? '').split('\n').filter((l) => / error TS\d+/.test(l));
      if (lines.length === 0) throw new Error(`tsc failed without a diagnostic: ${e.message}`);
      return lines;
    },
  );
});

/** Its own diagnostics, and any outside the samples (in the sources they import). */
async function typeErrors(sample: Sample): Promise<string[]> {
  const name = basename(scriptFile(sample));
  return (await typecheck()).filter((l) => l.startsWith(`${name}(`) || !/^[\w-]+\.m?[jt]s\(/.test(l));
}

/** Runs a script sample (type-checked meanwhile) as the worker of the real starter. */
async function checkWorker(sample: Sample, [, uri, text]: string[]): Promise<void> {
  const port = await freePort();
  const args = ['--import', TSX, CLI, '-p', String(port), '-N', '1', scriptFile(sample)];
  const proc = start(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, TSX_TSCONFIG_PATH: tsconfig },
    ...user,
  });
  const target = { host: '127.0.0.1', port };
  const answer = await untilAnswers(target, proc).then(
    () => fcgiAnswer(target, uri),
    async (e: unknown) => {
      await proc.stop();
      throw e;
    },
  );
  // A graceful stop (SIGTERM) of the starter and its worker exits 0.
  expect(await proc.stop(), proc.output()).toBe(0);
  expect(answer.status).toBe(200);
  expect(answer.body).toContain(text);
  expect(await typeErrors(sample)).toEqual([]);
}

/** Runs a script sample (type-checked meanwhile) with tsx; a client's copy goes through the table. */
async function checkScript(sample: Sample, [kind, text]: string[]): Promise<void> {
  let file = scriptFile(sample);
  if (kind === 'client') {
    file = file.replace(/(\.m?[jt]s)$/, '.run$1');
    writeFileSync(file, await substitute(sample.code, false));
  }
  const proc = start(process.execPath, ['--import', TSX, file], {
    cwd: ROOT,
    env: { ...env, TSX_TSCONFIG_PATH: tsconfig },
    ...user,
  });
  const code = await Promise.race([proc.exited, sleep(20_000).then(() => 'still running after 20 s')]);
  await proc.stop();
  expect(code, proc.output()).toBe(0);
  expect(proc.output()).toContain(text);
  expect(await typeErrors(sample)).toEqual([]);
}

// ---- shell ------------------------------------------------------------------------------

const PEERS: Record<string, string> = {
  'php-cgi': 'php-cgi',
  'cgi-fcgi': 'libfcgi-bin',
  'spawn-fcgi': 'spawn-fcgi',
  fcgistarter: 'apache2-utils',
  nginx: 'nginx-light',
};

/** The arguments given to fcgi-prefork in a command (however it is invoked), or null. */
// What may stand before the program: environment assignments and launchers. `npm install -g
// fcgi-prefork` or `systemctl reload fcgi-prefork` name the package or the unit, not the CLI.
const LAUNCHERS = new Set(['sudo', 'npx', 'env', 'exec', 'node', 'tsx', '--import']);

function starterArgs(words: string[]): string[] | null {
  const at = words.findIndex((w) => basename(w) === 'fcgi-prefork' || /(^|\/)starter\/cli\.[jt]s$/.test(w));
  if (at < 0) return null;
  const launched = words.slice(0, at).every((w) => LAUNCHERS.has(w) || /^[A-Z_][A-Z0-9_]*=/.test(w));
  return launched ? words.slice(at + 1) : null;
}

/** Parses an fcgi-prefork command line as the CLI would, without running it. */
function parseStarter(argv: string[]): { args: ParsedArgs; pool: PoolOptions | null } {
  if (argv[0] === 'status') return { args: parseArgs(argv.slice(1), STATUS_SPECS), pool: null };
  if (argv[0] === 'request') return { args: parseArgs(argv.slice(1), REQUEST_SPECS), pool: null };
  const args = parseArgs(argv, SPECS);
  const info = args.flags.has('help') || args.flags.has('version') || args.flags.has('detach');
  return { args, pool: info ? null : poolOptionsFromArgs(args) };
}

function startsServer(words: string[]): boolean {
  const argv = starterArgs(words);
  if (argv) {
    return parseStarter(argv).pool !== null;
  }
  return words.some((w) => /\b(9000|8080)\b|^\/run\//.test(w));
}

async function checkShell(sample: Sample, _: string[], skip: (reason: string) => void): Promise<void> {
  const scripts = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  for (const { line, words } of shellCommands(sample.code)) {
    if (words[0] === 'npm') {
      const [, sub, name] = words;
      if (sub === 'install' || sub === 'ci') continue;
      if (sub === 'test' || sub === 'run') {
        expect(scripts[sub === 'test' ? 'test' : name!], `${line}: no such script`).toBeTypeOf('string');
        continue;
      }
      if (sub !== 'start' || words.length > 2)
        throw new Error(`${line}: the test does not know how to run this`);
      const [script] = shellCommands(await substitute(scripts.start!, true));
      await runServer(
        `npm start: ${script!.line}`,
        script!.words,
        [join(ROOT, 'node_modules', '.bin')],
        skip,
      );
      continue;
    }
    const server = startsServer(words);
    const substituted = shellCommands(await substitute(words.map(quote).join(' '), server))[0]!.words;
    if (server) await runServer(line, substituted, [], skip);
    else await runOnce(line, substituted, 0, skip);
  }
}

const quote = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, '')}'`);

/** Splits leading NAME=value words off into the environment; says who must run the command. */
function prepare(words: string[], skip: (reason: string) => void) {
  const extra: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Za-z_]\w*=/.test(words[i]!); i++) {
    const [name, ...value] = words[i]!.split('=');
    extra[name!] = value.join('=');
  }
  for (const w of words) {
    const pkg = PEERS[basename(w)];
    if (pkg) {
      const p = peer(basename(w), pkg);
      if (p.skipReason) skip(p.skipReason);
    }
  }
  const argv = starterArgs(words);
  const needsRoot =
    argv !== null &&
    ['user', 'group', 'socket-user', 'socket-group'].some((k) => parseStarter(argv).args.values.has(k));
  if (needsRoot && !AS_ROOT) {
    if (IN_CI) throw new Error(`${words.join(' ')} needs root, and CI=true`);
    skip('needs root (it names a user or group)');
  }
  return {
    program: words[i]!,
    args: words.slice(i + 1),
    env: { ...env, ...extra },
    as: needsRoot ? {} : user,
  };
}

async function runOnce(
  line: string,
  words: string[],
  exit: number,
  skip: (r: string) => void,
): Promise<string> {
  const { program, args, env: runEnv, as } = prepare(words, skip);
  const proc = start(program, args, { cwd: ROOT, env: runEnv, ...as });
  const code = await Promise.race([proc.exited, sleep(20_000).then(() => 'still running after 20 s')]);
  await proc.stop();
  expect(code, `${line}\n${proc.output()}`).toBe(exit);
  return proc.output();
}

/** Process groups of servers started from the docs, killed whole in afterAll whatever happened. */
const groups = new Set<number>();

/** Runs a command that starts a server until it answers on its addresses, then Ctrl-C. */
async function runServer(
  line: string,
  words: string[],
  path: string[],
  skip: (r: string) => void,
): Promise<void> {
  const { program, args, env: runEnv, as } = prepare(words, skip);
  runEnv.PATH = [...path, runEnv.PATH].join(':');
  const proc = start(program, args, { cwd: ROOT, env: runEnv, detached: true, ...as });
  groups.add(proc.pid);
  let failure: unknown = null;
  try {
    const argv = starterArgs(words);
    const parsed = argv ? parseStarter(argv) : null;
    const listen = parsed?.pool?.listen;
    const target: Target | null =
      listen?.kind === 'tcp'
        ? { host: listen.host, port: listen.port }
        : listen?.kind === 'unix'
          ? { path: listen.path }
          : runEnv.PORT
            ? { host: '127.0.0.1', port: Number(runEnv.PORT) }
            : null;
    if (!target) throw new Error(`${line}: cannot tell where this server listens`);
    await untilAnswers(target, proc);
    const http = parsed?.args.values.get('http')?.at(-1);
    if (http) {
      const url = `http://${formatAddress(parseHostPort(http))}/`;
      await untilAnswers(target, proc, async () => (await fetch(url)).status === 200);
    }
  } catch (e) {
    failure = e;
  }
  // Ctrl-C: the whole foreground process group gets SIGINT. npm/npx exit on it at once;
  // what they started gets the same signal and must end by itself too.
  const groupAlive = () => {
    try {
      process.kill(-proc.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (groupAlive()) process.kill(-proc.pid, 'SIGINT');
  const code = await Promise.race([proc.exited, sleep(15_000).then(() => 'still running 15 s after Ctrl-C')]);
  const leftover = await until(() => !groupAlive(), 15_000).then(
    () => false,
    () => true,
  );
  if (leftover) process.kill(-proc.pid, 'SIGKILL');
  if (failure) throw failure;
  // npm, npx and tsx report the Ctrl-C they passed on as a shell would: 130.
  const wrapper = /^(npm|npx|tsx)$/.test(program);
  expect({ code: wrapper && code === 130 ? 0 : code, leftover }, `${line}\n${proc.output()}`).toEqual({
    code: 0,
    leftover: false,
  });
}

async function checkParse(sample: Sample): Promise<void> {
  const invocations = shellCommands(sample.code)
    .map((c) => starterArgs(c.words))
    .filter((a) => a !== null);
  expect(invocations.length, 'a parse sample with no fcgi-prefork invocation').toBeGreaterThan(0);
  for (const argv of invocations) parseStarter(argv);
}

// ---- output, usage, excerpts ------------------------------------------------------------

async function checkOutput(sample: Sample, words: string[], skip: (r: string) => void): Promise<void> {
  const exit = Number(words[1]?.slice('exit='.length) ?? 0);
  const runs: { command: string; expected: string[] }[] = [];
  for (const line of sample.code.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('$ ')) runs.push({ command: line.slice(2), expected: [] });
    else if (runs.length === 0) throw new Error(`output sample must start with a '$ command' line: ${line}`);
    else runs.at(-1)!.expected.push(line);
  }
  for (const { command, expected } of runs) {
    const argv = shellCommands(await substitute(command, false))[0]!.words;
    const output = await runOnce(command, argv, exit, skip);
    expect(normaliseOutput(output)).toBe(normaliseOutput(await substitute(expected.join('\n'), false)));
  }
}

async function checkUsage(sample: Sample): Promise<void> {
  const help = execFileSync(process.execPath, ['--import', TSX, CLI, '--help'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const synopsis = help
    .split('\n\n')[0]!
    .split('\n')
    .map((l) =>
      l
        .replace(/^Usage:/, '')
        .replace(/\s+\(.*\)$/, '')
        .trim(),
    );
  for (const line of sample.code.split('\n').filter((l) => l.trim())) expect(synopsis).toContain(line.trim());
}

async function checkExcerpt(sample: Sample, [, path]: string[]): Promise<void> {
  const text = readFileSync(join(ROOT, path!), 'utf8');
  expect(containsExcerpt(text, sample.code), `${sample.file}:${sample.line} is not in ${path}`).toBe(true);
}

// ---- the tests --------------------------------------------------------------------------

beforeAll(() => {
  // Start what several samples share at once, in the background; each test awaits its own.
  const fixtures = [pool, ...(scripts.length > 0 ? [typecheck] : []), ...(php.path ? [phpPool] : [])];
  for (const fixture of fixtures) void fixture().catch(() => {});
});

afterAll(async () => {
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // stopped already
    }
  }
  await stopAll();
  rmSync(work, { recursive: true, force: true });
  rmSync(sampleDir, { recursive: true, force: true });
  try {
    rmdirSync(join(ROOT, 'test', 'docs', '.tmp'));
  } catch {
    // another run's samples are still there
  }
});

describe.concurrent('code samples in the docs', () => {
  it('every fence has a marker this test knows, and every marker a fence', () => {
    const problems: string[] = [];
    for (const f of found)
      for (const line of f.strayMarkers) problems.push(`${f.file}:${line}: marker with no fence under it`);
    for (const s of samples) {
      const c = checkFor(s);
      if ('error' in c) problems.push(`${s.file}:${s.line}: ${c.error}`);
    }
    expect(problems).toEqual([]);
  });

  for (const sample of samples) {
    const c = checkFor(sample);
    if ('error' in c) continue;
    it(`${sample.file}:${sample.line} (${sample.marker})`, { timeout: 60_000 }, async (ctx) =>
      c.check(sample, c.words, (reason) => ctx.skip(reason)),
    );
  }
});
