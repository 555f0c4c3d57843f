/**
 * Export round trips: each kind of model serving-lens loads is exported, read back with the
 * project's SavedModel loader, and must give the source model's outputs: the float signature
 * within 1e-5, the JPEG signature within decoding/float differences (the reference decodes the
 * same JPEG with sharp and resizes as TensorFlow's ResizeBilinear with half-pixel centers does).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesForDecodeJpeg, sniffImageFormat } from '../../src/image/format.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { exportSavedModel } from '../../src/export/export.js';
import { encodeJpeg, loadPixels, pixelsToTensor } from '../../src/image/index.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import type { ImageModel } from '../../src/core/model.js';
import { preprocess } from '../../src/core/preprocess.js';
import { buildShapesResNet } from '../../src/models/shapes-resnet.js';
import { convertSavedModel } from '../../src/convert/savedmodel.js';
import { loadSavedModel, type LoadedSavedModel } from '../../src/engines/tfjs/savedmodel.js';
import type { HostTensor } from '../../src/tensor/index.js';
import { SHARED } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lens-export-rt-'));
const EXT = join(SHARED, 'models-external');
const IMAGES = ['cat.bmp', 'parrot.jpg', 'hot_dog.jpg'].map((f) => join(SHARED, 'images', f));

beforeAll(async () => {
  await initBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function photos(size: readonly [number, number, number]): Promise<tf.Tensor4D> {
  return pixelsToTensor(await Promise.all(IMAGES.map((p) => loadPixels(p, { size: [size[0], size[1]], resize: 'squash', channels: size[2] === 1 ? 1 : 3 }))));
}

/** The source model's probabilities for pixels. */
async function probabilities(model: ImageModel, pixels: tf.Tensor4D): Promise<Float32Array> {
  const scores = await model.forward(pixels);
  const p = model.output === 'logit' ? tf.softmax(scores) : scores;
  const out = (await p.data()) as Float32Array;
  tf.dispose([scores, p]);
  return Float32Array.from(out);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function argmaxRows(values: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length / classes; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (values[r * classes + c]! > values[r * classes + best]!) best = c;
    out.push(best);
  }
  return out;
}

async function floatSignature(loaded: LoadedSavedModel, pixels: tf.Tensor4D, signature = 'predict_pixels'): Promise<Record<string, HostTensor>> {
  return loaded.predict({ images: pixels }, { signature });
}

/** Exports, loads and checks the float signature against the source; returns the loaded export. */
async function roundTrip(model: LoadedImageModel | ImageModel, source: Parameters<typeof exportSavedModel>[0], base: string): Promise<LoadedSavedModel> {
  const r = await exportSavedModel(source, join(tmp, base), { version: 1 });
  const loaded = await loadSavedModel(r.dir);
  const pixels = await photos(model.inputShape);
  const expected = await probabilities(model, pixels);
  const out = await floatSignature(loaded, pixels);
  expect(maxDiff(out.probabilities!.values as Float32Array, expected)).toBeLessThan(1e-5);
  const top1 = argmaxRows(expected, model.classes);
  const classes = Array.from(out.class_ids!.values as BigInt64Array, Number);
  expect(out.class_ids!.shape).toEqual([IMAGES.length, Math.min(5, model.classes)]);
  expect(classes.filter((_, i) => i % out.class_ids!.shape[1]! === 0)).toEqual(top1);
  // The names of the same classes, gathered in-graph from the labels the model carries (else the indices as text).
  const names = (out.classes!.values as Uint8Array[]).map((b) => new TextDecoder().decode(b));
  expect(out.classes!.dtype).toBe('string');
  expect(names).toEqual(classes.map((c) => model.labels?.[c] ?? String(c)));
  pixels.dispose();
  return loaded;
}

