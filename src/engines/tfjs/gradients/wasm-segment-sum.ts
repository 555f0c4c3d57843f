import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's backend a JS kernel needs. */
interface WasmBackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/**
 * `UnsortedSegmentSum` for wasm, which lacks it. The stock gradient of a gather (e.g. the
 * RGB->BGR reorder of caffe preprocessing) scatters with it; a plain loop over the data is all
 * it takes and costs one pass over the gradient.
 */
export function registerWasmSegmentSum(): void {
  if (!('wasm' in tf.engine().registryFactory) || tf.getKernel(tf.UnsortedSegmentSum, 'wasm') !== undefined) return;
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const segments = (attrs as { numSegments: number }).numSegments;
      const wasm = backend as unknown as WasmBackendLike;
      const ids = wasm.readSync(segmentIds.dataId) as tf.TypedArray;
      const values = wasm.readSync(x.dataId) as tf.TypedArray;
      const inner = ids.length === 0 ? 0 : values.length / ids.length;
      const out = wasm.makeOutput([segments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
      const sums = wasm.typedArrayFromHeap(out);
      sums.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const s = ids[i]!;
        if (s < 0 || s >= segments) continue;
        const from = i * inner;
        const to = s * inner;
        for (let j = 0; j < inner; j++) sums[to + j] += values[from + j]!;
      }
      return out;
    },
  });
}
