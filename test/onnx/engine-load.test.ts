/**
 * Engines of models loaded by `loadImageModel`: LayersModels move to onnxruntime by default,
 * other formats stay on tfjs and say why, and weight changes made through layer access (the
 * randomisation sanity check) are honoured although the compiled graphs hold the old weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { modelRandomization, vanillaGradient } from '../../src/attribution/index.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { generateShapes } from '../../src/datasets/shapes.js';
import { SHARED } from '../helpers/cli.js';
import { relL2 } from './helpers.js';
import { join } from 'node:path';
import { onnxImageModel, onnxMemoryBudget } from '../../src/engines/onnx/index.js';


describe('engines of loaded models', () => {
  let fast: LoadedImageModel;
  let reference: LoadedImageModel;
  beforeAll(async () => {
    await initBackend();
    fast = await loadImageModel('default');
    reference = await loadImageModel('default', { engine: 'tfjs' });
  });
  afterAll(() => {
    fast.dispose();
    reference.dispose();
  });

  it('runs the bundled model on onnxruntime by default, and on tfjs when asked', () => {
    expect(fast.engine.name).toBe('onnxruntime');
    expect(fast.engine.detail).toMatch(/onnxruntime-node \d+\.\d+\.\d+ \(CPU, \d+ threads?\)/);
    expect(fast.engine.layers?.Conv2D).toBeGreaterThan(0);
    expect(reference.engine).toMatchObject({ name: 'tfjs', reason: 'engine tfjs was chosen' });
  });

  it('gives the tfjs engine scores and gradients', async () => {
    const [sample] = generateShapes({ count: 1, seed: 11, size: 64 });
    const pixels = tf.tensor4d(sample!.pixels, [1, 64, 64, 3]);
    const [a, b] = [await fast.forward(pixels), await reference.forward(pixels)];
    expect(relL2(a.dataSync(), b.dataSync())).toBeLessThan(1e-5);
    const [ga, gb] = [await fast.gradient!(pixels, 2), await reference.gradient!(pixels, 2)];
    expect(relL2(ga.gradients.dataSync(), gb.gradients.dataSync())).toBeLessThan(1e-5);
    tf.dispose([pixels, a, b, ga.gradients, ga.values, gb.gradients, gb.values]);
  });

  it('follows weights re-initialised through layer access, and returns to the compiled graph after', async () => {
    const [sample] = generateShapes({ count: 1, seed: 12, size: 64 });
    const image = { data: sample!.pixels, height: 64, width: 64, channels: 3 };
    const onFast = await modelRandomization(vanillaGradient, fast, image, { seed: 3 });
    const onTfjs = await modelRandomization(vanillaGradient, reference, image, { seed: 3 });
    expect(onFast.steps.map((s) => s.layer)).toEqual(onTfjs.steps.map((s) => s.layer));
    // Same correlations: the randomised passes ran on the randomised weights.
    onFast.steps.forEach((s, i) => expect(s.spearmanAbs).toBeCloseTo(onTfjs.steps[i]!.spearmanAbs, 4));
    expect(onFast.steps.at(-1)!.spearmanAbs).toBeLessThan(0.9);
    const again = await vanillaGradient(fast, image, { target: onFast.original.target.index });
    expect(relL2(again.data, onFast.original.data)).toBeLessThan(1e-6);
  });

  it('compiles SavedModels to onnxruntime too, and keeps them on tfjs when asked', async () => {
    const dir = join(SHARED, 'testdata/savedmodels-cnn/dotnet-mnist-conv-tf1');
    const model = await loadImageModel(dir, { engine: 'auto' });
    expect(model.engine.name).toBe('onnxruntime');
    model.dispose();
    const kept = await loadImageModel(dir, { engine: 'tfjs' });
    expect(kept.engine).toMatchObject({ name: 'tfjs', reason: 'engine tfjs was chosen' });
    kept.dispose();
  });

  it('rejects an unknown engine name', async () => {
    await expect(loadImageModel('default', { engine: 'gpu' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('batches split to fit the memory budget', () => {
  it('gives the same scores and gradients in chunks as in one call', async () => {
    await initBackend();
    const loaded = await loadImageModel('default', { engine: 'tfjs' });
    const layers = (loaded.info.structure as { kind: 'layers'; model: import('@tensorflow/tfjs-layers').LayersModel }).model;
    const whole = await onnxImageModel(layers, { name: 'whole', preprocessing: loaded.preprocessing });
    const perImage = whole.compiled.bytesPerImage;
    expect(perImage.gradient).toBeGreaterThan(perImage.forward);
    const split = await onnxImageModel(layers, { name: 'split', preprocessing: loaded.preprocessing, memoryBudgetBytes: 2 * perImage.gradient + 1 });
    expect(split.engine.batchLimit!.gradient).toBe(2);
    expect(whole.engine.batchLimit!.gradient).toBeGreaterThan(5);
    const samples = generateShapes({ count: 5, seed: 13, size: 64 });
    const data = new Float32Array(5 * 64 * 64 * 3);
    samples.forEach((s, i) => data.set(s.pixels, i * 64 * 64 * 3));
    const pixels = tf.tensor4d(data, [5, 64, 64, 3]);
    const targets = [0, 1, 2, 0, 1];
    const [a, b] = [await whole.gradient(pixels, targets), await split.gradient(pixels, targets)];
    expect(Array.from(b.values.dataSync())).toEqual(Array.from(a.values.dataSync()));
    expect(relL2(b.gradients.dataSync(), a.gradients.dataSync())).toBeLessThan(1e-6);
    const [fa, fb] = [await whole.forward(pixels), await split.forward(pixels)];
    expect(fb.shape).toEqual([5, loaded.classes]);
    expect(relL2(fb.dataSync(), fa.dataSync())).toBeLessThan(1e-6);
    tf.dispose([pixels, a.gradients, a.values, b.gradients, b.values, fa, fb]);
    whole.dispose();
    split.dispose();
    loaded.dispose();
  });

  it('reads LENS_ORT_MEMORY_MB and rejects nonsense', () => {
    expect(onnxMemoryBudget({ LENS_ORT_MEMORY_MB: '64' })).toBe(64 * 2 ** 20);
    expect(onnxMemoryBudget({})).toBeGreaterThan(0);
    expect(() => onnxMemoryBudget({ LENS_ORT_MEMORY_MB: 'lots' })).toThrow(/LENS_ORT_MEMORY_MB must be a positive number/);
  });
});
