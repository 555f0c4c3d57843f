/**
 * Scores of tfjs LayersModels as ImageModels: the softmax is cut where it sits, also when the
 * final layer is inside nested models (a Keras classifier head built as its own Sequential, a
 * backbone wrapped in a Model), and single-class models have gradients.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { seededRandom } from '../../src/core/random.js';
import { imageModelFromLayers, layersHead } from '../../src/models/keras.js';
import { createTfModel } from '../../src/core/model.js';

const SHAPE: [number, number, number] = [6, 5, 3];
const CLASSES = 4;

function pixels(n: number, seed: number): tf.Tensor4D {
  const rng = seededRandom(seed);
  return tf.tensor4d(Float32Array.from({ length: n * SHAPE[0] * SHAPE[1] * SHAPE[2] }, () => rng.uniform() * 255), [n, ...SHAPE]);
}

const init = (seed: number) => tfl.initializers.randomNormal({ stddev: 0.5, seed });

function conv(seed: number, inputShape?: number[]): tfl.layers.Layer {
  return tfl.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'relu', kernelInitializer: init(seed), biasInitializer: init(seed + 100), ...(inputShape ? { inputShape } : {}) });
}

function dense(seed: number, activation?: 'softmax'): tfl.layers.Layer {
  return tfl.layers.dense({ units: CLASSES, kernelInitializer: init(seed), biasInitializer: init(seed + 100), ...(activation ? { activation } : {}) });
}

/** Models whose output is a softmax made by a layer inside nested containers. */
const NESTED: Record<string, () => tfl.LayersModel> = {
  'functional -> Sequential head ending in Dense(softmax)': () => {
    const head = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 3, 2] }), dense(1, 'softmax')] });
    const input = tfl.input({ shape: SHAPE });
    return tfl.model({ inputs: input, outputs: head.apply(conv(2).apply(input)) as tfl.SymbolicTensor });
  },
  'Sequential -> Sequential head ending in a Softmax layer': () => {
    const head = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 3, 2] }), dense(3), tfl.layers.softmax()] });
    return tfl.sequential({ layers: [conv(4, SHAPE), head] });
  },
  'functional -> functional -> Sequential ending in Activation(softmax)': () => {
    const innermost = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 3, 2] }), dense(5), tfl.layers.activation({ activation: 'softmax' })] });
    const midInput = tfl.input({ shape: SHAPE });
    const middle = tfl.model({ inputs: midInput, outputs: innermost.apply(conv(6).apply(midInput)) as tfl.SymbolicTensor });
    const input = tfl.input({ shape: SHAPE });
    return tfl.model({ inputs: input, outputs: middle.apply(input) as tfl.SymbolicTensor });
  },
};

