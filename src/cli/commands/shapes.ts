import type { Command } from 'commander';
import { integerFlag, stderrProgressBar } from '../attribution-support.js';

interface ShapesFlags {
  count: string;
  seed: string;
  size: string;
  start: string;
  json?: boolean;
}

/**
 * `lens shapes OUT_DIR`: writes a sample set of the shapes dataset (the bundled model's data) as
 * PNG images, PNG object masks, labels.txt and manifest.json, for explain/compare/batch runs and
 * notebooks.
 */
export function register(program: Command): void {
  program
    .command('shapes')
    .description('write generated shapes images with their object masks (PNG) and a manifest to a folder')
    .argument('<out_dir>', 'folder to write (images/, masks/, labels.txt, manifest.json)')
    .option('--count <n>', 'number of images', '100')
    .option('--seed <n>', 'dataset seed (the bundled model trained on seed 1 and was evaluated on 1001)', '2')
    .option('--size <px>', 'image side in pixels', '64')
    .option('--start <n>', 'index of the first image in the seeded sequence', '0')
    .option('--json', 'print the manifest summary as JSON')
    .action(async (outDir: string, flags: ShapesFlags) => {
      const whole = (value: string, flag: string) => integerFlag(value, flag, undefined, 'a whole number');
      const options = { count: whole(flags.count, '--count'), seed: whole(flags.seed, '--seed'), size: whole(flags.size, '--size'), start: whole(flags.start, '--start') };
      const { writeShapesDataset } = await import('../../datasets/shapes.js');
      const bar = process.stderr.isTTY && !flags.json ? await stderrProgressBar({ format: 'shapes {bar} {value}/{total}', clearOnComplete: true }) : undefined;
      bar?.update(0, {}, options.count);
      const manifest = await writeShapesDataset(outDir, options, (done) => bar?.update(done, {})).finally(() => bar?.stop());
      const perClass = Object.fromEntries(manifest.classes.map((c) => [c, manifest.samples.filter((s) => s.className === c).length]));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ dir: outDir, count: manifest.count, seed: manifest.seed, size: manifest.size, start: manifest.start, classes: manifest.classes, perClass, manifest: `${outDir}/manifest.json` }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`wrote ${manifest.count} images (${manifest.size}x${manifest.size}, seed ${manifest.seed}) with masks to ${outDir}\n`);
    });
}
