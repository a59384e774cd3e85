// `npm run bench [-- --quick]`: every benchmark, one after the other in one run, then
// bench/results/<date>.json and docs/benchmarks.md + docs/charts/*.svg from it.
// Each part is its own script (runnable alone as npm run bench:<name>) writing JSON.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/processes.js';
import { describeMachine } from './lib/machine.js';
import { requirePeers } from './lib/peers.js';
import type { Results } from './lib/results.js';
import { buildOnce, WORK } from './lib/setup.js';
import { printTargets, writeReport } from './report.js';

const USAGE = 'usage: npm run bench [-- --quick]';
const args = process.argv.slice(2);
if (args.some((a) => a !== '--quick')) {
  console.error(`bench: unknown argument ${args.find((a) => a !== '--quick')}\n${USAGE}`);
  process.exit(2);
}
const quick = args.includes('--quick');

/** In report order; balance is another change's script, run when it is there. */
const PARTS = ['codec', 'workers', 'cpu', 'hotpath', 'starter', 'scaling', 'client', 'balance'] as const;
/** The maintenance line whose worker figures stand beside this run's (its binary: .ci/node-line). */
const OTHER_LINE = '24';

/** One part's script under a Node binary, its JSON parsed; null (and a failure noted) if it failed. */
function runPart(
  node: string,
  part: string,
  label: string,
  commands: string[],
  failures: string[],
): Record<string, unknown> | null {
  const script = join('bench', `${part}.ts`);
  const json = join(WORK, `${label}.json`);
  rmSync(json, { force: true });
  const argv = [script, ...(quick ? ['--quick'] : []), '--json', json];
  commands.push(
    `${node === process.execPath ? 'npx tsx' : `${node} --import tsx`} ${argv.join(' ').replace(json, `<${label}.json>`)}`,
  );
  console.error(`\n== ${label}`);
  const t = performance.now();
  const r = spawnSync(node, ['--import', 'tsx', ...argv], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, BENCH_BUILT: '1' },
  });
  console.error(`== ${label}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
  if (r.status !== 0 || !existsSync(json)) {
    failures.push(`${label}: ${script} exited with ${r.status ?? r.signal}`);
    return null;
  }
  const { bench: _, ...data } = JSON.parse(readFileSync(json, 'utf8')) as { bench: string };
  return data;
}

/** The other line's node binary, fetched and cached by .ci/node-line; null if it cannot be had. */
function otherLineNode(failures: string[]): string | null {
  const r = spawnSync(join(ROOT, '.ci', 'node-line'), [OTHER_LINE], { encoding: 'utf8' });
  if (r.status !== 0) {
    failures.push(`Node ${OTHER_LINE}: .ci/node-line failed: ${r.stderr.trim()}`);
    return null;
  }
  return join(r.stdout.trim(), 'node');
}

function main(): number {
  requirePeers();
  const started = new Date();
  const machine = describeMachine();
  buildOnce();
  const commands = [`npm run bench${quick ? ' -- --quick' : ''}`, 'npm run build'];
  const failures: string[] = [];
  const parts: Record<string, unknown> = {};
  for (const part of PARTS) {
    if (!existsSync(join(ROOT, 'bench', `${part}.ts`))) {
      console.error(`bench: bench/${part}.ts not present, skipped`);
      continue;
    }
    const data = runPart(process.execPath, part, part, commands, failures);
    if (data) parts[part] = data;
  }
  const other = otherLineNode(failures);
  if (other) {
    const data = runPart(other, 'workers', `workers-node${OTHER_LINE}`, commands, failures);
    const version = spawnSync(other, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (data) parts.workersOtherLine = { ...data, node: version };
  }
  const results = {
    date: started.toISOString(),
    quick,
    machine,
    commands,
    failures,
    ...parts,
  } as Results;
  const day = started.toISOString().slice(0, 10);
  const file = join(ROOT, 'bench', 'results', `${day}${quick ? '-quick' : ''}.json`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const report = writeReport(results, join(ROOT, 'docs'));
  console.log(`\nwrote ${file}, docs/benchmarks.md, docs/charts/*.svg\n`);
  printTargets(report.targets);
  for (const f of failures) console.error(`bench: FAILED ${f}`);
  return failures.length > 0 ? 1 : 0;
}

process.exit(main());
