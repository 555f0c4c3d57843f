/**
 * The model interface that every consumer sees: attribution methods, the local server, the
 * profiler and the CLI. A tfjs LayersModel, a converted SavedModel, a TFLite graph and a remote
 * TF Serving model all become an `ImageModel`, so methods are written once.
 *
 * Inputs are always pixels in 0..255 (RGB, NHWC, float32); preprocessing belongs to the model.
 * Calls are async so that remote models and worker-thread pools fit the same shape.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from './errors.js';
import { preprocess, type PreprocessingName } from './preprocess.js';

export type ScoreKind = 'logit' | 'probability';

/** Gradient of the target scores with respect to the pixels, with the scores themselves. */
export interface GradientResult {
  /** d score[i, target_i] / d pixels[i], shape [N,H,W,C]. */
  gradients: tf.Tensor4D;
  /** score[i, target_i], shape [N]. */
  values: tf.Tensor1D;
}

export interface ImageModel {
  /** A name for reports (file stem, zoo id or served model name). */
  readonly name: string;
  /** [H, W, C] the model takes. */
  readonly inputShape: readonly [number, number, number];
  readonly classes: number;
  readonly labels?: readonly string[];
  /** What `forward` returns: pre-softmax logits when the model exposes them, else probabilities. */
  readonly output: ScoreKind;
  readonly preprocessing: PreprocessingName;
  /** Scores per class for a batch of pixels [N,H,W,C] in 0..255. The caller disposes the result. */
  forward(pixels: tf.Tensor4D): Promise<tf.Tensor2D>;
  /**
   * Input gradients of one class score per image (`target` is one class for all, or one per image).
   * Absent for forward-only models such as a remote TF Serving model.
   */
  gradient?(pixels: tf.Tensor4D, target: number | readonly number[]): Promise<GradientResult>;
  /** Releases weights held by this model. */
  dispose(): void;
}

/** What a tfjs-backed model provides; `createTfModel` derives forward and gradient from it. */
export interface TfModelSpec {
  name: string;
  inputShape: readonly [number, number, number];
  classes: number;
  labels?: readonly string[];
  output: ScoreKind;
  preprocessing: PreprocessingName;
  /** Scores from the preprocessed input, built from differentiable tfjs ops. */
  scores(input: tf.Tensor4D): tf.Tensor2D;
  dispose?(): void;
}

function targetMask(target: number | readonly number[], batch: number, classes: number): tf.Tensor2D {
  const indices = typeof target === 'number' ? new Array<number>(batch).fill(target) : Array.from(target);
  if (indices.length !== batch) {
    throw new LensError('INVALID_ARGUMENT', `got ${indices.length} targets for a batch of ${batch}`);
  }
  for (const t of indices) {
    if (!Number.isInteger(t) || t < 0 || t >= classes) {
      throw new LensError('INVALID_ARGUMENT', `target class ${t} is outside 0..${classes - 1}`);
    }
  }
  // Built here rather than with tf.oneHot, which needs at least two classes.
  const mask = new Float32Array(batch * classes);
  indices.forEach((t, i) => (mask[i * classes + t] = 1));
  return tf.tensor2d(mask, [batch, classes]);
}

/** Checks a pixel batch against the model's input shape. */
export function checkPixels(model: Pick<ImageModel, 'name' | 'inputShape'>, pixels: tf.Tensor): asserts pixels is tf.Tensor4D {
  const [h, w, c] = model.inputShape;
  const s = pixels.shape;
  if (s.length !== 4 || s[1] !== h || s[2] !== w || s[3] !== c) {
    throw new LensError('SHAPE_MISMATCH', `model ${model.name} takes pixels [N,${h},${w},${c}], got [${s.join(',')}]`);
  }
}

/**
 * Builds an ImageModel from a differentiable score function.
 *
 * @example
 * const model = createTfModel({
 *   name: 'linear', inputShape: [2, 2, 1], classes: 1, output: 'logit', preprocessing: 'raw',
 *   scores: (x) => x.reshape([x.shape[0], 4]).matMul(w),
 * });
 * const { gradients } = await model.gradient!(pixels, 0);
 */
export function createTfModel(spec: TfModelSpec): ImageModel {
  const run = (pixels: tf.Tensor4D): tf.Tensor2D => spec.scores(preprocess(pixels, spec.preprocessing));
  return {
    name: spec.name,
    inputShape: spec.inputShape,
    classes: spec.classes,
    ...(spec.labels ? { labels: spec.labels } : {}),
    output: spec.output,
    preprocessing: spec.preprocessing,
    async forward(pixels) {
      checkPixels(spec, pixels);
      return tf.tidy(() => run(pixels));
    },
    async gradient(pixels, target) {
      checkPixels(spec, pixels);
      return tf.tidy(() => {
        const mask = targetMask(target, pixels.shape[0], spec.classes);
        const f = (x: tf.Tensor4D) => tf.sum(tf.mul(run(x), mask), 1) as tf.Tensor1D;
        const { value, grad } = tf.valueAndGrad(f)(pixels);
        return { gradients: grad as tf.Tensor4D, values: value as tf.Tensor1D };
      });
    },
    dispose() {
      spec.dispose?.();
    },
  };
}

/** Indices and scores of the k best classes of one score row. */
export function topK(scores: ArrayLike<number>, k: number, labels?: readonly string[]): { index: number; score: number; label?: string }[] {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  return order.slice(0, Math.max(0, Math.min(k, scores.length))).map((index) => ({
    index,
    score: scores[index]!,
    ...(labels?.[index] !== undefined ? { label: labels[index] } : {}),
  }));
}
