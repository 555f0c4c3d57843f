import * as tf from '@tensorflow/tfjs-core';
import { pair, type ConvGeometry, type ConvPadding, type Shape4 } from './conv-input.js';

/** Geometry of a 2-D pooling, as in its forward op (`tf.maxPool`, `tf.avgPool`). */
export interface PoolGeometry {
  filterSize: number | readonly [number, number];
  strides: number | readonly [number, number];
  pad: ConvPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** tfjs' window geometry of a pooling over an input of `inputShape`. */
export function poolInfo(inputShape: Shape4, g: PoolGeometry): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(inputShape, pair(g.filterSize, 1), pair(g.strides, 1), 1, g.pad, g.dimRoundingMode);
}

/** The pooling's window as the geometry of a convolution with the same strides and padding. */
export function poolAsConv(g: PoolGeometry): ConvGeometry {
  return { strides: g.strides, pad: g.pad, ...(g.dimRoundingMode !== undefined ? { dimRoundingMode: g.dimRoundingMode } : {}) };
}

/** The pooling geometry in a tape node's attributes. */
export function poolGeometryOf(attrs: unknown): PoolGeometry {
  const a = attrs as PoolGeometry;
  return { filterSize: a.filterSize, strides: a.strides, pad: a.pad, ...(a.dimRoundingMode != null ? { dimRoundingMode: a.dimRoundingMode } : {}) };
}
