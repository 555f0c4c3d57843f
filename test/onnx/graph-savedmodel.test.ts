/**
 * SavedModels compiled from their converted TensorFlow graphs to onnxruntime (src/engines/onnx/graph-compile.ts):
 * the shared TensorFlow-written CNN fixtures and `lens export`s of the bundled architecture and of a
 * U-Net-ish model with squeeze-and-excitation give
 * the tfjs engine's scores and input gradients; graphs with an op that has no rule, or with control
 * flow, stay on tfjs and say why, and refuse when onnxruntime is required.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { exportSavedModel } from '../../src/export/export.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { buildShapesResNet } from '../../src/models/shapes-resnet.js';
import { withCompiledEngine } from '../../src/models/engine.js';
import { imageModelFromSavedModel } from '../../src/models/savedmodel.js';
import { SHARED } from '../helpers/cli.js';
import { randomPixels, relL2, seedWeights } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'lens-onnx-graph-'));
const fixture = (name: string) => join(SHARED, 'testdata/savedmodels-cnn', name);

beforeAll(async () => {
  await initBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Loads `dir` on both engines and checks scores and per-image input gradients of a batch of 3 against tfjs. */
async function agreesWithTfjs(dir: string, options: { preprocess?: string; pixelScale?: number; ops: string[] }): Promise<LoadedImageModel> {
  const load = (engine: string) => loadImageModel(dir, { engine, ...(options.preprocess ? { preprocess: options.preprocess } : {}) });
  const [fast, reference] = [await load('auto'), await load('tfjs')];
  try {
    expect(fast.engine.name, fast.engine.reason).toBe('onnxruntime');
    expect(reference.engine.name).toBe('tfjs');
    for (const op of options.ops) expect(fast.engine.layers?.[op], op).toBeGreaterThan(0);
    expect(fast.output).toBe(reference.output);
    const [h, w, c] = fast.inputShape;
    const raw = randomPixels([3, h, w, c], 21);
    const pixels = tf.mul(raw, options.pixelScale ?? 1) as tf.Tensor4D;
    const targets = [1, 0, 2];
    const [a, b] = [await fast.forward(pixels), await reference.forward(pixels)];
    expect(a.shape).toEqual([3, reference.classes]);
    expect(relL2(a.dataSync(), b.dataSync())).toBeLessThan(1e-4);
    const [ga, gb] = [await fast.gradient!(pixels, targets), await reference.gradient!(pixels, targets)];
    const norm = Math.hypot(...gb.gradients.dataSync());
    expect(norm).toBeGreaterThan(0);
    expect(relL2(ga.gradients.dataSync(), gb.gradients.dataSync())).toBeLessThan(1e-4);
    expect(relL2(ga.values.dataSync(), gb.values.dataSync())).toBeLessThan(1e-4);
    // Per image: each row's gradient is its own target's, not the batch's sum.
    const single = await reference.gradient!(tf.slice(pixels, [2, 0, 0, 0], [1, h, w, c]) as tf.Tensor4D, 2);
    const per = h * w * c;
    expect(relL2(ga.gradients.dataSync().subarray(2 * per), single.gradients.dataSync())).toBeLessThan(1e-4);
    tf.dispose([raw, pixels, a, b, ga.gradients, ga.values, gb.gradients, gb.values, single.gradients, single.values]);
    return fast;
  } finally {
    reference.dispose();
  }
}

describe('shared CNN SavedModels on onnxruntime', () => {
  it('dotnet-cifar-conv-tf1 (Conv2D, Add bias, Relu, Reshape, MatMul): logits', async () => {
    const m = await agreesWithTfjs(fixture('dotnet-cifar-conv-tf1'), { preprocess: 'unit', ops: ['Conv2D', 'MatMul', 'Reshape'] });
    expect(m.output).toBe('logit');
    m.dispose();
  });

  it('dotnet-mnist-conv-tf1 (strided convolutions, TF1 dropout at keep 1, Softmax): probabilities', async () => {
    // Its first layers saturate on full-range pixels (no gradient at all): keep the pixels dim.
    const m = await agreesWithTfjs(fixture('dotnet-mnist-conv-tf1'), { preprocess: 'unit', pixelScale: 0.1, ops: ['Conv2D', 'Softmax'] });
    expect(m.output).toBe('probability');
    expect(m.engine.layers?.Floor).toBeUndefined();
    m.dispose();
  });

  it('mlcommons-tiny-kws-dscnn-tf2 (DepthwiseConv2dNative, FusedBatchNormV3, BiasAdd, AvgPool, IdentityN)', async () => {
    const m = await agreesWithTfjs(fixture('mlcommons-tiny-kws-dscnn-tf2'), { preprocess: 'unit', ops: ['DepthwiseConv2dNative', 'FusedBatchNormV3', 'BiasAdd', 'AvgPool'] });
    m.dispose();
  });
});

