import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { loadPixels, pixelsToTensor } from '../../src/image/index.js';
import { topK } from '../../src/core/model.js';
import { importTflite, parseTflite } from '../../src/convert/tflite/index.js';
import { imageModelFromTflite } from '../../src/models/tflite.js';
import { FIELDS } from '../../src/convert/tflite/schema.js';
import { SHARED } from '../helpers/cli.js';
import { buildTflite, bytesOf, type ModelSpec } from './tflite-builder.js';

const EXT = join(SHARED, 'models-external');
const V2 = join(EXT, 'mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite');
const V1 = join(EXT, 'mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant.tflite');
const IMAGES = ['cat.bmp', 'grace_hopper.bmp', 'parrot.jpg', 'hot_dog.jpg', 'bird.bmp'];
const tmp = mkdtempSync(join(tmpdir(), 'lens-tflite-'));

function sharedLabels(dir: string): string[] {
  return readFileSync(join(EXT, dir, 'imagenet_labels.txt'), 'utf8').replace(/\n+$/, '').split('\n');
}

async function expectLensError(p: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(isLensError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an error');
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('real TFLite files', () => {
  it('mobilenet_v2 quant: structure, quantization-derived preprocessing, embedded labels', async () => {
    const imp = await importTflite(V2);
    const counts: Record<string, number> = {};
    for (const o of imp.model.operators) counts[o.op] = (counts[o.op] ?? 0) + 1;
    expect(counts).toEqual({ CONV_2D: 36, DEPTHWISE_CONV_2D: 17, ADD: 10, AVERAGE_POOL_2D: 1, RESHAPE: 1, SOFTMAX: 1 });
    expect(imp.model.tensors).toHaveLength(174);
    expect(imp.inputShape).toEqual([224, 224, 3]);
    expect(imp.classes).toBe(1001);
    expect(imp.inputType).toBe('UINT8');
    expect(imp.inputAffine!.scale).toBeCloseTo(1 / 128, 10);
    expect(imp.inputAffine!.offset).toBeCloseTo(-1, 10);
    expect(imp.preprocessing).toBe('symmetric');
    expect(imp.softmax).toBeDefined();
    // The label list embedded in the file's metadata zip is the shared label file.
    expect(imp.labels!.file).toBe('imagenet_labels.txt');
    expect(imp.labels!.labels).toEqual(sharedLabels('mobilenet_v2_1.0_224_quant'));
  });

  it('mobilenet_v2 quant: top-1 on the five photos are the expected ImageNet classes', async () => {
    const labels = sharedLabels('mobilenet_v2_1.0_224_quant');
    const model = await imageModelFromTflite(await importTflite(V2), { name: 'mobilenet_v2', labels });
    try {
      // The lowered TensorFlow graph compiles to onnxruntime, the default engine.
      expect(model.engine.name).toBe('onnxruntime');
      expect(model.output).toBe('logit');
      expect(model.preprocessing).toBe('symmetric');
      const pixels = await Promise.all(IMAGES.map((f) => loadPixels(join(SHARED, 'images', f), { size: [224, 224], resize: 'squash' })));
      const x = pixelsToTensor(pixels);
      const logits = await model.forward(x);
      const probs = tf.softmax(logits);
      const rows = (await probs.array()) as number[][];
      const top = rows.map((r) => topK(r, 1, labels)[0]!);
      expect(top.map((t) => t.index)).toEqual([286, 653, 89, 935, 20]);
      expect(top.map((t) => t.label!.split(',')[0])).toEqual(['Egyptian cat', 'military uniform', 'macaw', 'hotdog', 'chickadee']);
      // Confidences close to the reference uint8 run (Arm NN: 0.773, 0.926, 0.996, 0.898, 0.984).
      [0.773, 0.926, 0.996, 0.898, 0.984].forEach((p, i) => expect(Math.abs(top[i]!.score - p)).toBeLessThan(0.12));
      tf.dispose([x, logits, probs]);
    } finally {
      model.dispose();
    }
  });

  it('mobilenet_v1 0.25 quant runs with its own preprocessing and labels', async () => {
    const imp = await importTflite(V1);
    const model = await imageModelFromTflite(imp, { name: 'mobilenet_v1' });
    try {
      expect(model.labels).toEqual(sharedLabels('mobilenet_v1_0.25_128_quant'));
      const pixels = await Promise.all(['parrot.jpg', 'bird.bmp'].map((f) => loadPixels(join(SHARED, 'images', f), { size: [128, 128], resize: 'squash' })));
      const x = pixelsToTensor(pixels);
      const scores = (await (await model.forward(x)).array()) as number[][];
      expect(scores.map((r) => topK(r, 1)[0]!.index)).toEqual([89, 20]);
      // The probability output (the model's own) sums to 1.
      const probsModel = await imageModelFromTflite(imp, { name: 'v1-probs', probabilities: true });
      expect(probsModel.output).toBe('probability');
      const p = await probsModel.forward(x);
      expect(tf.sum(p, 1).arraySync() as number[]).toEqual([expect.closeTo(1, 4), expect.closeTo(1, 4)]);
      tf.dispose([x, p]);
    } finally {
      model.dispose();
    }
  });

  it.each(['onnxruntime', 'tfjs'])('gives gradients through the converted graph on %s (cpu backend)', async (engine) => {
    await initBackend({ backend: 'cpu' });
    const model = await imageModelFromTflite(await importTflite(V1), { name: 'mobilenet_v1', engine });
    try {
      expect(model.engine.name).toBe(engine);
      const x = tf.randomUniform([1, 128, 128, 3], 0, 255, 'float32', 7) as tf.Tensor4D;
      const { gradients, values } = await model.gradient!(x, 89);
      const g = (await gradients.data()) as Float32Array;
      expect(gradients.shape).toEqual([1, 128, 128, 3]);
      expect(g.some((v) => v !== 0)).toBe(true);
      // Directional finite difference along the gradient agrees with |g|^2.
      const eps = 1e-2;
      const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
      const dir = tf.div(gradients, norm);
      const f = async (t: tf.Tensor4D) => ((await (await model.forward(t)).array()) as number[][])[0]![89]!;
      const fd = ((await f(tf.add(x, tf.mul(dir, eps)) as tf.Tensor4D)) - (await f(tf.sub(x, tf.mul(dir, eps)) as tf.Tensor4D))) / (2 * eps);
      // Relative, since |g| is 0.027: the float32 central difference achieves 7.5e-4 here.
      expect(Math.abs(fd - norm) / norm).toBeLessThan(2e-3);
      expect(values.shape).toEqual([1]);
      tf.dispose([x, gradients, values, dir]);
    } finally {
      model.dispose();
      await initBackend({ backend: 'wasm' });
    }
  });
});

describe('TFLite graphs built by the test', () => {
  // Quantized weights with per-channel scales, an int8 input, PAD, CONCATENATION, MEAN, MAX_POOL_2D,
  // FULLY_CONNECTED, fused activations, RESHAPE with the batch carried through, SOFTMAX.
  const convQ = Int8Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => ((i * 37) % 255) - 127);
  const convScales = [0.01, 0.02, 0.005, 0.03];
  const convBiasQ = Int32Array.from([100, -50, 0, 20]);
  const dwQ = Uint8Array.from({ length: 3 * 3 * 8 }, (_, i) => (i * 53) % 256);
  const dwScale = 0.02;
  const dwZp = 128;
  const dwBias = Float32Array.from({ length: 8 }, (_, i) => i * 0.1 - 0.3);
  const fcW = Float32Array.from({ length: 5 * 40 }, (_, i) => Math.sin(i) * 0.2);
  const fcB = Float32Array.from([0.1, -0.2, 0.3, 0, 0.05]);
  const addC = Float32Array.from([1, 0, -1, 0.5, 0]);

  function spec(inputType: 'FLOAT32' | 'INT8' | 'UINT8', inputQuant?: { scale: number[]; zeroPoint: number[] }): ModelSpec {
    return {
      tensors: [
        { name: 'input', shape: [1, 8, 8, 3], type: inputType, ...(inputQuant ? { quant: inputQuant } : {}) }, // 0
        { name: 'paddings', shape: [4, 2], type: 'INT32', data: bytesOf(Int32Array.from([0, 0, 1, 1, 1, 1, 0, 0])) }, // 1
        { name: 'padded', shape: [1, 10, 10, 3], type: 'FLOAT32' }, // 2
        { name: 'conv_w', shape: [4, 3, 3, 3], type: 'INT8', data: bytesOf(convQ), quant: { scale: convScales, zeroPoint: [0, 0, 0, 0], dimension: 0 } }, // 3
        { name: 'conv_b', shape: [4], type: 'INT32', data: bytesOf(convBiasQ), quant: { scale: convScales.map((s) => s * 0.1), zeroPoint: [0, 0, 0, 0] } }, // 4
        { name: 'conv', shape: [1, 8, 8, 4], type: 'FLOAT32' }, // 5
        { name: 'dw_w', shape: [1, 3, 3, 8], type: 'UINT8', data: dwQ, quant: { scale: [dwScale], zeroPoint: [dwZp] } }, // 6
        { name: 'dw_b', shape: [8], type: 'FLOAT32', data: bytesOf(dwBias) }, // 7
        { name: 'dw', shape: [1, 4, 4, 8], type: 'FLOAT32' }, // 8
        { name: 'pool', shape: [1, 2, 2, 8], type: 'FLOAT32' }, // 9
        { name: 'mean', shape: [1, 8], type: 'FLOAT32' }, // 10
        { name: 'axes', shape: [2], type: 'INT32', data: bytesOf(Int32Array.from([1, 2])) }, // 11
        { name: 'shape', shape: [2], type: 'INT32', data: bytesOf(Int32Array.from([1, 32])) }, // 12
        { name: 'flat', shape: [1, 32], type: 'FLOAT32' }, // 13
        { name: 'concat', shape: [1, 40], type: 'FLOAT32' }, // 14
        { name: 'fc_w', shape: [5, 40], type: 'FLOAT32', data: bytesOf(fcW) }, // 15
        { name: 'fc_b', shape: [5], type: 'FLOAT32', data: bytesOf(fcB) }, // 16
        { name: 'fc', shape: [1, 5], type: 'FLOAT32' }, // 17
        { name: 'add_c', shape: [5], type: 'FLOAT32', data: bytesOf(addC) }, // 18
        { name: 'logits', shape: [1, 5], type: 'FLOAT32' }, // 19
        { name: 'probs', shape: [1, 5], type: 'FLOAT32' }, // 20
      ],
      ops: [
        { op: 'PAD', inputs: [0, 1], outputs: [2] },
        { op: 'CONV_2D', inputs: [2, 3, 4], outputs: [5], options: [[FIELDS.Conv2DOptions.padding, 'int8', 1], [FIELDS.Conv2DOptions.strideW, 'int32', 1], [FIELDS.Conv2DOptions.strideH, 'int32', 1], [FIELDS.Conv2DOptions.fusedActivation, 'int8', 3]] },
        { op: 'DEPTHWISE_CONV_2D', inputs: [5, 6, 7], outputs: [8], options: [[FIELDS.DepthwiseConv2DOptions.padding, 'int8', 0], [FIELDS.DepthwiseConv2DOptions.strideW, 'int32', 2], [FIELDS.DepthwiseConv2DOptions.strideH, 'int32', 2], [FIELDS.DepthwiseConv2DOptions.depthMultiplier, 'int32', 2], [FIELDS.DepthwiseConv2DOptions.fusedActivation, 'int8', 1]] },
        { op: 'MAX_POOL_2D', inputs: [8], outputs: [9], options: [[FIELDS.Pool2DOptions.padding, 'int8', 1], [FIELDS.Pool2DOptions.strideW, 'int32', 2], [FIELDS.Pool2DOptions.strideH, 'int32', 2], [FIELDS.Pool2DOptions.filterW, 'int32', 2], [FIELDS.Pool2DOptions.filterH, 'int32', 2]] },
        { op: 'MEAN', inputs: [8, 11], outputs: [10], options: [[FIELDS.ReducerOptions.keepDims, 'bool', 0]] },
        { op: 'RESHAPE', inputs: [9, 12], outputs: [13] },
        { op: 'CONCATENATION', inputs: [10, 13], outputs: [14], options: [[FIELDS.ConcatenationOptions.axis, 'int32', -1]] },
        { op: 'FULLY_CONNECTED', inputs: [14, 15, 16], outputs: [17], options: [[FIELDS.FullyConnectedOptions.fusedActivation, 'int8', 0]] },
        { op: 'ADD', inputs: [17, 18], outputs: [19], options: [[FIELDS.ArithmeticOptions.fusedActivation, 'int8', 0]] },
        { op: 'SOFTMAX', inputs: [19], outputs: [20], options: [[FIELDS.SoftmaxOptions.beta, 'float32', 1]] },
      ],
      inputs: [0],
      outputs: [20],
    };
  }

  /** The same network written directly with tfjs ops and weights dequantized by hand. */
  function reference(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const convReal = Float32Array.from(convQ, (q, i) => convScales[Math.floor(i / 27)]! * q);
      const convBias = Float32Array.from(convBiasQ, (q, i) => convScales[i]! * 0.1 * q);
      const w = tf.transpose(tf.tensor4d(convReal, [4, 3, 3, 3]), [1, 2, 3, 0]) as tf.Tensor4D;
      let h: tf.Tensor4D = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
      h = tf.relu6(tf.add(tf.conv2d(h, w, 1, 'valid'), convBias)) as tf.Tensor4D;
      const dw = tf.tensor4d(Float32Array.from(dwQ, (q) => dwScale * (q - dwZp)), [3, 3, 4, 2]);
      h = tf.relu(tf.add(tf.depthwiseConv2d(h, dw, 2, 'same'), dwBias)) as tf.Tensor4D;
      const pooled = tf.reshape(tf.maxPool(h, 2, 2, 'valid'), [-1, 32]);
      const mean = tf.mean(h, [1, 2]);
      const feats = tf.concat([mean, pooled], 1);
      const fc = tf.add(tf.matMul(feats, tf.tensor2d(fcW, [5, 40]), false, true), fcB);
      return tf.add(fc, addC) as tf.Tensor2D;
    });
  }

  it('dequantizes per channel, folds activations and matches a hand-written tfjs network (batch of 3)', async () => {
    const path = join(tmp, 'ops.tflite');
    writeFileSync(path, buildTflite(spec('FLOAT32')));
    const imp = await importTflite(path);
    for (const engine of ['onnxruntime', 'tfjs']) {
      expect(imp.preprocessing).toBeUndefined();
      expect(imp.softmax?.logits).toBe(19);
      const model = await imageModelFromTflite(imp, { name: 'ops', engine });
      const probsModel = await imageModelFromTflite(imp, { name: 'ops-p', engine, probabilities: true });
      expect(model.engine.name).toBe(engine);
      expect(model.preprocessing).toBe('raw');
      expect(model.output).toBe('logit');
      const x = tf.randomUniform([3, 8, 8, 3], -2, 2, 'float32', 3) as tf.Tensor4D;
      const got = await model.forward(x);
      const want = reference(x);
      expect(got.shape).toEqual([3, 5]);
      expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]).toBeLessThan(1e-4);
      const probs = await probsModel.forward(x);
      expect(probsModel.output).toBe('probability');
      expect(tf.max(tf.abs(tf.sub(probs, tf.softmax(want)))).dataSync()[0]).toBeLessThan(1e-5);
      tf.dispose([x, got, want, probs]);
      model.dispose();
      probsModel.dispose();
    }
  });

  it('derives preprocessing from the input quantization: preset when it matches, exact affine otherwise', async () => {
    // uint8 with scale 1/255 and zero point 0 is the "unit" preset.
    const unitPath = join(tmp, 'unit.tflite');
    writeFileSync(unitPath, buildTflite(spec('UINT8', { scale: [1 / 255], zeroPoint: [0] })));
    const unit = await importTflite(unitPath);
    expect(unit.preprocessing).toBe('unit');
    // int8 with scale 0.5 and zero point -1: the input receives p - 128, so real = 0.5 * (p - 127); no preset.
    const oddPath = join(tmp, 'odd.tflite');
    writeFileSync(oddPath, buildTflite(spec('INT8', { scale: [0.5], zeroPoint: [-1] })));
    const odd = await importTflite(oddPath);
    for (const engine of ['onnxruntime', 'tfjs']) {
      expect(odd.preprocessing).toBeUndefined();
      expect(odd.inputAffine).toEqual({ scale: 0.5, offset: -63.5 });
      const model = await imageModelFromTflite(odd, { name: 'odd', engine });
      expect(model.engine.name).toBe(engine);
      expect(model.preprocessing).toBe('raw');
      const pixels = tf.randomUniform([2, 8, 8, 3], 0, 255, 'float32', 5) as tf.Tensor4D;
      const got = await model.forward(pixels);
      const want = reference(tf.sub(tf.mul(pixels, 0.5), 63.5) as tf.Tensor4D);
      expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]).toBeLessThan(1e-3);
      // An explicit preprocessing replaces the quantization's map.
      const explicit = await imageModelFromTflite(odd, { name: 'odd', preprocessing: 'unit', engine });
      const got2 = await explicit.forward(pixels);
      const want2 = reference(tf.div(pixels, 255) as tf.Tensor4D);
      expect(tf.max(tf.abs(tf.sub(got2, want2))).dataSync()[0]).toBeLessThan(1e-4);
      tf.dispose([pixels, got, want, got2, want2]);
      model.dispose();
      explicit.dispose();
    }
  });

  it('names unsupported operators', async () => {
    const s = spec('FLOAT32');
    s.ops.splice(9, 1, { op: 'LOG_SOFTMAX', inputs: [19], outputs: [20] });
    s.ops.push({ op: { custom: 'TFLite_Detection_PostProcess' }, inputs: [20], outputs: [20] });
    const path = join(tmp, 'unsupported.tflite');
    writeFileSync(path, buildTflite(s));
    const imp = await importTflite(path);
    await expectLensError(imageModelFromTflite(imp, { name: 'unsupported' }), 'UNSUPPORTED_OP', /LOG_SOFTMAX \(operator 9\).*CUSTOM:TFLite_Detection_PostProcess \(operator 10\)/);
  });

  it('rejects garbage, truncated and missing files with specific errors', async () => {
    const garbage = join(tmp, 'garbage.tflite');
    writeFileSync(garbage, Buffer.from('this is not a flatbuffer at all, just text'));
    await expectLensError(importTflite(garbage), 'MODEL_CORRUPT', /not a TFLite model: expected file identifier "TFL3"/);
    const truncated = join(tmp, 'truncated.tflite');
    writeFileSync(truncated, readFileSync(V1).subarray(0, 200_000));
    await expectLensError(importTflite(truncated), 'MODEL_CORRUPT', /truncated\.tflite is not a valid TFLite flatbuffer: .*(past the end|outside)/);
    const broken = Buffer.from(buildTflite(spec('FLOAT32')));
    broken.writeUInt32LE(broken.length + 100, 0); // root offset past the end
    const badRoot = join(tmp, 'badroot.tflite');
    writeFileSync(badRoot, broken);
    await expectLensError(importTflite(badRoot), 'MODEL_CORRUPT', /root table offset/);
    await expectLensError(importTflite(join(tmp, 'missing.tflite')), 'NOT_FOUND', /cannot read TFLite model/);
    expect(() => parseTflite(new Uint8Array(4), 'tiny')).toThrow(/too short/);
  });
});
