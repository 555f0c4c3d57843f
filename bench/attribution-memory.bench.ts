/**
 * Memory of Integrated Gradients does not grow with the number of steps: with the internal batch
 * size fixed, the peak RSS of an IG run with 300 steps should be within 20% of one with 30 steps.
 *
 * Each configuration runs in its own child process (peak RSS only grows within a process), which
 * reports the OS peak (`process.resourceUsage().maxRSS`). Models: ResNet-8 (CIFAR-10, from
 * ../shared) and the bundled shapes model when present.
 *
 * `npx tsx bench/attribution-memory.bench.ts`
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const STEPS = [30, 300];
const BATCH = 10;
const MODELS: { name: string; spec: string }[] = [
  { name: 'resnet8-cifar10', spec: join(here, '../../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5') },
  { name: 'shapes-resnet (bundled)', spec: join(here, '../models/shapes-resnet') },
];

interface ChildResult {
  steps: number;
  batch: number;
  maxRssMiB: number;
  startRssMiB: number;
  seconds: number;
  relativeDelta: number;
}

async function child(spec: string, steps: number): Promise<void> {
  const { initBackend } = await import('../src/engines/tfjs/index.js');
  const { integratedGradients } = await import('../src/attribution/index.js');
  const { loadImageModel } = await import('../src/models/load.js');
  await initBackend();
  const model = await loadImageModel(spec);
  const [h, w, c] = model.inputShape;
  const data = Float32Array.from({ length: h * w * c }, (_, i) => (i * 37) % 256);
  const image = { data, height: h, width: w, channels: c };
  // Warm up kernels with a short run so both configurations start from the same state.
  await integratedGradients(model, image, { steps: 2, batchSize: BATCH });
  const startRssMiB = process.memoryUsage().rss / 2 ** 20;
  const t0 = performance.now();
  const attr = await integratedGradients(model, image, { steps, batchSize: BATCH, rule: 'riemann_trapezoid' });
  const result: ChildResult = {
    steps,
    batch: BATCH,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    startRssMiB,
    seconds: (performance.now() - t0) / 1000,
    relativeDelta: attr.completeness!.relative,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  // Same backend choice as the children, so the machine facts name it.
  const { initBackend } = await import('../src/engines/tfjs/index.js');
  await initBackend();
  const rows: Record<string, Cell>[] = [];
  const notes: string[] = [
    `IG on one image, riemann_trapezoid, black baseline, internal batch ${BATCH}; each run in a fresh process (after a 2-step warm-up).`,
    'peak RSS = process.resourceUsage().maxRSS of that process (the OS high-water mark, wasm heap included).',
  ];
  for (const m of MODELS) {
    if (!existsSync(m.spec)) {
      notes.push(`${m.name}: not measured (${m.spec} is missing)`);
      continue;
    }
    const results: ChildResult[] = [];
    for (const steps of STEPS) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', m.spec, String(steps)], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (r.status !== 0 || !line) throw new Error(`child for ${m.name} ${steps} steps failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
      results.push(JSON.parse(line.slice(7)) as ChildResult);
    }
    const [few, many] = results as [ChildResult, ChildResult];
    for (const r of results) {
      rows.push({
        model: m.name,
        steps: r.steps,
        batch: r.batch,
        'peak RSS MiB': Number(r.maxRssMiB.toFixed(1)),
        'RSS before IG MiB': Number(r.startRssMiB.toFixed(1)),
        seconds: Number(r.seconds.toFixed(2)),
        'relative delta': r.relativeDelta,
        'peak vs 30 steps': r === few ? 1 : Number((many.maxRssMiB / few.maxRssMiB).toFixed(3)),
      });
    }
    const ratio = many.maxRssMiB / few.maxRssMiB;
    notes.push(`${m.name}: peak RSS at ${many.steps} steps is ${(ratio * 100).toFixed(1)}% of that at ${few.steps} steps (goal: within 20%) -> ${ratio <= 1.2 ? 'met' : 'NOT met'}.`);
  }
  writeBenchResult('attribution-memory', 'Integrated Gradients memory vs steps (fixed internal batch)', rows, notes);
}

const args = process.argv.slice(2);
if (args[0] === '--child') await child(args[1]!, Number(args[2]));
else await main();
