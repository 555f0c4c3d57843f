import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { SHAPE_CLASSES, generateShapes, shapesToTensors } from '../../src/datasets/index.js';
import { DEFAULT_MODEL_DIR, loadImageModel, readModelArtifacts, readSidecar } from '../../src/models/load.js';
import { preprocess } from '../../src/core/preprocess.js';
import { SHAPES_RESNET_LAST_CONV, buildShapesResNet, type ShapesModelSidecar } from '../../src/models/shapes-resnet.js';
import { REPO_ROOT } from '../helpers/cli.js';

const MODEL_DIR = join(REPO_ROOT, 'models/shapes-resnet');
/** Neither the training seed (1) nor the held-out seed of the training script (1001). */
const FRESH_SEED = 4242;

describe('the bundled shapes-resnet model', () => {
  let sidecar: ShapesModelSidecar;
  let layers: tfl.LayersModel;

  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    sidecar = JSON.parse(await readFile(join(MODEL_DIR, 'lens.json'), 'utf8')) as ShapesModelSidecar;
    layers = await tfl.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(join(MODEL_DIR, 'model.json'))));
  });

  it('is where loadImageModel("default") looks', () => {
    expect(DEFAULT_MODEL_DIR).toBe(MODEL_DIR);
  });

  it('has a lens.json that follows the sidecar contract', async () => {
    expect(await readSidecar(MODEL_DIR)).toEqual(sidecar);
    expect(sidecar).toMatchObject({
      name: 'shapes-resnet',
      inputShape: [64, 64, 3],
      classes: 5,
      labels: [...SHAPE_CLASSES],
      preprocessing: 'unit',
      output: 'logit',
      format: 'layers',
      gradcamLayer: SHAPES_RESNET_LAST_CONV,
    });
    expect(sidecar.accuracy.seed).not.toBe(sidecar.dataset.trainSeed);
    expect(sidecar.dataset).toMatchObject({ name: 'shapes', size: 64 });
    expect(sidecar.training).toHaveProperty('steps');
    const training = await readFile(join(MODEL_DIR, 'TRAINING.md'), 'utf8');
    expect(training).toContain(`${(100 * sidecar.accuracy.heldOut).toFixed(1)}%`);
  });

  // The sidecar's figures are recomputed here (on the onnxruntime engine, for speed), not read back.
  it('states the held-out accuracy that the model really has', async () => {
    const { seed, samples: count } = sidecar.accuracy;
    const model = await loadImageModel('default');
    try {
      const { pixels, labels } = shapesToTensors(generateShapes({ count, seed }));
      const scores = await model.forward(pixels);
      const predicted = tf.argMax(scores, 1).dataSync();
      const l = labels.dataSync();
      let correct = 0;
      for (let i = 0; i < predicted.length; i++) if (predicted[i] === l[i]) correct++;
      tf.dispose([pixels, labels, scores]);
      expect(Math.abs(correct / count - sidecar.accuracy.heldOut)).toBeLessThanOrEqual(1 / count);
      expect(correct / count).toBeGreaterThanOrEqual(0.95);
    } finally {
      model.dispose();
    }
  });

  it('states the IG in-mask share that the model really has', async () => {
    const claim = sidecar.attribution!.igBlack as { steps: number; images: number; heldOutSeed: number; meanPositiveShareInMask: number };
    const model = await loadImageModel('default');
    try {
      const shares: number[] = [];
      for (const sample of generateShapes({ count: claim.images, seed: claim.heldOutSeed })) {
        // IG from its definition, black baseline, Riemann midpoints: x * mean_k grad F(alpha_k x).
        const path = new Float32Array(claim.steps * sample.pixels.length);
        for (let k = 0; k < claim.steps; k++) for (let i = 0; i < sample.pixels.length; i++) path[k * sample.pixels.length + i] = ((k + 0.5) / claim.steps) * sample.pixels[i]!;
        const x = tf.tensor4d(sample.pixels, [1, 64, 64, 3]);
        const scores = await model.forward(x);
        const target = tf.argMax(scores, 1).dataSync()[0]!;
        const input = tf.tensor4d(path, [claim.steps, 64, 64, 3]);
        const { gradients, values } = await model.gradient!(input, target);
        const g = gradients.dataSync();
        tf.dispose([x, scores, input, gradients, values]);
        let positive = 0;
        let inside = 0;
        const n = sample.pixels.length;
        for (let p = 0; p < sample.mask.length; p++) {
          let a = 0;
          for (let c = 0; c < 3; c++) {
            let mean = 0;
            for (let k = 0; k < claim.steps; k++) mean += g[k * n + 3 * p + c]!;
            a += (sample.pixels[3 * p + c]! * mean) / claim.steps;
          }
          positive += Math.max(a, 0);
          if (sample.mask[p]) inside += Math.max(a, 0);
        }
        shares.push(positive > 0 ? inside / positive : 0);
      }
      const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
      expect(Math.abs(mean - claim.meanPositiveShareInMask)).toBeLessThan(0.01);
      expect(mean).toBeGreaterThan(0.7);
    } finally {
      model.dispose();
    }
  });

  it('is small and is the architecture of buildShapesResNet', async () => {
    const bytes = (await stat(join(MODEL_DIR, 'weights.bin'))).size + (await stat(join(MODEL_DIR, 'model.json'))).size;
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
    const fresh = buildShapesResNet();
    expect(layers.layers.map((l) => [l.name, l.getClassName()])).toEqual(fresh.layers.map((l) => [l.name, l.getClassName()]));
    expect(layers.countParams()).toBe(fresh.countParams());
    expect(layers.getLayer(SHAPES_RESNET_LAST_CONV).outputShape).toEqual([null, 4, 4, 64]);
    fresh.dispose();
  });

  it('outputs logits: a linear last layer, rows that are not probabilities', () => {
    const last = layers.layers[layers.layers.length - 1]!;
    expect((last.getConfig() as { activation?: string }).activation).toBe('linear');
    const { pixels } = shapesToTensors(generateShapes({ count: 5, seed: FRESH_SEED }));
    const scores = tf.tidy(() => layers.predict(preprocess(pixels, 'unit')) as tf.Tensor2D);
    const rows = scores.arraySync();
    expect(rows.some((r) => r.some((v) => v < 0) || Math.abs(r.reduce((a, b) => a + b, 0) - 1) > 1e-3)).toBe(true);
    tf.dispose([pixels, scores]);
  });

  it('classifies at least 95% of a fresh held-out set correctly', () => {
    const samples = generateShapes({ count: 200, seed: FRESH_SEED });
    const { pixels, labels } = shapesToTensors(samples);
    const predicted = tf.tidy(() => tf.argMax(layers.predict(preprocess(pixels, 'unit')) as tf.Tensor2D, 1));
    const p = predicted.dataSync();
    const l = labels.dataSync();
    let correct = 0;
    for (let i = 0; i < p.length; i++) if (p[i] === l[i]) correct++;
    tf.dispose([pixels, labels, predicted]);
    expect(correct / samples.length).toBeGreaterThanOrEqual(0.95);
  });

  it('loads through loadImageModel("default") with its labels, preprocessing and logits', async () => {
    const model = await loadImageModel('default');
    try {
      expect(model.inputShape).toEqual([64, 64, 3]);
      expect(model.labels).toEqual([...SHAPE_CLASSES]);
      expect(model.preprocessing).toBe('unit');
      expect(model.output).toBe('logit');
      const { pixels } = shapesToTensors(generateShapes({ count: 4, seed: FRESH_SEED }));
      const viaLoader = await model.forward(pixels);
      const direct = tf.tidy(() => layers.predict(preprocess(pixels, 'unit')) as tf.Tensor2D);
      const a = viaLoader.dataSync();
      const b = direct.dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 3);
      tf.dispose([pixels, viaLoader, direct]);
    } finally {
      model.dispose();
    }
  });
});

describe('buildShapesResNet', () => {
  it('initialises the same weights for the same seed and others for another', () => {
    const weightsOf = (seed: number) => {
      const m = buildShapesResNet({ seed });
      const w = m.getWeights().map((t) => Array.from(t.dataSync()));
      m.dispose();
      return w;
    };
    const a = weightsOf(3);
    expect(weightsOf(3)).toEqual(a);
    expect(weightsOf(4)[0]).not.toEqual(a[0]);
  });

  it('takes its sizes from the options', () => {
    const m = buildShapesResNet({ inputSize: 32, stemFilters: 8, stageFilters: [8, 16], classes: 3 });
    expect(m.inputs[0]!.shape).toEqual([null, 32, 32, 3]);
    expect(m.outputs[0]!.shape).toEqual([null, 3]);
    expect(m.getLayer('stage2_out').outputShape).toEqual([null, 4, 4, 16]);
    m.dispose();
  });
});
