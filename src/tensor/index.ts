/**
 * The tensor codec: TensorFlow's `TensorProto` <-> host tensors (typed arrays) <-> tfjs tensors.
 *
 * A {@link HostTensor} is the exact, backend-free form of a tensor: a dtype named like tfjs
 * (`float32`, `int64`, `string`, ...), a shape and the values in the matching typed array. It holds
 * every dtype TensorFlow Serving can send that JavaScript can represent, including those tfjs lacks
 * (`float64`, `int64`, `uint8`, ...); `hostToTensor` narrows them for tfjs, `tensorToHost` widens back.
 *
 * TensorProto decoding reads both `tensor_content` (zero-copy when aligned) and the typed `*_val`
 * fields, broadcasts a single `*_val` value to the whole shape as TensorFlow does, and decodes
 * half and bfloat16 to float32. Encoding writes `tensor_content` as a view of the typed array's
 * memory, so large float batches cost no per-element work.
 *
 * @example
 * const host = decodeTensorProto(predictRequest.inputs.x, 'input "x"');
 * const t = hostToTensor(host);                      // tf.Tensor for the graph
 * const reply = encodeTensorProto(await tensorToHost(out, 'float32'), { tensorContent: false });
 */
import { endianness } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../core/errors.js';
import { decodeMessage } from '../proto/index.js';

/** Values of each host dtype. Strings are raw bytes; bool is 0/1; half/bfloat16 are widened to float32. */
export interface HostValuesByDType {
  float32: Float32Array;
  float64: Float64Array;
  float16: Float32Array;
  bfloat16: Float32Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
  string: Uint8Array[];
  /** Interleaved real, imaginary. */
  complex64: Float32Array;
  /** Interleaved real, imaginary. */
  complex128: Float64Array;
}

/** Dtype names of host tensors (tfjs names where tfjs has the type). */
export type HostDType = keyof HostValuesByDType;

/** Any typed array a host tensor can hold. */
export type HostValues = HostValuesByDType[HostDType];

/**
 * A tensor on the host: dtype, shape and values. Narrow on `dtype` to get the values' type.
 *
 * @example
 * const t: HostTensor = { dtype: 'float32', shape: [2, 1], values: new Float32Array([1, 2]) };
 * if (t.dtype === 'int64') t.values; // BigInt64Array
 */
export type HostTensor = { [D in HostDType]: { dtype: D; shape: number[]; values: HostValuesByDType[D] } }[HostDType];

/** A TensorProto as protobufjs decodes it (snake_case, int64 as number) or as a caller builds it. */
export interface TensorProtoMessage {
  dtype?: number | string;
  tensor_shape?: { dim?: { size?: number | string; name?: string }[]; unknown_rank?: boolean } | null;
  version_number?: number;
  tensor_content?: Uint8Array;
  half_val?: ArrayLike<number>;
  float_val?: ArrayLike<number>;
  double_val?: ArrayLike<number>;
  int_val?: ArrayLike<number>;
  string_val?: Uint8Array[];
  scomplex_val?: ArrayLike<number>;
  int64_val?: ArrayLike<number | string | bigint>;
  bool_val?: ArrayLike<boolean>;
  dcomplex_val?: ArrayLike<number>;
  uint32_val?: ArrayLike<number>;
  uint64_val?: ArrayLike<number | string | bigint>;
}

/** TensorFlow `DataType` enum numbers of the host dtypes. */
const DATA_TYPE_OF: Record<HostDType, number> = {
  float32: 1,
  float64: 2,
  int32: 3,
  uint8: 4,
  int16: 5,
  int8: 6,
  string: 7,
  complex64: 8,
  int64: 9,
  bool: 10,
  bfloat16: 14,
  uint16: 17,
  complex128: 18,
  float16: 19,
  uint32: 22,
  uint64: 23,
};

