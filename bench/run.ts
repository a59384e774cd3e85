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
const PARTS = ['codec', 'workers', 'cpu', 'starter', 'scaling', 'client', 'balance'] as const;

function main(): number {
  requirePeers();
  const started = new Date();
  const machine = describeMachine();
  buildOnce();
  const commands = [`npm run bench${quick ? ' -- --quick' : ''}`, 'npm run build'];
  const failures: string[] = [];
  const parts: Record<string, unknown> = {};
  for (const part of PARTS) {
    const script = join('bench', `${part}.ts`);
    if (!existsSync(join(ROOT, script))) {
      console.error(`bench: ${script} not present, skipped`);
      continue;
    }
    const json = join(WORK, `${part}.json`);
    rmSync(json, { force: true });
    const argv = [script, ...(quick ? ['--quick'] : []), '--json', json];
    commands.push(`npx tsx ${argv.join(' ').replace(json, `<${part}.json>`)}`);
    console.error(`\n== ${part}`);
    const t = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', ...argv], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, BENCH_BUILT: '1' },
    });
    console.error(`== ${part}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
    if (r.status !== 0 || !existsSync(json)) {
      failures.push(`${part}: ${script} exited with ${r.status ?? r.signal}`);
      continue;
    }
    const { bench: _, ...data } = JSON.parse(readFileSync(json, 'utf8')) as { bench: string };
    parts[part] = data;
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
