/**
 * Small models with known weights for attribution tests, and a plain-JavaScript float64 copy of
 * the nonlinear one, so that reference values are computed independently of tfjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createTfModel, type ImageModel } from '../../src/core/model.js';
import type { PreprocessingName } from '../../src/core/preprocess.js';
import { seededRandom } from '../../src/core/random.js';
import type { ImageInput } from '../../src/attribution/types.js';

export function randomImage(height: number, width: number, channels: number, seed: number): ImageInput {
  const rng = seededRandom(seed);
  const data = new Float32Array(height * width * channels);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(rng.uniform() * 255);
  return { data, height, width, channels };
}

/** scores = flatten(preprocess(x)) . W + b, with W [features, classes]. */
export function linearModel(shape: [number, number, number], classes: number, seed: number, preprocessing: PreprocessingName = 'raw') {
  const features = shape[0] * shape[1] * shape[2];
  const rng = seededRandom(seed);
  const w = Float32Array.from({ length: features * classes }, () => rng.normal() * 0.01);
  const b = Float32Array.from({ length: classes }, () => rng.normal());
  const wT = tf.tensor2d(w, [features, classes]);
  const bT = tf.tensor1d(b);
  const model = createTfModel({
    name: 'linear',
    inputShape: shape,
    classes,
    labels: Array.from({ length: classes }, (_, i) => `class${i}`),
    output: 'logit',
    preprocessing,
    scores: (x) => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], features]), wT), bT) as tf.Tensor2D,
    dispose: () => tf.dispose([wT, bT]),
  });
  return { model, w, b, features };
}

/** A two-layer tanh network on unit-scaled pixels, with a float64 JavaScript twin. */
export function mlpModel(shape: [number, number, number], hidden: number, classes: number, seed: number) {
  const features = shape[0] * shape[1] * shape[2];
  const rng = seededRandom(seed);
  const w1 = Float64Array.from({ length: features * hidden }, () => rng.normal() * (2 / Math.sqrt(features)));
  const b1 = Float64Array.from({ length: hidden }, () => rng.normal() * 0.5);
  const w2 = Float64Array.from({ length: hidden * classes }, () => rng.normal() * (2 / Math.sqrt(hidden)));
  const t = [tf.tensor2d(Float32Array.from(w1), [features, hidden]), tf.tensor1d(Float32Array.from(b1)), tf.tensor2d(Float32Array.from(w2), [hidden, classes])] as const;
  const model: ImageModel = createTfModel({
    name: 'mlp',
    inputShape: shape,
    classes,
    output: 'logit',
    preprocessing: 'unit',
    scores: (x) => tf.matMul(tf.tanh(tf.add(tf.matMul(tf.reshape(x, [x.shape[0], features]), t[0]), t[1])), t[2]) as tf.Tensor2D,
    dispose: () => tf.dispose([...t]),
  });
  /** F_target(pixels) in float64. */
  const score = (pixels: ArrayLike<number>, target: number): number => {
    let s = 0;
    for (let j = 0; j < hidden; j++) {
      let a = b1[j]!;
      for (let i = 0; i < features; i++) a += (pixels[i]! / 255) * w1[i * hidden + j]!;
      s += Math.tanh(a) * w2[j * classes + target]!;
    }
    return s;
  };
  return { model, score, features };
}

/** A small CNN as a tfjs LayersModel: conv(same) -> relu -> conv(same) -> relu -> global average -> dense. */
export async function convLayersModel(shape: [number, number, number], classes: number, seed: number) {
  const tfl = await import('@tensorflow/tfjs-layers');
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed + s });
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: shape, filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), name: 'conv_a' }),
      tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), name: 'conv_b' }),
      tfl.layers.globalAveragePooling2d({ name: 'pool' }),
      tfl.layers.dense({ units: classes, kernelInitializer: init(3), biasInitializer: 'zeros', name: 'logits' }),
    ],
  });
  return model;
}

