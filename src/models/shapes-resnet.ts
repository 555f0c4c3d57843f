/**
 * The architecture of the bundled default model (models/shapes-resnet/): a small ResNet for the
 * shapes dataset, trained by `npm run train:default` (scripts/train-default.ts), plus the
 * description its folder carries in lens.json.
 *
 * Layout (input 64x64x3, 'unit' preprocessing, i.e. pixels / 255):
 *   stem:   Conv 3x3 stride 2 -> BN -> ReLU                         (32x32)
 *   stages: one residual block each, stride 2: Conv 3x3 -> BN -> ReLU -> Conv 3x3 -> BN,
 *           plus a 1x1 stride-2 projection -> BN on the shortcut, added, ReLU  (16, 8, 4)
 *   head:   global average pooling -> Dense (logits, no softmax)
 * Every stage downsamples because the tfjs cpu backend trains at full resolution slowly; the
 * receptive field still covers the largest object by the last stage.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { LensSidecar } from './load.js';

export interface ShapesResNetOptions {
  /** Image side in pixels, default 64. */
  inputSize?: number;
  /** Channels of the stem convolution, default 16. */
  stemFilters?: number;
  /** Channels of each stride-2 residual stage, default [24, 32, 64]. */
  stageFilters?: readonly number[];
  /** Number of classes, default 5. */
  classes?: number;
  /** Seed of the weight initialisers, so that a training run can be repeated. */
  seed?: number;
}

/** The defaults of {@link ShapesResNetOptions}, as used for the bundled model. */
export const SHAPES_RESNET_DEFAULTS = {
  inputSize: 64,
  stemFilters: 16,
  stageFilters: [24, 32, 64],
  classes: 5,
  seed: 1,
} as const;

/** Name of the last convolutional feature map (the ReLU after the last stage), for Grad-CAM. */
export const SHAPES_RESNET_LAST_CONV = 'stage3_out';

/**
 * Builds the shapes ResNet with freshly initialised (seeded) weights. Input: [N, size, size, 3]
 * preprocessed with 'unit'; output: logits [N, classes].
 *
 * @example
 * const model = buildShapesResNet({ seed: 7 });
 * model.outputs[0]!.shape; // [null, 5]
 */
export function buildShapesResNet(options: ShapesResNetOptions = {}): tfl.LayersModel {
  const size = options.inputSize ?? SHAPES_RESNET_DEFAULTS.inputSize;
  const stem = options.stemFilters ?? SHAPES_RESNET_DEFAULTS.stemFilters;
  const stages = options.stageFilters ?? SHAPES_RESNET_DEFAULTS.stageFilters;
  const classes = options.classes ?? SHAPES_RESNET_DEFAULTS.classes;
  const seed = options.seed ?? SHAPES_RESNET_DEFAULTS.seed;
  if (!Number.isInteger(size) || size < 8) throw new LensError('INVALID_ARGUMENT', `shapes ResNet input size must be a whole number >= 8, got ${size}`);
  if (stages.length === 0) throw new LensError('INVALID_ARGUMENT', 'shapes ResNet needs at least one stage');
  let layerSeed = seed * 1000;
  const conv = (name: string, filters: number, kernelSize: number, strides: number) =>
    tfl.layers.conv2d({
      name,
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: layerSeed++ }),
    });
  const bn = (name: string) => tfl.layers.batchNormalization({ name, axis: -1, momentum: 0.9, epsilon: 1e-3 });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(x) as tfl.SymbolicTensor;

  const input = tfl.input({ shape: [size, size, 3], name: 'pixels' });
  let x = apply(conv('stem_conv', stem, 3, 2), input);
  x = apply(bn('stem_bn'), x);
  x = apply(tfl.layers.reLU({ name: 'stem_relu' }), x);
  stages.forEach((filters, i) => {
    const p = `stage${i + 1}`;
    let y = apply(conv(`${p}_conv1`, filters, 3, 2), x);
    y = apply(bn(`${p}_bn1`), y);
    y = apply(tfl.layers.reLU({ name: `${p}_relu1` }), y);
    y = apply(conv(`${p}_conv2`, filters, 3, 1), y);
    y = apply(bn(`${p}_bn2`), y);
    let shortcut = apply(conv(`${p}_proj`, filters, 1, 2), x);
    shortcut = apply(bn(`${p}_proj_bn`), shortcut);
    x = apply(tfl.layers.add({ name: `${p}_add` }), [y, shortcut]);
    x = apply(tfl.layers.reLU({ name: `${p}_out` }), x);
  });
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'pool' }), x);
  const logits = apply(
    tfl.layers.dense({ name: 'logits', units: classes, kernelInitializer: tfl.initializers.glorotUniform({ seed: layerSeed++ }) }),
    x,
  );
  return tfl.model({ name: 'shapes_resnet', inputs: input, outputs: logits });
}

/** lens.json of the bundled model: the contract's fields plus what the training run recorded. */
export interface ShapesModelSidecar extends LensSidecar {
  name: string;
  inputShape: [number, number, number];
  classes: number;
  labels: string[];
  preprocessing: 'unit';
  output: 'logit';
  format: 'layers';
  /** Held-out accuracy measured by the training script. */
  accuracy: { heldOut: number; samples: number; seed: number };
  dataset: { name: 'shapes'; size: number; trainSeed: number; trainSamples: number; heldOutSeed: number };
  training: Record<string, unknown>;
  /** Mean share of positive Integrated Gradients attribution inside the object mask. */
  attribution?: Record<string, unknown>;
  /** Layer whose output is the last convolutional feature map. */
  gradcamLayer: string;
}

/**
 * Saves a LayersModel as `model.json` plus one weights file in `dir`, each written atomically
 * (tfjs has no file:// saver without tfjs-node). Weights are written before model.json, so a
 * model.json always points at complete weights.
 *
 * @example
 * await writeLayersModel(model, 'models/shapes-resnet');
 * // later: loadImageModel('models/shapes-resnet')
 */
export async function writeLayersModel(model: tfl.LayersModel, dir: string, weightsFile = 'weights.bin'): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', `cannot create model folder ${dir}: ${errorMessage(e)}`);
  }
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = artifacts.weightData;
      const bytes = weights === undefined ? new Uint8Array(0) : new Uint8Array(tf.io.CompositeArrayBuffer.join(weights));
      await writeFileAtomic(join(dir, weightsFile), bytes);
      const modelJson = {
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFileAtomic(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}
