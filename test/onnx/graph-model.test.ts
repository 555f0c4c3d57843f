/**
 * tfjs graph models (model.json, format graph-model) compiled to onnxruntime: a graph made of the
 * CNN ops the fixtures do not use (EXPLICIT padding, dilations, tfjs-converter's fused ops, pooling,
 * PadV2, ConcatV2, Mean with keep_dims + Squeeze, NHWC flattening, transpose_b, per-channel
 * Sub/RealDiv), the ops of modern CNNs (Mul of two activations, LeakyRelu, Elu, Softplus,
 * ResizeNearestNeighbor) and a real SavedModel converted by `lens convert` agree with tfjs; their
 * unsupported variants fall back to tfjs with the node named.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { imageModelFromGraphModel } from '../../src/models/graph.js';
import { loadImageModel } from '../../src/models/load.js';
import type { ImageModel } from '../../src/core/model.js';
import { convertSavedModel } from '../../src/convert/savedmodel.js';
import { SHARED } from '../helpers/cli.js';
import { randomPixels, relL2 } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'lens-onnx-graphmodel-'));
beforeAll(async () => {
  await initBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const f = { type: 'DT_FLOAT' };
const ints = (...v: number[]) => ({ list: { i: v.map(String) } });
const str = (s: string) => ({ s: Buffer.from(s).toString('base64') });
const fusedOps = (...ops: string[]) => ({ list: { s: ops.map((o) => Buffer.from(o).toString('base64')) } });
const nhwc = { data_format: str('NHWC') };

/** x [N,12,12,3] -> 5 probabilities, through every op the shared fixtures leave out. */
function syntheticGraph(): tf.io.ModelArtifacts {
  const conv = (padding: string, strides = [1, 1, 1, 1], dilations = [1, 1, 1, 1]) => ({ T: f, padding: str(padding), strides: ints(...strides), dilations: ints(...dilations), ...nhwc });
  const nodes = [
    { name: 'x', op: 'Placeholder', attr: { dtype: f, shape: { shape: { dim: [{ size: '-1' }, { size: '12' }, { size: '12' }, { size: '3' }] } } } },
    ...['mean', 'std', 'w1', 'b1', 'dw', 'dwb', 'w2', 'b2', 'w3', 'w4', 'b4', 'half', 'pads', 'zero', 'axis', 'hw', 'flat'].map((name) => ({ name, op: 'Const', attr: { dtype: ['pads', 'axis', 'hw', 'flat'].includes(name) ? { type: 'DT_INT32' } : f } })),
    { name: 'centered', op: 'Sub', input: ['x', 'mean'], attr: { T: f } },
    { name: 'scaled', op: 'RealDiv', input: ['centered', 'std'], attr: { T: f } },
    { name: 'conv1', op: 'Conv2D', input: ['scaled', 'w1'], attr: { ...conv('EXPLICIT', [1, 2, 2, 1]), explicit_paddings: ints(0, 0, 1, 2, 2, 1, 0, 0) } },
    { name: 'bias1', op: 'BiasAdd', input: ['conv1', 'b1'], attr: { T: f, ...nhwc } },
    { name: 'relu6', op: 'Relu6', input: ['bias1'], attr: { T: f } },
    { name: 'depthwise', op: 'FusedDepthwiseConv2dNative', input: ['relu6', 'dw', 'dwb'], attr: { ...conv('SAME', [1, 1, 1, 1], [1, 2, 2, 1]), fused_ops: fusedOps('BiasAdd', 'Relu'), num_args: { i: '1' } } },
    { name: 'maxpool', op: 'MaxPool', input: ['depthwise'], attr: { T: f, ksize: ints(1, 2, 2, 1), strides: ints(1, 2, 2, 1), padding: str('SAME'), ...nhwc } },
    { name: 'padded', op: 'PadV2', input: ['maxpool', 'pads', 'zero'], attr: { T: f, Tpaddings: { type: 'DT_INT32' } } },
    { name: 'conv2', op: '_FusedConv2D', input: ['padded', 'w2', 'b2'], attr: { ...conv('VALID'), fused_ops: fusedOps('BiasAdd', 'Sigmoid'), num_args: { i: '1' } } },
    { name: 'avgpool', op: 'AvgPool', input: ['conv2'], attr: { T: f, ksize: ints(1, 3, 3, 1), strides: ints(1, 2, 2, 1), padding: str('SAME'), ...nhwc } },
    { name: 'tanh', op: 'Tanh', input: ['avgpool'], attr: { T: f } },
    { name: 'concat', op: 'ConcatV2', input: ['avgpool', 'tanh', 'axis'], attr: { T: f, N: { i: '2' }, Tidx: { type: 'DT_INT32' } } },
    { name: 'gap', op: 'Mean', input: ['concat', 'hw'], attr: { T: f, Tidx: { type: 'DT_INT32' }, keep_dims: { b: true } } },
    { name: 'squeezed', op: 'Squeeze', input: ['gap'], attr: { T: f, squeeze_dims: ints(1, 2) } },
    { name: 'flattened', op: 'Reshape', input: ['concat', 'flat'], attr: { T: f, Tshape: { type: 'DT_INT32' } } },
    { name: 'dense_a', op: 'MatMul', input: ['flattened', 'w3'], attr: { T: f, transpose_a: { b: false }, transpose_b: { b: true } } },
    { name: 'dense_b', op: '_FusedMatMul', input: ['squeezed', 'w4', 'b4'], attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: fusedOps('BiasAdd'), num_args: { i: '1' }, epsilon: { f: 0 } } },
    { name: 'sum', op: 'AddV2', input: ['dense_a', 'dense_b'], attr: { T: f } },
    { name: 'halved', op: 'Mul', input: ['sum', 'half'], attr: { T: f } },
    { name: 'cast', op: 'Cast', input: ['halved'], attr: { SrcT: f, DstT: f } },
    { name: 'softmax', op: 'Softmax', input: ['cast'], attr: { T: f } },
    { name: 'probabilities', op: 'Identity', input: ['softmax'], attr: { T: f } },
  ];
  const rand = (n: number, seed: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.37) * scale);
  const weights: [string, number[], Float32Array | Int32Array][] = [
    ['mean', [3], Float32Array.from([120, 110, 100])],
    ['std', [3], Float32Array.from([60, 70, 50])],
    ['w1', [3, 3, 3, 4], rand(108, 1, 0.4)],
    ['b1', [4], rand(4, 2, 0.5)],
    ['dw', [3, 3, 4, 2], rand(72, 3, 0.5)],
    ['dwb', [8], rand(8, 4, 0.3)],
    ['w2', [1, 1, 8, 6], rand(48, 5, 0.6)],
    ['b2', [6], rand(6, 6, 0.3)],
    ['w3', [5, 108], rand(540, 7, 0.3)],
    ['w4', [12, 5], rand(60, 8, 0.6)],
    ['b4', [5], rand(5, 9, 0.2)],
    ['half', [], Float32Array.from([0.5])],
    ['pads', [4, 2], Int32Array.from([0, 0, 1, 0, 0, 1, 0, 0])],
    ['zero', [], Float32Array.from([0])],
    ['axis', [], Int32Array.from([-1])],
    ['hw', [2], Int32Array.from([1, 2])],
    ['flat', [2], Int32Array.from([-1, 108])],
  ];
  const data = Buffer.concat(weights.map(([, , v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
  return {
    format: 'graph-model',
    modelTopology: { node: nodes, versions: { producer: 1 } },
    weightSpecs: weights.map(([name, shape, v]) => ({ name, shape, dtype: v instanceof Int32Array ? 'int32' : 'float32' })),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  };
}

type GraphNode = { name: string; op: string; input?: string[]; attr?: Record<string, unknown> };
type GraphWeight = [name: string, shape: number[], values: Float32Array | Int32Array];
const sine = (n: number, seed: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.37) * scale);

/** A graph model from nodes after an image placeholder `x` [N,h,w,c], with Const nodes for the weights. */
function graphArtifacts(shape: [number, number, number], nodes: GraphNode[], weights: GraphWeight[]): tf.io.ModelArtifacts {
  const placeholder = { name: 'x', op: 'Placeholder', attr: { dtype: f, shape: { shape: { dim: [-1, ...shape].map((d) => ({ size: String(d) })) } } } };
  const consts = weights.map(([name, , v]) => ({ name, op: 'Const', attr: { dtype: v instanceof Int32Array ? { type: 'DT_INT32' } : f } }));
  const data = Buffer.concat(weights.map(([, , v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
  return {
    format: 'graph-model',
    modelTopology: { node: [placeholder, ...consts, ...nodes], versions: { producer: 1 } },
    weightSpecs: weights.map(([name, shape, v]) => ({ name, shape, dtype: v instanceof Int32Array ? 'int32' : 'float32' })),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  };
}

/** onnxruntime ('auto') and tfjs models of `artifacts`. */
async function bothEngines(artifacts: tf.io.ModelArtifacts, name: string): Promise<[ImageModel & { engine: { name: string; reason?: string; layers?: Record<string, number> } }, ImageModel]> {
  const fast = await imageModelFromGraphModel(artifacts, { name, preprocessing: 'unit', engine: 'auto' });
  const reference = await imageModelFromGraphModel(artifacts, { name, preprocessing: 'unit', engine: 'tfjs' });
  return [fast, reference];
}

const conv2d = (name: string, input: string, w: string, padding = 'SAME') => ({
  name,
  op: 'Conv2D',
  input: [input, w],
  attr: { T: f, padding: str(padding), strides: ints(1, 1, 1, 1), dilations: ints(1, 1, 1, 1), ...nhwc },
});
const unary = (op: string, name: string, input: string, attr: Record<string, unknown> = {}) => ({ name, op, input: [input], attr: { T: f, ...attr } });
const binaryOp = (op: string, name: string, a: string, b: string) => ({ name, op, input: [a, b], attr: { T: f } });

async function compare(fast: ImageModel, reference: ImageModel, seed: number): Promise<void> {
  const [h, w, c] = fast.inputShape;
  const pixels = randomPixels([3, h, w, c], seed);
  const targets = [4, 0, 2].map((t) => t % fast.classes);
  const [a, b] = [await fast.forward(pixels), await reference.forward(pixels)];
  expect(relL2(a.dataSync(), b.dataSync())).toBeLessThan(1e-4);
  const [ga, gb] = [await fast.gradient!(pixels, targets), await reference.gradient!(pixels, targets)];
  expect(Math.hypot(...gb.gradients.dataSync())).toBeGreaterThan(0);
  expect(relL2(ga.gradients.dataSync(), gb.gradients.dataSync())).toBeLessThan(1e-4);
  expect(relL2(ga.values.dataSync(), gb.values.dataSync())).toBeLessThan(1e-4);
  tf.dispose([pixels, a, b, ga.gradients, ga.values, gb.gradients, gb.values]);
}

describe('tfjs graph models on onnxruntime', () => {
  it('compiles every CNN op the fixtures leave out, and keeps a softmax that the output is after', async () => {
    const artifacts = syntheticGraph();
    const fast = await imageModelFromGraphModel(artifacts, { name: 'synthetic', preprocessing: 'raw', engine: 'auto' });
    const reference = await imageModelFromGraphModel(artifacts, { name: 'synthetic', preprocessing: 'raw', engine: 'tfjs' });
    expect(fast.engine.name, fast.engine.reason).toBe('onnxruntime');
    // The softmax stays in the compiled graph, as tfjs executes it: probabilities.
    const px = randomPixels([2, 12, 12, 3], 5);
    const probabilities = await fast.forward(px);
    for (const sum of tf.sum(probabilities, 1).dataSync()) expect(sum).toBeCloseTo(1, 5);
    tf.dispose([px, probabilities]);
    expect(fast.output).toBe(reference.output);
    expect(fast.engine.layers).toMatchObject({ Conv2D: 1, FusedDepthwiseConv2dNative: 1, _FusedConv2D: 1, _FusedMatMul: 1, PadV2: 1, ConcatV2: 1, Mean: 1, Squeeze: 1, Softmax: 1 });
    await compare(fast, reference, 31);
    fast.dispose();
    reference.dispose();
  });

  it('Mul of two activations: swish as x * sigmoid(x), squeeze-and-excitation scaling [N,1,1,C] * [N,H,W,C]', async () => {
    const artifacts = graphArtifacts(
      [8, 8, 3],
      [
        conv2d('conv', 'x', 'w1'),
        unary('Sigmoid', 'gate', 'conv'),
        binaryOp('Mul', 'swish', 'conv', 'gate'),
        { name: 'squeeze', op: 'Mean', input: ['swish', 'hw'], attr: { T: f, Tidx: { type: 'DT_INT32' }, keep_dims: { b: true } } },
        conv2d('reduce', 'squeeze', 'w2'),
        unary('Relu', 'reduce_relu', 'reduce'),
        conv2d('expand', 'reduce_relu', 'w3'),
        unary('Sigmoid', 'excite', 'expand'),
        binaryOp('Mul', 'scaled', 'excite', 'swish'),
        { name: 'flat', op: 'Reshape', input: ['scaled', 'flat_shape'], attr: { T: f, Tshape: { type: 'DT_INT32' } } },
        { name: 'logits', op: 'MatMul', input: ['flat', 'w4'], attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false } } },
      ],
      [
        ['w1', [3, 3, 3, 4], sine(108, 1, 0.5)],
        ['hw', [2], Int32Array.from([1, 2])],
        ['w2', [1, 1, 4, 2], sine(8, 2, 1)],
        ['w3', [1, 1, 2, 4], sine(8, 3, 1)],
        ['flat_shape', [2], Int32Array.from([-1, 256])],
        ['w4', [256, 5], sine(1280, 4, 0.2)],
      ],
    );
    const [fast, reference] = await bothEngines(artifacts, 'products');
    expect(fast.engine.name, fast.engine.reason).toBe('onnxruntime');
    expect(fast.engine.layers).toMatchObject({ Mul: 2 });
    await compare(fast, reference, 33);
    fast.dispose();
    reference.dispose();
  });

  it('falls back to tfjs naming a quotient of two activations (RealDiv)', async () => {
    const artifacts = graphArtifacts(
      [4, 4, 3],
      [conv2d('conv', 'x', 'w1'), unary('Sigmoid', 'gate', 'conv'), binaryOp('RealDiv', 'quotient', 'conv', 'gate'), unary('Relu', 'out', 'quotient'), { name: 'flat', op: 'Reshape', input: ['out', 'flat_shape'], attr: { T: f } }],
      [['w1', [1, 1, 3, 2], sine(6, 1, 0.5)], ['flat_shape', [2], Int32Array.from([-1, 32])]],
    );
    const [fast, reference] = await bothEngines(artifacts, 'quotient');
    expect(fast.engine.name).toBe('tfjs');
    expect(fast.engine.reason).toMatch(/node quotient \(RealDiv\) combines two tensors computed from the image/);
    fast.dispose();
    reference.dispose();
  });

  it('activations LeakyRelu (alpha attribute), Elu, Softplus, also fused into _FusedConv2D and _FusedMatMul', async () => {
    const fused = (op: string, name: string, inputs: string[], ops: string[], attr: Record<string, unknown> = {}) => ({
      name,
      op,
      input: inputs,
      attr: { T: f, padding: str('VALID'), strides: ints(1, 1, 1, 1), dilations: ints(1, 1, 1, 1), ...nhwc, transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: fusedOps(...ops), num_args: { i: String(inputs.length - 2) }, ...attr },
    });
    const nodes = (prelu: boolean) => [
      prelu ? fused('_FusedConv2D', 'conv1', ['x', 'w1', 'b1', 'prelu_alpha'], ['BiasAdd', 'Prelu']) : fused('_FusedConv2D', 'conv1', ['x', 'w1', 'b1'], ['BiasAdd', 'LeakyRelu'], { leakyrelu_alpha: { f: 0.1 } }),
      unary('Elu', 'elu', 'conv1'),
      conv2d('conv2', 'elu', 'w2'),
      unary('LeakyRelu', 'leaky', 'conv2', { alpha: { f: 0.3 } }),
      fused('_FusedConv2D', 'conv3', ['leaky', 'w3', 'b3'], ['BiasAdd', 'Elu']),
      unary('Softplus', 'softplus', 'conv3'),
      { name: 'flat', op: 'Reshape', input: ['softplus', 'flat_shape'], attr: { T: f } },
      fused('_FusedMatMul', 'logits', ['flat', 'w4', 'b4'], ['BiasAdd', 'LeakyRelu'], { leakyrelu_alpha: { f: 0.25 } }),
    ];
    const weights: GraphWeight[] = [
      ['w1', [3, 3, 3, 4], sine(108, 1, 0.6)],
      ['b1', [4], sine(4, 2, 0.5)],
      ['w2', [3, 3, 4, 4], sine(144, 3, 0.5)],
      ['w3', [1, 1, 4, 3], sine(12, 4, 0.8)],
      ['b3', [3], sine(3, 5, 0.5)],
      ['flat_shape', [2], Int32Array.from([-1, 48])],
      ['w4', [48, 5], sine(240, 6, 0.3)],
      ['b4', [5], sine(5, 7, 0.5)],
    ];
    const [fast, reference] = await bothEngines(graphArtifacts([6, 6, 3], nodes(false), weights), 'activations');
    expect(fast.engine.name, fast.engine.reason).toBe('onnxruntime');
    expect(fast.engine.layers).toMatchObject({ _FusedConv2D: 2, Elu: 1, LeakyRelu: 1, Softplus: 1, _FusedMatMul: 1 });
    await compare(fast, reference, 34);
    fast.dispose();
    reference.dispose();
    const [fallback, tfjs] = await bothEngines(graphArtifacts([6, 6, 3], nodes(true), [...weights, ['prelu_alpha', [4], sine(4, 8, 0.2)]]), 'prelu');
    expect(fallback.engine.name).toBe('tfjs');
    expect(fallback.engine.reason).toMatch(/node conv1 \(_FusedConv2D\) fuses BiasAdd, Prelu/);
    fallback.dispose();
    tfjs.dispose();
  });

  it('ResizeNearestNeighbor at integer scales, with and without half-pixel centres; align_corners falls back', async () => {
    const resize = (name: string, input: string, size: string, alignCorners: boolean, halfPixel: boolean) => ({
      name,
      op: 'ResizeNearestNeighbor',
      input: [input, size],
      attr: { T: f, align_corners: { b: alignCorners }, half_pixel_centers: { b: halfPixel } },
    });
    const nodes = (alignCorners: boolean) => [
      conv2d('conv1', 'x', 'w1'),
      unary('Tanh', 'tanh', 'conv1'),
      resize('up1', 'tanh', 'size1', alignCorners, false),
      conv2d('conv2', 'up1', 'w2'),
      resize('up2', 'conv2', 'size2', false, true),
      conv2d('conv3', 'up2', 'w3'),
      { name: 'flat', op: 'Reshape', input: ['conv3', 'flat_shape'], attr: { T: f } },
      { name: 'logits', op: 'MatMul', input: ['flat', 'w4'], attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false } } },
    ];
    const weights: GraphWeight[] = [
      ['w1', [3, 3, 3, 3], sine(81, 1, 0.5)],
      ['size1', [2], Int32Array.from([8, 6])],
      ['w2', [3, 3, 3, 2], sine(54, 2, 0.5)],
      ['size2', [2], Int32Array.from([16, 18])],
      ['w3', [3, 3, 2, 2], sine(36, 3, 0.5)],
      ['flat_shape', [2], Int32Array.from([-1, 576])],
      ['w4', [576, 5], sine(2880, 4, 0.1)],
    ];
    const [fast, reference] = await bothEngines(graphArtifacts([4, 3, 3], nodes(false), weights), 'resize');
    expect(fast.engine.name, fast.engine.reason).toBe('onnxruntime');
    expect(fast.engine.layers).toMatchObject({ ResizeNearestNeighbor: 2 });
    await compare(fast, reference, 35);
    fast.dispose();
    reference.dispose();
    const [fallback, tfjs] = await bothEngines(graphArtifacts([4, 3, 3], nodes(true), weights), 'resize_aligned');
    expect(fallback.engine.name).toBe('tfjs');
    expect(fallback.engine.reason).toMatch(/node up1 \(ResizeNearestNeighbor\) aligns corners/);
    fallback.dispose();
    tfjs.dispose();
  });

  it('a real TF1 SavedModel converted to a graph model (`lens convert`)', async () => {
    const web = join(tmp, 'cifar-web');
    await convertSavedModel(join(SHARED, 'testdata/savedmodels-cnn/dotnet-cifar-conv-tf1'), web);
    const [fast, reference] = [await loadImageModel(web, { preprocess: 'unit' }), await loadImageModel(web, { preprocess: 'unit', engine: 'tfjs' })];
    expect(fast.info.format).toBe('graph');
    expect(fast.engine.name, fast.engine.reason).toBe('onnxruntime');
    await compare(fast, reference, 32);
    fast.dispose();
    reference.dispose();
  });
});