/** Every DataType name by number (without the _REF variants, which are number + 100). */
const DATA_TYPE_NAMES: readonly string[] = [
  'DT_INVALID', 'DT_FLOAT', 'DT_DOUBLE', 'DT_INT32', 'DT_UINT8', 'DT_INT16', 'DT_INT8', 'DT_STRING',
  'DT_COMPLEX64', 'DT_INT64', 'DT_BOOL', 'DT_QINT8', 'DT_QUINT8', 'DT_QINT32', 'DT_BFLOAT16', 'DT_QINT16',
  'DT_QUINT16', 'DT_UINT16', 'DT_COMPLEX128', 'DT_HALF', 'DT_RESOURCE', 'DT_VARIANT', 'DT_UINT32', 'DT_UINT64',
  'DT_FLOAT8_E5M2', 'DT_FLOAT8_E4M3FN', 'DT_FLOAT8_E4M3FNUZ', 'DT_FLOAT8_E4M3B11FNUZ', 'DT_FLOAT8_E5M2FNUZ',
  'DT_INT4', 'DT_UINT4',
];

const HOST_DTYPE_OF = new Map<number, HostDType>(
  (Object.entries(DATA_TYPE_OF) as [HostDType, number][]).map(([name, num]) => [num, name]),
);

const BYTES_PER_ELEMENT: Record<Exclude<HostDType, 'string'>, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int8: 1, int16: 2, int32: 4, int64: 8,
  uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1, complex64: 8, complex128: 16,
};

type NumericValues = Exclude<HostValues, Uint8Array[]>;

/** The typed array holding each numeric host dtype (half/bfloat16 widened; complex interleaved). */
const ARRAY_OF: Record<Exclude<HostDType, 'string'>, { new (length: number): NumericValues; new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericValues }> = {
  float32: Float32Array, float64: Float64Array, float16: Float32Array, bfloat16: Float32Array, int8: Int8Array, int16: Int16Array,
  int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array, complex64: Float32Array, complex128: Float64Array,
};

if (endianness() !== 'LE') {
  // tensor_content and TensorBundles are little-endian; typed-array views would read them wrongly.
  throw new LensError('UNSUPPORTED', 'serving-lens needs a little-endian machine (tensor bytes are little-endian)');
}

/**
 * Normalises a DataType given as number (1, 101) or name ('DT_FLOAT', 'DT_FLOAT_REF') to its
 * base number: reference types (`*_REF`, number + 100) map to their value type.
 *
 * @example
 * baseDataType('DT_FLOAT_REF'); // 1
 */
export function baseDataType(dataType: number | string): number {
  let n: number;
  if (typeof dataType === 'number') n = dataType;
  else {
    const name = dataType.toUpperCase();
    const ref = name.endsWith('_REF');
    const idx = DATA_TYPE_NAMES.indexOf(ref ? name.slice(0, -4) : name);
    if (idx < 0) throw new LensError('DTYPE_UNSUPPORTED', `unknown TensorFlow DataType "${dataType}"`);
    n = ref ? idx + 100 : idx;
  }
  if (!Number.isInteger(n) || n < 0) throw new LensError('DTYPE_UNSUPPORTED', `unknown TensorFlow DataType ${dataType}`);
  return n > 100 ? n - 100 : n;
}

/**
 * The `DT_*` name of a DataType number, e.g. 1 -> 'DT_FLOAT', 101 -> 'DT_FLOAT_REF' (as TF Serving
 * prints dtypes in metadata).
 *
 * @example
 * dataTypeName(1); // 'DT_FLOAT'
 */
export function dataTypeName(dataType: number | string): string {
  if (typeof dataType === 'string') {
    baseDataType(dataType);
    return dataType.toUpperCase();
  }
  const ref = dataType > 100;
  const name = DATA_TYPE_NAMES[ref ? dataType - 100 : dataType];
  if (name === undefined) throw new LensError('DTYPE_UNSUPPORTED', `unknown TensorFlow DataType ${dataType}`);
  return ref ? `${name}_REF` : name;
}

/**
 * The host dtype of a TensorFlow DataType (number or `DT_*` name; `_REF` accepted).
 * Throws DTYPE_UNSUPPORTED for types without a host form (resource, variant, quantized, float8, int4).
 *
 * @example
 * dtypeOfDataType('DT_HALF'); // 'float16'
 */
export function dtypeOfDataType(dataType: number | string, what = 'tensor'): HostDType {
  const base = baseDataType(dataType);
  const dtype = HOST_DTYPE_OF.get(base);
  if (dtype === undefined) {
    throw new LensError('DTYPE_UNSUPPORTED', `${what}: TensorFlow dtype ${dataTypeName(base)} has no host representation`);
  }
  return dtype;
}

