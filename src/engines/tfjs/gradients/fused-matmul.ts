import * as tf from '@tensorflow/tfjs-core';
import { activationGrad, biasGradient, checkCall, scopeGradient } from './fused.js';
import type { KernelCall } from './kernel-calls.js';

/** Gradient of `tf.fused.matMul` (Dense layers): saved = [a3D, b3D, y, bias?]. */
function fusedMatMulGradient(call: KernelCall): tf.GradFunc {
  return (dy, saved) => {
    const [a, b, y, bias] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor | undefined];
    checkCall(call, [a, b]);
    const { transposeA, transposeB, activation } = call.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    const d = activationGrad(tf.reshape(dy as tf.Tensor, y.shape), y, activation) as tf.Tensor3D;
    const grads: Record<string, () => tf.Tensor> = {
      0: () => (transposeA ? tf.matMul(b, d, transposeB, true) : tf.matMul(d, b, false, !transposeB)),
      1: () => (transposeB ? tf.matMul(d, a, true, transposeA) : tf.matMul(a, d, !transposeA, false)),
    };
    if (bias) grads[2] = () => biasGradient(bias, d);
    return grads;
  };
}

export const fusedMatMulGradConfig = scopeGradient('fusedMatMul__op', tf._FusedMatMul, fusedMatMulGradient);
