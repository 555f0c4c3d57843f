/**
 * Integrated Gradients to a requested map error: is the map-error estimate honest, and does the
 * map_adaptive rule reach Captum's default accuracy with less model work?
 *
 * For each image (black baseline, top-1 class, logits) the reference is the converged map:
 * Gauss-Legendre with 2048 (bundled model) or 4096 (ResNet-8) points, whose own error shows in its
 * distance to a trapezoid map with one point more (reported), or for MobileNetV2, where a gradient
 * costs over a second here, the trapezoid with 513 points (its own error estimate reported). Then:
 * - Captum's default, gausslegendre with 50 steps: its true map error e50 and its estimate;
 * - map_adaptive with mapTolerance = e50 (the same error asked for): the work it spent, the true
 *   error it reached and its estimate;
 * - map_adaptive with mapTolerance = 0.01: does it meet 1%, and how far is the estimate.
 * Work = gradient evaluations + forward passes x (forward cost / gradient cost), both costs measured
 * on this machine per image at the bench's batch size. Gradients are cached by input image, so
 * runs that share points (the trapezoid reference and map_adaptive's dyadic points) compute them
 * once; the work reported is what each rule asks for, as its Attribution counts it.
 *
 * Models: the bundled shapes model on generated shapes (64x64), the MLPerf Tiny ResNet-8 on the
 * five photos of ../shared/images squashed to 32x32, MobileNetV2 (uint8 TFLite, run in float) on
 * the same photos at 224x224. `QUICK=1` runs two images per model. To use several cores, run
 * `MODELS=shapes PART=/tmp/a.json`, `MODELS=resnet8 PART=/tmp/b.json`, ... in parallel, then
 * `MERGE=/tmp/a.json,/tmp/b.json` writes the result from the parts (`MERGE_NOTE` adds a note).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engines/tfjs/index.js';
import { integratedGradients, relativeL2, type Attribution } from '../src/attribution/index.js';
import { generateShapes } from '../src/datasets/shapes.js';
import { loadPixels } from '../src/image/index.js';
import { loadImageModel } from '../src/models/load.js';
import type { GradientResult, ImageModel } from '../src/core/model.js';
import { median, writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = join(here, '../../shared');
const QUICK = process.env.QUICK === '1';
const CAPTUM_STEPS = 50;
const TOLERANCE = 0.01;
const BATCH = 16;

interface Image {
  name: string;
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

const log = (msg: string) => process.stderr.write(`[ig-map-error] ${msg}\n`);

/** ||a - b|| / ||b||. */
function distance(a: Float32Array, b: Float32Array): number {
  return relativeL2(
    Float32Array.from(a, (v, i) => v - b[i]!),
    b,
  );
}

/** Milliseconds per image of a gradient evaluation and of a forward pass at the bench's batch size (median of 3). */
async function costs(model: ImageModel): Promise<{ gradient: number; forward: number }> {
  const [h, w, c] = model.inputShape;
  const batch = tf.randomUniform([BATCH, h, w, c], 0, 255);
  const time = async (fn: () => Promise<void>) => {
    await fn();
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await fn();
      runs.push((performance.now() - t0) / BATCH);
    }
    return median(runs);
  };
  const gradient = await time(async () => {
    const r = await model.gradient!(batch as tf.Tensor4D, 0);
    await r.gradients.data();
    tf.dispose([r.gradients, r.values]);
  });
  const forward = await time(async () => {
    const r = await model.forward(batch as tf.Tensor4D);
    await r.data();
    r.dispose();
  });
  batch.dispose();
  return { gradient, forward };
}

interface Outcome {
  image: string;
  e50: number;
  est50: number;
  work50: number;
  matchWork: number;
  matchError: number;
  matchEstimate: number;
  matchConverged: boolean;
  calibratedWork: number;
  calibratedError: number;
  tolWork: number;
  tolError: number;
  tolEstimate: number;
  tolConverged: boolean;
  referenceSpread: number;
  refDelta: number;
}

