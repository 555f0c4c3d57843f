/**
 * Shared pieces of the onnxruntime tests: seeded weights and pixels, and a comparison of one
 * LayersModel run by tfjs (`imageModelFromLayers`, the reference) and by onnxruntime.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { seededRandom } from '../../src/core/random.js';
import { imageModelFromLayers } from '../../src/models/keras.js';
import type { ImageModel } from '../../src/core/model.js';
import type { PreprocessingName } from '../../src/core/preprocess.js';
import { onnxImageModel } from '../../src/engines/onnx/index.js';

/** ||a - b|| / ||b|| (b is the reference). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += b[i]! ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
}

/**
 * Pixels [n,h,w,c] in 0..255 from a seed. With `levels`, values are drawn from that many evenly
 * spaced levels, so that pooling windows hold ties.
 */
export function randomPixels(shape: readonly [number, number, number, number], seed: number, levels?: number): tf.Tensor4D {
  const rng = seededRandom(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = levels ? (rng.int(levels) * 255) / (levels - 1) : rng.uniform() * 255;
  return tf.tensor4d(data, [...shape]);
}

/**
 * Replaces every weight of `model` with seeded values: kernels ~ N(0, 1/fan_in), biases and
 * batch-norm betas and means ~ N(0, 0.5), gammas in 0.5..1.5, moving variances in 0.3..2. So
 * biases are non-zero and a batch norm is far from the identity.
 */
export function seedWeights(model: tfl.LayersModel, seed: number): void {
  const rng = seededRandom(seed);
  for (const v of model.weights) {
    const shape = v.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const short = v.originalName.split('/').pop()!.replace(/:\d+$/, '');
    let draw: () => number;
    if (short === 'depthwise_kernel') {
      const std = 1 / Math.sqrt(shape[0]! * shape[1]!);
      draw = () => rng.normal() * std;
    } else if (short.endsWith('kernel')) {
      const std = 1 / Math.sqrt(size / shape[shape.length - 1]!);
      draw = () => rng.normal() * std;
    } else if (short === 'gamma') {
      draw = () => 0.5 + rng.uniform();
    } else if (short === 'moving_variance') {
      draw = () => 0.3 + 1.7 * rng.uniform();
    } else {
      draw = () => rng.normal() * 0.5;
    }
    const values = Float32Array.from({ length: size }, draw);
    const t = tf.tensor(values, shape);
    v.write(t);
    t.dispose();
  }
}

/** One target class per image of the batch, all different where the classes allow. */
export function targetsFor(batch: number, classes: number): number[] {
  return Array.from({ length: batch }, (_, i) => (i * 7 + 1) % classes);
}

export interface Agreement {
  /** Relative L2 of the scores (onnxruntime vs tfjs). */
  scores: number;
  /** Relative L2 of the input gradients. */
  gradients: number;
  /** Relative L2 of the target values the gradient call returns. */
  values: number;
  /** What the onnxruntime model says its scores are. */
  output: ImageModel['output'];
  tfjsOutput: ImageModel['output'];
  classes: number;
  tfjsClasses: number;
}

/** Runs forward and gradient (per-image targets) on both engines with the same model and pixels. */
export async function compareEngines(
  layers: tfl.LayersModel,
  options: { preprocessing: PreprocessingName; probabilities?: boolean; pixels: tf.Tensor4D },
): Promise<Agreement> {
  const opts = { name: layers.name, preprocessing: options.preprocessing, ...(options.probabilities ? { probabilities: true } : {}) };
  const reference = imageModelFromLayers(layers, opts);
  const fast = await onnxImageModel(layers, { ...opts, threads: 1 });
  try {
    const targets = targetsFor(options.pixels.shape[0], reference.classes);
    const [refScores, fastScores] = await Promise.all([reference.forward(options.pixels), fast.forward(options.pixels)]);
    const refGrad = await reference.gradient!(options.pixels, targets);
    const fastGrad = await fast.gradient(options.pixels, targets);
    const result: Agreement = {
      scores: relL2(fastScores.dataSync(), refScores.dataSync()),
      gradients: relL2(fastGrad.gradients.dataSync(), refGrad.gradients.dataSync()),
      values: relL2(fastGrad.values.dataSync(), refGrad.values.dataSync()),
      output: fast.output,
      tfjsOutput: reference.output,
      classes: fast.classes,
      tfjsClasses: reference.classes,
    };
    tf.dispose([refScores, fastScores, refGrad.gradients, refGrad.values, fastGrad.gradients, fastGrad.values]);
    return result;
  } finally {
    fast.dispose();
  }
}

/** A functional model from an input shape and a function of the input tensor. */
export function functional(name: string, shape: [number, number, number], body: (x: tfl.SymbolicTensor) => tfl.SymbolicTensor): tfl.LayersModel {
  const input = tfl.input({ shape });
  return tfl.model({ name, inputs: input, outputs: body(input) });
}

/** `layer.apply(x)` typed as a symbolic tensor. */
export function ap(layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]): tfl.SymbolicTensor {
  return layer.apply(x) as tfl.SymbolicTensor;
}
