import * as tf from '@tensorflow/tfjs-core';
import { wrapKernel } from './wrap-kernel.js';

/**
 * Whether the batch-norm call that just ran had a scale. `tf.batchNorm` hands the kernel a
 * missing scale or offset (Keras `scale=False` / `center=False`) as an undefined input, and stock
 * tfjs then fails twice: saving the undefined scale for the gradient, and reading `.id` of the
 * undefined input when it walks the tape. The wrapped kernel (see dropMissingBatchNormInputs)
 * deletes missing inputs from the inputs object, which is the one the tape node keeps, and notes
 * here whether a scale was given; the engine reads `inputsToSave` right after the kernel ran.
 */
let batchNormScaled: boolean | undefined;

export /** dy/dx of batch norm is one broadcast multiply; the other inputs' gradients run only on demand. */
const fusedBatchNormGradConfig: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  get inputsToSave(): string[] {
    const scaled = batchNormScaled ?? true;
    batchNormScaled = undefined;
    return scaled ? ['x', 'mean', 'variance', 'scale'] : ['x', 'mean', 'variance'];
  },
  gradFunc: (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    const d = dy as tf.Tensor;
    const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const axes = tf.broadcast_util.getReductionAxes(mean.shape, x.shape);
    const invStd = () => tf.rsqrt(tf.add(variance, eps));
    const reduce = (t: tf.Tensor) => tf.reshape(axes.length ? tf.sum(t, axes) : t, mean.shape);
    const scaled = () => (scale ? tf.mul(invStd(), scale) : invStd());
    return {
      x: () => tf.mul(d, scaled()),
      mean: () => reduce(tf.mul(d, tf.neg(scaled()))),
      variance: () => reduce(tf.mul(tf.mul(d, tf.sub(x, mean)), tf.mul(tf.pow(invStd(), 3), scale ? tf.mul(scale, -0.5) : -0.5))),
      scale: () => reduce(tf.mul(d, tf.mul(tf.sub(x, mean), invStd()))),
      offset: () => reduce(d),
    };
  },
};

/** Wraps a backend's FusedBatchNorm so that missing scale / offset inputs leave the tape (see batchNormScaled). */
export function dropMissingBatchNormInputs(backendName: string): void {
  wrapKernel(tf.FusedBatchNorm, backendName, (run) => (args) => {
    const out = run(args);
    const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
    for (const name of Object.keys(inputs)) {
      if (inputs[name] == null) delete inputs[name];
    }
    batchNormScaled = inputs.scale !== undefined;
    return out;
  });
}
