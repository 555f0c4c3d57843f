/**
 * How many gradient evaluations each integration rule needs before the IG completeness delta
 * stays under a threshold (relative to |F(x) - F(x')|), on ResNet-8 (CIFAR-10), the bundled
 * shapes model, and a smooth reference model (a tanh MLP), where quadrature theory applies.
 * Steps tried: 2, 4, ..., 1024; "needed" is the smallest tried step count from which every larger
 * one also meets the threshold (so a lucky cancellation does not count).
 *
 * `npx tsx bench/ig-rules.bench.ts` (`BENCH_QUICK=1` for a short smoke run)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/engines/tfjs/index.js';
import { INTEGRATION_RULES, integratedGradients, type IntegrationRule } from '../src/attribution/index.js';
import { generateShapes } from '../src/datasets/shapes.js';
import { loadPixels } from '../src/image/index.js';
import { loadImageModel } from '../src/models/load.js';
import { createTfModel, type ImageModel } from '../src/core/model.js';
import { seededRandom } from '../src/attribution/index.js';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageInput } from '../src/attribution/index.js';
import { median, writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
const STEPS = QUICK ? [2, 4, 8, 16, 32] : [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const THRESHOLDS = [1e-4, 1e-3, 1e-2, 5e-2];
const SHARED_IMAGES = ['cat.bmp', 'bird.bmp', 'grace_hopper.bmp', 'parrot.jpg', 'hot_dog.jpg'];

/** Smallest tried step count from which all larger ones meet the threshold (null: none). */
function needed(deltas: readonly number[], threshold: number): number | null {
  let from: number | null = null;
  for (let i = STEPS.length - 1; i >= 0; i--) {
    if (deltas[i]! < threshold) from = STEPS[i]!;
    else break;
  }
  return from;
}

/** A smooth model (two tanh layers on unit-scaled pixels) with seeded weights. */
function smoothModel(shape: [number, number, number], hidden: number, classes: number): ImageModel {
  const features = shape[0] * shape[1] * shape[2];
  const rng = seededRandom(5);
  const w1 = tf.tensor2d(Float32Array.from({ length: features * hidden }, () => rng.normal() * (2 / Math.sqrt(features))), [features, hidden]);
  const b1 = tf.tensor1d(Float32Array.from({ length: hidden }, () => rng.normal() * 0.5));
  const w2 = tf.tensor2d(Float32Array.from({ length: hidden * classes }, () => rng.normal() * (2 / Math.sqrt(hidden))), [hidden, classes]);
  return createTfModel({
    name: 'smooth-mlp',
    inputShape: shape,
    classes,
    output: 'logit',
    preprocessing: 'unit',
    scores: (x) => tf.matMul(tf.tanh(tf.add(tf.matMul(tf.reshape(x, [x.shape[0], features]), w1), b1)), w2) as tf.Tensor2D,
    dispose: () => tf.dispose([w1, b1, w2]),
  });
}

/** Median with "never" (null) counted as larger than anything; null when the median never gets there. */
function medianNeeded(counts: readonly (number | null)[]): number | null {
  const sorted = counts.map((c) => c ?? Infinity).sort((a, b) => a - b);
  const m = median(sorted);
  return Number.isFinite(m) ? m : null;
}

async function measure(modelName: string, spec: string | ImageModel, images: ImageInput[], rows: Record<string, Cell>[], notes: string[]): Promise<void> {
  const model = typeof spec === 'string' ? await loadImageModel(spec) : spec;
  const perRule = new Map<IntegrationRule, number[][]>();
  for (const rule of INTEGRATION_RULES) {
    const all: number[][] = [];
    for (const image of images) {
      const deltas: number[] = [];
      for (const steps of STEPS) {
        const attr = await integratedGradients(model, image, { steps, rule, baseline: 'black', batchSize: 32 });
        deltas.push(attr.completeness!.relative);
      }
      all.push(deltas);
    }
    perRule.set(rule, all);
    const row: Record<string, Cell> = { model: modelName, rule, images: images.length };
    for (const t of THRESHOLDS) {
      const counts = all.map((d) => needed(d, t));
      row[`evals to <${t * 100}%`] = medianNeeded(counts);
      row[`images under ${t * 100}%`] = `${counts.filter((c) => c !== null).length}/${counts.length}`;
    }
    for (const [i, steps] of STEPS.entries()) if (steps >= 8) row[`median delta @${steps}`] = median(all.map((d) => d[i]!));
    rows.push(row);
    process.stderr.write(`${modelName} ${rule} done\n`);
  }
  for (const t of [1e-4, 1e-2]) {
    const gl = perRule.get('gausslegendre')!.map((d) => needed(d, t) ?? Infinity);
    const tr = perRule.get('riemann_trapezoid')!.map((d) => needed(d, t) ?? Infinity);
    const fewer = gl.filter((g, i) => g < tr[i]!).length;
    const more = gl.filter((g, i) => g > tr[i]!).length;
    notes.push(`${modelName}: to stay under ${t * 100}%, gausslegendre needed fewer evaluations than riemann_trapezoid on ${fewer} of ${images.length} images, more on ${more}.`);
  }
  model.dispose();
}

const info = await initBackend();
const rows: Record<string, Cell>[] = [];
const notes = [
  `IG, black baseline, one target (top-1); relative delta = |sum(attr) - (F(x) - F(x'))| / |F(x) - F(x')| on logits; steps tried ${STEPS.join(', ')}.`,
  '"evals to <t" = smallest tried step count from which every larger one stays under t, median over images (an image that never does counts as more than 1024; null when the median is such an image).',
  'ReLU networks are piecewise linear along the path, so the integrand jumps and no rule has a smoothness advantage; the smooth tanh MLP shows the case quadrature theory covers.',
];
const mlp = smoothModel([8, 8, 3], 16, 4);
const mlpImages = Array.from({ length: 5 }, (_, k) => ({ data: Float32Array.from({ length: 192 }, (_, i) => (i * (37 + 2 * k) + 11 * k) % 256), height: 8, width: 8, channels: 3 }));
await measure('smooth MLP (tanh, 8x8x3)', mlp, mlpImages, rows, notes);
const resnet8 = join(here, '../../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const shared = await Promise.all(SHARED_IMAGES.slice(0, QUICK ? 2 : 5).map((f) => loadPixels(join(here, '../../shared/images', f), { size: [32, 32] })));
await measure('resnet8-cifar10', resnet8, shared, rows, notes);
const bundled = join(here, '../models/shapes-resnet');
if (existsSync(bundled)) {
  const probe = await loadImageModel(bundled);
  const size = probe.inputShape[0];
  probe.dispose();
  const shapes = generateShapes({ count: QUICK ? 2 : 5, seed: 777, size }).map((s) => ({ data: s.pixels, height: s.height, width: s.width, channels: 3 }));
  await measure('shapes-resnet (bundled)', bundled, shapes, rows, notes);
} else {
  notes.push(`bundled model not measured: ${bundled} is missing`);
}
notes.push(`backend ${info.name}`);
writeBenchResult('ig-rules', 'Integration rules: gradient evaluations to reach a completeness delta', rows, notes);
