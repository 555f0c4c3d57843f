import * as tf from '@tensorflow/tfjs-core';
import { inputGradient, type Shape4 } from './conv-input.js';
import { poolAsConv, poolGeometryOf, poolInfo, type PoolGeometry } from './pool-geometry.js';

/** Per output position along one axis: how many window positions fall inside the input. */
function inside(out: number, stride: number, before: number, kernel: number, size: number): number[] {
  return Array.from({ length: out }, (_, o) => Math.min(size, o * stride - before + kernel) - Math.max(0, o * stride - before));
}

/**
 * Input gradient of an average pooling whose forward pass divides each window by the pixels it
 * holds inside the input (TensorFlow's and Keras' semantics, and what tfjs computes forward).
 * Stock tfjs' AvgPoolGrad divides by the whole window instead, which is wrong at 'same' borders.
 * Here dy is divided by each window's own count and spread back over the window with a
 * transposed depthwise convolution of ones, which runs on the forward conv kernels on wasm.
 *
 * @example
 * const dx = avgPoolInputGradient(dy, [1, 7, 7, 64], { filterSize: 3, strides: 2, pad: 'same' });
 */
export function avgPoolInputGradient(dy: tf.Tensor4D, inputShape: readonly number[], geometry: PoolGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const info = poolInfo(inputShape as Shape4, geometry);
    const rows = inside(info.outHeight, info.strideHeight, info.padInfo.top, info.filterHeight, info.inHeight);
    const cols = inside(info.outWidth, info.strideWidth, info.padInfo.left, info.filterWidth, info.inWidth);
    // A window with no pixel inside (only with explicit padding) has no input to pass its gradient to.
    const perWindow = Float32Array.from({ length: rows.length * cols.length }, (_, i) => {
      const count = rows[Math.floor(i / cols.length)]! * cols[i % cols.length]!;
      return count > 0 ? 1 / count : 0;
    });
    const scaled = tf.mul(dy, tf.tensor4d(perWindow, [1, rows.length, cols.length, 1]));
    const ones = tf.ones([info.filterHeight, info.filterWidth, info.inChannels, 1]) as tf.Tensor4D;
    return inputGradient(true, scaled as tf.Tensor4D, ones, inputShape as Shape4, poolAsConv(geometry), {});
  });
}

/** The input is saved for its shape (the tape's clone shares its data). */
export const avgPoolGradConfig: tf.GradConfig = {
  kernelName: tf.AvgPool,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor4D];
    return { x: () => avgPoolInputGradient(dy as tf.Tensor4D, x.shape, poolGeometryOf(attrs)) };
  },
};