describe('layersHead through nested models', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  for (const [name, build] of Object.entries(NESTED)) {
    it(`${name}: scores are the logits and the gradient is the logit's`, async () => {
      const layers = build();
      const head = layersHead(layers);
      expect(head.finalSoftmax).toBe(true);
      expect(head.logits).toBe(true);
      expect(head.classes).toBe(CLASSES);
      const model = imageModelFromLayers(layers, { name, preprocessing: 'unit' });
      expect(model.output).toBe('logit');
      const x = pixels(3, 7);
      const scores = await model.forward(x);
      const probabilities = layers.predict(tf.div(x, 255)) as tf.Tensor2D;
      // softmax(logits) is what the model outputs, and logits are not probabilities.
      expect(tf.max(tf.abs(tf.sub(tf.softmax(scores), probabilities))).dataSync()[0]!).toBeLessThan(1e-5);
      expect(Math.abs(tf.sum(scores, 1).dataSync()[0]! - 1)).toBeGreaterThan(1e-2);
      // The gradient is the logit's: d logit / d x against central differences along a direction.
      const { gradients, values } = await model.gradient!(x, 2);
      expect(tf.max(tf.abs(tf.sub(values, tf.reshape(tf.slice(scores, [0, 2], [-1, 1]), [-1])))).dataSync()[0]!).toBeLessThan(1e-5);
      const v = tf.sign(tf.sub(pixels(3, 8), 127.5));
      const h = 0.01;
      const plus = await model.forward(tf.add(x, tf.mul(v, h)) as tf.Tensor4D);
      const minus = await model.forward(tf.sub(x, tf.mul(v, h)) as tf.Tensor4D);
      const fd = tf.reshape(tf.div(tf.sub(tf.slice(plus, [0, 2], [-1, 1]), tf.slice(minus, [0, 2], [-1, 1])), 2 * h), [-1]).arraySync() as number[];
      const analytic = tf.sum(tf.mul(gradients, v), [1, 2, 3]).arraySync() as number[];
      analytic.forEach((a, i) => expect(Math.abs(a - fd[i]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(a))));
      // Asked for probabilities, the model gives the softmax output.
      const asProbabilities = imageModelFromLayers(layers, { name, preprocessing: 'unit', probabilities: true });
      expect(asProbabilities.output).toBe('probability');
      const p = await asProbabilities.forward(x);
      expect(tf.max(tf.abs(tf.sub(p, probabilities))).dataSync()[0]!).toBeLessThan(1e-6);
      layers.dispose();
    });
  }

  it('a nested model without a softmax: scores are its output, labelled logits', async () => {
    const head = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 3, 2] }), dense(9)] });
    const input = tfl.input({ shape: SHAPE });
    const layers = tfl.model({ inputs: input, outputs: head.apply(conv(10).apply(input)) as tfl.SymbolicTensor });
    const h = layersHead(layers);
    expect(h.finalSoftmax).toBe(false);
    expect(h.logits).toBe(false);
    const model = imageModelFromLayers(layers, { name: 'plain', preprocessing: 'unit' });
    expect(model.output).toBe('logit');
    const x = pixels(2, 11);
    const scores = await model.forward(x);
    expect(tf.max(tf.abs(tf.sub(scores, layers.predict(tf.div(x, 255)) as tf.Tensor))).dataSync()[0]!).toBeLessThan(1e-6);
    layers.dispose();
  });

  it('a nested softmax head that is not the last layer is left alone', async () => {
    const head = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 3, 2] }), dense(12, 'softmax')] });
    const input = tfl.input({ shape: SHAPE });
    const probabilities = head.apply(conv(13).apply(input)) as tfl.SymbolicTensor;
    const layers = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2, kernelInitializer: init(14) }).apply(probabilities) as tfl.SymbolicTensor });
    const h = layersHead(layers);
    expect(h.finalSoftmax).toBe(false);
    expect(h.classes).toBe(2);
    layers.dispose();
  });
});

describe('single-class models', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('createTfModel with one class has gradients (values = scores)', async () => {
    const w = tf.tensor2d(Float32Array.from({ length: SHAPE[0] * SHAPE[1] * SHAPE[2] }, (_, i) => Math.sin(i)), [SHAPE[0] * SHAPE[1] * SHAPE[2], 1]);
    const model = createTfModel({
      name: 'one',
      inputShape: SHAPE,
      classes: 1,
      output: 'logit',
      preprocessing: 'raw',
      scores: (x) => tf.matMul(tf.reshape(x, [x.shape[0], -1]), w) as tf.Tensor2D,
    });
    const x = pixels(3, 15);
    const { gradients, values } = await model.gradient!(x, 0);
    const scores = await model.forward(x);
    expect(Array.from(values.dataSync())).toEqual(Array.from(scores.dataSync()));
    // The score is linear: its gradient is w for every image.
    const expected = tf.tile(tf.reshape(w, [1, ...SHAPE]), [3, 1, 1, 1]);
    expect(tf.max(tf.abs(tf.sub(gradients, expected))).dataSync()[0]!).toBeLessThan(1e-6);
    await expect(model.gradient!(x, 1)).rejects.toThrow(/outside 0\.\.0/);
    await expect(model.gradient!(x, [0, 0])).rejects.toThrow(/2 targets for a batch of 3/);
  });

  it('a Keras-style binary classifier (Dense(1)) as an ImageModel: per-image targets, gradient of its one score', async () => {
    const input = tfl.input({ shape: SHAPE });
    const out = tfl.layers.dense({ units: 1, kernelInitializer: init(16) }).apply(tfl.layers.flatten().apply(conv(17).apply(input))) as tfl.SymbolicTensor;
    const model = imageModelFromLayers(tfl.model({ inputs: input, outputs: out }), { name: 'binary', preprocessing: 'symmetric' });
    expect(model.classes).toBe(1);
    const x = pixels(2, 18);
    const { gradients, values } = await model.gradient!(x, [0, 0]);
    expect(gradients.shape).toEqual([2, ...SHAPE]);
    expect(tf.max(tf.abs(gradients)).dataSync()[0]!).toBeGreaterThan(0);
    expect(Array.from(values.dataSync())).toEqual(Array.from((await model.forward(x)).dataSync()));
    model.dispose();
  });
});