describe('LayersModel export (the bundled model architecture)', () => {
  let model: tfl.LayersModel;
  let loaded: LoadedSavedModel;
  // As loadImageModel('default') wraps it: pixels / 255 in-graph.
  const source = () => ({ name: 'shapes', structure: { kind: 'layers' as const, model }, preprocessing: 'unit' as const });
  const forward = (x: tf.Tensor4D) => tf.tidy(() => tf.softmax(model.predict(tf.div(x, 255)) as tf.Tensor));

  beforeAll(async () => {
    await initBackend();
    model = buildShapesResNet({ seed: 11 });
    const r = await exportSavedModel(source(), join(tmp, 'shapes'), { version: 3, topK: 2 });
    expect(r.signatures).toEqual(['serving_default', 'predict', 'predict_pixels']);
    loaded = await loadSavedModel(r.dir);
  });

  it('float signature = source model within 1e-5, classes = its top 2', async () => {
    const x = tf.randomUniform([4, 64, 64, 3], 0, 255, 'float32', 7) as tf.Tensor4D;
    const expected = (await forward(x).data()) as Float32Array;
    const out = await floatSignature(loaded, x);
    expect(out.probabilities!.shape).toEqual([4, 5]);
    expect(maxDiff(out.probabilities!.values as Float32Array, expected)).toBeLessThan(1e-5);
    const classes = Array.from(out.class_ids!.values as BigInt64Array, Number);
    expect(out.class_ids!.dtype).toBe('int64');
    for (let i = 0; i < 4; i++) {
      const row = Array.from(expected.subarray(i * 5, i * 5 + 5));
      const order = row.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0]).map(([, c]) => c);
      expect(classes.slice(i * 2, i * 2 + 2)).toEqual(order.slice(0, 2));
    }
  });

  it('JPEG signature at the model size = source model on the same decoded JPEG (serving_default and predict)', async () => {
    const pixels = await photos([64, 64, 3]);
    const data = (await pixels.data()) as Float32Array;
    const per = 64 * 64 * 3;
    const jpegs = await Promise.all(IMAGES.map((_, i) => encodeJpeg({ data: data.subarray(i * per, (i + 1) * per), height: 64, width: 64, channels: 3 }, 90)));
    const decoded = await Promise.all(jpegs.map((j) => sharp(j).removeAlpha().raw().toBuffer()));
    const ref = tf.tensor4d(Float32Array.from(Buffer.concat(decoded)), [IMAGES.length, 64, 64, 3]);
    const expected = (await forward(ref).data()) as Float32Array;
    for (const signature of ['serving_default', 'predict']) {
      const out = await loaded.predict({ image_bytes: { dtype: 'string', shape: [jpegs.length], values: jpegs } }, { signature });
      expect(maxDiff(out.probabilities!.values as Float32Array, expected)).toBeLessThan(1e-4);
    }
    tf.dispose([pixels, ref]);
  });

  it('JPEG signature resizes any size in-graph as ResizeBilinear (half-pixel centers) does', async () => {
    const big = readFileSync(IMAGES[1]!);
    const raw = await sharp(big).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const ref = tf.tidy(() =>
      tf.image.resizeBilinear(tf.tensor4d(Float32Array.from(raw.data), [1, raw.info.height, raw.info.width, 3]), [64, 64], false, true),
    );
    const expected = (await forward(ref).data()) as Float32Array;
    const out = await loaded.predict({ image_bytes: { dtype: 'string', shape: [1], values: [big] } });
    expect(maxDiff(out.probabilities!.values as Float32Array, expected)).toBeLessThan(1e-4);
    ref.dispose();
  });

  it('loads back as an ImageModel (lens.json points at predict_pixels and probabilities), with gradients', async () => {
    const again = await loadImageModel(join(tmp, 'shapes/3'));
    expect([again.inputShape, again.classes, again.output, again.preprocessing]).toEqual([[64, 64, 3], 5, 'probability', 'raw']);
    const x = tf.randomUniform([2, 64, 64, 3], 0, 255, 'float32', 9) as tf.Tensor4D;
    expect(maxDiff(await probabilities(again, x), (await forward(x).data()) as Float32Array)).toBeLessThan(1e-5);
    const { gradients } = await again.gradient!(x, 1);
    expect(gradients.shape).toEqual([2, 64, 64, 3]);
    tf.dispose([x, gradients]);
    again.dispose();
  });

  it('a bad image in the batch fails the request with the decoder\'s error', async () => {
    const e = await loaded.predict({ image_bytes: { dtype: 'string', shape: [1], values: [new TextEncoder().encode('no jpeg')] } }).catch((err: unknown) => err);
    expect(isLensError(e)).toBe(true);
    expect((e as Error).message).toMatch(/unknown image file format/);
  });

  it('--input float and --input jpeg write only their signatures', async () => {
    const f = await exportSavedModel(source(), join(tmp, 'shapes-float'), { version: 1, input: 'float' });
    expect(f.signatures).toEqual(['serving_default', 'predict_pixels']);
    expect(f.opCounts.DecodeJpeg).toBeUndefined();
    const floatModel = await loadSavedModel(f.dir);
    const x = tf.randomUniform([1, 64, 64, 3], 0, 255) as tf.Tensor4D;
    const out = await floatModel.predict({ images: x });
    expect(maxDiff(out.probabilities!.values as Float32Array, (await forward(x).data()) as Float32Array)).toBeLessThan(1e-5);
    floatModel.dispose();
    const j = await exportSavedModel(source(), join(tmp, 'shapes-jpeg'), { version: 1, input: 'jpeg' });
    expect(j.signatures).toEqual(['serving_default', 'predict']);
    const meta = JSON.parse(readFileSync(join(j.dir, 'lens.json'), 'utf8')) as { signature?: string; inputShape: number[] };
    expect(meta.signature).toBeUndefined();
    expect(meta.inputShape).toEqual([64, 64, 3]);
  });

  it('puts every preprocessing preset in-graph (caffe: RGB->BGR and means; torch: per-channel scale)', async () => {
    const x = tf.randomUniform([2, 64, 64, 3], 0, 255, 'float32', 3) as tf.Tensor4D;
    for (const preprocessing of ['caffe', 'torch', 'symmetric'] as const) {
      const r = await exportSavedModel({ name: 'p', structure: { kind: 'layers', model }, preprocessing }, join(tmp, `pre-${preprocessing}`), { version: 1, input: 'float' });
      const m = await loadSavedModel(r.dir);
      const out = await m.predict({ images: x });
      const expected = (await tf.tidy(() => tf.softmax(model.predict(preprocess(x, preprocessing)) as tf.Tensor)).data()) as Float32Array;
      expect(maxDiff(out.probabilities!.values as Float32Array, expected), preprocessing).toBeLessThan(1e-5);
      m.dispose();
    }
    x.dispose();
  });

  it('refuses to overwrite a version unless forced, and leaves no temporary folders', async () => {
    const e = await exportSavedModel(source(), join(tmp, 'shapes'), { version: 3 }).catch((err: unknown) => err);
    expect(isLensError(e, 'INVALID_ARGUMENT')).toBe(true);
    expect((e as Error).message).toMatch(/3 already exists.*--force/);
    const r = await exportSavedModel(source(), join(tmp, 'shapes'), { version: 3, topK: 4, force: true });
    expect(r.topK).toBe(4);
    expect(readdirSync(join(tmp, 'shapes'))).toEqual(['3']);
  });
});

