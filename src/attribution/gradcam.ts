/**
 * Grad-CAM (Selvaraju et al., ICCV 2017): the activations A of a convolutional layer weighted by
 * the spatial mean of dF/dA per channel, summed over channels, passed through ReLU and resized
 * bilinearly to the input. Needs layer access (`model.layerAccess`, see layer-access.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { checkImage, mapSize } from './engine.js';
import { broadcastChannels, resizeBilinear } from './image-ops.js';
import { hasLayerAccess, type LayerAccess } from '../models/layer-access.js';
import { scoreInput } from './targets.js';
import type { Attribution, CommonOptions, ImageInput } from './types.js';

export interface GradCamOptions extends CommonOptions {
  /** Layer name; default the last layer with a spatial [h, w, k] output. */
  layer?: string;
  /** Keep only positive evidence (the paper's ReLU). Default true. */
  relu?: boolean;
}

/** The last layer whose output is a feature map [h, w, k] with more than one position. */
export function lastConvLayer(access: LayerAccess): string {
  const candidates = access.layers().filter((l) => l.outputShape.length === 3 && ((l.outputShape[0] ?? 0) > 1 || (l.outputShape[1] ?? 0) > 1) && l.className !== 'InputLayer');
  const last = candidates.at(-1);
  if (!last) throw new LensError('UNSUPPORTED', 'the model has no layer with a spatial feature map for Grad-CAM');
  return last.name;
}

/**
 * Grad-CAM map of one target class, with the input's shape (the map repeated over channels).
 *
 * @example
 * const cam = await gradCam(model, image, { layer: 'conv2d_3' });
 */
export async function gradCam(model: ImageModel, image: ImageInput, options: GradCamOptions = {}): Promise<Attribution> {
  checkImage(model, image);
  if (!hasLayerAccess(model)) {
    throw new LensError(
      'UNSUPPORTED',
      `Grad-CAM needs the layers of model ${model.name}, which it does not expose: it works on models backed by a tfjs LayersModel (Keras .h5, tfjs model.json, the bundled model)`,
    );
  }
  const { target } = await scoreInput(model, image, options);
  const layer = options.layer ?? lastConvLayer(model.layerAccess);
  const input = tf.tensor4d(image.data, [1, image.height, image.width, image.channels]);
  let result: Awaited<ReturnType<LayerAccess['activationGradient']>>;
  try {
    result = await model.layerAccess.activationGradient(input, layer, target.index);
  } finally {
    input.dispose();
  }
  const { activations, gradients, values } = result;
  try {
    if (activations.rank !== 4) throw new LensError('UNSUPPORTED', `layer ${layer} outputs rank ${activations.rank - 1} tensors; Grad-CAM needs a [h, w, k] feature map`);
    const [, h, w] = activations.shape as [number, number, number, number];
    const cam = tf.tidy(() => {
      const channelWeights = tf.mean(gradients, [1, 2], true);
      const weighted = tf.sum(tf.mul(activations, channelWeights), 3);
      return options.relu === false ? weighted : tf.relu(weighted);
    });
    const coarse = (await cam.data()) as Float32Array;
    cam.dispose();
    const map = resizeBilinear(coarse, h, w, image.height, image.width);
    options.onProgress?.({ done: 1, total: 1, stage: 'grad-cam' });
    return {
      data: broadcastChannels(map, image.channels),
      ...mapSize(image),
      method: 'gradcam',
      target,
      output: model.output,
      gradientEvaluations: 1,
      forwardEvaluations: 1,
      details: { layer, featureMap: [h, w] },
    };
  } finally {
    tf.dispose([activations, gradients, values]);
  }
}
