import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { importKerasModel } from '../../src/convert/keras/index.js';
import { foldBatchNorm } from '../../src/models/optimize/index.js';
import { SHARED } from '../helpers/cli.js';

const RESNET8 = `${SHARED}/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5`;

function relMaxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / Math.max(1e-6, tf.max(tf.abs(a)).dataSync()[0]!));
}

const stat = (seed: number, mean: number, sd: number) => tfl.initializers.randomNormal({ mean, stddev: sd, seed });
const positive = (seed: number) => tfl.initializers.randomUniform({ minval: 0.3, maxval: 2, seed });

function bn(seed: number, extra: Partial<{ scale: boolean; center: boolean }> = {}): tfl.layers.Layer {
  return tfl.layers.batchNormalization({
    epsilon: 1e-3,
    gammaInitializer: stat(seed, 1, 0.5),
    betaInitializer: stat(seed + 1, 0, 0.5),
    movingMeanInitializer: stat(seed + 2, 0, 0.5),
    movingVarianceInitializer: positive(seed + 3),
    ...extra,
  });
}

/** Every case: foldable conv/depthwise/separable/dense, and batch norms that must stay. */
function buildModel(): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.randomNormal({ mean: 0, stddev: 0.3, seed: s });
  const ap = (l: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => l.apply(x) as tfl.SymbolicTensor;
  const inp = tfl.input({ shape: [12, 12, 3] });
  let x = ap(bn(10), ap(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(1) }), inp));
  x = ap(tfl.layers.activation({ activation: 'relu' }), x);
  x = ap(bn(20, { scale: false }), ap(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', depthwiseInitializer: init(2) }), x));
  const shared = ap(tfl.layers.conv2d({ filters: 12, kernelSize: 1, useBias: false, kernelInitializer: init(3) }), x);
  // `shared` feeds two layers: its batch norm must stay.
  const y = ap(tfl.layers.add(), [ap(bn(30), shared), shared]);
  let z = ap(bn(40, { center: false }), ap(tfl.layers.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', depthwiseInitializer: init(4), pointwiseInitializer: init(5) }), y));
  z = ap(bn(50), ap(tfl.layers.activation({ activation: 'relu' }), z)); // after an activation: stays
  const inner = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [6, 6, 8], filters: 4, kernelSize: 3, kernelInitializer: init(6) }),
      bn(60),
      tfl.layers.flatten(),
    ],
  });
  let h = ap(inner, z);
  h = ap(bn(70), ap(tfl.layers.dense({ units: 5, kernelInitializer: init(7) }), h));
  return tfl.model({ inputs: inp, outputs: h });
}

describe('batch-norm folding', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('folds conv, depthwise, separable, dense and nested batch norms, keeps the others, and keeps the function', async () => {
    const model = buildModel();
    const { model: folded, folded: pairs } = await foldBatchNorm(model);
    const classes = (m: tfl.LayersModel) => m.layers.map((l) => l.getClassName());
    const batchNorms = (m: tfl.LayersModel) => classes(m).filter((c) => c === 'BatchNormalization').length;
    expect(pairs.map((p) => p.batchNorm.replace(/_\d+$/, ''))).toHaveLength(5);
    expect(pairs.some((p) => p.layer.includes('/'))).toBe(true); // the nested Sequential
    expect(batchNorms(model)).toBe(6);
    expect(batchNorms(folded)).toBe(2);
    const x = tf.randomUniform([3, 12, 12, 3], -2, 2, 'float32', 7);
    expect(relMaxDiff(model.predict(x) as tf.Tensor, folded.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
    // The input model is untouched.
    expect(batchNorms(model)).toBe(6);
  });

  it('ResNet-8 (Keras h5): same outputs and input gradients after folding all its batch norms', async () => {
    const model = await importKerasModel(RESNET8);
    const { model: folded, folded: pairs } = await foldBatchNorm(model);
    expect(pairs).toHaveLength(7);
    expect(folded.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
    const x = tf.randomUniform([4, 32, 32, 3], 0, 1, 'float32', 3);
    expect(relMaxDiff(model.predict(x) as tf.Tensor, folded.predict(x) as tf.Tensor)).toBeLessThan(1e-4);
    await initBackend({ backend: 'wasm' });
    const grad = (m: tfl.LayersModel) => tf.grad((t: tf.Tensor) => tf.sum(tf.slice(m.apply(t) as tf.Tensor, [0, 3], [-1, 1])))(x);
    expect(relMaxDiff(grad(model), grad(folded))).toBeLessThan(1e-3);
    await initBackend({ backend: 'cpu' });
  });
});