describe('real models', () => {
  it('Keras HDF5 ResNet-8 (CIFAR-10)', async () => {
    const model = await loadImageModel(join(EXT, 'mlcommons-resnet8-cifar10/pretrainedResnet.h5'));
    (await roundTrip(model, model, 'resnet8')).dispose();
    model.dispose();
  });

  it('quantized TFLite MobileNet V1 (input quantization folded into the preprocessing)', async () => {
    const model = await loadImageModel(join(EXT, 'mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant.tflite'));
    const loaded = await roundTrip(model, model, 'mobilenet');
    expect(loaded.signatures.find((s) => s.name === 'predict_pixels')?.outputs.find((o) => o.alias === 'probabilities')?.shape).toEqual([-1, 1001]);
    loaded.dispose();
    model.dispose();
  });

  it('quantized MobileNet V2: the original photo files through the JPEG signature give their ImageNet classes', async () => {
    const model = await loadImageModel(join(EXT, 'mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite'));
    const r = await exportSavedModel(model, join(tmp, 'mobilenet-v2'), { version: 1, input: 'jpeg' });
    const loaded = await loadSavedModel(r.dir);
    // Expected classes from ../shared/images/SOURCES.md (1001-class indices). DecodeJpeg reads the
    // JPEGs as they are and the BMPs as lossless PNGs (TensorFlow's DecodeJpeg decodes PNG, not BMP).
    const expected: [string, number][] = [['cat.bmp', 286], ['grace_hopper.bmp', 653], ['parrot.jpg', 89], ['hot_dog.jpg', 935], ['bird.bmp', 20]];
    const bytes = await Promise.all(expected.map(([f]) => bytesForDecodeJpeg(readFileSync(join(SHARED, 'images', f)), f)));
    expect(bytes.map((b) => sniffImageFormat(b))).toEqual(['png', 'png', 'jpeg', 'jpeg', 'png']);
    const out = await loaded.predict({ image_bytes: { dtype: 'string', shape: [bytes.length], values: bytes } });
    const classes = Array.from(out.class_ids!.values as BigInt64Array, Number);
    expect(expected.map((_, i) => classes[i * 5])).toEqual(expected.map(([, c]) => c));
    const top = (out.classes!.values as Uint8Array[]).filter((_, i) => i % 5 === 0).map((b) => new TextDecoder().decode(b));
    expect(top).toEqual(expected.map(([, c]) => model.labels?.[c] ?? String(c)));
    loaded.dispose();
    model.dispose();
  });

  it('float TFLite VWW person detector', async () => {
    const model = await loadImageModel(join(EXT, 'mlcommons-vww-96/vww_96_float.tflite'));
    (await roundTrip(model, model, 'vww')).dispose();
    model.dispose();
  });

  it('a real TF1 SavedModel and its TensorFlow.js graph-model conversion', async () => {
    const dir = join(SHARED, 'testdata/savedmodels-cnn/dotnet-cifar-conv-tf1');
    const model = await loadImageModel(dir);
    (await roundTrip(model, model, 'cifar-sm')).dispose();
    model.dispose();
    const web = join(tmp, 'cifar-web');
    await convertSavedModel(dir, web);
    const graph = await loadImageModel(web);
    expect(graph.info.format).toBe('graph');
    (await roundTrip(graph, graph, 'cifar-graph')).dispose();
    graph.dispose();
  });

  it('an exported SavedModel re-exported through its float signature', async () => {
    const first = await exportSavedModel(buildShapesResNet({ seed: 2 }), join(tmp, 'first'), { version: 1, preprocessing: 'unit' });
    // Through loadImageModel, as `lens export <export dir>` does: lens.json names the float signature.
    const source = await loadImageModel(first.dir);
    const again = await exportSavedModel(source, join(tmp, 'again'), { version: 1 });
    source.dispose();
    expect(again.opCounts.Softmax).toBe(1);
    const a = await loadSavedModel(first.dir);
    const b = await loadSavedModel(again.dir);
    const x = tf.randomUniform([2, 64, 64, 3], 0, 255) as tf.Tensor4D;
    const pa = await floatSignature(a, x);
    const pb = await floatSignature(b, x);
    expect(maxDiff(pa.probabilities!.values as Float32Array, pb.probabilities!.values as Float32Array)).toBeLessThan(1e-5);
    tf.dispose(x);
    a.dispose();
    b.dispose();
  });
});