/** An ImageModel over a LayersModel, with layer access (as a loader attaches it). */
export async function layersImageModel(shape: [number, number, number], classes: number, seed: number) {
  const layers = await convLayersModel(shape, classes, seed);
  const { withLayerAccess } = await import('../../src/models/layer-access.js');
  const model = withLayerAccess(
    createTfModel({
      name: 'cnn',
      inputShape: shape,
      classes,
      output: 'logit',
      preprocessing: 'unit',
      scores: (x) => layers.apply(x) as tf.Tensor2D,
      dispose: () => layers.dispose(),
    }),
    layers,
  );
  return { layers, model };
}

/**
 * Saves a small CNN as a tfjs model folder (model.json + weights.bin + lens.json), as loadImageModel
 * reads it.
 */
export async function saveLayersModelDir(dir: string, options: { shape: [number, number, number]; classes: number; seed: number; labels?: string[] }) {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const layers = await convLayersModel(options.shape, options.classes, options.seed);
  await mkdir(dir, { recursive: true });
  await layers.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = new Uint8Array(artifacts.weightData as ArrayBuffer);
      await writeFile(join(dir, 'weights.bin'), weights);
      const json = {
        format: 'layers-model',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const sidecar = {
    name: 'tiny-cnn',
    inputShape: options.shape,
    classes: options.classes,
    labels: options.labels ?? Array.from({ length: options.classes }, (_, i) => `class${i}`),
    preprocessing: 'unit',
    output: 'logit',
    format: 'layers',
  };
  await writeFile(join(dir, 'lens.json'), JSON.stringify(sidecar));
  layers.dispose();
}

/** Writes a random RGB PNG. */
export async function writeRandomPng(path: string, size: number, seed: number): Promise<void> {
  const { encodePng } = await import('../../src/image/index.js');
  const { writeFile } = await import('node:fs/promises');
  const img = randomImage(size, size, 3, seed);
  await writeFile(path, await encodePng(img));
}

/** Image shape, feature count and pixel weights of the path-profile models (`pathProfileModel`). */
export const PROFILE_SHAPE: [number, number, number] = [4, 4, 3];
export const PROFILE_FEATURES = 48;
/** Positive, so that z grows along every black-to-image path. */
export const PROFILE_WEIGHTS = Float64Array.from({ length: PROFILE_FEATURES }, (_, i) => 0.5 + (i % 5) / 4);

/** z(x) = sum_i w_i x_i / 255 / features: a weighted mean brightness in about [0, 1]. */
export function profileZ(pixels: ArrayLike<number>): number {
  let z = 0;
  for (let i = 0; i < PROFILE_FEATURES; i++) z += (PROFILE_WEIGHTS[i]! * pixels[i]!) / 255 / PROFILE_FEATURES;
  return z;
}

/**
 * A model whose class-0 score is `profile(z)` of the linear z above (class 1 is its negative): a
 * piecewise-linear profile behaves as a ReLU network does along a path, and its exact IG is known,
 * since F depends on x only through z.
 */
export function pathProfileModel(name: string, profile: (z: tf.Tensor2D) => tf.Tensor2D): ImageModel {
  const w = tf.tensor2d(Float32Array.from(PROFILE_WEIGHTS), [PROFILE_FEATURES, 1]);
  return createTfModel({
    name,
    inputShape: PROFILE_SHAPE,
    classes: 2,
    output: 'logit',
    preprocessing: 'unit',
    scores: (x) =>
      tf.tidy(() => {
        const z = tf.div(tf.matMul(tf.reshape(x, [x.shape[0], PROFILE_FEATURES]), w), PROFILE_FEATURES) as tf.Tensor2D;
        const f = profile(z);
        return tf.concat([f, tf.neg(f)], 1) as tf.Tensor2D;
      }),
    dispose: () => w.dispose(),
  });
}