/**
 * The TensorFlow DataType number of a host dtype (tfjs names accepted).
 *
 * @example
 * dataTypeOfDtype('float32'); // 1 (DT_FLOAT)
 */
export function dataTypeOfDtype(dtype: HostDType): number {
  const n = DATA_TYPE_OF[dtype];
  if (n === undefined) throw new LensError('DTYPE_UNSUPPORTED', `unknown dtype "${String(dtype)}"`);
  return n;
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[], what: string): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new LensError('SHAPE_MISMATCH', `${what}: shape [${shape.join(',')}] has a dimension that is not a size >= 0`);
    }
  }
}

/** A typed array of the host dtype with `n` elements (zeros). */
export function allocateValues<D extends HostDType>(dtype: D, n: number): HostValuesByDType[D] {
  if (dtype === 'string') return Array.from({ length: n }, () => new Uint8Array(0)) as HostValuesByDType[D];
  const Values = ARRAY_OF[dtype as Exclude<HostDType, 'string'>];
  if (!Values) throw new LensError('DTYPE_UNSUPPORTED', `unknown dtype "${String(dtype)}"`);
  return new Values(dtype === 'complex64' || dtype === 'complex128' ? 2 * n : n) as HostValuesByDType[D];
}

/**
 * Builds a host tensor after checking that the values fit the shape.
 *
 * @example
 * const t = hostTensor('float32', [2], new Float32Array([1, 2]));
 */
export function hostTensor<D extends HostDType>(dtype: D, shape: readonly number[], values: HostValuesByDType[D], what = 'tensor'): HostTensor {
  checkShape(shape, what);
  const n = elementCount(shape);
  const perElement = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
  if (values.length !== n * perElement) {
    throw new LensError(
      'SHAPE_MISMATCH',
      `${what}: ${values.length / perElement} ${dtype} values do not fill shape [${shape.join(',')}] (${n} elements)`,
    );
  }
  return { dtype, shape: [...shape], values } as HostTensor;
}

// ---------------------------------------------------------------------------------------------
/**
 * The arrays end to end in one new Float32Array (the images of a batch, the rows of a result).
 *
 * @example
 * concatFloat32([Float32Array.of(1, 2), Float32Array.of(3)]); // Float32Array [1, 2, 3]
 */
