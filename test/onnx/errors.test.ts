/**
 * What the onnxruntime compiler and model refuse, and how they say it: unsupported layers and
 * activations named, multi-input models rejected, bad pixels, targets and labels.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { LensError } from '../../src/core/errors.js';
import { compileLayersModel, onnxImageModel } from '../../src/engines/onnx/index.js';
import { ap, compareEngines, functional, randomPixels, seedWeights } from './helpers.js';

const options = { name: 'bad', preprocessing: 'unit' } as const;

/** The LensError `fn` throws (fails the test when it throws anything else, or nothing). */
async function lensError(fn: () => unknown): Promise<LensError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LensError);
    return e as LensError;
  }
  throw new Error('expected a LensError, nothing was thrown');
}

const dense = (units: number) => tfl.layers.dense({ units });
const flatten = () => tfl.layers.flatten();

describe('onnxruntime compiler errors', () => {
  beforeAll(async () => {
    await initBackend();
  });

  const unsupported: [string, () => tfl.layers.Layer][] = [
    ['PReLU', () => tfl.layers.prelu({ name: 'prelu_one' })],
    ['Conv2DTranspose', () => tfl.layers.conv2dTranspose({ filters: 2, kernelSize: 3, name: 'deconv_one' })],
  ];
  for (const [cls, make] of unsupported) {
    it(`names an unsupported ${cls} layer`, async () => {
      const layer = make();
      const layers = functional(`with_${cls}`, [6, 6, 3], (x) => ap(dense(3), ap(flatten(), ap(layer, x))));
      const e = await lensError(() => compileLayersModel(layers, options));
      expect(e.code).toBe('MODEL_UNSUPPORTED');
      expect(e.message).toContain(layer.name);
      expect(e.message).toContain(cls);
      layers.dispose();
    });
  }

  it('names a layer whose fused activation has no backward rule', async () => {
    const layers = functional('selu', [6, 6, 3], (x) => ap(dense(3), ap(flatten(), ap(tfl.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'selu', name: 'conv_selu' }), x))));
    const e = await lensError(() => compileLayersModel(layers, options));
    expect(e.code).toBe('MODEL_UNSUPPORTED');
    expect(e.message).toMatch(/node conv_selu\/Selu \(Selu\) of layer conv_selu \(Conv2D\) has no ONNX rule/);
    layers.dispose();
  });

  const unsupportedUses: [string, (x: tfl.SymbolicTensor) => tfl.SymbolicTensor, RegExp][] = [
    ['a softmax over a 4-D tensor', (x) => ap(tfl.layers.softmax({ name: 'softmax_4d' }), x), /layer softmax_4d \(Softmax\): softmax over axis/],
    [
      'a product of tensors of different ranks',
      (x) => ap(tfl.layers.multiply({ name: 'multiply_ranks' }), [x, ap(tfl.layers.dense({ units: 3 }), ap(tfl.layers.globalAveragePooling2d({}), x))]),
      /multiply_ranks\/Mul multiplies \[N,6,6,3\] by \[N,3\]/,
    ],
    ['a reshape that moves pixels', (x) => ap(tfl.layers.reshape({ targetShape: [3, 36], name: 'reshape_rows' }), x), /reshape_rows\/Reshape \(Reshape\) reshapes \[N,6,6,3\] to \[N,3,36\]/],
    ['a bilinear UpSampling2D', (x) => ap(tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear', name: 'upsample_bilinear' }), x), /ResizeBilinear\) of layer upsample_bilinear \(UpSampling2D\) has no ONNX rule/],
    ['a concatenation along the width', (x) => ap(tfl.layers.concatenate({ axis: 2, name: 'concat_width' }), [x, x]), /concat_width\/concat concatenates along axis 2/],
  ];
  for (const [what, body, message] of unsupportedUses) {
    it(`names ${what}`, async () => {
      const layers = functional('unsupported_use', [6, 6, 3], (x) => ap(dense(3), ap(flatten(), body(x))));
      const e = await lensError(() => compileLayersModel(layers, options));
      expect(e.code).toBe('MODEL_UNSUPPORTED');
      expect(e.message).toMatch(message);
      layers.dispose();
    });
  }

  // Shared layers lower to ops that read the same weights (graph/keras.ts), so they compile.
  it('compiles a shared layer applied twice in a row and to two branches, agreeing with tfjs', async () => {
    const twice = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'shared_twice' });
    const branches = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'shared_branches' });
    const layers = functional('shared', [6, 6, 3], (x) => {
      const a = ap(tfl.layers.conv2d({ filters: 3, kernelSize: 1 }), ap(twice, ap(twice, x)));
      return ap(dense(3), ap(flatten(), ap(tfl.layers.add(), [ap(branches, a), ap(branches, x)])));
    });
    seedWeights(layers, 5);
    const pixels = randomPixels([2, 6, 6, 3], 6);
    const result = await compareEngines(layers, { preprocessing: 'unit', pixels });
    expect(result.scores).toBeLessThan(1e-4);
    expect(result.gradients).toBeLessThan(1e-4);
    pixels.dispose();
    layers.dispose();
  });

  it('rejects a model with two inputs', async () => {
    const a = tfl.input({ shape: [4, 4, 3] });
    const b = tfl.input({ shape: [4, 4, 3] });
    const layers = tfl.model({ inputs: [a, b], outputs: ap(dense(2), ap(flatten(), ap(tfl.layers.add(), [a, b]))) });
    const e = await lensError(() => compileLayersModel(layers, options));
    expect(e.code).toBe('MODEL_UNSUPPORTED');
    expect(e.message).toMatch(/2 inputs/);
    layers.dispose();
  });

  it('rejects an input without a known height and width', async () => {
    const layers = functional('dynamic', [null, null, 3] as unknown as [number, number, number], (x) => ap(dense(2), ap(tfl.layers.globalAveragePooling2d({}), x)));
    const e = await lensError(() => compileLayersModel(layers, options));
    expect(e.code).toBe('MODEL_UNSUPPORTED');
    expect(e.message).toContain('[?,?,?,3]');
    layers.dispose();
  });
});

