/**
 * Pooling gradients against references computed without tfjs gradients, where tfjs 4.22 itself is
 * wrong or arbitrary:
 * - max pooling with tied maxima and with windows whose maximum is negative (the wasm backend's
 *   MaxPoolGrad drops the gradient of windows whose maximum is below zero; on ties each backend
 *   picks a different element), checked against a plain-JavaScript argmax;
 * - average pooling with 'same' padding (tfjs' AvgPoolGrad divides by the full window where the
 *   forward pass divides by the pixels inside the image), checked against central differences of
 *   the forward pass, which tfjs and onnxruntime agree on.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { imageModelFromLayers } from '../../src/models/keras.js';
import { onnxImageModel } from '../../src/engines/onnx/index.js';
import { ap, functional, randomPixels, relL2, seedWeights, targetsFor } from './helpers.js';

const TOLERANCE = 1e-4;

/** Output size and leading pad of one spatial axis, as TensorFlow computes them. */
function poolAxis(size: number, kernel: number, stride: number, padding: 'same' | 'valid'): { out: number; pad: number } {
  if (padding === 'valid') return { out: Math.floor((size - kernel) / stride) + 1, pad: 0 };
  const out = Math.ceil(size / stride);
  return { out, pad: Math.floor(Math.max((out - 1) * stride + kernel - size, 0) / 2) };
}

interface MaxPoolReference {
  /** d score[target] / d x for x = the max pool's input, HWC per image. */
  gradients: Float32Array;
  /** Windows whose maximum is held by more than one element. */
  tiedWindows: number;
  /** Windows whose maximum is negative. */
  negativeWindows: number;
  /** Elements that are the maximum of more than one window. */
  sharedMaxima: number;
}

/**
 * Max pool gradient for one image: each window's output gradient goes to its first maximum in
 * row-major order; `dy` is the gradient of the pooled tensor (HWC).
 */
function maxPoolReference(x: Float32Array, shape: [number, number, number], kernel: number, stride: number, padding: 'same' | 'valid', dy: Float32Array): MaxPoolReference {
  const [h, w, c] = shape;
  const rows = poolAxis(h, kernel, stride, padding);
  const cols = poolAxis(w, kernel, stride, padding);
  const gradients = new Float32Array(h * w * c);
  const wins = new Uint8Array(h * w * c);
  let tiedWindows = 0;
  let negativeWindows = 0;
  for (let i = 0; i < rows.out; i++) {
    for (let j = 0; j < cols.out; j++) {
      for (let ch = 0; ch < c; ch++) {
        let best = -Infinity;
        let at = -1;
        let ties = 0;
        for (let a = i * stride - rows.pad; a < i * stride - rows.pad + kernel; a++) {
          for (let b = j * stride - cols.pad; b < j * stride - cols.pad + kernel; b++) {
            if (a < 0 || a >= h || b < 0 || b >= w) continue;
            const v = x[(a * w + b) * c + ch]!;
            if (v > best) {
              best = v;
              at = (a * w + b) * c + ch;
              ties = 0;
            } else if (v === best) ties++;
          }
        }
        if (ties > 0) tiedWindows++;
        if (best < 0) negativeWindows++;
        gradients[at] = gradients[at]! + dy[(i * cols.out + j) * c + ch]!;
        wins[at] = wins[at]! + 1;
      }
    }
  }
  return { gradients, tiedWindows, negativeWindows, sharedMaxima: wins.filter((n) => n > 1).length };
}

