/**
 * How convolution input gradients are computed: as a forward convolution on the fast kernels,
 * or with the backend's own backprop kernel, per backend or as the user chose.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../../../core/errors.js';

/**
 * How the input gradient of a convolution is computed: as a forward convolution on the fast
 * kernels, or with the backend's own backprop kernel.
 */
export type InputGradientMethod = 'forward-conv' | 'backprop';

/** `auto` picks per backend (see {@link inputGradientMethod}). */
export type InputGradientChoice = InputGradientMethod | 'auto';

const CHOICES: readonly InputGradientChoice[] = ['auto', 'forward-conv', 'backprop'];

let choice: InputGradientChoice = 'auto';

/**
 * Chooses how convolution input gradients are computed, for every backend (default `auto`, or
 * the `LENS_CONV_INPUT_GRADIENT` environment variable).
 *
 * @example
 * setInputGradientMethod('backprop'); // stock tfjs kernels, e.g. to compare speed
 */
export function setInputGradientMethod(method: InputGradientChoice): void {
  if (!CHOICES.includes(method)) {
    throw new LensError('INVALID_ARGUMENT', `unknown input gradient method "${String(method)}": expected one of ${CHOICES.join(', ')}`);
  }
  choice = method;
}

/**
 * The input-gradient method used on a backend. `auto` uses the forward-conv form on wasm, where
 * XNNPACK's forward convolution is 4-12x faster than the generic Conv2DBackpropInput loop, and
 * the backprop kernels elsewhere: the cpu backend's backprop is as fast as its own forward conv,
 * and the `tensorflow` backend's (cuDNN / oneDNN) is optimised (bench/results/conv-input-gradient.json).
 * Depthwise and dilated convolutions use the forward-conv form wherever no backprop kernel can.
 *
 * @example
 * inputGradientMethod('wasm'); // 'forward-conv'
 */
export function inputGradientMethod(backendName: string = tf.getBackend()): InputGradientMethod {
  const env = process.env.LENS_CONV_INPUT_GRADIENT;
  const c = choice === 'auto' && env ? (CHOICES.includes(env as InputGradientChoice) ? (env as InputGradientChoice) : 'auto') : choice;
  if (c !== 'auto') return c;
  return backendName === 'wasm' ? 'forward-conv' : 'backprop';
}
