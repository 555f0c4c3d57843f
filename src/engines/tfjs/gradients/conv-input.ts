/**
 * The input gradient of a convolution as one forward convolution on the backend's fast kernels
 * (the stride phases planned in graph/conv-geometry.ts), or with the backend's backprop kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../../../core/errors.js';
import { planInputGradientAxis, type AxisPlan } from '../../../graph/conv-geometry.js';
import { transformedFilter } from './filter-cache.js';
import { inputGradientMethod, type InputGradientMethod } from './method.js';

export type Shape4 = [number, number, number, number];

/** Padding as tfjs convolutions take it. */
export type ConvPadding = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** Geometry of a 2-D convolution, as in its forward op. */
export interface ConvGeometry {
  strides: number | readonly [number, number];
  pad: ConvPadding;
  dilations?: number | readonly [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** `v` as a [height, width] pair (`fallback` for both when absent). */
export function pair(v: number | readonly [number, number] | null | undefined, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function convInfo(inputShape: Shape4, filterShape: Shape4, g: ConvGeometry, depthwise: boolean): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    pair(g.strides, 1),
    pair(g.dilations, 1),
    g.pad,
    g.dimRoundingMode,
    depthwise,
  );
}

/** Crops dy where a plan asks for negative padding and returns the explicit padding left. */
function cropForPlan(dy: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): { dy: tf.Tensor4D; pad: tf.backend_util.ExplicitPadding } | undefined {
  const [n, oh, ow, c] = dy.shape;
  const top = Math.max(0, -ph.before);
  const bottom = Math.max(0, -ph.after);
  const left = Math.max(0, -pw.before);
  const right = Math.max(0, -pw.after);
  if (oh - top - bottom < 1 || ow - left - right < 1) return undefined;
  const cropped = top || bottom || left || right ? tf.slice(dy, [0, top, left, 0], [n, oh - top - bottom, ow - left - right, c]) : dy;
  return {
    dy: cropped,
    pad: [
      [0, 0],
      [Math.max(0, ph.before), Math.max(0, ph.after)],
      [Math.max(0, pw.before), Math.max(0, pw.after)],
      [0, 0],
    ],
  };
}

/**
 * Turns the stride-1 result z [N, qh, qw, Ph*Pw*C] (channel = (rh*Pw + rw)*C + c) into dx by
 * interleaving the phases spatially and cutting out the input window.
 */
function assemble(z: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan, channels: number): tf.Tensor4D {
  const [n, qh, qw] = z.shape;
  let full: tf.Tensor4D;
  if (ph.stride === 1 && pw.stride === 1) {
    full = z;
  } else if (ph.phases === ph.stride && pw.phases === pw.stride && ph.stride === pw.stride && tf.getBackend() !== 'wasm') {
    full = tf.depthToSpace(z, ph.stride, 'NHWC');
  } else {
    // [N*qh, qw, Ph, Pw*C] -> [N*qh, Ph, qw, Pw*C]: a rank-4 transpose, which wasm runs about 5x
    // faster than its DepthToSpace (and than the same permutation written at rank 6).
    let t: tf.Tensor = tf.transpose(tf.reshape(z, [n * qh, qw, ph.phases, pw.phases * channels]), [0, 2, 1, 3]);
    if (ph.phases < ph.stride || pw.phases < pw.stride) {
      // Phases without taps (kernel smaller than the stride) receive no gradient.
      t = tf.pad(tf.reshape(t, [n * qh, ph.phases, qw, pw.phases, channels]), [[0, 0], [0, ph.stride - ph.phases], [0, 0], [0, pw.stride - pw.phases], [0, 0]]);
    }
    full = tf.reshape(t, [n, qh * ph.stride, qw * pw.stride, channels]);
  }
  const [, fh, fw] = full.shape;
  if (ph.sliceStart === 0 && pw.sliceStart === 0 && fh === ph.size && fw === pw.size) return full;
  return tf.slice(full, [0, ph.sliceStart, pw.sliceStart, 0], [n, ph.size, pw.size, channels]);
}

/**
 * [K_h, K_w, A, B] -> [J_h, P_h, J_w, P_w, A, B]: the filter padded to whole taps, split into
 * stride phases and flipped along the taps (shared by the dense and depthwise rewrites).
 */
function flippedPhases(filter: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): tf.Tensor {
  const [kh, kw, a, b] = filter.shape;
  let w: tf.Tensor = filter;
  const padH = ph.taps * ph.phases - kh;
  const padW = pw.taps * pw.phases - kw;
  if (padH > 0 || padW > 0) w = tf.pad(w, [[0, padH], [0, padW], [0, 0], [0, 0]]);
  w = tf.reshape(w, [ph.taps, ph.phases, pw.taps, pw.phases, a, b]);
  return tf.reverse(w, [0, 2]);
}

/** [K_h, K_w, in, out] -> [J_h, J_w, out, P_h*P_w*in]: phases of the flipped, transposed filter. */
function phaseFilter(filter: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): tf.Tensor4D {
  const [, , cin, cout] = filter.shape;
  const w = tf.transpose(flippedPhases(filter, ph, pw), [0, 2, 5, 1, 3, 4]);
  return tf.reshape(w, [ph.taps, pw.taps, cout, ph.phases * pw.phases * cin]);
}

/** [K_h, K_w, C, M] -> [J_h, J_w, C*M, P_h*P_w] for a depthwise stride-1 conv over dy. */
function phaseDepthwiseFilter(filter: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): tf.Tensor4D {
  const [, , c, m] = filter.shape;
  const w = tf.transpose(flippedPhases(filter, ph, pw), [0, 2, 4, 5, 1, 3]);
  return tf.reshape(w, [ph.taps, pw.taps, c * m, ph.phases * pw.phases]);
}

/** Options of the convolution input-gradient functions. */
export interface InputGradientOptions {
  /** Defaults to {@link inputGradientMethod} for the current backend. */
  method?: InputGradientMethod;
  /**
   * An object that identifies the filter's values across calls (e.g. the model weight's
   * `dataId`); the transformed filter is then cached for it.
   */
  filterIdentity?: object;
}

/** Input gradient of a convolution (`depthwise` or dense), by `options.method` or the backend's default. */
export function inputGradient(
  depthwise: boolean,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  xShape: Shape4,
  geometry: ConvGeometry,
  options: InputGradientOptions,
): tf.Tensor4D {
  const method = options.method ?? inputGradientMethod();
  const backpropKernel = depthwise ? tf.DepthwiseConv2dNativeBackpropInput : tf.Conv2DBackpropInput;
  return tf.tidy(() => {
    const info = convInfo(xShape, filter.shape, geometry, depthwise);
    const dilated = info.dilationHeight > 1 || info.dilationWidth > 1;
    // Stock backprop kernels take no dilations; wasm lacks the depthwise one altogether.
    const backpropUsable = !dilated && tf.getKernel(backpropKernel, tf.getBackend()) !== undefined;
    if (method === 'forward-conv' || !backpropUsable) {
      const ph = planInputGradientAxis(info.filterHeight, info.strideHeight, info.dilationHeight, info.padInfo.top, xShape[1], dy.shape[1]);
      const pw = planInputGradientAxis(info.filterWidth, info.strideWidth, info.dilationWidth, info.padInfo.left, xShape[2], dy.shape[2]);
      const cropped = cropForPlan(dy, ph, pw);
      if (cropped) {
        const key = `${depthwise ? 'dw' : 'conv'}:${ph.taps},${ph.phases},${pw.taps},${pw.phases}`;
        const w = transformedFilter(options.filterIdentity, key, () =>
          depthwise ? phaseDepthwiseFilter(filter, ph, pw) : phaseFilter(filter, ph, pw),
        );
        const dilations: [number, number] = [ph.dilation, pw.dilation];
        if (!depthwise) return assemble(tf.conv2d(cropped.dy, w, 1, cropped.pad, 'NHWC', dilations), ph, pw, xShape[3]);
        const [, , c, m] = filter.shape;
        const phases = ph.phases * pw.phases;
        let z: tf.Tensor = tf.depthwiseConv2d(cropped.dy, w, 1, cropped.pad, 'NHWC', dilations);
        const [n, qh, qw] = z.shape as Shape4;
        if (m > 1) z = tf.sum(tf.reshape(z, [n, qh, qw, c, m, phases]), 4);
        if (phases > 1) z = tf.transpose(tf.reshape(z, [n, qh, qw, c, phases]), [0, 1, 2, 4, 3]);
        return assemble(tf.reshape(z, [n, qh, qw, phases * c]), ph, pw, c);
      }
    }
    if (!backpropUsable) {
      throw new LensError(
        'UNSUPPORTED',
        `${depthwise ? 'depthwise ' : ''}conv2d input gradient: the padding leaves no output over the input and ${tf.getBackend()} has no usable ${backpropKernel} kernel`,
      );
    }
    const attrs = {
      strides: pair(geometry.strides, 1),
      pad: geometry.pad,
      dimRoundingMode: geometry.dimRoundingMode,
      inputShape: xShape,
      ...(depthwise ? { dilations: pair(geometry.dilations, 1) } : { dataFormat: 'NHWC' }),
    };
    return tf.engine().runKernel(backpropKernel, { dy, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  });
}

/**
 * Gradient of a 2-D convolution's output with respect to its input, for the output gradient
 * `dy`. With the `forward-conv` method (default on wasm) it runs as one forward
 * convolution on the backend's fast kernels; strides, dilations and every padding are supported.
 *
 * @example
 * const dx = conv2dInputGradient(dy, filter, [1, 32, 32, 16], { strides: 2, pad: 'same' });
 */
export function conv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: readonly number[],
  geometry: ConvGeometry,
  options: InputGradientOptions = {},
): tf.Tensor4D {
  return inputGradient(false, dy, filter, inputShape as Shape4, geometry, options);
}

/**
 * Input gradient of a depthwise convolution (filter [K_h, K_w, C, multiplier]), as a depthwise
 * forward convolution; the wasm backend has no depthwise backprop kernel at all.
 *
 * @example
 * const dx = depthwiseConv2dInputGradient(dy, filter, [1, 32, 32, 16], { strides: 1, pad: 'same' });
 */
export function depthwiseConv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: readonly number[],
  geometry: ConvGeometry,
  options: InputGradientOptions = {},
): tf.Tensor4D {
  return inputGradient(true, dy, filter, inputShape as Shape4, geometry, options);
}
