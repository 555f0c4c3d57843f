/**
 * Central finite differences of a model's class score with respect to each input pixel: the
 * reference that gradient implementations are checked against where no library is trusted.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ImageModel } from '../../src/core/model.js';

/**
 * d score[target] / d pixel for every pixel of one image [H,W,C], from (F(x + h e_i) - F(x - h e_i)) / 2h,
 * all 2·H·W·C probes in one forward call.
 */
export async function centralDifferences(model: ImageModel, pixels: Float32Array, shape: readonly [number, number, number], target: number, step: number): Promise<Float32Array> {
  const n = pixels.length;
  const probes = centralProbes(pixels, step);
  const input = tf.tensor4d(probes, [2 * n, ...shape]);
  const out = await model.forward(input);
  const scores = out.dataSync();
  const classes = out.shape[1];
  tf.dispose([input, out]);
  return Float32Array.from({ length: n }, (_, i) => (scores[2 * i * classes + target]! - scores[(2 * i + 1) * classes + target]!) / (2 * step));
}

/** 2n copies of x (n values): copy 2i has x_i + step, copy 2i+1 has x_i - step. */
export function centralProbes(x: Float32Array, step: number): Float32Array {
  const n = x.length;
  const probes = new Float32Array(2 * n * n);
  for (let i = 0; i < n; i++) {
    probes.set(x, 2 * i * n);
    probes.set(x, (2 * i + 1) * n);
    probes[2 * i * n + i] = x[i]! + step;
    probes[(2 * i + 1) * n + i] = x[i]! - step;
  }
  return probes;
}

/** ||got - expected|| / ||expected||, failing loudly when the expectation is all zeros. */
export function relativeError(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (got[i]! - expected[i]!) ** 2;
    norm += expected[i]! ** 2;
  }
  if (norm === 0) throw new Error('the finite-difference gradient is zero everywhere: the check would be empty');
  return Math.sqrt(diff / norm);
}
