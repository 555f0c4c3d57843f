import type { Command } from 'commander';
import { GRAPH_MODEL_FLAGS, addAttributionFlags, type AttributionFlagValues } from '../attribution-support.js';
import { modelLoadFlags } from '../../models/load-settings.js';
import { DEFAULT_VIEW } from '../../render/default-view.js';

/** compare's own flags; the model-loading ones are the shared attribution flags. */
interface CompareOptions extends Pick<AttributionFlagValues, 'preprocess' | 'resize' | 'labels' | 'batchSize' | 'backend' | 'engine' | 'checkpoint' | 'inputTensor' | 'outputTensor' | 'progress' | 'json'> {
  model: string;
  images?: string[];
  shapes?: string;
  baselines: string;
  steps: string;
  rule: string;
  target: string;
  out: string;
  viz: string;
  sign: string;
  gridRows: string;
  scale: string;
  curveSteps: string;
  seed: string;
}

/** `lens compare`: IG baselines side by side, with quality metrics per baseline. */
export function register(program: Command): void {
  const command = program
    .command('compare')
    .description('compare IG baselines on a set of images: a grid PNG, a CSV and a markdown table of metrics (completeness, deletion/insertion AUC, mask scores) with means and 95% intervals')
    .requiredOption('--model <model>', 'SavedModel dir, .h5, .keras, .tflite, model.json, checkpoint dir, frozen .pb, resnet50, or default')
    .option('--images <paths...>', 'image files or folders, or a shapes dataset folder; IMAGE.mask.png (or masks/NAME beside images/) is an object mask')
    .option('--shapes <n>', 'use n generated images of the shapes dataset (with their object masks)')
    .option('--baselines <list>', 'comma-separated: black, white, zero, uniform, gaussian, blur, maxdist, image:PATH, expected (Expected Gradients over the other images)', 'black,white,blur,uniform,gaussian,expected')
    .option('--steps <n>', 'IG steps per baseline (Expected Gradients samples)', '64')
    .option('--rule <rule>', 'integration rule', 'gausslegendre')
    .option('--target <target>', 'top1, a class index, or a label', 'top1')
    .option('--out <dir>', 'output folder', 'compare')
    .option('--viz <method>', 'visualization in the grid (default overlay: |attribution| over the dimmed image)', DEFAULT_VIEW.viz)
    .option('--sign <sign>', 'all, positive, negative, absolute_value', DEFAULT_VIEW.sign)
    .option('--grid-rows <n>', 'images shown in the grid', '6')
    .option('--scale <mode>', 'shared (one colour scale for every panel, so columns compare) or panel (each panel its own scale, to see structure)', 'shared')
    .option('--curve-steps <n>', 'points on the deletion/insertion curves (0 skips them)', '16')
    .option('--seed <n>', 'seed for random baselines and the shapes dataset', '0');
  addAttributionFlags(command, ['preprocess', 'resize', 'labels', 'batchSize', 'backend', 'engine', ...GRAPH_MODEL_FLAGS, 'progress'])
    .option('--json', 'print the summary and rows as JSON')
    .action(compare);
}

