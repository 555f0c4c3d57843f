/**
 * `npm run plants`: plants known bugs, one at a time, in a scratch copy of this checkout and checks
 * that the test suite notices each one. Every plant here once slipped through the suite (issue #19);
 * they stay as a standing check that the tests which caught them keep catching them.
 *
 * A plant names the file, the exact text to change (which must occur exactly once, so a plant that
 * no longer applies fails loudly instead of passing), and the tests that must fail with it.
 * Run one plant with `npm run plants -- NAME`.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLANTS } from '../test/plants/plants.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = join(root, '.scratch/plants');
const copy = join(scratch, 'repo');
const wanted = process.argv.slice(2);
const plants = PLANTS.filter((p) => wanted.length === 0 || wanted.includes(p.name));
if (plants.length === 0) {
  process.stderr.write(`no plant named ${wanted.join(', ')}; known: ${PLANTS.map((p) => p.name).join(', ')}\n`);
  process.exit(2);
}

// The tracked files as they are in the working tree, with node_modules linked, not copied.
rmSync(scratch, { recursive: true, force: true });
mkdirSync(copy, { recursive: true });
const tracked = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
for (const f of tracked) if (existsSync(join(root, f))) cpSync(join(root, f), join(copy, f), { recursive: true });
symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
const env = { ...process.env, LENS_SHARED_DIR: process.env.LENS_SHARED_DIR ?? resolve(root, '../shared') };

let missed = 0;
for (const plant of plants) {
  const file = join(copy, plant.file);
  const original = readFileSync(file, 'utf8');
  const at = original.split(plant.find).length - 1;
  if (at !== 1) {
    process.stdout.write(`plant ${plant.name}: the text to change occurs ${at} times in ${plant.file} (expected once): update test/plants/plants.ts\n`);
    missed++;
    continue;
  }
  writeFileSync(file, original.replace(plant.find, plant.replace));
  const run = spawnSync('npx', ['--no-install', 'vitest', 'run', ...plant.tests], { cwd: copy, env, encoding: 'utf8' });
  writeFileSync(file, original);
  const caught = run.status !== 0;
  if (!caught) missed++;
  process.stdout.write(`plant ${plant.name}: ${caught ? 'caught' : 'MISSED'} (${plant.what}; tests: ${plant.tests.join(' ')})\n`);
}
rmSync(scratch, { recursive: true, force: true });
process.stdout.write(`${plants.length - missed} caught, ${missed} missed\n`);
process.exit(missed ? 1 : 0);
