/**
 * Attribution quality on the bundled shapes model, where the object mask is known: for 100
 * generated images (seed 2024), IG with each baseline (black, white, model zero, blur, uniform,
 * gaussian, maximum distance, expected gradients over the other images), then other methods on a
 * subset. Per row: share of positive attribution inside the object mask, pointing game, deletion
 * and insertion AUC, completeness delta; means with 95% intervals (Student t; Wilson score for the
 * pointing game, a proportion).
 *
 * `npx tsx bench/attribution-quality.bench.ts` (`BENCH_QUICK=1`: 10 images)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/engines/tfjs/index.js';
import {
  attributionCurve,
  bootstrapInterval,
  cellShareCeiling,
  compareBaselines,
  modelRandomization,
  maskScores,
  parseMethod,
  proportionInterval,
  runMethod,
  type AttributionMethod,
  type BaselineEntry,
  type MethodSettings,
  type CompareImage,
  type Interval,
} from '../src/attribution/index.js';
import { generateShapes } from '../src/datasets/shapes.js';
import { loadImageModel } from '../src/models/load.js';
import { writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
const IMAGES = QUICK ? 10 : 100;
const METHOD_IMAGES = QUICK ? 5 : 30;
const STEPS = 64;
const SEED = 2024;

const fmt = (m: Interval | undefined): Cell => (m ? `${m.mean.toFixed(3)} [${m.low.toFixed(3)}, ${m.high.toFixed(3)}]` : null);

const info = await initBackend();
const modelDir = join(here, '../models/shapes-resnet');
if (!existsSync(modelDir)) throw new Error(`the bundled model ${modelDir} is missing`);
const model = await loadImageModel(modelDir);
const [size] = model.inputShape;
const samples = generateShapes({ count: IMAGES, seed: SEED, size });
const images: CompareImage[] = samples.map((s) => ({ name: `${s.index}-${s.className}`, image: { data: s.pixels, height: s.height, width: s.width, channels: 3 }, mask: s.mask }));
const accuracy = await (async () => {
  const { forwardRows } = await import('../src/attribution/index.js');
  const rows = await forwardRows(model, images.map((i) => i.image.data), 32);
  return rows.filter((r, i) => r.indexOf(Math.max(...r)) === samples[i]!.label).length / rows.length;
})();

const baselines: BaselineEntry[] = [
  { name: 'black', spec: 'black' },
  { name: 'white', spec: 'white' },
  { name: 'zero', spec: 'zero' },
  { name: 'blur', spec: 'blur' },
  { name: 'uniform', spec: 'uniform' },
  { name: 'gaussian', spec: 'gaussian' },
  { name: 'maxdist', spec: 'maxdist' },
  { name: 'black+white', spec: { kind: 'average', of: ['black', 'white'] } },
  { name: 'expected', spec: 'expected' },
];
const t0 = performance.now();
const result = await compareBaselines(model, images, baselines, {
  steps: STEPS,
  seed: SEED,
  curveSteps: 16,
  keep: 0,
  onProgress: (p) => {
    if (p.done % 50 === 0) process.stderr.write(`baselines ${p.done}/${p.total}\n`);
  },
});
const rows: Record<string, Cell>[] = [];
for (const b of result.baselines) {
  const s = result.summary[b]!;
  const mine = result.rows.filter((r) => r.baseline === b);
  rows.push({
    method: b === 'expected' ? 'expected gradients' : 'integrated gradients',
    baseline: b,
    images: mine.length,
    'mask share (mean [95% CI])': fmt(s.maskShare),
    'pointing game': fmt(s.pointing),
    'deletion AUC': fmt(s.deletionAuc),
    'insertion AUC': fmt(s.insertionAuc),
    'median relative delta': [...mine.map((r) => r.relativeDelta)].sort((a, b2) => a - b2)[mine.length >> 1] ?? null,
    'images with delta < 1%': `${mine.filter((r) => r.relativeDelta < 0.01).length}/${mine.length}`,
  });
}
const baselineSeconds = (performance.now() - t0) / 1000;

// Other methods on a subset, scored the same way (target = the model's top class).
const methods = ['gradient', 'gradient_x_input', 'smoothgrad', 'smoothgrad:ig', 'blur_ig', 'guided_ig', 'xrai', 'occlusion', 'rise', 'gradcam'];
const settings: Record<string, Parameters<typeof runMethod>[3]> = {
  smoothgrad: { samples: 25 },
  'smoothgrad:ig': { samples: 10, steps: 16 },
  blur_ig: { steps: 64, maxSigma: size / 4 },
  guided_ig: { steps: 64 },
  xrai: { steps: 32 },
  rise: { masks: 1000 },
};
/** Which mask metric suits which method (see the notes): signed pixel maps, maps positive everywhere, coarse maps. */
const FIT_METRIC: Record<string, string> = {
  gradient: 'mask share, pointing',
  gradient_x_input: 'mask share, pointing',
  smoothgrad: 'mask share, pointing',
  'smoothgrad:ig': 'mask share, pointing',
  blur_ig: 'mask share, pointing',
  guided_ig: 'mask share, pointing',
  xrai: 'mask share, pointing',
  occlusion: 'centred mask share, pointing',
  rise: 'centred mask share, pointing',
  gradcam: 'mask share / cell ceiling, pointing',
};
for (const name of methods) {
  const parsed = parseMethod(name);
  const share: number[] = [];
  const centred: number[] = [];
  const ceilings: number[] = [];
  const pointing: number[] = [];
  const deletion: number[] = [];
  const insertion: number[] = [];
  let skipped = '';
  for (const item of images.slice(0, METHOD_IMAGES)) {
    try {
      const attr = await runMethod(parsed, model, item.image, { seed: SEED, ...(settings[name] ?? {}) });
      const m = maskScores(attr, item.mask!);
      share.push(m.positiveShareInMask);
      centred.push(m.centredShareInMask);
      pointing.push(m.pointingHit ? 1 : 0);
      const featureMap = (attr.details as { featureMap?: [number, number] } | undefined)?.featureMap;
      if (featureMap) ceilings.push(cellShareCeiling(item.mask!, item.image.height, item.image.width, Math.ceil(item.image.height / featureMap[0]), Math.ceil(item.image.width / featureMap[1])));
      deletion.push((await attributionCurve(model, item.image, attr, 'deletion', { steps: 16 })).auc);
      insertion.push((await attributionCurve(model, item.image, attr, 'insertion', { steps: 16 })).auc);
    } catch (e) {
      skipped = (e as Error).message;
      break;
    }
  }
  rows.push({
    method: name,
    baseline: name === 'gradcam' || name === 'rise' || name === 'gradient' ? null : name === 'blur_ig' ? 'blur' : name === 'xrai' ? 'black+white' : 'black',
    images: share.length,
    'mask share (mean [95% CI])': share.length ? fmt(bootstrapInterval(share)) : `skipped: ${skipped}`,
    'centred mask share': share.length ? fmt(bootstrapInterval(centred)) : null,
    'cell ceiling of mask share': ceilings.length ? fmt(bootstrapInterval(ceilings)) : null,
    'pointing game': share.length ? fmt(proportionInterval(pointing)) : null,
    'fit metric': FIT_METRIC[name] ?? null,
    'deletion AUC': share.length ? fmt(bootstrapInterval(deletion)) : null,
    'insertion AUC': share.length ? fmt(bootstrapInterval(insertion)) : null,
  });
  process.stderr.write(`method ${name} done\n`);
}

