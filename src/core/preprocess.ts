/**
 * Input preprocessing presets. Images enter the library as pixels 0..255 (RGB, float32, NHWC);
 * a model's preprocessing maps them to what its first layer expects. Every preset is a
 * differentiable tfjs function, so attributions are reported on the pixels the user gave.
 *
 * - raw: pixels unchanged (0..255)
 * - unit: pixels / 255 (0..1)
 * - symmetric: pixels / 127.5 - 1 (-1..1), MobileNet/Inception style
 * - caffe: RGB -> BGR, minus the ImageNet channel means (Keras ResNet50)
 * - torch: / 255, minus ImageNet mean, divided by ImageNet std
 * - bgr: RGB -> BGR, pixels unchanged (graphs that normalise in-graph, e.g. Azure Custom Vision exports)
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from './errors.js';

export const PREPROCESSING_NAMES = ['raw', 'unit', 'symmetric', 'caffe', 'torch', 'bgr'] as const;
export type PreprocessingName = (typeof PREPROCESSING_NAMES)[number];

/** An affine per-channel map: input = pixels[channelOrder] * scale[c] + offset[c]. */
export interface AffinePreprocessing {
  /** Channel order of the model input, as indices into RGB (e.g. [2,1,0] for BGR). */
  channelOrder: readonly number[];
  scale: readonly number[];
  offset: readonly number[];
}

const IMAGENET_MEAN_RGB = [123.68, 116.779, 103.939];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

/** The preset as an affine map (all presets are affine, which export and baselines rely on). */
export function affineOf(name: PreprocessingName): AffinePreprocessing {
  switch (name) {
    case 'raw':
      return { channelOrder: [0, 1, 2], scale: [1, 1, 1], offset: [0, 0, 0] };
    case 'unit':
      return { channelOrder: [0, 1, 2], scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] };
    case 'symmetric':
      return { channelOrder: [0, 1, 2], scale: [1 / 127.5, 1 / 127.5, 1 / 127.5], offset: [-1, -1, -1] };
    case 'caffe': {
      // BGR order; the means are listed in RGB and follow the channels.
      const order = [2, 1, 0];
      return { channelOrder: order, scale: [1, 1, 1], offset: order.map((c) => -IMAGENET_MEAN_RGB[c]!) };
    }
    case 'bgr':
      return { channelOrder: [2, 1, 0], scale: [1, 1, 1], offset: [0, 0, 0] };
    case 'torch':
      return {
        channelOrder: [0, 1, 2],
        scale: TORCH_STD.map((s) => 1 / (255 * s)),
        offset: TORCH_MEAN.map((m, i) => -m / TORCH_STD[i]!),
      };
  }
}

export function parsePreprocessing(value: string): PreprocessingName {
  if ((PREPROCESSING_NAMES as readonly string[]).includes(value)) return value as PreprocessingName;
  throw new LensError(
    'INVALID_ARGUMENT',
    `unknown preprocessing "${value}": expected one of ${PREPROCESSING_NAMES.join(', ')}`,
  );
}

/**
 * Applies an affine preprocessing to pixels [N,H,W,C]. Works for any channel count when the
 * map is the identity order; channel reordering needs C = 3.
 */
export function applyAffine(pixels: tf.Tensor4D, p: AffinePreprocessing): tf.Tensor4D {
  return tf.tidy(() => {
    const channels = pixels.shape[3];
    const identityOrder = p.channelOrder.every((c, i) => c === i);
    let x: tf.Tensor4D = pixels;
    if (!identityOrder) {
      if (channels !== p.channelOrder.length) {
        throw new LensError('SHAPE_MISMATCH', `preprocessing reorders ${p.channelOrder.length} channels but the image has ${channels}`);
      }
      x = tf.gather(pixels, Array.from(p.channelOrder), 3);
    }
    const uniform = (v: readonly number[]) => v.every((e) => e === v[0]);
    const scale = uniform(p.scale) ? tf.scalar(p.scale[0]!) : tf.tensor1d(Array.from(p.scale.slice(0, channels)));
    const offset = uniform(p.offset) ? tf.scalar(p.offset[0]!) : tf.tensor1d(Array.from(p.offset.slice(0, channels)));
    return tf.add(tf.mul(x, scale), offset) as tf.Tensor4D;
  });
}

/** Applies a named preset to pixels [N,H,W,C] in 0..255. */
export function preprocess(pixels: tf.Tensor4D, name: PreprocessingName): tf.Tensor4D {
  if (name === 'raw') return tf.clone(pixels);
  return applyAffine(pixels, affineOf(name));
}
