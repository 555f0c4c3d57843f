import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { protoType } from '../../src/proto/index.js';
import {
  baseDataType,
  bfloat16ToFloat,
  dataTypeName,
  checkTensorLimits,
  concatFloat32,
  decodeTensorProto,
  dtypeOfDataType,
  encodeTensorProto,
  floatToBfloat16,
  floatToHalf,
  halfToFloat,
  hostFromNested,
  hostToNested,
  hostToTensor,
  tensorToHost,
  type HostTensor,
} from '../../src/tensor/index.js';

const TensorProto = () => protoType('tensorflow.TensorProto');

/** Encodes through real protobuf bytes and decodes back, as a wire round trip. */
function wire(host: HostTensor, tensorContent: boolean): HostTensor {
  const T = TensorProto();
  const bytes = T.encode(T.fromObject(encodeTensorProto(host, { tensorContent }) as Record<string, unknown>)).finish();
  return decodeTensorProto(bytes, 'round trip');
}

function expectCode(fn: () => unknown, code: string, text?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isLensError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    if (text) expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error('expected an error');
}

const samples: HostTensor[] = [
  { dtype: 'float32', shape: [2, 2], values: new Float32Array([1.5, -2, 0, 3.25]) },
  { dtype: 'float64', shape: [3], values: new Float64Array([1e300, -0.1, 2]) },
  { dtype: 'int8', shape: [3], values: new Int8Array([-128, 0, 127]) },
  { dtype: 'int16', shape: [2], values: new Int16Array([-32768, 32767]) },
  { dtype: 'int32', shape: [2], values: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
  { dtype: 'int64', shape: [2], values: new BigInt64Array([-(2n ** 62n), 2n ** 40n + 1n]) },
  { dtype: 'uint8', shape: [1, 3], values: new Uint8Array([0, 128, 255]) },
  { dtype: 'uint16', shape: [2], values: new Uint16Array([0, 65535]) },
  { dtype: 'uint32', shape: [2], values: new Uint32Array([0, 2 ** 32 - 1]) },
  { dtype: 'uint64', shape: [2], values: new BigUint64Array([0n, 2n ** 63n]) },
  { dtype: 'bool', shape: [3], values: new Uint8Array([1, 0, 1]) },
  { dtype: 'float16', shape: [3], values: new Float32Array([1, -0.5, 65504]) },
  { dtype: 'bfloat16', shape: [2], values: new Float32Array([1, -3]) },
  { dtype: 'complex64', shape: [2], values: new Float32Array([1, 2, 3, 4]) },
  { dtype: 'string', shape: [2], values: [new TextEncoder().encode('héllo'), new Uint8Array([0, 255])] },
  { dtype: 'float32', shape: [], values: new Float32Array([42]) },
  { dtype: 'float32', shape: [0, 3], values: new Float32Array(0) },
];

describe('concatFloat32', () => {
  it('puts arrays end to end in a new array, empty ones included', () => {
    const a = Float32Array.of(1, 2);
    const joined = concatFloat32([a, new Float32Array(0), Float32Array.of(3, 4, 5)]);
    expect(Array.from(joined)).toEqual([1, 2, 3, 4, 5]);
    joined[0] = 9;
    expect(a[0]).toBe(1);
    expect(concatFloat32([]).length).toBe(0);
  });
});

describe('request tensor limits', () => {
  it('a tensor gets what its bytes pay for, plus a bounded broadcast; strings are bounded in count and bytes', () => {
    const limits = { maxBroadcastElements: 10, maxStringElements: 3, maxStringBytes: 5 };
    const shape = (n: number) => ({ dim: [{ size: n }] });
    expect(decodeTensorProto({ dtype: 1, tensor_shape: shape(10), float_val: [7] }, 'x', limits).values).toEqual(new Float32Array(10).fill(7));
    expect(decodeTensorProto({ dtype: 1, tensor_shape: shape(20), float_val: Array(20).fill(1) }, 'x', limits).values.length).toBe(20);
    expect(() => decodeTensorProto({ dtype: 1, tensor_shape: shape(11), float_val: [7] }, 'x', limits)).toThrow(
      'x: shape [11] claims 11 elements but 1 values were sent; broadcasting is limited to 10 elements (--max_broadcast_elements)',
    );
    expect(() => decodeTensorProto({ dtype: 8, tensor_shape: shape(11) }, 'z', limits)).toThrow('z: shape [11] claims 11 elements but 0 values were sent');
    expect(() => decodeTensorProto({ dtype: 1, tensor_shape: { dim: [{ size: 2 ** 40 }, { size: 2 ** 40 }] }, tensor_content: new Uint8Array(8) }, 'x', limits)).toThrow(/8 bytes of float32 content do not fill shape/);
    const s = decodeTensorProto({ dtype: 7, tensor_shape: shape(3), string_val: [new Uint8Array([1])] }, 's', limits);
    expect(s.values).toHaveLength(3);
    expect(() => decodeTensorProto({ dtype: 7, tensor_shape: shape(4), string_val: [] }, 's', limits)).toThrow('s: 4 strings exceed the limit of 3 per tensor (--max_string_elements)');
    expect(() => decodeTensorProto({ dtype: 7, tensor_shape: shape(2), string_val: [new Uint8Array(3), new Uint8Array(3)] }, 's', limits)).toThrow('s: 6 bytes of strings exceed the limit of 5 per tensor (--max_string_bytes)');
    // Without limits (graph constants) a broadcast fills what the shape says, as TensorFlow does.
    expect(decodeTensorProto({ dtype: 1, tensor_shape: shape(1000), float_val: [1] }, 'c').values.length).toBe(1000);
    expect(() => checkTensorLimits('float32', [5, 5], 25, limits, 'x')).not.toThrow();
  });
});

describe('TensorProto codec', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  for (const mode of [true, false]) {
    it(`round-trips every dtype through protobuf bytes (${mode ? 'tensor_content' : '*_val fields'})`, () => {
      for (const s of samples) {
        const back = wire(s, mode);
        expect(back.dtype).toBe(s.dtype);
        expect(back.shape).toEqual(s.shape);
        if (s.dtype === 'string') expect((back.values as Uint8Array[]).map((b) => Array.from(b))).toEqual(s.values.map((b) => Array.from(b)));
        else expect(Array.from(back.values as ArrayLike<number | bigint>)).toEqual(Array.from(s.values as ArrayLike<number | bigint>));
      }
    });
  }

  it('keeps 64-bit integers exact in tensor_content', () => {
    const big: HostTensor = { dtype: 'uint64', shape: [1], values: new BigUint64Array([2n ** 63n + 5n]) };
    expect((wire(big, true).values as BigUint64Array)[0]).toBe(2n ** 63n + 5n);
  });

  it('uses tensor_content as a view of the typed array (no copy) and decodes it as a view', () => {
    const values = new Float32Array(1024).map((_, i) => i);
    const msg = encodeTensorProto({ dtype: 'float32', shape: [1024], values });
    expect(msg.tensor_content!.buffer).toBe(values.buffer);
    const back = decodeTensorProto(msg, 'x');
    expect((back.values as Float32Array).buffer).toBe(values.buffer);
  });

  it('copies unaligned tensor_content instead of failing', () => {
    const raw = new Uint8Array(9);
    new DataView(raw.buffer).setFloat32(1, 2.5, true);
    new DataView(raw.buffer).setFloat32(5, -1, true);
    const t = decodeTensorProto({ dtype: 1, tensor_shape: { dim: [{ size: 2 }] }, tensor_content: raw.subarray(1) }, 'x');
    expect(Array.from(t.values as Float32Array)).toEqual([2.5, -1]);
  });

  it('broadcasts a single *_val value and fills zeros when no value is given', () => {
    const one = decodeTensorProto({ dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 2 }, { size: 3 }] }, float_val: [7] }, 'x');
    expect(Array.from(one.values as Float32Array)).toEqual([7, 7, 7, 7, 7, 7]);
    const none = decodeTensorProto({ dtype: 3, tensor_shape: { dim: [{ size: 2 }] } }, 'x');
    expect(Array.from(none.values as Int32Array)).toEqual([0, 0]);
    const s = decodeTensorProto({ dtype: 7, tensor_shape: { dim: [{ size: 2 }] }, string_val: [new Uint8Array([65])] }, 'x');
    expect((s.values as Uint8Array[]).map((b) => b[0])).toEqual([65, 65]);
  });

  it('rejects element-count mismatches with a message naming the tensor', () => {
    expectCode(() => decodeTensorProto({ dtype: 1, tensor_shape: { dim: [{ size: 3 }] }, float_val: [1, 2] }, 'input "x"'), 'SHAPE_MISMATCH', /input "x".*2 values in float_val.*3 elements/);
    expectCode(
      () => decodeTensorProto({ dtype: 1, tensor_shape: { dim: [{ size: 3 }] }, tensor_content: new Uint8Array(8) }, 'input "x"'),
      'SHAPE_MISMATCH',
      /input "x": 8 bytes/,
    );
    expectCode(() => decodeTensorProto({ dtype: 1, tensor_shape: { dim: [{ size: -1 }] } }, 'y'), 'SHAPE_MISMATCH', /y: shape/);
    expectCode(() => decodeTensorProto({ tensor_shape: {} }, 'z'), 'TENSOR_INVALID', /z: TensorProto has no dtype/);
    expectCode(() => decodeTensorProto({ dtype: 20 }, 'h'), 'DTYPE_UNSUPPORTED', /DT_RESOURCE/);
    expectCode(() => decodeTensorProto(new Uint8Array([0x0a, 0xff, 0xff]), 'bytes'), 'PROTO_DECODE', /bytes is not a valid tensorflow.TensorProto/);
  });

  it('maps DataType numbers and names, with _REF types as their value type', () => {
    expect(dataTypeName(1)).toBe('DT_FLOAT');
    expect(dataTypeName(101)).toBe('DT_FLOAT_REF');
    expect(baseDataType('DT_FLOAT_REF')).toBe(1);
    expect(dtypeOfDataType(101)).toBe('float32');
    expect(dtypeOfDataType('DT_INT64')).toBe('int64');
    expect(dtypeOfDataType(19)).toBe('float16');
    const t = decodeTensorProto({ dtype: 101, float_val: [3] }, 'ref');
    expect(t).toMatchObject({ dtype: 'float32', shape: [] });
  });

  it('converts half and bfloat16 exactly on representable values and rounds to nearest even', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(2 ** -24)).toBe(1);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(bfloat16ToFloat(0x3f80)).toBe(1);
    expect(floatToBfloat16(1)).toBe(0x3f80);
    expect(floatToBfloat16(-3)).toBe(0xc040);
    const t = decodeTensorProto({ dtype: 'DT_HALF', tensor_shape: { dim: [{ size: 2 }] }, half_val: [0x3c00, 0xb800] }, 'h');
    expect(Array.from(t.values as Float32Array)).toEqual([1, -0.5]);
  });

  it('moves host tensors to tfjs and back, narrowing and widening dtypes', async () => {
    const i64: HostTensor = { dtype: 'int64', shape: [2], values: new BigInt64Array([5n, -7n]) };
    const t = hostToTensor(i64);
    expect(t.dtype).toBe('int32');
    const back = await tensorToHost(t, 'int64');
    expect(Array.from(back.values as BigInt64Array)).toEqual([5n, -7n]);
    t.dispose();
    expect(() => hostToTensor({ dtype: 'int64', shape: [1], values: new BigInt64Array([2n ** 40n]) }, 'big')).toThrow(/big: int64 value 1099511627776/);
    const s = hostToTensor({ dtype: 'string', shape: [1], values: [new Uint8Array([104, 105])] });
    const sb = await tensorToHost(s);
    expect(Array.from((sb.values as Uint8Array[])[0]!)).toEqual([104, 105]);
    s.dispose();
    const d = hostToTensor({ dtype: 'float64', shape: [2], values: new Float64Array([0.5, 2]) });
    expect(d.dtype).toBe('float32');
    expect(await d.data()).toEqual(new Float32Array([0.5, 2]));
    d.dispose();
    const c = hostToTensor({ dtype: 'complex64', shape: [1], values: new Float32Array([1, 2]) });
    expect(Array.from((await tensorToHost(c)).values as Float32Array)).toEqual([1, 2]);
    c.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('builds host tensors from JSON-like nested arrays and back', () => {
    const h = hostFromNested([[1], [2]], 'float32', 'x');
    expect(h.shape).toEqual([2, 1]);
    expect(hostToNested(h)).toEqual([[1], [2]]);
    expect(hostToNested(hostFromNested(['a', 'b'], 'string'))).toEqual(['a', 'b']);
    expect(hostToNested(hostFromNested(3, 'int64'))).toBe(3);
    expect(() => hostFromNested([[1], [2, 3]], 'float32', 'x')).toThrow(/x: nested lists are not rectangular/);
    expect(() => hostFromNested([1.5], 'int32', 'x')).toThrow(/not an integer/);
  });
});
