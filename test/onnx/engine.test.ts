/**
 * Engine choice for LayersModel-backed ImageModels (`withEngine`): tfjs when asked, onnxruntime
 * under 'auto' on the wasm backend (batch norms folded first, same answers as tfjs), a loud error
 * under 'onnxruntime' and a quiet fallback with the reason under 'auto' when a layer cannot compile.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { imageModelFromLayers } from '../../src/models/keras.js';
import { LensError } from '../../src/core/errors.js';
import { ENGINE_CHOICES, parseEngineChoice, withEngine } from '../../src/models/engine.js';
import { ap, functional, randomPixels, relL2, seedWeights, targetsFor } from './helpers.js';

const TOLERANCE = 1e-4;
const SHAPE: [number, number, number] = [9, 8, 3];
const opts = { name: 'engine_test', preprocessing: 'symmetric', threads: 1 } as const;

/** conv + batch norm (foldable) + relu, a residual add, pooling and a softmax head. */
function buildModel(seed: number, extra?: () => tfl.layers.Layer): tfl.LayersModel {
  const layers = functional('engine_model', SHAPE, (x) => {
    let y = ap(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false }), x);
    y = ap(tfl.layers.activation({ activation: 'relu' }), ap(tfl.layers.batchNormalization(), y));
    const z = ap(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }), y);
    let h = ap(tfl.layers.add(), [y, z]);
    if (extra) h = ap(extra(), h);
    h = ap(tfl.layers.globalAveragePooling2d({}), h);
    return ap(tfl.layers.dense({ units: 5, activation: 'softmax' }), h);
  });
  seedWeights(layers, seed);
  return layers;
}

describe('engine choice', () => {
  const saved = process.env.LENS_ENGINE;
  beforeAll(async () => {
    await initBackend();
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.LENS_ENGINE;
    else process.env.LENS_ENGINE = saved;
  });

  it('parses engine choices, defaulting to auto', () => {
    expect(ENGINE_CHOICES).toEqual(['auto', 'onnxruntime', 'tfjs']);
    expect(parseEngineChoice(undefined)).toBe('auto');
    expect(parseEngineChoice(' ONNXRuntime ')).toBe('onnxruntime');
    expect(parseEngineChoice('tfjs')).toBe('tfjs');
    expect(() => parseEngineChoice('gpu')).toThrow(LensError);
    try {
      parseEngineChoice('gpu');
    } catch (e) {
      expect((e as LensError).code).toBe('INVALID_ARGUMENT');
      expect((e as LensError).message).toContain('"gpu"');
    }
  });

  it("engine 'tfjs' keeps the tfjs passes and says why", async () => {
    const layers = buildModel(1);
    const model = imageModelFromLayers(layers, opts);
    const forward = model.forward;
    const result = await withEngine(model, layers, { ...opts, engine: 'tfjs' });
    expect(result.engine.name).toBe('tfjs');
    expect(result.engine.detail).toBe('tfjs wasm');
    expect(result.engine.reason).toContain('tfjs');
    expect(result.forward).toBe(forward);
    result.dispose();
  });

  it('LENS_ENGINE chooses when the option is absent', async () => {
    process.env.LENS_ENGINE = 'tfjs';
    const layers = buildModel(2);
    const result = await withEngine(imageModelFromLayers(layers, opts), layers, opts);
    expect(result.engine.name).toBe('tfjs');
    process.env.LENS_ENGINE = 'gpu';
    await expect(withEngine(imageModelFromLayers(layers, opts), layers, opts)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    result.dispose();
  });

  it("engine 'auto' on wasm runs onnxruntime with folded batch norms, and agrees with tfjs", async () => {
    const layers = buildModel(3);
    const reference = imageModelFromLayers(layers, opts);
    const candidate = imageModelFromLayers(layers, opts);
    const model = await withEngine(candidate, layers, { ...opts, engine: 'auto' });
    expect(model).toBe(candidate);
    expect(model.engine.name).toBe('onnxruntime');
    expect(model.engine.detail).toMatch(/^onnxruntime-node \d+\.\d+\.\d+ \(CPU, 1 thread\)$/);
    expect(model.engine.reason).toBeUndefined();
    // The batch norm was folded into the conv before it: no affine step of its own.
    expect(model.engine.layers).toEqual({ Conv2D: 2, Activation: 1, Add: 1, GlobalAveragePooling2D: 1, Dense: 1 });
    // What the model says about itself is kept.
    expect(model.output).toBe('logit');
    expect(model.head.logits).toBe(true);
    const pixels = randomPixels([3, ...SHAPE], 4);
    const targets = targetsFor(3, 5);
    const [a, b] = [await model.forward(pixels), await reference.forward(pixels)];
    expect(relL2(a.dataSync(), b.dataSync())).toBeLessThan(TOLERANCE);
    const [ga, gb] = [await model.gradient!(pixels, targets), await reference.gradient!(pixels, targets)];
    expect(relL2(ga.gradients.dataSync(), gb.gradients.dataSync())).toBeLessThan(TOLERANCE);
    expect(relL2(ga.values.dataSync(), gb.values.dataSync())).toBeLessThan(TOLERANCE);
    tf.dispose([a, b, ga.gradients, ga.values, gb.gradients, gb.values, pixels]);
    // One dispose releases the sessions and the layers (shared with `reference`).
    model.dispose();
    expect(() => layers.layers[1]!.weights[0]!.read()).toThrow(/disposed/);
  });

  it("engine 'onnxruntime' throws on a layer without a rule; 'auto' falls back to tfjs naming it", async () => {
    const layers = buildModel(5, () => tfl.layers.prelu({ name: 'prelu_fallback' }));
    await expect(withEngine(imageModelFromLayers(layers, opts), layers, { ...opts, engine: 'onnxruntime' })).rejects.toMatchObject({
      code: 'MODEL_UNSUPPORTED',
      message: expect.stringContaining('prelu_fallback'),
    });
    const model = imageModelFromLayers(layers, opts);
    const forward = model.forward;
    const result = await withEngine(model, layers, { ...opts, engine: 'auto' });
    expect(result.engine.name).toBe('tfjs');
    expect(result.engine.reason).toContain('prelu_fallback');
    expect(result.engine.reason).toContain('PReLU');
    expect(result.forward).toBe(forward);
    const pixels = randomPixels([1, ...SHAPE], 6);
    const scores = await result.forward(pixels);
    expect(scores.shape).toEqual([1, 5]);
    tf.dispose([scores, pixels]);
    result.dispose();
  });
});
