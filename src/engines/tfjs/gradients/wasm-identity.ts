import * as tf from '@tensorflow/tfjs-core';
import { wrapKernel } from './wrap-kernel.js';

/**
 * The tape keeps a clone of every tensor a gradient needs (a conv saves its input, filter,
 * output and bias). The cpu backend's clone shares the data; wasm's copies it, which costs a
 * backward pass time and about half its memory. tfjs tensors are immutable and wasm counts
 * references, so its clone can share the data as well.
 */
export function shareClonedDataOnWasm(): void {
  wrapKernel(tf.Identity, 'wasm', (copy) => (args) => {
    const x = args.inputs.x;
    if (x === undefined || x.dtype === 'string') return copy(args);
    (args.backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}