describe('tfjs graph models with the converter\'s fused ops', () => {
  it('splits _FusedConv2D, FusedDepthwiseConv2dNative and _FusedMatMul back into TensorFlow ops', async () => {
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const f = { type: 'DT_FLOAT' };
    const ints = (v: number[]) => ({ list: { i: v.map(String) } });
    const conv = (fused: string[]) => ({
      T: f, strides: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: ints([1, 1, 1, 1]),
      fused_ops: { list: { s: fused.map(b64) } }, num_args: { i: '1' }, epsilon: { f: 0 },
    });
    const nodes = [
      { name: 'x', op: 'Placeholder', attr: { dtype: f, shape: { shape: { dim: [{ size: '-1' }, { size: '6' }, { size: '6' }, { size: '3' }] } } } },
      { name: 'dw', op: 'Const', attr: { dtype: f } },
      { name: 'dwb', op: 'Const', attr: { dtype: f } },
      { name: 'w', op: 'Const', attr: { dtype: f } },
      { name: 'b', op: 'Const', attr: { dtype: f } },
      { name: 'shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' } } },
      { name: 'fc', op: 'Const', attr: { dtype: f } },
      { name: 'fcb', op: 'Const', attr: { dtype: f } },
      { name: 'depthwise', op: 'FusedDepthwiseConv2dNative', input: ['x', 'dw', 'dwb'], attr: conv(['BiasAdd', 'Relu6']) },
      { name: 'conv', op: '_FusedConv2D', input: ['depthwise', 'w', 'b'], attr: conv(['BiasAdd', 'Relu']) },
      { name: 'flat', op: 'Reshape', input: ['conv', 'shape'], attr: { T: f, Tshape: { type: 'DT_INT32' } } },
      { name: 'logits', op: '_FusedMatMul', input: ['flat', 'fc', 'fcb'], attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: { list: { s: [b64('BiasAdd')] } }, num_args: { i: '1' }, epsilon: { f: 0 } } },
    ];
    const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i * 1.3) * 0.3);
    const weights: [string, number[], Float32Array | Int32Array][] = [
      ['dw', [3, 3, 3, 1], rand(27, 1)], ['dwb', [3], rand(3, 2)], ['w', [3, 3, 3, 4], rand(108, 3)], ['b', [4], rand(4, 4)],
      ['shape', [2], Int32Array.from([-1, 144])], ['fc', [144, 5], rand(720, 5)], ['fcb', [5], rand(5, 6)],
    ];
    const data = Buffer.concat(weights.map(([, , v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
    const artifacts: tf.io.ModelArtifacts = {
      format: 'graph-model',
      modelTopology: { node: nodes, versions: { producer: 1 } },
      weightSpecs: weights.map(([name, shape, v]) => ({ name, shape, dtype: v instanceof Int32Array ? 'int32' : 'float32' })),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    };
    const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
    const graph = await loadGraphModel(tf.io.fromMemory(artifacts));
    const r = await exportSavedModel({ name: 'fused', structure: { kind: 'graph', artifacts }, preprocessing: 'raw' }, join(tmp, 'fused'), { version: 1, input: 'float' });
    expect(r.opCounts).toMatchObject({ DepthwiseConv2dNative: 1, Conv2D: 1, MatMul: 1, BiasAdd: 3, Relu6: 1, Relu: 1 });
    const loaded = await loadSavedModel(r.dir);
    const x = tf.randomUniform([2, 6, 6, 3], 0, 255, 'float32', 4) as tf.Tensor4D;
    const expected = (await tf.softmax(graph.execute(x, 'logits') as tf.Tensor).data()) as Float32Array;
    const out = await loaded.predict({ images: x });
    expect(maxDiff(out.probabilities!.values as Float32Array, expected)).toBeLessThan(1e-5);
    loaded.dispose();
    graph.dispose();
  });
});

describe('what cannot be exported', () => {
  it('an unsupported layer, naming it', async () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const up = tfl.layers.conv2dTranspose({ filters: 2, kernelSize: 3, name: 'deconv' }).apply(input) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten().apply(up) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 3 }).apply(flat) as tfl.SymbolicTensor });
    const e = await exportSavedModel(model, join(tmp, 'bad'), { version: 1 }).catch((err: unknown) => err);
    expect(isLensError(e, 'MODEL_UNSUPPORTED')).toBe(true);
    expect((e as Error).message).toMatch(/layer deconv \(Conv2DTranspose\) cannot be exported/);
    expect(existsSync(join(tmp, 'bad', '1'))).toBe(false);
  });

  it('a graph op outside the op table (TF1 graph with training ops)', async () => {
    const model = await loadImageModel(join(SHARED, 'testdata/savedmodels-cnn/dotnet-mnist-conv-tf1'));
    const e = await exportSavedModel(model, join(tmp, 'mnist'), { version: 1 }).catch((err: unknown) => err);
    expect(isLensError(e, 'MODEL_UNSUPPORTED')).toBe(true);
    expect((e as Error).message).toMatch(/op RandomUniform cannot be re-exported/);
    model.dispose();
  });
});
