/** Gradients of the `Conv2D` and `DepthwiseConv2dNative` kernels: lazy, input through the fast input gradient. */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../../../core/errors.js';
import { inputGradient, pair, type ConvGeometry, type ConvPadding, type InputGradientOptions } from './conv-input.js';
import { sameShapes, takeCall } from './kernel-calls.js';

/** Attributes of a convolution kernel (plain or fused). */
export interface ConvAttrs {
  strides: number | [number, number];
  pad: ConvPadding;
  dilations?: number | [number, number] | null;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NHWC' | 'NCHW';
  activation?: string;
}

function geometryOf(a: ConvAttrs): ConvGeometry {
  return {
    strides: a.strides,
    pad: a.pad,
    ...(a.dilations != null ? { dilations: a.dilations } : {}),
    ...(a.dimRoundingMode != null ? { dimRoundingMode: a.dimRoundingMode } : {}),
  };
}

/** Filter gradients stay available (training needs them) but run only when asked for. */
function filterGradient(depthwise: boolean, x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  if (depthwise) {
    return tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, {
      strides: a.strides,
      pad: a.pad,
      dilations: pair(a.dilations, 1),
      dimRoundingMode: a.dimRoundingMode,
      filterShape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  if (pair(a.dilations, 1).some((d) => d > 1)) {
    throw new LensError('UNSUPPORTED', 'tfjs has no filter gradient for a dilated conv2d');
  }
  return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
    strides: a.strides,
    pad: a.pad,
    dataFormat: a.dataFormat ?? 'NHWC',
    dimRoundingMode: a.dimRoundingMode,
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Lazy gradients of a convolution: x through the fast input gradient, filter only on demand. */
export function convGradients(depthwise: boolean, dy: tf.Tensor4D, x: tf.Tensor4D, filter: tf.Tensor4D, a: ConvAttrs, weightId: object | undefined): Record<string, () => tf.Tensor> {
  const options: InputGradientOptions = weightId ? { filterIdentity: weightId } : {};
  const input = (): tf.Tensor => {
    if (!depthwise && a.dataFormat === 'NCHW') {
      return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...a, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    return inputGradient(depthwise, dy, filter, x.shape, geometryOf(a), options);
  };
  return { x: input, filter: () => filterGradient(depthwise, x, dy, filter.shape, a) };
}

function convGradConfig(kernel: string, depthwise: boolean): tf.GradConfig {
  return {
    kernelName: kernel,
    inputsToSave: ['x', 'filter'],
    get gradFunc(): tf.GradFunc {
      const call = takeCall(kernel);
      return (dy, saved, attrs) => {
        const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
        const weightId = call && sameShapes(call, [x, filter]) ? call.weightId : undefined;
        return convGradients(depthwise, dy as tf.Tensor4D, x, filter, attrs as unknown as ConvAttrs, weightId);
      };
    },
  };
}

export const conv2DGradConfig = convGradConfig(tf.Conv2D, false);
export const depthwiseConv2dNativeGradConfig = convGradConfig(tf.DepthwiseConv2dNative, true);