describe('pooling gradients against independent references', () => {
  beforeAll(async () => {
    await initBackend();
  });

  for (const padding of ['same', 'valid'] as const) {
    it(`max pool 3x3 stride 2 ${padding}: ties go to the first maximum, negative windows keep their gradient, overlaps add up`, async () => {
      const shape: [number, number, number] = [13, 11, 3];
      const classes = 4;
      // Three pixel levels map to -1.5, -0.5, 0.5: many tied windows, and windows whose maximum is negative.
      const layers = functional(`maxpool_${padding}`, shape, (x) => {
        const signed = ap(tfl.layers.rescaling({ scale: 1 / 127.5, offset: -1.5 }), x);
        const pooled = ap(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding }), signed);
        return ap(tfl.layers.dense({ units: classes, name: `scores_${padding}` }), ap(tfl.layers.flatten(), pooled));
      });
      seedWeights(layers, 31);
      const kernel = layers.getLayer(`scores_${padding}`).getWeights()[0]!.dataSync() as Float32Array;
      const pixels = randomPixels([3, ...shape], 32, 3);
      const targets = targetsFor(3, classes);
      const fast = await onnxImageModel(layers, { name: layers.name, preprocessing: 'raw', threads: 1 });
      const reference = imageModelFromLayers(layers, { name: layers.name, preprocessing: 'raw' });
      const { gradients, values } = await fast.gradient(pixels, targets);
      const scores = await fast.forward(pixels);
      const refScores = await reference.forward(pixels);
      expect(relL2(scores.dataSync(), refScores.dataSync())).toBeLessThan(TOLERANCE);
      const size = shape[0] * shape[1] * shape[2];
      const all = pixels.dataSync();
      const got = gradients.dataSync();
      const features = kernel.length / classes;
      let tied = 0;
      let negative = 0;
      let shared = 0;
      targets.forEach((t, n) => {
        const x = Float32Array.from(all.subarray(n * size, (n + 1) * size), (p) => p / 127.5 - 1.5);
        const dy = Float32Array.from({ length: features }, (_, f) => kernel[f * classes + t]!);
        const ref = maxPoolReference(x, shape, 3, 2, padding, dy);
        tied += ref.tiedWindows;
        negative += ref.negativeWindows;
        shared += ref.sharedMaxima;
        const expected = ref.gradients.map((g) => g / 127.5);
        expect(relL2(got.subarray(n * size, (n + 1) * size), expected)).toBeLessThan(TOLERANCE);
      });
      expect(tied).toBeGreaterThan(20);
      expect(negative).toBeGreaterThan(0);
      expect(shared).toBeGreaterThan(5);
      expect(relL2(values.dataSync(), Float32Array.from(targets, (t, n) => refScores.dataSync()[n * classes + t]!))).toBeLessThan(TOLERANCE);
      tf.dispose([gradients, values, scores, refScores, pixels]);
      fast.dispose();
      reference.dispose();
    });
  }

  for (const [padding, shape] of [
    ['same', [7, 8, 2]],
    ['valid', [8, 9, 2]],
  ] as const) {
    it(`average pool 3x3 stride 2 ${padding} on ${shape.join('x')}: the gradient is the forward pass's central difference`, async () => {
      const classes = 3;
      const layers = functional(`avgpool_${padding}`, [...shape], (x) =>
        ap(tfl.layers.dense({ units: classes }), ap(tfl.layers.flatten(), ap(tfl.layers.averagePooling2d({ poolSize: 3, strides: 2, padding }), x))),
      );
      seedWeights(layers, 41);
      const fast = await onnxImageModel(layers, { name: layers.name, preprocessing: 'raw', threads: 1 });
      const reference = imageModelFromLayers(layers, { name: layers.name, preprocessing: 'raw' });
      // The model is linear in the pixels, so a large step is exact up to float rounding.
      const size = shape[0] * shape[1] * shape[2];
      const base = randomPixels([1, ...shape], 42);
      const step = 64;
      const probes = new Float32Array(2 * size * size);
      const x = base.dataSync();
      for (let i = 0; i < size; i++) {
        probes.set(x, 2 * i * size);
        probes.set(x, (2 * i + 1) * size);
        probes[2 * i * size + i] = probes[2 * i * size + i]! + step;
        probes[(2 * i + 1) * size + i] = probes[(2 * i + 1) * size + i]! - step;
      }
      const probeBatch = tf.tensor4d(probes, [2 * size, ...shape]);
      const probeScores = await reference.forward(probeBatch);
      const s = probeScores.dataSync();
      const fastProbeScores = await fast.forward(probeBatch);
      expect(relL2(fastProbeScores.dataSync(), s)).toBeLessThan(TOLERANCE);
      const pixels = tf.concat([base, base, base]) as tf.Tensor4D;
      const targets = targetsFor(3, classes);
      const { gradients } = await fast.gradient(pixels, targets);
      const got = gradients.dataSync();
      targets.forEach((t, n) => {
        const expected = Float32Array.from({ length: size }, (_, i) => (s[2 * i * classes + t]! - s[(2 * i + 1) * classes + t]!) / (2 * step));
        expect(relL2(got.subarray(n * size, (n + 1) * size), expected)).toBeLessThan(TOLERANCE);
      });
      tf.dispose([probeBatch, probeScores, fastProbeScores, pixels, gradients, base]);
      fast.dispose();
      reference.dispose();
    });
  }
});