/** The model with its gradients cached by (input image, target): wall time only, the counts stay the rules' own. */
function cachedGradients(model: ImageModel): ImageModel {
  const cache = new Map<string, { gradient: Float32Array; value: number }>();
  const [h, w, c] = model.inputShape;
  const per = h * w * c;
  return {
    name: model.name,
    inputShape: model.inputShape,
    classes: model.classes,
    output: model.output,
    preprocessing: model.preprocessing,
    forward: (pixels) => model.forward(pixels),
    dispose: () => model.dispose(),
    gradient: async (pixels, target) => {
      if (typeof target !== 'number') throw new Error('the bench caches one target per batch');
      const data = (await pixels.data()) as Float32Array;
      const n = pixels.shape[0];
      const keys = Array.from({ length: n }, (_, i) =>
        createHash('sha1').update(Buffer.from(data.buffer, data.byteOffset + i * per * 4, per * 4)).update(String(target)).digest('hex'),
      );
      const missing = [...new Set(keys.filter((k) => !cache.has(k)))];
      if (missing.length > 0) {
        const rows = missing.map((k) => keys.indexOf(k));
        const batch = tf.tensor4d(Float32Array.from(rows.flatMap((i) => Array.from(data.subarray(i * per, (i + 1) * per)))), [rows.length, h, w, c]);
        const result = await model.gradient!(batch, target);
        const g = (await result.gradients.data()) as Float32Array;
        const v = (await result.values.data()) as Float32Array;
        tf.dispose([batch, result.gradients, result.values]);
        missing.forEach((k, j) => cache.set(k, { gradient: g.slice(j * per, (j + 1) * per), value: v[j]! }));
      }
      const out = new Float32Array(n * per);
      keys.forEach((k, i) => out.set(cache.get(k)!.gradient, i * per));
      const result: GradientResult = { gradients: tf.tensor4d(out, [n, h, w, c]), values: tf.tensor1d(keys.map((k) => cache.get(k)!.value)) };
      return result;
    },
  };
}

/** How each model's reference map is made. */
interface Reference {
  rule: 'gausslegendre' | 'riemann_trapezoid';
  steps: number;
}

const ig = (model: ImageModel, image: Image, options: Parameters<typeof integratedGradients>[2]) =>
  integratedGradients(model, image, { baseline: 'black', batchSize: BATCH, ...options });

