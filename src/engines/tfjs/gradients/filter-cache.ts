import * as tf from '@tensorflow/tfjs-core';

/**
 * Transformed filters, kept per original filter (tensor data is immutable in tfjs and a
 * `Variable.assign` swaps in new data, so the data id identifies the values). Caching matters
 * twice on wasm: the transform is a 6-D transpose, and XNNPACK packs each new filter again.
 * A filter is cached from its second use on, so filters computed afresh on every call do not
 * pile up; cached tensors are released when the original data is garbage-collected.
 */
const filterCache = new WeakMap<object, Map<string, tf.Tensor4D>>();
const seenOnce = new WeakSet<object>();
const releaseFilters = new FinalizationRegistry<Map<string, tf.Tensor4D>>((cached) => {
  for (const t of cached.values()) {
    // The backend may be gone by the time the original is collected; nothing is left to free then.
    try {
      t.dispose();
    } catch {
      /* already released with its backend */
    }
  }
});

/** The transformed filter made by `make`, cached under `key` for the filter's `identity` (from its second use on). */
export function transformedFilter(identity: object | undefined, key: string, make: () => tf.Tensor4D): tf.Tensor4D {
  if (identity === undefined) return make();
  let cached = filterCache.get(identity);
  const hit = cached?.get(key);
  if (hit && !hit.isDisposed) return hit;
  if (!seenOnce.has(identity)) {
    seenOnce.add(identity);
    return make();
  }
  if (!cached) {
    cached = new Map();
    filterCache.set(identity, cached);
    releaseFilters.register(identity, cached);
  }
  const t = tf.keep(make());
  cached.set(key, t);
  return t;
}
