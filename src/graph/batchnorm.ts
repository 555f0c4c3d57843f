/**
 * Batch normalisation at inference, the one place its arithmetic lives: a per-channel affine map
 * y = x * scale + offset with scale = gamma / sqrt(variance + epsilon) and
 * offset = beta - mean * scale, and the folding of such a map into the linear op before it
 * (W' = W * scale, b' = b * scale + offset). The onnxruntime compiler folds TensorFlow graphs
 * with it (engines/onnx/fold.ts) and models/optimize folds Keras layers with it.
 */

/** The inference statistics and parameters of one batch normalisation (gamma and beta optional). */
export interface BatchNormParams {
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  gamma?: ArrayLike<number>;
  beta?: ArrayLike<number>;
  epsilon: number;
}

/** y = x * scale[c] + offset[c]. */
export interface ChannelAffine {
  scale: Float32Array;
  offset: Float32Array;
}

/**
 * The per-channel affine map a batch normalisation computes at inference.
 *
 * @example
 * batchNormAffine({ mean: [1], variance: [4], gamma: [2], beta: [0.5], epsilon: 0 }); // scale [1], offset [-0.5]
 */
export function batchNormAffine(p: BatchNormParams): ChannelAffine {
  const n = p.mean.length;
  const scale = new Float32Array(n);
  const offset = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    scale[c] = (p.gamma ? p.gamma[c]! : 1) / Math.sqrt(p.variance[c]! + p.epsilon);
    offset[c] = (p.beta ? p.beta[c]! : 0) - p.mean[c]! * scale[c]!;
  }
  return { scale, offset };
}

/**
 * `second` applied after `first`: x * s1 * s2 + (o1 * s2 + o2).
 *
 * @example
 * composeAffine(biasAdd, batchNormAffine(params)); // a bias, then a batch norm, as one map
 */
export function composeAffine(first: ChannelAffine, second: ChannelAffine): ChannelAffine {
  return {
    scale: first.scale.map((s, c) => s * second.scale[c]!),
    offset: first.offset.map((o, c) => o * second.scale[c]! + second.offset[c]!),
  };
}

/**
 * Folds `affine` into a linear op whose output channel is the fastest-varying index of its
 * kernel: TensorFlow and Keras Conv2D [kh,kw,cin,cout], depthwise [kh,kw,cin,mult] (channel
 * c*mult+m) and Dense/MatMul [in,units]. Returns the new kernel and bias (a missing bias is 0).
 *
 * @example
 * const { kernel, bias } = foldAffineIntoKernel(convKernel, convBias, batchNormAffine(bn));
 */
export function foldAffineIntoKernel(kernel: ArrayLike<number>, bias: ArrayLike<number> | undefined, affine: ChannelAffine): { kernel: Float32Array; bias: Float32Array } {
  const channels = affine.scale.length;
  const folded = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) folded[i] = kernel[i]! * affine.scale[i % channels]!;
  const newBias = affine.offset.map((o, c) => (bias ? bias[c]! : 0) * affine.scale[c]! + o);
  return { kernel: folded, bias: newBias };
}