describe('onnxruntime model input checks', () => {
  let layers: tfl.LayersModel;
  beforeAll(async () => {
    await initBackend();
    layers = functional('checked', [5, 4, 3], (x) => ap(dense(4), ap(flatten(), x)));
  });

  it('refuses pixels of the wrong shape (forward and gradient)', async () => {
    const model = await onnxImageModel(layers, { ...options, threads: 1 });
    const wrong = randomPixels([2, 4, 5, 3], 1);
    for (const run of [() => model.forward(wrong), () => model.gradient(wrong, 0)]) {
      const e = await lensError(run);
      expect(e.code).toBe('SHAPE_MISMATCH');
      expect(e.message).toContain('[N,5,4,3]');
      expect(e.message).toContain('[2,4,5,3]');
    }
    tf.dispose(wrong);
    model.dispose();
  });

  it('refuses targets outside the classes, and a target count that is not the batch', async () => {
    const model = await onnxImageModel(layers, { ...options, threads: 1 });
    const pixels = randomPixels([2, 5, 4, 3], 2);
    for (const target of [4, -1, 1.5, [0, 4]]) {
      const e = await lensError(() => model.gradient(pixels, target));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toContain('outside 0..3');
    }
    const e = await lensError(() => model.gradient(pixels, [0, 1, 2]));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('3 targets for a batch of 2');
    tf.dispose(pixels);
    model.dispose();
  });

  it('refuses a label list whose length is not the class count', async () => {
    const e = await lensError(() => onnxImageModel(layers, { ...options, labels: ['a', 'b', 'c'] }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toContain('4 classes but 3 labels');
  });
});
