/**
 * Trains the bundled default model (models/shapes-resnet/) on the procedural shapes dataset,
 * measures it, and writes model.json + weights.bin + lens.json + TRAINING.md.
 *
 *   npm run train:default                       # the committed model's settings
 *   npm run train:default -- --out /tmp/shapes --train-samples 4000   # a quicker try
 *
 * What it records: held-out accuracy on a set drawn with another seed, per class, and the mean
 * share of positive Integrated Gradients attribution (black baseline) inside the object masks,
 * measured with a plain Riemann-sum IG written here as a self-check (the attribution engine,
 * src/attribution, re-measures with its own implementation).
 *
 * Runs on the tfjs `wasm` backend, set directly rather than through initBackend(): training needs
 * filter gradients, which stock wasm lacks (scripts/lib/training-kernels.ts adds one), and the
 * attribution gradients that initBackend() installs are built for input gradients only.
 * Everything is seeded (weights, data, order), so a run with the same settings on the same
 * machine gives the same model.
 */
import { performance } from 'node:perf_hooks';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type * as tfl from '@tensorflow/tfjs-layers';
import { SHAPES_DATASET_DESCRIPTION, SHAPE_CLASSES, generateShape, generateShapes, shapesToTensors, type ShapeSample } from '../src/datasets/index.js';
import { SeededRandom } from '../src/datasets/random.js';
import { SHAPES_RESNET_DEFAULTS, SHAPES_RESNET_LAST_CONV, buildShapesResNet, writeLayersModel, type ShapesModelSidecar } from '../src/models/shapes-resnet.js';
import { preprocess } from '../src/core/preprocess.js';
import { installWasmFilterGradient } from './lib/training-kernels.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Settings {
  out: string;
  size: number;
  trainSeed: number;
  trainSamples: number;
  epochs: number;
  batch: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  momentum: number;
  warmup: number;
  weightSeed: number;
  heldOutSeed: number;
  heldOutSamples: number;
  igImages: number;
  igSteps: number;
}

function parseSettings(argv: string[]): Settings {
  const int = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`expected a whole number, got "${v}"`);
    return n;
  };
  const num = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`expected a number, got "${v}"`);
    return n;
  };
  const program = new Command('train-default')
    .description('train the bundled shapes ResNet and write it with its lens.json and TRAINING.md')
    .option('--out <dir>', 'model folder to write', join(REPO_ROOT, 'models/shapes-resnet'))
    .option('--size <px>', 'image side', int, SHAPES_RESNET_DEFAULTS.inputSize)
    .option('--train-seed <n>', 'seed of the training images', int, 1)
    .option('--train-samples <n>', 'distinct training images', int, 48000)
    .option('--epochs <n>', 'passes over the training images', int, 1)
    .option('--batch <n>', 'batch size', int, 32)
    .option('--optimizer <name>', 'adam or sgd (with Nesterov momentum)', (v: string) => {
      if (v !== 'adam' && v !== 'sgd') throw new Error(`expected adam or sgd, got "${v}"`);
      return v;
    }, 'adam')
    .option('--lr <x>', 'peak learning rate (linear warm-up, then cosine decay to 0)', num, 0.003)
    .option('--momentum <x>', 'momentum of sgd, beta1 of adam', num, 0.9)
    .option('--warmup <n>', 'linear warm-up steps', int, 20)
    .option('--weight-seed <n>', 'seed of the weight initialisers', int, SHAPES_RESNET_DEFAULTS.seed)
    .option('--held-out-seed <n>', 'seed of the held-out evaluation images', int, 1001)
    .option('--held-out-samples <n>', 'held-out evaluation images', int, 1000)
    .option('--ig-images <n>', 'held-out images for the in-mask attribution check (0 skips it)', int, 100)
    .option('--ig-steps <n>', 'Riemann steps of the attribution check', int, 32)
    .parse(argv, { from: 'user' });
  const o = program.opts<Settings>();
  return { ...o, out: resolve(o.out) };
}

/** Prints progress on stderr: a bar on a terminal, a line per 5% in a log file. */
function progress(total: number, label: string) {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: `${label} {bar} {value}/{total} {info} eta {eta_formatted}`, hideCursor: true }, Presets.shades_classic);
    bar.start(total, 0, { info: '' });
    return { update: (v: number, info: string) => bar.update(v, { info }), stop: () => bar.stop() };
  }
  let next = 0;
  const start = performance.now();
  return {
    update: (v: number, info: string) => {
      if (v < next && v < total) return;
      next = v + Math.max(1, Math.floor(total / 20));
      const s = (performance.now() - start) / 1000;
      process.stderr.write(`${label} ${v}/${total} ${info} ${s.toFixed(0)}s\n`);
    },
    stop: () => {},
  };
}

