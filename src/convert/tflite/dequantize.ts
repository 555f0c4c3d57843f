/**
 * Real values of TFLite constants: stored values widened to numbers, then dequantized
 * (real = scale * (q - zero_point), per tensor or per channel).
 */
import { LensError } from '../../core/errors.js';
import { elementCount, halfToFloat } from '../../tensor/index.js';
import type { TfliteTensor } from './reader.js';

/** Bytes per stored value of the constant types read here. */
const VALUE_BYTES = new Map(Object.entries({ FLOAT32: 4, FLOAT16: 2, UINT8: 1, INT8: 1, INT16: 2, INT32: 4, INT64: 8 }));

/** Raw stored values of a constant tensor as numbers (no dequantization). */
function storedValues(t: TfliteTensor, source: string): Float32Array | Int32Array {
  const data = t.data!;
  const copy = new Uint8Array(data); // an aligned copy (data may be a Buffer view into the file)
  const count = elementCount(t.shape);
  const view = new DataView(copy.buffer);
  const width = VALUE_BYTES.get(t.type);
  if (width !== undefined && copy.length < count * width) {
    throw new LensError('MODEL_CORRUPT', `${source}: tensor ${t.index} (${t.name}) has ${copy.length} bytes for ${count} ${t.type} values`);
  }
  switch (t.type) {
    case 'FLOAT32':
      return new Float32Array(copy.buffer, 0, count);
    case 'FLOAT16':
      return Float32Array.from({ length: count }, (_, i) => halfToFloat(view.getUint16(2 * i, true)));
    case 'UINT8':
      return Int32Array.from(copy.subarray(0, count));
    case 'INT8':
      return Int32Array.from(new Int8Array(copy.buffer, 0, count));
    case 'INT16':
      return Int32Array.from({ length: count }, (_, i) => view.getInt16(2 * i, true));
    case 'INT32':
      return new Int32Array(copy.buffer, 0, count);
    case 'INT64':
      return Int32Array.from({ length: count }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    default:
      throw new LensError('MODEL_UNSUPPORTED', `${source}: constant tensor ${t.index} (${t.name}) has unsupported type ${t.type}`);
  }
}

/**
 * A constant's real values: scale * (q - zero_point) for quantized tensors (per channel along
 * `quantization.dimension` when several scales are given), the stored values otherwise.
 *
 * @example
 * dequantize(model.tensors[3]!, 'model.tflite'); // Float32Array of the filter's real weights
 */
export function dequantize(t: TfliteTensor, source: string): Float32Array {
  const raw = storedValues(t, source);
  const q = t.quantization;
  if (!q || t.type === 'FLOAT32' || t.type === 'FLOAT16') return raw instanceof Float32Array ? raw : Float32Array.from(raw);
  const out = new Float32Array(raw.length);
  if (q.scale.length === 1) {
    const s = q.scale[0]!;
    const z = q.zeroPoint[0] ?? 0;
    for (let i = 0; i < raw.length; i++) out[i] = s * (raw[i]! - z);
    return out;
  }
  const dim = q.dimension;
  const channels = t.shape[dim];
  if (channels !== q.scale.length) {
    throw new LensError('MODEL_CORRUPT', `${source}: tensor ${t.index} (${t.name}) has ${q.scale.length} scales for ${channels} channels on axis ${dim}`);
  }
  const inner = elementCount(t.shape.slice(dim + 1));
  for (let i = 0; i < raw.length; i++) {
    const c = Math.floor(i / inner) % channels;
    out[i] = q.scale[c]! * (raw[i]! - (q.zeroPoint[c] ?? q.zeroPoint[0] ?? 0));
  }
  return out;
}