// Cascading model randomisation (Adebayo et al. 2018): re-initialise every layer from the top
// down; a map that still resembles the original does not explain the model.
const RANDOM_IMAGES = QUICK ? 2 : 10;
for (const name of ['gradient', 'gradient_x_input', 'ig', 'smoothgrad', 'gradcam']) {
  const parsed = parseMethod(name);
  const method: AttributionMethod<MethodSettings> = (m, image, o) => runMethod(parsed, m, image, { ...o, seed: SEED, ...(name === 'ig' ? { steps: 16 } : {}), ...(name === 'smoothgrad' ? { samples: 10 } : {}) });
  const first: number[] = [];
  const last: number[] = [];
  for (const item of images.slice(0, RANDOM_IMAGES)) {
    const { steps } = await modelRandomization(method, model, item.image, { seed: SEED });
    first.push(steps[0]!.spearmanAbs);
    last.push(steps.at(-1)!.spearmanAbs);
  }
  rows.push({
    method: `${name} (randomisation)`,
    baseline: name === 'ig' || name === 'gradient_x_input' ? 'black' : null,
    images: first.length,
    'Spearman |map| after randomising the top layer': fmt(bootstrapInterval(first)),
    'Spearman |map| after randomising all layers': fmt(bootstrapInterval(last)),
  });
  process.stderr.write(`randomisation ${name} done\n`);
}

const black = result.summary.black?.maskShare;
writeBenchResult('attribution-quality', 'Attribution quality on the shapes dataset (bundled model, ground-truth masks)', rows, [
  `${IMAGES} images from generateShapes({ seed: ${SEED}, size: ${size} }); model accuracy on them ${(accuracy * 100).toFixed(1)}%; target = the model's top class.`,
  `IG: ${STEPS} steps, gausslegendre; expected gradients: ${STEPS} samples drawn from the other ${IMAGES - 1} images. Other methods on the first ${METHOD_IMAGES} images.`,
  'mask share = positive attribution inside the object mask / all positive attribution (channel sums); centred mask share = the same after subtracting the map\'s median (its background level); cell ceiling = the best mask share a map made of the Grad-CAM layer\'s cells can reach (the share of the best cell inside the mask); pointing game = share of images whose largest channel-summed attribution lies inside the mask, with its 95% Wilson score interval (the other intervals are percentile bootstrap, 4000 resamples).',
  'Which metric suits which method ("fit metric"): the mask share for signed pixel-level maps (gradients, IG and its variants, XRAI); the centred share for maps positive everywhere (RISE is E[p | pixel kept], near the mean probability on every pixel; occlusion is a drop in score per window), whose uncentred share only measures the mask\'s area; Grad-CAM\'s share read against its cell ceiling (its layer is coarse: it cannot place mass finer than a cell); the pointing game for all, since it needs only the location of the maximum.',
  'deletion/insertion AUC: target probability while removing (black fill) / inserting (into the image blurred with sigma 5) pixels in order of attribution, 16 steps.',
  `Goal: IG with the black baseline puts > 70% of positive attribution inside the mask: ${black ? `${(black.mean * 100).toFixed(1)}% -> ${black.mean > 0.7 ? 'met' : 'NOT met'}` : 'n/a'}.`,
  'randomisation rows: Spearman rank correlation of |channel-summed map| with the original after re-initialising the top layer, and after all layers (cascading, Keras initialisers); IG with 16 steps, SmoothGrad with 10 samples.',
  `baseline comparison took ${baselineSeconds.toFixed(0)} s; the model ran on ${model.engine.detail} (tfjs backend ${info.name}).`,
]);
model.dispose();
