/**
 * What the gradients of the fused ops (`tf.fused.conv2d`, `tf.fused.depthwiseConv2d`,
 * `tf.fused.matMul`) share: they are registered under op-scope names and bound to the kernel
 * call noted just before, and they undo the fused activation and bias.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../../../core/errors.js';
import { sameShapes, takeCall, type KernelCall } from './kernel-calls.js';

/** Derivative of the fused activation at the saved output (under a tape only linear is fused). */
export function activationGrad(dy: tf.Tensor, y: tf.Tensor, activation: unknown): tf.Tensor {
  if (activation === undefined || activation === null || activation === 'linear') return dy;
  if (activation === 'relu') return tf.mul(dy, tf.step(y));
  throw new LensError('UNSUPPORTED', `gradient of a fused op with activation "${String(activation)}"`);
}

/** Gradient of a broadcast bias: dy summed over the broadcast axes. */
export function biasGradient(bias: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(bias.shape, dy.shape);
  return tf.reshape(axes.length ? tf.sum(dy, axes) : dy, bias.shape);
}

/** Throws when the noted kernel call is not the one the tape node recorded. */
export function checkCall(call: KernelCall, tensors: tf.Tensor[]): void {
  if (!sameShapes(call, tensors)) {
    throw new LensError('INTERNAL', `gradient of ${call.kernel}: the noted kernel call does not match the tape node`);
  }
}

/**
 * A gradient registered under an op-scope name: the engine names a customGrad tape node after
 * the op's scope (`op({fusedConv2d_})` runs in scope `fusedConv2d__op`) and looks that name up.
 */
export function scopeGradient(scopeName: string, kernel: string, make: (call: KernelCall) => tf.GradFunc): tf.GradConfig {
  return {
    kernelName: scopeName,
    get gradFunc(): tf.GradFunc {
      const call = takeCall(kernel);
      if (call === undefined) {
        return () => {
          throw new LensError(
            'INTERNAL',
            `no attributes were noted for ${kernel} on backend ${tf.getBackend()}: call installGradients() after registering the backend`,
          );
        };
      }
      return make(call);
    },
  };
}
