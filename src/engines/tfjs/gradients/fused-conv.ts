import * as tf from '@tensorflow/tfjs-core';
import { convGradients, type ConvAttrs } from './conv.js';
import { activationGrad, biasGradient, checkCall, scopeGradient } from './fused.js';
import type { KernelCall } from './kernel-calls.js';

/** Gradient of `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`: saved = [filter, x, y, bias?]. */
function fusedConvGradient(depthwise: boolean, call: KernelCall): tf.GradFunc {
  return (dy, saved) => {
    const [filter, x, y, bias] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor | undefined];
    checkCall(call, [x, filter]);
    const a = call.attrs as unknown as ConvAttrs;
    const dyAct = activationGrad(tf.reshape(dy as tf.Tensor, y.shape), y, a.activation) as tf.Tensor4D;
    const conv = convGradients(depthwise, dyAct, x, filter, a, call.weightId);
    const grads: Record<string, () => tf.Tensor> = { 0: conv.x!, 1: conv.filter! };
    if (bias) grads[2] = () => biasGradient(bias, dyAct);
    return grads;
  };
}

export const fusedConv2dGradConfig = scopeGradient('fusedConv2d__op', tf.FusedConv2D, (c) => fusedConvGradient(false, c));
export const fusedDepthwiseConv2dGradConfig = scopeGradient('fusedDepthwiseConv2d__op', tf.FusedDepthwiseConv2D, (c) => fusedConvGradient(true, c));
