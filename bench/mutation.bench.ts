/**
 * Mutation score of the modules that compute numbers (`npm run mutate`, or `npm run bench -- mutation`):
 * StrykerJS (stryker.config.json) plants one small change at a time in the tensor codec, the
 * checkpoint reader, the variable mapping, the integration rules, baselines, metrics and statistics,
 * and runs the tests that cover each change (vitest.mutate.config.ts). A mutant that no test notices
 * is a place where a real bug would pass too; each survivor is listed in the result's notes.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBenchResult, type Cell } from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, '.scratch/mutation/mutation.json');
const only = process.env.LENS_MUTATE; // e.g. src/attribution/integration.ts: one module while working on it

const run = spawnSync('npx', ['--no-install', 'stryker', 'run', ...(only ? ['--mutate', only] : [])], {
  cwd: root,
  stdio: 'inherit',
  // Stryker copies the checkout into a sandbox below .scratch, where ../shared is not beside it.
  env: { ...process.env, LENS_SHARED_DIR: process.env.LENS_SHARED_DIR ?? resolve(root, '../shared') },
});
if (run.status !== 0) throw new Error(`stryker exited with ${run.status}`);

interface Mutant {
  status: string;
  mutatorName: string;
  replacement?: string;
  location: { start: { line: number; column: number } };
}
const files = (JSON.parse(readFileSync(report, 'utf8')) as { files: Record<string, { mutants: Mutant[] }> }).files;

const rows: Record<string, Cell>[] = [];
const survivors: string[] = [];
const totals = { killed: 0, survived: 0, timeout: 0, noCoverage: 0, errors: 0 };
for (const [path, { mutants }] of Object.entries(files).sort()) {
  const count = (status: string) => mutants.filter((m) => m.status === status).length;
  const killed = count('Killed');
  const timeout = count('Timeout');
  const survived = count('Survived');
  const noCoverage = count('NoCoverage');
  const errors = count('CompileError') + count('RuntimeError');
  const valid = killed + timeout + survived + noCoverage;
  rows.push({
    module: relative(root, resolve(root, path)),
    mutants: valid,
    killed,
    timeout,
    survived,
    'no coverage': noCoverage,
    'invalid (compile/runtime error)': errors,
    'score %': valid ? Number(((100 * (killed + timeout)) / valid).toFixed(1)) : null,
    'score of covered %': valid - noCoverage ? Number(((100 * (killed + timeout)) / (valid - noCoverage)).toFixed(1)) : null,
  });
  Object.assign(totals, {
    killed: totals.killed + killed,
    survived: totals.survived + survived,
    timeout: totals.timeout + timeout,
    noCoverage: totals.noCoverage + noCoverage,
    errors: totals.errors + errors,
  });
  for (const m of mutants.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
    const what = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 60);
    survivors.push(`${m.status === 'Survived' ? 'survived' : 'not covered'}: ${relative(root, resolve(root, path))}:${m.location.start.line} ${m.mutatorName}${what ? ` -> \`${what}\`` : ''}`);
  }
}
const valid = totals.killed + totals.timeout + totals.survived + totals.noCoverage;
rows.push({
  module: 'all',
  mutants: valid,
  killed: totals.killed,
  timeout: totals.timeout,
  survived: totals.survived,
  'no coverage': totals.noCoverage,
  'invalid (compile/runtime error)': totals.errors,
  'score %': valid ? Number(((100 * (totals.killed + totals.timeout)) / valid).toFixed(1)) : null,
  'score of covered %': valid - totals.noCoverage ? Number(((100 * (totals.killed + totals.timeout)) / (valid - totals.noCoverage)).toFixed(1)) : null,
});
writeBenchResult('mutation', 'Mutation score of the numeric modules (StrykerJS, vitest runner)', rows, [
  'score = killed or timed-out mutants over all valid mutants; a survivor is a change to the code that no test noticed.',
  `tests: vitest.mutate.config.ts; modules: stryker.config.json${only ? ` (this run: ${only} only)` : ''}.`,
  ...survivors.slice(0, 200),
  ...(survivors.length > 200 ? [`... and ${survivors.length - 200} more (see .scratch/mutation/mutation.json)`] : []),
]);