export function concatFloat32(arrays: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((s, a) => s + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

// half and bfloat16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits -> number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> IEEE half bits, rounding to nearest even. */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16 bits -> number. */
export function bfloat16ToFloat(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** number -> bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function floatToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if (Number.isNaN(value)) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// TensorProto -> host

/** Shape of a TensorShapeProto as plain numbers; `what` names the tensor in errors. */
export function shapeFromProto(shape: TensorProtoMessage['tensor_shape'], what: string): number[] {
  if (!shape) return [];
  if (shape.unknown_rank) throw new LensError('SHAPE_MISMATCH', `${what}: tensor shape has unknown rank`);
  const dims = (shape.dim ?? []).map((d) => Number(d.size ?? 0));
  checkShape(dims, what);
  return dims;
}

/** A typed-array view of `bytes` when aligned, else a copy; the element type follows `dtype`. */
export function viewBytesAs<D extends Exclude<HostDType, 'string' | 'float16' | 'bfloat16'>>(
  dtype: D,
  bytes: Uint8Array,
): HostValuesByDType[D] {
  const size = BYTES_PER_ELEMENT[dtype] / (dtype === 'complex64' || dtype === 'complex128' ? 2 : 1);
  let buf = bytes;
  if (bytes.byteOffset % size !== 0) {
    // A fresh copy (Buffer#slice would be another unaligned view).
    buf = new Uint8Array(bytes.byteLength);
    buf.set(bytes);
  }
  const widened = (dtype as HostDType) === 'float16' || (dtype as HostDType) === 'bfloat16';
  const Values = ARRAY_OF[dtype];
  if (!Values || widened) throw new LensError('DTYPE_UNSUPPORTED', `cannot view bytes as ${String(dtype)}`);
  return new Values(buf.buffer, buf.byteOffset, buf.byteLength / size) as HostValuesByDType[D];
}

/**
 * Decodes raw little-endian element bytes (tensor_content, or a TensorBundle entry) into a host
 * tensor. Views the bytes without copying when they are aligned; half/bfloat16 are widened.
 *
 * @example
 * const t = hostTensorFromBytes('float32', [2], new Uint8Array(new Float32Array([1, 2]).buffer), 'x');
 */
export function hostTensorFromBytes(dtype: HostDType, shape: readonly number[], bytes: Uint8Array, what: string): HostTensor {
  if (dtype === 'string') {
    throw new LensError('TENSOR_INVALID', `${what}: string tensors have no raw-bytes form (tensor_content)`);
  }
  checkShape(shape, what);
  const n = elementCount(shape);
  const expected = n * BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength !== expected) {
    throw new LensError(
      'SHAPE_MISMATCH',
      `${what}: ${bytes.byteLength} bytes of ${dtype} content do not fill shape [${shape.join(',')}] (${n} elements need ${expected} bytes)`,
    );
  }
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const out = new Float32Array(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const widen = dtype === 'float16' ? halfToFloat : bfloat16ToFloat;
    for (let i = 0; i < n; i++) out[i] = widen(dv.getUint16(2 * i, true));
    return { dtype, shape: [...shape], values: out };
  }
  return { dtype, shape: [...shape], values: viewBytesAs(dtype, bytes) } as HostTensor;
}

/** Fills `out` from `src` by TensorFlow's rules: all values, or one value broadcast, or none (zeros). */
function fillFrom<T>(out: { length: number; [i: number]: T; fill(v: T): unknown }, src: ArrayLike<T>, n: number, what: string, field: string): void {
  if (src.length === n) {
    for (let i = 0; i < n; i++) out[i] = src[i]!;
  } else if (src.length === 1) {
    out.fill(src[0]!);
  } else if (src.length !== 0) {
    throw new LensError('SHAPE_MISMATCH', `${what}: ${src.length} values in ${field} do not match the shape's ${n} elements`);
  }
}

function toBigInt(v: number | string | bigint, what: string): bigint {
  try {
    return typeof v === 'bigint' ? v : BigInt(v);
  } catch {
    throw new LensError('TENSOR_INVALID', `${what}: ${String(v)} is not an integer`);
  }
}

/** Name of the `*_val` field that carries each host dtype. */
const VAL_FIELD: Record<HostDType, keyof TensorProtoMessage> = {
  float32: 'float_val', float64: 'double_val', float16: 'half_val', bfloat16: 'half_val', int8: 'int_val', int16: 'int_val',
  int32: 'int_val', uint8: 'int_val', uint16: 'int_val', int64: 'int64_val', uint32: 'uint32_val', uint64: 'uint64_val',
  bool: 'bool_val', string: 'string_val', complex64: 'scomplex_val', complex128: 'dcomplex_val',
};

/**
 * Bounds on what a TensorProto may make the decoder allocate beyond the bytes it carries. A server
 * passes them for request tensors; graph constants (which TensorFlow stores as one broadcast value)
 * are decoded without them.
 */
export interface TensorDecodeLimits {
  /** Most elements that one `*_val` value (or none: zeros) may be broadcast to. */
  maxBroadcastElements?: number;
  /** Most elements of a DT_STRING tensor. */
  maxStringElements?: number;
  /** Most bytes, all strings together, of a DT_STRING tensor. */
  maxStringBytes?: number;
}

/**
 * The limits `lens serve` applies to request tensors unless told otherwise: a broadcast fills at most
 * 4 Mi elements (16 MiB of float32, a batch of 27 224x224x3 images); a string tensor holds at most
 * 1 Mi strings (each costs a JS object of ~100 bytes) of 1 GiB in all.
 */
export const DEFAULT_TENSOR_LIMITS: Required<TensorDecodeLimits> = {
  maxBroadcastElements: 4 * 2 ** 20,
  maxStringElements: 2 ** 20,
  maxStringBytes: 2 ** 30,
};

/**
 * Checks, before anything is allocated, that decoding a TensorProto of `dtype` and `shape` with
 * `sent` values in its `*_val` field stays within `limits`: a tensor gets at most what the bytes it
 * carries pay for, plus a broadcast of at most `maxBroadcastElements`. Throws TENSOR_INVALID naming
 * the limit.
 *
 * @example
 * checkTensorLimits('float32', [300000000, 1], 1, DEFAULT_TENSOR_LIMITS, 'input "x"'); // throws
 */
export function checkTensorLimits(dtype: HostDType, shape: readonly number[], sent: number, limits: TensorDecodeLimits, what: string): void {
  const n = elementCount(shape);
  const perElement = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
  const maxBroadcast = limits.maxBroadcastElements ?? Infinity;
  if (sent !== n * perElement && n > maxBroadcast) {
    throw new LensError(
      'TENSOR_INVALID',
      `${what}: shape [${shape.join(',')}] claims ${n} elements but ${sent / perElement} values were sent; broadcasting is limited to ${maxBroadcast} elements (--max_broadcast_elements)`,
    );
  }
  if (dtype === 'string' && n > (limits.maxStringElements ?? Infinity)) {
    throw new LensError('TENSOR_INVALID', `${what}: ${n} strings exceed the limit of ${limits.maxStringElements} per tensor (--max_string_elements)`);
  }
}

/**
 * Decodes a TensorProto (a decoded message object, or its bytes) into a host tensor. `what`
 * names the tensor in errors (e.g. `input "x"`, `node "Const_1" attr value`).
 *
 * - `tensor_content` wins when present (TF's rule) and is viewed without copying when aligned; its
 *   length must be exactly what the shape needs;
 * - otherwise the dtype's `*_val` field: exactly one value per element, one value broadcast to
 *   the whole shape, or no value at all (zeros, as TensorFlow fills them);
 * - half/bfloat16 decode to float32 values (dtype stays 'float16'/'bfloat16'); `*_REF` dtypes
 *   decode as their value type;
 * - `limits` bound broadcasts and strings before anything is allocated (request tensors).
 *
 * @example
 * decodeTensorProto({ dtype: 1, tensor_shape: { dim: [{ size: 3 }] }, float_val: [7] }, 'x');
 * // { dtype: 'float32', shape: [3], values: Float32Array [7, 7, 7] }
 */
export function decodeTensorProto(msg: TensorProtoMessage | Uint8Array, what = 'tensor', limits: TensorDecodeLimits = {}): HostTensor {
  if (msg instanceof Uint8Array) msg = decodeMessage<TensorProtoMessage>('tensorflow.TensorProto', msg, what);
  if (msg.dtype === undefined || msg.dtype === 0 || msg.dtype === 'DT_INVALID') {
    throw new LensError('TENSOR_INVALID', `${what}: TensorProto has no dtype`);
  }
  const dtype = dtypeOfDataType(msg.dtype, what);
  const shape = shapeFromProto(msg.tensor_shape, what);
  const n = elementCount(shape);
  const content = msg.tensor_content;
  if (content && content.byteLength > 0) {
    if (dtype === 'string') throw new LensError('TENSOR_INVALID', `${what}: DT_STRING tensors cannot use tensor_content`);
    return hostTensorFromBytes(dtype, shape, content, what);
  }
  const field = VAL_FIELD[dtype];
  const src = (msg[field] ?? []) as ArrayLike<unknown>;
  checkTensorLimits(dtype, shape, src.length, limits, what);
  switch (dtype) {
    case 'string': {
      const strings = src as Uint8Array[];
      let bytes = 0;
      for (let i = 0; i < strings.length; i++) bytes += strings[i]!.byteLength;
      if (bytes > (limits.maxStringBytes ?? Infinity)) {
        throw new LensError('TENSOR_INVALID', `${what}: ${bytes} bytes of strings exceed the limit of ${limits.maxStringBytes} per tensor (--max_string_bytes)`);
      }
      if (strings.length === n) return { dtype, shape, values: Array.from(strings) };
      if (strings.length > 1) throw new LensError('SHAPE_MISMATCH', `${what}: ${strings.length} values in ${field} do not match the shape's ${n} elements`);
      // One string (or none) broadcast: every element shares the same bytes.
      return { dtype, shape, values: new Array<Uint8Array>(n).fill(strings[0] ?? new Uint8Array(0)) };
    }
    case 'int64':
    case 'uint64': {
      const out = allocateValues(dtype, n);
      const big = Array.from(src as ArrayLike<number | string | bigint>, (v) => toBigInt(v, what));
      fillFrom<bigint>(out, big, n, what, field);
      return { dtype, shape, values: out } as HostTensor;
    }
    case 'complex64':
    case 'complex128': {
      const out = allocateValues(dtype, n);
      const pairs = src as ArrayLike<number>;
      if (pairs.length === 2 * n) out.set(pairs as ArrayLike<number>);
      else if (pairs.length === 2) for (let i = 0; i < n; i++) (out[2 * i] = pairs[0]!), (out[2 * i + 1] = pairs[1]!);
      else if (pairs.length !== 0) {
        throw new LensError('SHAPE_MISMATCH', `${what}: ${pairs.length / 2} complex values in ${field} do not match the shape's ${n} elements`);
      }
      return { dtype, shape, values: out } as HostTensor;
    }
    default: {
      // bool_val holds booleans and half_val the 16 bits of each value: both become numbers first.
      const widen = dtype === 'float16' ? halfToFloat : dtype === 'bfloat16' ? bfloat16ToFloat : undefined;
      const numbers = dtype === 'bool' ? Array.from(src as ArrayLike<boolean>, (b) => (b ? 1 : 0)) : widen ? Array.from(src as ArrayLike<number>, (b) => widen(b & 0xffff)) : (src as ArrayLike<number>);
      const out = allocateValues(dtype, n);
      fillFrom(out as Float32Array, numbers, n, what, field);
      return { dtype, shape, values: out } as HostTensor;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// host -> TensorProto

export interface EncodeTensorOptions {
  /**
   * Put numeric values in `tensor_content` (raw bytes, a view of the typed array: no per-element
   * work) rather than the typed `*_val` field. Default true. TF Serving replies with `*_val`
   * unless started with --enable_serialization_as_tensor_content, so a compatible server passes false.
   * Strings always use `string_val`.
   */
  tensorContent?: boolean;
}

/** Bytes of a typed array, as a Buffer sharing its memory. */
export function bytesOf(values: ArrayBufferView): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * Encodes a host tensor as a TensorProto message object (protobufjs form, ready for
 * `protoType('tensorflow.TensorProto').encode` or for a map field of PredictRequest/Response).
 *
 * @example
 * const msg = encodeTensorProto({ dtype: 'float32', shape: [1, 224, 224, 3], values: pixels });
 * const bytes = protoType('tensorflow.TensorProto').encode(msg).finish();
 */
export function encodeTensorProto(host: HostTensor, options: EncodeTensorOptions = {}): TensorProtoMessage {
  const { dtype, shape } = host;
  hostTensor(dtype, shape, host.values as HostValuesByDType[typeof dtype]);
  const msg: TensorProtoMessage = {
    dtype: dataTypeOfDtype(dtype),
    tensor_shape: { dim: shape.map((size) => ({ size })) },
  };
  if (host.dtype === 'string') {
    msg.string_val = host.values;
    return msg;
  }
  const useContent = options.tensorContent ?? true;
  if (host.dtype === 'float16' || host.dtype === 'bfloat16') {
    const narrow = host.dtype === 'float16' ? floatToHalf : floatToBfloat16;
    const bits = new Uint16Array(host.values.length);
    for (let i = 0; i < bits.length; i++) bits[i] = narrow(host.values[i]!);
    if (useContent) msg.tensor_content = bytesOf(bits);
    else msg.half_val = Array.from(bits);
    return msg;
  }
  if (useContent) {
    msg.tensor_content = bytesOf(host.values);
    return msg;
  }
  // Plain arrays: protobufjs's fromObject/verify (used by encodeMessage and gRPC loaders) reject typed arrays.
  // protobufjs writes int64 from JS numbers: exact up to 2^53 (tensor_content is exact for all).
  (msg as Record<string, unknown>)[VAL_FIELD[host.dtype]] =
    host.dtype === 'bool'
      ? Array.from(host.values, (v) => v !== 0)
      : host.dtype === 'int64' || host.dtype === 'uint64'
        ? Array.from(host.values as ArrayLike<bigint>, (v) => Number(v))
        : Array.from(host.values as ArrayLike<number>);
  return msg;
}

// ---------------------------------------------------------------------------------------------
// host <-> tfjs

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The tfjs dtype a host dtype becomes (tfjs has float32, int32, bool, string, complex64). */
export function tfDtypeOf(dtype: HostDType): tf.DataType {
  if (dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16') return 'float32';
  if (dtype === 'complex64' || dtype === 'complex128') return 'complex64';
  return dtype === 'bool' || dtype === 'string' ? dtype : 'int32';
}

function toInt32(values: ArrayLike<number | bigint>, what: string, dtype: HostDType): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]!);
    if (v < INT32_MIN || v > INT32_MAX) {
      throw new LensError('TENSOR_INVALID', `${what}: ${dtype} value ${String(values[i])} does not fit the int32 that TensorFlow.js computes with`);
    }
    out[i] = v;
  }
  return out;
}

/**
 * A tfjs tensor holding a host tensor. Types tfjs lacks are narrowed: float64/half/bfloat16 ->
 * float32, 8/16/64-bit and unsigned integers -> int32 (values outside int32 are an error),
 * complex128 -> complex64. The caller disposes the result.
 *
 * @example
 * const t = hostToTensor({ dtype: 'int64', shape: [2], values: new BigInt64Array([1n, 2n]) }); // int32 tensor
 */
export function hostToTensor(host: HostTensor, what = 'tensor'): tf.Tensor {
  const { shape } = host;
  switch (host.dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return tf.tensor(host.values, shape, 'float32');
    case 'float64':
      return tf.tensor(Float32Array.from(host.values), shape, 'float32');
    case 'int32':
      return tf.tensor(host.values, shape, 'int32');
    case 'bool':
      return tf.tensor(host.values, shape, 'bool');
    case 'string':
      return tf.tensor(host.values, shape, 'string');
    case 'complex64':
    case 'complex128': {
      const n = host.values.length / 2;
      const re = new Float32Array(n);
      const im = new Float32Array(n);
      for (let i = 0; i < n; i++) (re[i] = host.values[2 * i]!), (im[i] = host.values[2 * i + 1]!);
      return tf.tidy(() => tf.complex(tf.tensor(re, shape), tf.tensor(im, shape)));
    }
    default:
      return tf.tensor(toInt32(host.values, what, host.dtype), shape, 'int32');
  }
}

/** Converts plain numbers to the typed array of `dtype` (with rounding rules of the type). */
function numbersAs(dtype: Exclude<HostDType, 'string'>, src: ArrayLike<number>, what: string): HostValues {
  switch (dtype) {
    case 'int64':
      return BigInt64Array.from(Array.from(src, (v) => BigInt(Math.trunc(v))));
    case 'uint64':
      return BigUint64Array.from(Array.from(src, (v) => {
        if (v < 0) throw new LensError('TENSOR_INVALID', `${what}: negative value ${v} for uint64`);
        return BigInt(Math.trunc(v));
      }));
    default: {
      const out = allocateValues(dtype, src.length) as Exclude<HostValues, Uint8Array[] | BigInt64Array | BigUint64Array>;
      if (dtype === 'bool') for (let i = 0; i < src.length; i++) out[i] = src[i] ? 1 : 0;
      else out.set(src);
      return out;
    }
  }
}

/**
 * Reads a tfjs tensor into a host tensor. `dtype` picks the host dtype (e.g. 'int64' for a
 * signature output declared DT_INT64 that tfjs computed as int32); by default the tensor's own.
 *
 * @example
 * const host = await tensorToHost(output, 'float32');
 */
export async function tensorToHost(t: tf.Tensor, dtype?: HostDType, what = 'tensor'): Promise<HostTensor> {
  const shape = [...t.shape];
  if (t.dtype === 'string') {
    if (dtype !== undefined && dtype !== 'string') {
      throw new LensError('DTYPE_UNSUPPORTED', `${what}: cannot read a string tensor as ${dtype}`);
    }
    return { dtype: 'string', shape, values: (await t.bytes()) as Uint8Array[] };
  }
  if (t.dtype === 'complex64') {
    const parts = [tf.real(t), tf.imag(t)];
    const [re, im] = await Promise.all(parts.map((p) => p.data()));
    tf.dispose(parts);
    const target = dtype === 'complex128' ? 'complex128' : 'complex64';
    const out = allocateValues(target, re!.length);
    for (let i = 0; i < re!.length; i++) (out[2 * i] = re![i]!), (out[2 * i + 1] = im![i]!);
    return { dtype: target, shape, values: out } as HostTensor;
  }
  const data = (await t.data()) as Float32Array | Int32Array | Uint8Array;
  const own: HostDType = t.dtype === 'bool' ? 'bool' : t.dtype === 'int32' ? 'int32' : 'float32';
  const target = dtype ?? own;
  if (target === 'string') throw new LensError('DTYPE_UNSUPPORTED', `${what}: cannot read a ${t.dtype} tensor as string`);
  if (target === own) return { dtype: own, shape, values: data } as HostTensor;
  return { dtype: target, shape, values: numbersAs(target, data, what) } as HostTensor;
}

/**
 * Converts plain JS values (nested arrays of numbers, booleans or strings, as in JSON) to a host
 * tensor of the given dtype, checking that the nesting is rectangular.
 *
 * @example
 * hostFromNested([[1], [2]], 'float32'); // shape [2,1]
 */
export function hostFromNested(value: unknown, dtype: HostDType, what = 'tensor'): HostTensor {
  const shape: number[] = [];
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const flat: unknown[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(v)) throw new LensError('SHAPE_MISMATCH', `${what}: nested lists are not rectangular`);
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new LensError('SHAPE_MISMATCH', `${what}: nested lists are not rectangular (expected ${shape[depth]} items at depth ${depth})`);
    }
    for (const item of v) walk(item, depth + 1);
  };
  walk(value, 0);
  if (dtype === 'string') {
    const enc = new TextEncoder();
    const values = flat.map((v) => {
      if (typeof v !== 'string') throw new LensError('TENSOR_INVALID', `${what}: expected strings, got ${JSON.stringify(v)}`);
      return enc.encode(v);
    });
    return { dtype, shape, values };
  }
  const nums = flat.map((v) => {
    if (typeof v === 'number') return v;
    if (typeof v === 'boolean' && dtype === 'bool') return v ? 1 : 0;
    throw new LensError('TENSOR_INVALID', `${what}: expected ${dtype} values, got ${JSON.stringify(v)}`);
  });
  if (dtype !== 'float32' && dtype !== 'float64' && dtype !== 'float16' && dtype !== 'bfloat16' && !dtype.startsWith('complex')) {
    for (const v of nums) {
      if (!Number.isInteger(v) && dtype !== 'bool') throw new LensError('TENSOR_INVALID', `${what}: ${v} is not an integer (${dtype})`);
    }
  }
  return { dtype, shape, values: numbersAs(dtype, nums, what) } as HostTensor;
}