describe('`lens export` SavedModels on onnxruntime', () => {
  it('the bundled architecture round trip (predict_pixels: in-graph /255, FusedBatchNormV3, residual AddV2, Mean, Softmax)', async () => {
    const model = buildShapesResNet({ seed: 11 });
    const r = await exportSavedModel({ name: 'shapes', structure: { kind: 'layers', model }, preprocessing: 'unit' }, join(tmp, 'shapes'), { version: 1 });
    model.dispose();
    const m = await agreesWithTfjs(r.dir, { ops: ['Mul', 'FusedBatchNormV3', 'AddV2', 'Mean', 'Softmax'] });
    expect(m.output).toBe('probability');
    m.dispose();
  });

  it('a U-Net-ish model with squeeze-and-excitation (Mul of activations, LeakyRelu, Elu, Softplus, ResizeNearestNeighbor)', async () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const a = tfl.layers.leakyReLU({ alpha: 0.1 }).apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input)) as tfl.SymbolicTensor;
    const down = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'elu' }).apply(a) as tfl.SymbolicTensor;
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(down) as tfl.SymbolicTensor;
    const excite = tfl.layers.reshape({ targetShape: [1, 1, 4] }).apply(tfl.layers.dense({ units: 4, activation: 'sigmoid' }).apply(pooled)) as tfl.SymbolicTensor;
    const scaled = tfl.layers.multiply().apply([down, excite]) as tfl.SymbolicTensor;
    const up = tfl.layers.upSampling2d({ size: [2, 2] }).apply(scaled) as tfl.SymbolicTensor;
    const merged = tfl.layers.concatenate().apply([a, up]) as tfl.SymbolicTensor;
    const features = tfl.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'softplus' }).apply(merged) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 3 }).apply(tfl.layers.flatten().apply(features)) as tfl.SymbolicTensor });
    seedWeights(model, 12);
    const r = await exportSavedModel({ name: 'unet', structure: { kind: 'layers', model }, preprocessing: 'unit' }, join(tmp, 'unet'), { version: 1 });
    model.dispose();
    const m = await agreesWithTfjs(r.dir, { ops: ['LeakyRelu', 'Elu', 'Softplus', 'Mul', 'ResizeNearestNeighbor', 'Reshape'] });
    m.dispose();
  });

  it('keeps graphs that cannot compile (control flow) on tfjs with the reason, and refuses them when onnxruntime is required', async () => {
    const dir = join(tmp, 'shapes', '1');
    const why = { unsupported: 'the graph needs asynchronous execution (ops LoopCond)' };
    const stays = await withCompiledEngine(await imageModelFromSavedModel(dir, { engine: 'tfjs' }), why, { name: 'shapes', preprocessing: 'raw', engine: 'auto' });
    expect(stays.engine).toMatchObject({ name: 'tfjs', reason: expect.stringMatching(/asynchronous execution \(ops LoopCond\)/) });
    stays.dispose();
    const tfjsModel = await imageModelFromSavedModel(dir, { engine: 'tfjs' });
    await expect(withCompiledEngine(tfjsModel, why, { name: 'shapes', preprocessing: 'raw', engine: 'onnxruntime' })).rejects.toMatchObject({ code: 'MODEL_UNSUPPORTED' });
    tfjsModel.dispose();
  });

  describe('a graph with an op that has no rule (Selu)', () => {
    let dir: string;
    beforeAll(async () => {
      const model = tfl.sequential({
        layers: [
          tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'selu' }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 3 }),
        ],
      });
      dir = (await exportSavedModel({ name: 'selu', structure: { kind: 'layers', model }, preprocessing: 'unit' }, join(tmp, 'selu'), { version: 1 })).dir;
      model.dispose();
    });

    it('stays on tfjs with the op named in the reason', async () => {
      const m = await loadImageModel(dir, { engine: 'auto' });
      expect(m.engine.name).toBe('tfjs');
      expect(m.engine.reason).toMatch(/\(Selu\) has no ONNX rule/);
      const scores = await m.forward(randomPixels([2, 8, 8, 3], 3));
      expect(scores.shape).toEqual([2, 3]);
      scores.dispose();
      m.dispose();
    });

    it('refuses when onnxruntime is required', async () => {
      await expect(loadImageModel(dir, { engine: 'onnxruntime' })).rejects.toMatchObject({ code: 'MODEL_UNSUPPORTED', message: expect.stringMatching(/Selu/) });
    });
  });
});