/** Adam whose learning rate the schedule can change between steps (tfjs keeps it protected). */
class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

function makeOptimizer(s: Settings): tf.Optimizer & { setLearningRate(lr: number): void } {
  return s.optimizer === 'adam' ? new ScheduledAdam(s.lr, s.momentum, 0.999, 1e-7) : tf.train.momentum(s.lr, s.momentum, true);
}

function learningRate(step: number, total: number, s: Settings): number {
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const t = (step - s.warmup) / Math.max(1, total - s.warmup);
  return 0.5 * s.lr * (1 + Math.cos(Math.PI * t));
}

/** Training inputs: 'unit' preprocessing of the pixels, one-hot labels. */
function batchTensors(samples: readonly ShapeSample[]): { x: tf.Tensor4D; y: tf.Tensor2D } {
  return tf.tidy(() => {
    const { pixels, labels } = shapesToTensors(samples);
    return { x: preprocess(pixels, 'unit'), y: tf.cast(tf.oneHot(labels, SHAPE_CLASSES.length), 'float32') as tf.Tensor2D };
  });
}

async function train(model: tfl.LayersModel, s: Settings): Promise<{ steps: number; finalLoss: number; finalAccuracy: number; seconds: number }> {
  const optimizer = makeOptimizer(s);
  model.compile({ optimizer, loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p), metrics: ['accuracy'] });
  const stepsPerEpoch = Math.floor(s.trainSamples / s.batch);
  const total = stepsPerEpoch * s.epochs;
  const order = Array.from({ length: s.trainSamples }, (_, i) => i);
  const shuffler = new SeededRandom(s.trainSeed, 0x5eed);
  const bar = progress(total, 'train');
  let loss = Math.log(SHAPE_CLASSES.length);
  let accuracy = 1 / SHAPE_CLASSES.length;
  const start = performance.now();
  let step = 0;
  for (let epoch = 0; epoch < s.epochs; epoch++) {
    shuffler.shuffle(order);
    for (let b = 0; b < stepsPerEpoch; b++, step++) {
      optimizer.setLearningRate(learningRate(step, total, s));
      const samples = order.slice(b * s.batch, (b + 1) * s.batch).map((i) => generateShape(s.trainSeed, i, s.size));
      const { x, y } = batchTensors(samples);
      const [l, a] = (await model.trainOnBatch(x, y)) as number[];
      x.dispose();
      y.dispose();
      // Running averages for the progress line.
      loss = 0.95 * loss + 0.05 * l!;
      accuracy = 0.95 * accuracy + 0.05 * a!;
      bar.update(step + 1, `epoch ${epoch + 1}/${s.epochs} loss ${loss.toFixed(3)} acc ${accuracy.toFixed(3)} lr ${learningRate(step, total, s).toFixed(4)}`);
    }
  }
  bar.stop();
  return { steps: total, finalLoss: loss, finalAccuracy: accuracy, seconds: (performance.now() - start) / 1000 };
}

