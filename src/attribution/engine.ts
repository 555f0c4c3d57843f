/**
 * The model calls every method shares: batched forward passes, and the weighted sum of input
 * gradients over points on straight paths from start images to the input, which is Integrated
 * Gradients, averaged-baseline IG and Expected Gradients alike. Memory depends on the batch size,
 * never on the number of points.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../core/errors.js';
import type { ImageModel, ScoreKind } from '../core/model.js';
import { concatFloat32 } from '../tensor/index.js';
import type { ImageInput, PathTrace, ProgressCallback } from './types.js';

/**
 * Images per model call when the caller does not say: about 1 Mi input values per batch (6 images
 * at 224x224x3, 64 at 32x32x3), which keeps activations within the wasm heap for ResNet-sized models.
 */
export function defaultBatchSize(inputShape: readonly [number, number, number]): number {
  const values = inputShape[0] * inputShape[1] * inputShape[2];
  return Math.max(1, Math.min(64, Math.floor(2 ** 20 / values)));
}

/** Checks that the model can give input gradients; forward-only models (a remote server) cannot. */
export function requireGradient(model: ImageModel, method: string): asserts model is ImageModel & Required<Pick<ImageModel, 'gradient'>> {
  if (typeof model.gradient !== 'function') {
    throw new LensError(
      'UNSUPPORTED',
      `method ${method} needs input gradients, but model ${model.name} is forward-only (e.g. a remote TF Serving model): ` +
        'explain a local copy of the served model, or use a forward-only method (occlusion, rise)',
    );
  }
}

/** The height, width and channels of `image`: the size an attribution of it has. */
export function mapSize(image: ImageInput): Pick<ImageInput, 'height' | 'width' | 'channels'> {
  return { height: image.height, width: image.width, channels: image.channels };
}

/** Checks an image against the model's input shape. */
export function checkImage(model: ImageModel, image: ImageInput, what = 'image'): void {
  const [h, w, c] = model.inputShape;
  if (image.height !== h || image.width !== w || image.channels !== c) {
    throw new LensError(
      'SHAPE_MISMATCH',
      `${what} is ${image.height}x${image.width}x${image.channels} but model ${model.name} takes ${h}x${w}x${c}: resize it first (--resize pad|crop|squash)`,
    );
  }
  if (image.data.length !== h * w * c) {
    throw new LensError('SHAPE_MISMATCH', `${what} holds ${image.data.length} values, expected ${h * w * c} for ${h}x${w}x${c}`);
  }
}

export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new LensError('ATTRIBUTION_FAILED', 'attribution was cancelled');
}

export function checkBatchSize(batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LensError('INVALID_ARGUMENT', `batch size must be a positive integer, got ${batchSize}`);
  return batchSize;
}