async function measure(raw: ImageModel, modelName: string, images: Image[], ref: Reference, rows: Record<string, Cell>[], notes: string[]): Promise<void> {
  const cost = await costs(raw);
  const model = cachedGradients(raw);
  const forwardWeight = cost.forward / cost.gradient;
  const work = (a: Attribution) => a.gradientEvaluations + forwardWeight * a.forwardEvaluations;
  notes.push(`${modelName}: ${cost.gradient.toFixed(2)} ms per gradient evaluation, ${cost.forward.toFixed(2)} ms per forward pass (weight ${forwardWeight.toFixed(2)}), batch ${BATCH}.`);
  const outcomes: Outcome[] = [];
  for (const image of images) {
    const reference = await ig(model, image, { rule: ref.rule, steps: ref.steps });
    // The reference's own error: its distance to a trapezoid with one point more (cheap models), or its estimate.
    const referenceSpread =
      ref.rule === 'gausslegendre' ? distance((await ig(model, image, { rule: 'riemann_trapezoid', steps: ref.steps + 1 })).data, reference.data) : reference.mapErrorEstimate!;
    const captum = await ig(model, image, { rule: 'gausslegendre', steps: CAPTUM_STEPS });
    const e50 = distance(captum.data, reference.data);
    // Budget: the reference's steps, so the rule can go as far as the reference does.
    const match = await ig(model, image, { mapTolerance: e50, steps: ref.steps });
    // Asked to bring its estimate itself (not estimate x margin) to e50: what a calibrated stop costs.
    const calibrated = await ig(model, image, { mapTolerance: Math.min(0.99, e50 * Math.sqrt(3)), steps: ref.steps });
    const tol = await ig(model, image, { mapTolerance: TOLERANCE, steps: ref.steps });
    const o: Outcome = {
      image: image.name,
      e50,
      est50: captum.mapErrorEstimate!,
      work50: work(captum),
      matchWork: work(match),
      matchError: distance(match.data, reference.data),
      matchEstimate: match.mapErrorEstimate!,
      matchConverged: match.details?.converged === true,
      calibratedWork: work(calibrated),
      calibratedError: distance(calibrated.data, reference.data),
      tolWork: work(tol),
      tolError: distance(tol.data, reference.data),
      tolEstimate: tol.mapErrorEstimate!,
      tolConverged: tol.details?.converged === true,
      referenceSpread,
      refDelta: reference.completeness!.relative,
    };
    outcomes.push(o);
    log(
      `${modelName} ${image.name}: GL-50 error ${o.e50.toExponential(2)} (est ${o.est50.toExponential(2)}); same error asked: work ${o.matchWork.toFixed(1)} vs ${o.work50.toFixed(1)}, error ${o.matchError.toExponential(2)} (est ${o.matchEstimate.toExponential(2)}); ` +
        `1%: work ${o.tolWork.toFixed(1)}, error ${o.tolError.toExponential(2)} (est ${o.tolEstimate.toExponential(2)}); reference spread ${o.referenceSpread.toExponential(2)}`,
    );
  }
  const within2 = (est: number, err: number) => est <= 2 * err && est >= err / 2;
  const count = (f: (o: Outcome) => boolean) => `${outcomes.filter(f).length}/${outcomes.length}`;
  const ratio = (f: (o: Outcome) => number) => median(outcomes.map(f));
  rows.push({
    model: modelName,
    images: outcomes.length,
    'GL-50 map error (median)': median(outcomes.map((o) => o.e50)),
    'GL-50 estimate / error (median)': ratio((o) => o.est50 / o.e50),
    'GL-50 estimate within 2x': count((o) => within2(o.est50, o.e50)),
    'map_adaptive at GL-50 error: work / GL-50 work (median)': ratio((o) => o.matchWork / o.work50),
    'work / GL-50 work (max)': Math.max(...outcomes.map((o) => o.matchWork / o.work50)),
    'images at <= half the work and <= GL-50 error': count((o) => o.matchWork <= o.work50 / 2 && o.matchError <= o.e50),
    'its error / GL-50 error (median)': ratio((o) => o.matchError / o.e50),
    'its estimate within 2x': count((o) => within2(o.matchEstimate, o.matchError)),
    'stopping at estimate = GL-50 error (no margin): work / GL-50 work (median)': ratio((o) => o.calibratedWork / o.work50),
    'then error / GL-50 error (median)': ratio((o) => o.calibratedError / o.e50),
    'tolerance 1%: met': count((o) => o.tolError <= TOLERANCE),
    'tolerance 1%: gradient-equivalent work (median)': median(outcomes.map((o) => o.tolWork)),
    'tolerance 1%: error (median)': median(outcomes.map((o) => o.tolError)),
    'tolerance 1%: estimate within 2x': count((o) => within2(o.tolEstimate, o.tolError)),
    reference: `${ref.rule} ${ref.steps}`,
    'reference error (max; see notes)': Math.max(...outcomes.map((o) => o.referenceSpread)),
  });
  for (const o of outcomes) {
    notes.push(
      `${modelName} ${o.image}: GL-50 error ${o.e50.toPrecision(3)} est ${o.est50.toPrecision(3)}, work ${o.work50.toFixed(1)}; ` +
        `map_adaptive(tol=${o.e50.toPrecision(3)}) work ${o.matchWork.toFixed(1)}, error ${o.matchError.toPrecision(3)} est ${o.matchEstimate.toPrecision(3)}${o.matchConverged ? '' : ' (budget spent)'}; ` +
        `estimate to GL-50 error: work ${o.calibratedWork.toFixed(1)}, error ${o.calibratedError.toPrecision(3)}; map_adaptive(tol=0.01) work ${o.tolWork.toFixed(1)}, error ${o.tolError.toPrecision(3)} est ${o.tolEstimate.toPrecision(3)}${o.tolConverged ? '' : ' (budget spent)'}; reference delta ${o.refDelta.toExponential(1)}.`,
    );
  }
}

