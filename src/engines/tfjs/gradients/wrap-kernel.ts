import * as tf from '@tensorflow/tfjs-core';

/** Kernels already wrapped here, so that installing again wraps nothing twice. */
const wrappedKernels = new WeakSet<tf.KernelConfig>();

/**
 * Replaces a backend's registered kernel by `wrap(kernelFunc)`, once: a kernel wrapped before is
 * left alone, and a backend without the kernel is skipped.
 *
 * @example
 * wrapKernel(tf.Identity, 'wasm', (run) => (args) => run(args));
 */
export function wrapKernel(kernelName: string, backendName: string, wrap: (run: tf.KernelFunc) => tf.KernelFunc): void {
  const config = tf.getKernel(kernelName, backendName);
  if (config === undefined || wrappedKernels.has(config)) return;
  const wrapped: tf.KernelConfig = { ...config, kernelFunc: wrap(config.kernelFunc) };
  wrappedKernels.add(wrapped);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel(wrapped);
}
