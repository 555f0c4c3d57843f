/**
 * Real models end to end on onnxruntime: Integrated Gradients on the bundled shapes model gives
 * the tfjs engine's attribution (and is complete), and the Keras ResNet-8 (CIFAR-10, batch norms
 * folded by `withEngine`) gives tfjs' logits and input gradients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { integratedGradients } from '../../src/attribution/index.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { importKerasModel } from '../../src/convert/keras/index.js';
import { imageModelFromLayers } from '../../src/models/keras.js';
import { generateShapes } from '../../src/datasets/shapes.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { withEngine } from '../../src/models/engine.js';
import { SHARED } from '../helpers/cli.js';
import { randomPixels, relL2, targetsFor } from './helpers.js';

const RESNET8 = `${SHARED}/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5`;
const TOLERANCE = 1e-4;

describe('Integrated Gradients on the bundled model with onnxruntime', () => {
  let fast: LoadedImageModel;
  let reference: LoadedImageModel;
  beforeAll(async () => {
    await initBackend();
    fast = await loadImageModel('default', { engine: 'onnxruntime' });
    reference = await loadImageModel('default', { engine: 'tfjs' });
  });
  afterAll(() => {
    fast.dispose();
    reference.dispose();
  });

  it('gives the tfjs attribution, and the attribution is complete', async () => {
    expect(fast.engine.name).toBe('onnxruntime');
    expect(reference.engine.name).toBe('tfjs');
    const [sample] = generateShapes({ count: 1, seed: 2024, size: 64 });
    const image = { data: sample!.pixels, height: 64, width: 64, channels: 3 };
    const options = { steps: 128, baseline: 'black', batchSize: 32 } as const;
    const a = await integratedGradients(fast, image, options);
    const b = await integratedGradients(reference, image, options);
    // The bundled model recognises the shape, and both engines explain the same class.
    expect(a.target.index).toBe(sample!.label);
    expect(a.target.index).toBe(b.target.index);
    expect(a.target.score).toBeCloseTo(b.target.score, 4);
    expect(a.gradientEvaluations).toBe(128);
    expect(relL2(a.data, b.data)).toBeLessThan(TOLERANCE);
    // Completeness: the attribution sums to F(x) - F(black).
    const c = a.completeness!;
    expect(c.relative).toBeLessThan(0.03);
    expect(Math.abs(c.sum - b.completeness!.sum)).toBeLessThan(TOLERANCE * Math.abs(b.completeness!.sum));
    expect(c.baselineScore).toBeCloseTo(b.completeness!.baselineScore, 4);
  });
});

describe('ResNet-8 (Keras h5) on onnxruntime', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('gives tfjs logits and input gradients with its batch norms folded', async () => {
    const layers = await importKerasModel(RESNET8);
    const opts = { name: 'resnet8', preprocessing: 'unit', threads: 2 } as const;
    const reference = imageModelFromLayers(layers, opts);
    const model = await withEngine(imageModelFromLayers(layers, opts), layers, { ...opts, engine: 'onnxruntime' });
    expect(model.engine.name).toBe('onnxruntime');
    expect(model.engine.layers?.BatchNormalization).toBeUndefined();
    expect(model.engine.layers?.Conv2D).toBeGreaterThan(5);
    const pixels = randomPixels([3, 32, 32, 3], 88);
    const targets = targetsFor(3, 10);
    const [a, b] = [await model.forward(pixels), await reference.forward(pixels)];
    expect(relL2(a.dataSync(), b.dataSync())).toBeLessThan(TOLERANCE);
    const [ga, gb] = [await model.gradient!(pixels, targets), await reference.gradient!(pixels, targets)];
    expect(relL2(ga.gradients.dataSync(), gb.gradients.dataSync())).toBeLessThan(TOLERANCE);
    tf.dispose([pixels, a, b, ga.gradients, ga.values, gb.gradients, gb.values]);
    model.dispose();
  });
});