async function photos(size: number, count = 5): Promise<Image[]> {
  const dir = join(SHARED, 'images');
  const files = readdirSync(dir)
    .filter((f) => /\.(bmp|jpe?g|png)$/i.test(f))
    .sort()
    .slice(0, QUICK ? 2 : count);
  const out: Image[] = [];
  for (const f of files) {
    const p = await loadPixels(join(dir, f), { size: [size, size], resize: 'squash', channels: 3 });
    out.push({ name: f, data: p.data, height: p.height, width: p.width, channels: p.channels });
  }
  return out;
}

const TITLE = "Integrated Gradients to a map error: estimate vs true error, and work against Captum's default (gausslegendre, 50 steps)";

async function main(): Promise<void> {
  // The parts ran on the default backend; the merge records it as theirs.
  await initBackend();
  if (process.env.MERGE) {
    const parts = process.env.MERGE.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as { rows: Record<string, Cell>[]; notes: string[] });
    // MERGE_NOTE: what the parts leave out and why (e.g. a model that did not finish).
    const notes = [...new Set(parts.flatMap((p) => p.notes)), ...(process.env.MERGE_NOTE ? [process.env.MERGE_NOTE] : [])];
    writeBenchResult('ig-map-error', TITLE, parts.flatMap((p) => p.rows), notes);
    return;
  }
  const rows: Record<string, Cell>[] = [];
  const only = process.env.MODELS?.split(',');
  const wanted = (name: string) => !only || only.includes(name);
  const notes = [
    'Reference: the column names it. "reference error": for a gausslegendre reference its relative L2 distance to riemann_trapezoid with one point more (the order of its own error); for the trapezoid reference of MobileNetV2 its own map-error estimate.',
    'Map error = ||map - reference|| / ||reference||, L2 over pixels and channels; black baseline, top-1 class, logits.',
    `Captum's default is gausslegendre with ${CAPTUM_STEPS} steps (n_steps=50). map_adaptive runs with mapTolerance set to GL-50's true error on that image (it stops at estimate <= tolerance / sqrt(3)), and once more stopping at estimate <= GL-50's error (mapTolerance = sqrt(3) x that); budget: the reference's steps.`,
    'Work = gradient evaluations + forward passes weighted by their measured cost relative to a gradient evaluation (both rules spend 2 forward passes, F(x) and F(x\')).',
    '"estimate within 2x": error / 2 <= estimate <= 2 x error. Estimates come from the rules\' own points (splitDifferenceWeights), no extra evaluations.',
  ];
  const bundled = join(here, '../models/shapes-resnet/model.json');
  if (!wanted('shapes')) {
    // left out on request
  } else if (existsSync(bundled)) {
    const model = await loadImageModel('default');
    const samples = generateShapes({ count: QUICK ? 2 : 8, seed: 2024, size: model.inputShape[0] });
    const images = samples.map((s, i) => ({ name: `shape ${i} (${s.className})`, data: s.pixels, height: model.inputShape[0], width: model.inputShape[1], channels: model.inputShape[2] }));
    await measure(model, 'shapes-resnet (bundled, generated shapes)', images, { rule: 'gausslegendre', steps: 2048 }, rows, notes);
    model.dispose();
  } else {
    notes.push('The bundled model (models/shapes-resnet) is missing; its row is left out.');
  }
  const resnet8 = join(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
  if (!wanted('resnet8')) {
    // left out on request
  } else if (existsSync(resnet8)) {
    const model = await loadImageModel(resnet8);
    await measure(model, 'resnet8-cifar10 (photos, 32x32)', await photos(32), { rule: 'gausslegendre', steps: 4096 }, rows, notes);
    model.dispose();
  } else {
    notes.push(`ResNet-8 not found at ${resnet8}`);
  }
  const mobilenet = join(SHARED, 'models-external/mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite');
  if (!wanted('mobilenet')) {
    // left out on request
  } else if (existsSync(mobilenet)) {
    const model = await loadImageModel(mobilenet);
    await measure(model, 'mobilenet_v2_1.0_224_quant (photos, 224x224)', await photos(224, 3), { rule: 'riemann_trapezoid', steps: 513 }, rows, notes);
    model.dispose();
  } else {
    notes.push(`MobileNetV2 not found at ${mobilenet}`);
  }
  if (process.env.PART) writeFileSync(process.env.PART, JSON.stringify({ rows, notes }));
  else writeBenchResult('ig-map-error', TITLE, rows, notes);
}

await main();