/** Probabilities from one row of scores: softmax of logits, or the scores themselves. */
export function toProbabilities(scores: ArrayLike<number>, output: ScoreKind): Float32Array {
  if (output === 'probability') return Float32Array.from(scores as ArrayLike<number>);
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) max = Math.max(max, scores[i]!);
  const out = new Float32Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    const e = Math.exp(scores[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/** Class scores of many images (HWC each), `batchSize` images per forward call. */
export async function forwardRows(
  model: ImageModel,
  images: readonly Float32Array[],
  batchSize: number,
  progress?: { onProgress?: ProgressCallback; signal?: AbortSignal; stage?: string },
): Promise<Float32Array[]> {
  const [h, w, c] = model.inputShape;
  const rows: Float32Array[] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    checkAborted(progress?.signal);
    const chunk = images.slice(start, start + batchSize);
    const input = tf.tensor4d(concatFloat32(chunk), [chunk.length, h, w, c]);
    let scores: tf.Tensor2D;
    try {
      scores = await model.forward(input);
    } finally {
      input.dispose();
    }
    const values = (await scores.data()) as Float32Array;
    const classes = scores.shape[1];
    scores.dispose();
    for (let i = 0; i < chunk.length; i++) rows.push(values.slice(i * classes, (i + 1) * classes));
    progress?.onProgress?.({ done: Math.min(images.length, start + batchSize), total: images.length, ...(progress.stage ? { stage: progress.stage } : {}) });
  }
  return rows;
}

/** One point on a straight path: start image `start`, position `alpha`, quadrature `weight`. */
export interface PathPoint {
  start: number;
  alpha: number;
  weight: number;
  /** Weight of the point in the map-error estimate (integration.ts splitDifferenceWeights), when one is wanted. */
  errorWeight?: number;
}

export interface PathSumOptions {
  batchSize: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  stage?: string;
  /** Record scores per point; 'gradients' also keeps each point's gradient and class scores. */
  trace?: boolean | 'gradients';
  /** Evaluations already done by the caller, so progress counts across several sums. */
  progressOffset?: number;
  progressTotal?: number;
}

export interface PathSum {
  /** sum_k weight_k * (x - start_k) * grad F(start_k + alpha_k (x - start_k)), HWC. */
  sum: Float32Array;
  /** The same sum with each point's `errorWeight`, when the points carry them: the map's estimated error, HWC. */
  errorSum?: Float32Array;
  gradientEvaluations: number;
  /**
   * Forward passes the map needed (none on a straight path). The class scores a `gradients` trace
   * records for the path explorer are extra work for the picture, not for the map, and do not count,
   * so an attribution reports the same cost however it was asked for.
   */
  forwardEvaluations: number;
  trace?: PathTrace;
}

/**
 * Weighted sum of gradient-times-difference over points on straight paths from each start image
 * to the input. Batches mix points from different starts. The path images and the running sum
 * are plain typed arrays: each pixel is touched once per point, which costs less than the
 * backend's gather/multiply/reduce kernels would (the gradients have to come back anyway), and the
 * sum accumulates in float64.
 */
export async function pathSum(
  model: ImageModel & Required<Pick<ImageModel, 'gradient'>>,
  image: ImageInput,
  starts: readonly Float32Array[],
  points: readonly PathPoint[],
  target: number,
  options: PathSumOptions,
): Promise<PathSum> {
  const { height: h, width: w, channels: c } = image;
  const per = h * w * c;
  const batchSize = checkBatchSize(options.batchSize);
  const trace = options.trace ?? false;
  const scores = new Float32Array(points.length);
  const gradients: Float32Array[] = [];
  const classScores: Float32Array[] = [];
  const diffs = starts.map((start) => {
    const d = new Float32Array(per);
    for (let i = 0; i < per; i++) d[i] = image.data[i]! - start[i]!;
    return d;
  });
  const acc = new Float64Array(per);
  const errorAcc = points.some((p) => p.errorWeight !== undefined) ? new Float64Array(per) : undefined;
  for (let k0 = 0; k0 < points.length; k0 += batchSize) {
    checkAborted(options.signal);
    const chunk = points.slice(k0, k0 + batchSize);
    const n = chunk.length;
    const data = new Float32Array(n * per);
    chunk.forEach((p, j) => {
      const start = starts[p.start]!;
      const d = diffs[p.start]!;
      const out = data.subarray(j * per, (j + 1) * per);
      for (let i = 0; i < per; i++) out[i] = start[i]! + p.alpha * d[i]!;
    });
    const batch = tf.tensor4d(data, [n, h, w, c]);
    try {
      const result = await model.gradient(batch, target);
      const g = (await result.gradients.data()) as Float32Array;
      scores.set((await result.values.data()) as Float32Array, k0);
      tf.dispose([result.gradients, result.values]);
      chunk.forEach((p, j) => {
        const d = diffs[p.start]!;
        const off = j * per;
        for (let i = 0; i < per; i++) acc[i] += p.weight * g[off + i]! * d[i]!;
        const e = p.errorWeight ?? 0;
        if (errorAcc && e !== 0) for (let i = 0; i < per; i++) errorAcc[i] += e * g[off + i]! * d[i]!;
      });
      if (trace === 'gradients') {
        for (let j = 0; j < n; j++) gradients.push(g.slice(j * per, (j + 1) * per));
        const rows = await model.forward(batch);
        const r = (await rows.data()) as Float32Array;
        const classes = rows.shape[1];
        rows.dispose();
        for (let j = 0; j < n; j++) classScores.push(r.slice(j * classes, (j + 1) * classes));
      }
    } finally {
      batch.dispose();
    }
    const offset = options.progressOffset ?? 0;
    options.onProgress?.({
      done: offset + k0 + n,
      total: options.progressTotal ?? offset + points.length,
      ...(options.stage ? { stage: options.stage } : {}),
    });
  }
  const out: PathSum = { sum: Float32Array.from(acc), gradientEvaluations: points.length, forwardEvaluations: 0 };
  if (errorAcc) out.errorSum = Float32Array.from(errorAcc);
  if (trace) {
    out.trace = {
      alphas: Float32Array.from(points.map((p) => p.alpha)),
      weights: Float32Array.from(points.map((p) => p.weight)),
      scores,
      ...(trace === 'gradients' ? { gradients, classScores: concatFloat32(classScores) } : {}),
    };
  }
  return out;
}

/**
 * Input gradients of one target at many images (HWC each), `batchSize` per call; returns each
 * image's gradient and target score.
 */
export async function gradientsAt(
  model: ImageModel & Required<Pick<ImageModel, 'gradient'>>,
  images: readonly Float32Array[],
  target: number,
  options: { batchSize: number; onProgress?: ProgressCallback; signal?: AbortSignal; stage?: string; progressOffset?: number; progressTotal?: number },
): Promise<{ gradients: Float32Array[]; scores: Float32Array }> {
  const [h, w, c] = model.inputShape;
  const per = h * w * c;
  const batchSize = checkBatchSize(options.batchSize);
  const gradients: Float32Array[] = [];
  const scores = new Float32Array(images.length);
  for (let start = 0; start < images.length; start += batchSize) {
    checkAborted(options.signal);
    const chunk = images.slice(start, start + batchSize);
    const input = tf.tensor4d(concatFloat32(chunk), [chunk.length, h, w, c]);
    try {
      const result = await model.gradient(input, target);
      const g = (await result.gradients.data()) as Float32Array;
      scores.set((await result.values.data()) as Float32Array, start);
      result.gradients.dispose();
      result.values.dispose();
      for (let i = 0; i < chunk.length; i++) gradients.push(g.slice(i * per, (i + 1) * per));
    } finally {
      input.dispose();
    }
    const offset = options.progressOffset ?? 0;
    options.onProgress?.({
      done: offset + start + chunk.length,
      total: options.progressTotal ?? offset + images.length,
      ...(options.stage ? { stage: options.stage } : {}),
    });
  }
  return { gradients, scores };
}
