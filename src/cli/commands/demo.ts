import type { Command } from 'commander';
import { LensError } from '../../core/errors.js';
import { integerFlag, stderrProgressBar } from '../attribution-support.js';

interface DemoFlags {
  out: string;
  model: string;
  images: string;
  steps: string;
  seed: string;
  scale: string;
  progress: boolean;
  json?: boolean;
}

/**
 * `lens demo` (`npm run demo`): the whole pipeline offline on the bundled model: export a
 * servable SavedModel, serve it locally, predict over gRPC and REST, explain with Integrated
 * Gradients from three baselines, and write a PNG grid and a markdown report.
 */
export function register(program: Command): void {
  program
    .command('demo')
    .description('run the whole pipeline offline: bundled model -> servable SavedModel -> local server -> gRPC/REST predictions -> IG with three baselines -> grid PNG + report')
    .option('--out <dir>', 'output folder', 'out/demo')
    .option('--model <model>', 'model to use instead of the bundled one (square RGB input, with gradients)', 'default')
    .option('--images <n>', 'generated images to serve and explain', '6')
    .option('--steps <n>', 'Integrated Gradients steps per baseline', '64')
    .option('--seed <n>', 'seed of the generated images and the noise baseline', '7')
    .option('--scale <mode>', 'grid colour scale: shared (one for every panel) or panel (one per panel)', 'shared')
    .option('--no-progress', 'no progress on stderr')
    .option('--json', 'print the result (files, predictions, metrics) as JSON')
    .action(async (flags: DemoFlags) => {
      const whole = (value: string, flag: string, min: number) => integerFlag(value, flag, min, 'a whole number');
      const images = whole(flags.images, '--images', 1);
      const steps = whole(flags.steps, '--steps', 2);
      const seed = whole(flags.seed, '--seed', 0);
      const { runDemo } = await import('../../demo/index.js');
      const tty = process.stderr.isTTY === true;
      const bar = flags.progress && tty ? await stderrProgressBar({ format: '  {bar} {value}/{total} {note}', clearOnComplete: true }) : undefined;
      let lastStage = '';
      const started = Date.now();
      const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
      const result = await runDemo({
        out: flags.out,
        model: flags.model,
        images,
        steps,
        seed,
        scale: parseScale(flags.scale),
        onProgress(p) {
          if (!flags.progress) return;
          if (p.stage !== lastStage) {
            bar?.stop();
            lastStage = p.stage;
            process.stderr.write(`[${p.step}/${p.steps}] ${p.message} (${elapsed()})\n`);
          }
          if (bar && p.total !== undefined && p.done !== undefined) bar.update(p.done, { note: p.done === 0 ? '' : p.message }, p.total);
        },
      }).finally(() => bar?.stop());
      if (flags.progress) process.stderr.write(`done in ${elapsed()}\n`);
      if (flags.json) {
        const { validation, ...rest } = result;
        process.stdout.write(`${JSON.stringify({ ...rest, validation: { ok: validation.ok, checks: validation.checks } }, null, 2)}\n`);
        return;
      }
      const { join, relative } = await import('node:path');
      // Paths under the working directory print relative to it, others in full.
      const show = (p: string) => {
        const rel = relative(process.cwd(), p);
        return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
      };
      const lines = [
        'Predictions (served over gRPC, JPEG bytes):',
        ...result.predictions.map((p) => `  ${p.image.padEnd(20)} ${(p.truth ?? '').padEnd(9)} -> ${(p.grpc.label ?? String(p.grpc.index)).padEnd(9)} ${p.grpc.probability.toFixed(3)}`),
        'Integrated Gradients (mean completeness delta, positive attribution inside the object):',
        ...result.baselines.map((b) => `  ${b.baseline.padEnd(8)} delta ${b.meanDelta.toExponential(2)}  in-mask ${b.maskShare === undefined ? '-' : `${(b.maskShare * 100).toFixed(1)}%`}`),
        '',
        `grid:        ${show(result.files.grid)}`,
        `report:      ${show(result.files.report)}`,
        `summary:     ${show(result.files.summary)}`,
        `SavedModel:  ${show(result.files.savedModel)}`,
        `images:      ${show(join(result.out, 'images'))}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function parseScale(value: string): 'shared' | 'panel' {
  if (value === 'shared' || value === 'panel') return value;
  throw new LensError('INVALID_ARGUMENT', `--scale must be shared or panel, got "${value}"`);
}