async function compare(opts: CompareOptions): Promise<void> {
  const attribution = await import('../../attribution/index.js');
  const support = await import('../attribution-support.js');
  const { expandImagePaths, imageStem, loadMask, loadModelImages, maskBeside } = await import('../../image/files.js');
  const { LensError } = await import('../../core/errors.js');
  const render = await import('../../render/index.js');
  const { writeFileAtomic } = await import('../../fs/atomic.js');
  const { compareCsv, compareMarkdown } = await import('../../report/compare.js');
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');

  const rule = attribution.parseIntegrationRule(opts.rule);
  const target = attribution.parseTarget(opts.target);
  if (typeof target === 'object') throw new LensError('INVALID_ARGUMENT', 'lens compare explains one target per image: use top1, a class index or a label');
  const viz = render.parseVisualizationMethod(opts.viz);
  const sign = render.parseAttributionSign(opts.sign);
  const steps = support.positiveInt(opts.steps, '--steps');
  const gridRows = support.positiveInt(opts.gridRows, '--grid-rows');
  if (opts.scale !== 'shared' && opts.scale !== 'panel') throw new LensError('INVALID_ARGUMENT', `--scale must be shared or panel, got "${opts.scale}"`);
  const curveSteps = Number(opts.curveSteps);
  if (!Number.isInteger(curveSteps) || curveSteps < 0) throw new LensError('INVALID_ARGUMENT', `--curve-steps must be 0 or a positive integer, got "${opts.curveSteps}"`);
  const seed = support.integerFlag(opts.seed, '--seed');
  if (!opts.images === !opts.shapes) throw new LensError('INVALID_ARGUMENT', 'give either --images PATHS or --shapes N');

  const { loadImageModel } = await import('../../models/load.js');
  const model = await loadImageModel(opts.model, modelLoadFlags(opts));
  try {
    const [h, w] = model.inputShape;
    let items: import('../../attribution/index.js').CompareImage[];
    if (opts.shapes) {
      const count = support.positiveInt(opts.shapes, '--shapes');
      const { generateShapes } = await import('../../datasets/shapes.js');
      if (h !== w) throw new LensError('MODEL_UNSUPPORTED', `the shapes dataset makes square images; model ${model.name} takes ${h}x${w}`);
      const samples = generateShapes({ count, seed, size: h });
      items = samples.map((s, i) => ({ name: `shape${i}-${s.className}`, image: { data: s.pixels, height: h, width: w, channels: 3 }, mask: s.mask }));
    } else {
      items = [];
      const { dirname, basename } = await import('node:path');
      const { readShapesDataset } = await import('../../datasets/shapes.js');
      for (const arg of opts.images!) {
        if (existsSync(join(arg, 'manifest.json'))) {
          // A shapes dataset folder (images/, masks/, manifest.json).
          const { samples } = await readShapesDataset(arg);
          for (const s of samples) {
            if (s.height !== h || s.width !== w) throw new LensError('SHAPE_MISMATCH', `dataset ${arg} holds ${s.height}x${s.width} images; model ${model.name} takes ${h}x${w}`);
            items.push({ name: `${arg}#${s.index}-${s.className}`, image: { data: s.pixels, height: h, width: w, channels: 3 }, mask: s.mask });
          }
          continue;
        }
        const paths = expandImagePaths([arg]);
        const pixels = await loadModelImages(paths, model, opts.resize);
        for (let i = 0; i < paths.length; i++) {
          const path = paths[i]!;
          // Masks: IMAGE.mask.png next to the image, or masks/NAME beside an images/ folder.
          const inMasks = basename(dirname(path)) === 'images' ? join(dirname(dirname(path)), 'masks', basename(path)) : undefined;
          const maskPath = maskBeside(path) ?? (inMasks && existsSync(inMasks) ? inMasks : undefined);
          const mask = maskPath ? await loadMask(maskPath, [h, w]) : undefined;
          items.push({ name: path, image: pixels[i]!, ...(mask ? { mask } : {}) });
        }
      }
    }
    const entries: import('../../attribution/index.js').BaselineEntry[] = [];
    for (const token of attribution.splitBaselineList(opts.baselines)) {
      if (token.toLowerCase() === 'expected') {
        entries.push({ name: 'expected', spec: 'expected' });
        continue;
      }
      const spec = await attribution.resolveBaseline(attribution.parseBaseline(token), async (p) => (await loadModelImages([p], model, opts.resize))[0]!);
      entries.push({ name: token, spec });
    }
    if (entries.length === 0) throw new LensError('INVALID_ARGUMENT', '--baselines is empty');

    const bar = await support.progressBar(opts.progress && process.stderr.isTTY === true);
    let result;
    try {
      result = await attribution.compareBaselines(model, items, entries, {
        steps,
        rule,
        target,
        seed,
        curveSteps,
        keep: gridRows,
        ...(opts.batchSize !== undefined ? { batchSize: support.positiveInt(opts.batchSize, '--batch-size') } : {}),
        ...(bar.onProgress ? { onProgress: bar.onProgress } : {}),
      });
    } finally {
      bar.stop();
    }

    // By default one colour scale for every map, so columns can be compared by eye.
    const shown = result.attributions;
    const scale = opts.scale === 'shared' ? render.sharedScale(shown.flat(), { method: viz, sign }) : undefined;
    // The first column shows the user's photo as it is (not the padded or cropped model input).
    const { loadPixels } = await import('../../image/index.js');
    const photos = await Promise.all(shown.map((_, i) => (items[i]!.image.geometry ? loadPixels(items[i]!.name) : Promise.resolve(items[i]!.image))));
    const cells = shown.map((row, i) => [
      { image: render.rgbaFromImage(photos[i]!), title: [imageStem(items[i]!.name)] },
      ...row.map((a) => ({ image: render.visualize(a, { method: viz, sign, image: items[i]!.image, ...(scale !== undefined ? { scale } : {}) }), title: render.attributionTitle(a) })),
    ]);
    const caption = scale !== undefined
      ? `One colour scale for every panel (${viz}, sign ${sign}): equal colours mean equal attribution. --scale panel gives each panel its own.`
      : `Each panel on its own colour scale (${viz}, sign ${sign}): colours compare within a panel only.`;
    const grid: import('../../render/index.js').GridOptions = {
      title: `${model.name}: IG baselines, ${steps} steps, ${rule}`,
      columnTitles: ['photo', ...result.baselines],
      cells,
      caption,
      cellSize: Math.max(160, Math.min(256, 2 * Math.max(h, w))),
    };
    const png = await render.renderGrid(grid);
    const svg = await render.renderGrid({ ...grid, format: 'svg' });
    const files = {
      png: join(opts.out, 'compare.png'),
      svg: join(opts.out, 'compare.svg'),
      csv: join(opts.out, 'compare.csv'),
      markdown: join(opts.out, 'compare.md'),
      json: join(opts.out, 'compare.json'),
    };
    await render.writePngAtomic(files.png, png, { method: 'integrated_gradients', baselines: result.baselines.join(','), steps, rule, model: model.name, output: model.output, scale: opts.scale, Software: 'serving-lens' });
    await writeFileAtomic(files.svg, svg);
    await writeFileAtomic(files.csv, compareCsv(result));
    const markdown = compareMarkdown(result, `${model.name}: IG baselines (${steps} steps, ${rule})`);
    await writeFileAtomic(files.markdown, markdown);
    const json = { model: model.name, output: model.output, steps, rule, images: items.length, baselines: result.baselines, summary: result.summary, rows: result.rows, gradientEvaluations: result.gradientEvaluations, files };
    await render.writeJsonAtomic(files.json, json);
    if (opts.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    else process.stdout.write(`${markdown}\nwrote ${files.png}, ${files.svg}, ${files.csv}, ${files.markdown}, ${files.json}\n`);
  } finally {
    model.dispose();
  }
}