/** Logits of the model for 0..255 pixels, in batches. */
function logitsOf(model: tfl.LayersModel, samples: readonly ShapeSample[], batch = 100): Float32Array[] {
  const rows: Float32Array[] = [];
  for (let i = 0; i < samples.length; i += batch) {
    const { x } = batchTensors(samples.slice(i, i + batch));
    const out = tf.tidy(() => model.predict(x) as tf.Tensor2D);
    const data = out.dataSync() as Float32Array;
    for (let r = 0; r < out.shape[0]; r++) rows.push(data.slice(r * out.shape[1], (r + 1) * out.shape[1]));
    x.dispose();
    out.dispose();
  }
  return rows;
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

function evaluate(model: tfl.LayersModel, s: Settings) {
  const samples = generateShapes({ count: s.heldOutSamples, seed: s.heldOutSeed, size: s.size });
  const logits = logitsOf(model, samples);
  const confusion = SHAPE_CLASSES.map(() => SHAPE_CLASSES.map(() => 0));
  let correct = 0;
  samples.forEach((sample, i) => {
    const predicted = argmax(logits[i]!);
    confusion[sample.label]![predicted]!++;
    if (predicted === sample.label) correct++;
  });
  const perClass = Object.fromEntries(SHAPE_CLASSES.map((c, k) => [c, confusion[k]![k]! / confusion[k]!.reduce((a, b) => a + b, 0)]));
  return { accuracy: correct / samples.length, perClass, confusion };
}

/**
 * Integrated Gradients with a black baseline, Riemann midpoint rule, on the preprocessed model:
 * attribution per pixel (summed over channels), its positive share inside the object mask, and
 * the completeness gap |sum(attr) - (F(x) - F(black))| relative to |F(x) - F(black)|.
 */
function integratedGradientsInMask(model: tfl.LayersModel, sample: ShapeSample, target: number, steps: number) {
  const { height: h, width: w } = sample;
  return tf.tidy(() => {
    const x = tf.tensor4d(sample.pixels, [1, h, w, 3]);
    const alphas = tf.tensor4d(Array.from({ length: steps }, (_, k) => (k + 0.5) / steps), [steps, 1, 1, 1]);
    const path = tf.mul(alphas, x) as tf.Tensor4D; // baseline 0 (black) + alpha * (x - 0)
    const score = (p: tf.Tensor) => tf.sum(tf.slice(model.apply(preprocess(p as tf.Tensor4D, 'unit')) as tf.Tensor2D, [0, target], [-1, 1]));
    const grads = tf.grad(score)(path);
    const attr = tf.mul(x, tf.mean(grads, 0, true)); // (x - baseline) * average gradient
    const perPixel = tf.sum(attr, 3).dataSync();
    const f = (p: tf.Tensor4D) => (model.apply(preprocess(p, 'unit')) as tf.Tensor2D).dataSync()[target]!;
    const gap = f(x) - f(tf.zerosLike(x));
    let inside = 0;
    let positive = 0;
    let sum = 0;
    for (let i = 0; i < perPixel.length; i++) {
      const a = perPixel[i]!;
      sum += a;
      if (a > 0) {
        positive += a;
        if (sample.mask[i]) inside += a;
      }
    }
    return { share: positive > 0 ? inside / positive : 0, relativeDelta: Math.abs(sum - gap) / Math.max(Math.abs(gap), 1e-6) };
  });
}

function measureAttribution(model: tfl.LayersModel, s: Settings) {
  const samples = generateShapes({ count: s.igImages, seed: s.heldOutSeed, size: s.size });
  const logits = logitsOf(model, samples);
  const bar = progress(samples.length, 'ig   ');
  const shares: number[] = [];
  const deltas: number[] = [];
  samples.forEach((sample, i) => {
    const r = integratedGradientsInMask(model, sample, argmax(logits[i]!), s.igSteps);
    shares.push(r.share);
    deltas.push(r.relativeDelta);
    bar.update(i + 1, `mean in-mask ${(shares.reduce((a, b) => a + b, 0) / shares.length).toFixed(3)}`);
  });
  bar.stop();
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const sorted = [...shares].sort((a, b) => a - b);
  return {
    method: 'integrated-gradients',
    baseline: 'black',
    rule: 'riemann_middle',
    steps: s.igSteps,
    target: 'top1',
    images: samples.length,
    heldOutSeed: s.heldOutSeed,
    meanPositiveShareInMask: mean(shares),
    medianPositiveShareInMask: sorted[Math.floor(sorted.length / 2)] ?? 0,
    worstPositiveShareInMask: sorted[0] ?? 0,
    meanRelativeCompletenessDelta: mean(deltas),
    meanMaskAreaFraction: mean(samples.map((x) => x.mask.reduce((a, b) => a + b, 0) / x.mask.length)),
  };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

function trainingMarkdown(sidecar: ShapesModelSidecar, evaluation: ReturnType<typeof evaluate>, s: Settings): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const t = sidecar.training;
  const a = sidecar.attribution?.igBlack as ReturnType<typeof measureAttribution> | undefined;
  const confusion = [
    `| true \\ predicted | ${SHAPE_CLASSES.join(' | ')} |`,
    `|---|${SHAPE_CLASSES.map(() => '---').join('|')}|`,
    ...SHAPE_CLASSES.map((c, k) => `| ${c} | ${evaluation.confusion[k]!.join(' | ')} |`),
  ];
  return `# shapes-resnet: how the bundled model was trained

Written by \`npm run train:default\` (scripts/train-default.ts); rerun it to reproduce this model
(every source of randomness is seeded). Do not edit by hand.

## Result
- Held-out accuracy: **${pct(sidecar.accuracy.heldOut)}** on ${sidecar.accuracy.samples} generated images (seed ${sidecar.accuracy.seed}, never seen in training).
- Per class: ${SHAPE_CLASSES.map((c) => `${c} ${pct(evaluation.perClass[c] ?? 0)}`).join(', ')}.
${a ? `- Integrated Gradients, black baseline, ${a.steps} Riemann midpoint steps, top-1 target, on ${a.images} held-out images: on average **${pct(a.meanPositiveShareInMask)}** of the positive attribution (summed over channels per pixel) lies inside the object mask (median ${pct(a.medianPositiveShareInMask)}, worst image ${pct(a.worstPositiveShareInMask)}); the object covers ${pct(a.meanMaskAreaFraction)} of the image on average. Mean relative completeness gap of this simple IG: ${a.meanRelativeCompletenessDelta.toFixed(3)}.` : '- Attribution check skipped.'}

Confusion on the held-out set:

${confusion.join('\n')}

## Data
Procedural shapes (src/datasets/shapes.ts), ${s.size}x${s.size} RGB: ${SHAPES_DATASET_DESCRIPTION}.
${s.trainSamples} distinct training images (seed ${s.trainSeed}), each used ${s.epochs} time(s), in a seeded shuffled order.

## Model
${String(t.architecture)}; ${String(t.parameters)} parameters; input preprocessing 'unit' (pixels / 255),
output logits (no softmax).

## Training
${s.optimizer === 'adam' ? `Adam (beta1 ${s.momentum})` : `SGD with Nesterov momentum ${s.momentum}`}, batch ${s.batch}, peak learning rate ${s.lr} (linear warm-up over
${s.warmup} steps, cosine decay to 0), ${String(t.steps)} steps, softmax cross-entropy; weights seeded with ${s.weightSeed}.
tfjs ${tf.version_core}, backend wasm, ${String(t.machine)}; training took ${Number(t.seconds).toFixed(0)} s.
`;
}

async function main(): Promise<void> {
  const s = parseSettings(process.argv.slice(2));
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
  installWasmFilterGradient();
  const model = buildShapesResNet({ inputSize: s.size, seed: s.weightSeed });
  process.stderr.write(`shapes-resnet: ${model.countParams()} parameters, ${s.trainSamples} x ${s.epochs} training images -> ${s.out}\n`);
  const run = await train(model, s);
  const evaluation = evaluate(model, s);
  process.stderr.write(`held-out accuracy ${(100 * evaluation.accuracy).toFixed(2)}% on ${s.heldOutSamples} images\n`);
  const attribution = s.igImages > 0 ? measureAttribution(model, s) : undefined;
  if (attribution) process.stderr.write(`IG (black) positive share in mask: ${(100 * attribution.meanPositiveShareInMask).toFixed(1)}%\n`);

  const sidecar: ShapesModelSidecar = {
    name: 'shapes-resnet',
    inputShape: [s.size, s.size, 3],
    classes: SHAPE_CLASSES.length,
    labels: [...SHAPE_CLASSES],
    preprocessing: 'unit',
    output: 'logit',
    format: 'layers',
    accuracy: { heldOut: evaluation.accuracy, samples: s.heldOutSamples, seed: s.heldOutSeed },
    dataset: { name: 'shapes', size: s.size, trainSeed: s.trainSeed, trainSamples: s.trainSamples, heldOutSeed: s.heldOutSeed },
    training: {
      architecture: `ResNet: stem conv3x3/2 ${SHAPES_RESNET_DEFAULTS.stemFilters}, residual stages ${SHAPES_RESNET_DEFAULTS.stageFilters.join('/')} (stride 2 each), global average pooling, dense ${SHAPE_CLASSES.length}`,
      parameters: model.countParams(),
      epochs: s.epochs,
      batch: s.batch,
      steps: run.steps,
      optimizer: s.optimizer === 'adam' ? `adam beta1 ${s.momentum}` : `sgd-nesterov momentum ${s.momentum}`,
      learningRate: { peak: s.lr, warmupSteps: s.warmup, schedule: 'cosine' },
      weightSeed: s.weightSeed,
      finalRunningLoss: run.finalLoss,
      finalRunningAccuracy: run.finalAccuracy,
      seconds: Math.round(run.seconds),
      tfjs: tf.version_core,
      backend: 'wasm',
      machine: `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`,
      command: ['npm run train:default', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    },
    ...(attribution ? { attribution: { igBlack: attribution } } : {}),
    gradcamLayer: SHAPES_RESNET_LAST_CONV,
  };
  await mkdir(s.out, { recursive: true });
  await writeLayersModel(model, s.out);
  await writeAtomic(join(s.out, 'lens.json'), `${JSON.stringify(sidecar, null, 2)}\n`);
  await writeAtomic(join(s.out, 'TRAINING.md'), trainingMarkdown(sidecar, evaluation, s));
  process.stderr.write(`wrote ${s.out}/{model.json,weights.bin,lens.json,TRAINING.md}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`train-default: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