/**
 * Host tensor values as nested JS arrays (for JSON): numbers, booleans for bool, strings for
 * string (UTF-8 decoded), numbers for int64 (exact up to 2^53).
 *
 * @example
 * hostToNested({ dtype: 'float32', shape: [2, 1], values: new Float32Array([1, 2]) }); // [[1], [2]]
 */
export function hostToNested(host: HostTensor): unknown {
  const dec = new TextDecoder();
  const flat: unknown[] =
    host.dtype === 'string'
      ? host.values.map((b) => dec.decode(b))
      : host.dtype === 'bool'
        ? Array.from(host.values, (v) => v !== 0)
        : host.dtype === 'int64' || host.dtype === 'uint64'
          ? Array.from(host.values as ArrayLike<bigint>, (v) => Number(v))
          : host.dtype === 'complex64' || host.dtype === 'complex128'
            ? Array.from({ length: host.values.length / 2 }, (_, i) => [host.values[2 * i]!, host.values[2 * i + 1]!])
            : Array.from(host.values as ArrayLike<number>);
  if (host.shape.length === 0) return flat[0];
  let pos = 0;
  const build = (depth: number): unknown[] => {
    const size = host.shape[depth]!;
    const out: unknown[] = new Array(size);
    for (let i = 0; i < size; i++) out[i] = depth === host.shape.length - 1 ? flat[pos++] : build(depth + 1);
    return out;
  };
  return build(0);
}
