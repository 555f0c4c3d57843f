/**
 * TF1 training checkpoints and frozen GraphDefs, on real files: the ML.NET CIFAR conv net's
 * tf.train.Saver checkpoint (training graph with Adam state) and its frozen graph, and Azure
 * Custom Vision's frozen SqueezeNet-style fruit classifiers with their test photos.
 * References are independent: the frozen graph's own constants, a plain-JS forward pass from
 * TensorBundle values, and the expected scores listed in SOURCES.md.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { loadPixels, pixelsToTensor } from '../../src/image/index.js';
import { convertGraphFile, readGraphFile } from '../../src/convert/checkpoint/graph-file.js';
import { listCheckpoints, resolveCheckpoint } from '../../src/convert/checkpoint/checkpoint.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { decodeMessage, encodeMessage } from '../../src/proto/index.js';
import { readTensorBundle } from '../../src/savedmodel/bundle.js';
import { imageModelFromSavedModel } from '../../src/models/savedmodel.js';
import type { MetaGraphDefMessage } from '../../src/savedmodel/savedmodel.js';
import { decodeTensorProto } from '../../src/tensor/index.js';
import { SHARED, runLens } from '../helpers/cli.js';
import { conv2dValid, dense, relativeError, relu } from '../helpers/reference-nets.js';

const EXT = join(SHARED, 'models-external');
const CIFAR_DIR = join(EXT, 'tf1-checkpoint-cifar-dotnet');
const FROZEN = join(CIFAR_DIR, 'frozen_model.pb');
const CIFAR_SAVEDMODEL = join(SHARED, 'testdata/savedmodels-cnn/dotnet-cifar-conv-tf1');
const FRUITS = join(EXT, 'frozen-graph-customvision-fruits');
const PHOTOS = ['apple1', 'apple2', 'banana1', 'banana2'].map((n) => join(FRUITS, 'test-photos', `${n}.jpg`));
const IMAGES = ['parrot.jpg', 'hot_dog.jpg', 'cat.bmp', 'bird.bmp'].map((f) => join(SHARED, 'images', f));
const tmp = mkdtempSync(join(tmpdir(), 'lens-checkpoint-test-'));
/** A model directory with two steps: 12000 = the real checkpoint, 8000 = the sibling training run's variables (same graph). */
const STEPS_DIR = join(tmp, 'steps');

async function expectLensError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(isLensError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toMatch(pattern);
  expect((e as Error).message).not.toMatch(/\n/);
}

/** A model directory of copies of the real checkpoint files under other prefixes. */
function modelDir(name: string, prefixes: Record<string, { index: string; data: string }>, newest: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [prefix, src] of Object.entries(prefixes)) {
    copyFileSync(join(CIFAR_DIR, 'model.ckpt.meta'), join(dir, `${prefix}.meta`));
    copyFileSync(src.index, join(dir, `${prefix}.index`));
    copyFileSync(src.data, join(dir, `${prefix}.data-00000-of-00001`));
  }
  const all = Object.keys(prefixes).map((p) => `all_model_checkpoint_paths: "${p}"`).join('\n');
  writeFileSync(join(dir, 'checkpoint'), `model_checkpoint_path: "${newest}"\n${all}\n`);
  return dir;
}

const REAL = { index: join(CIFAR_DIR, 'model.ckpt.index'), data: join(CIFAR_DIR, 'model.ckpt.data-00000-of-00001') };
const SIBLING = { index: join(CIFAR_SAVEDMODEL, 'variables/variables.index'), data: join(CIFAR_SAVEDMODEL, 'variables/variables.data-00000-of-00001') };

/** Upstream predict.py: centre square crop, resize to 256 (bilinear), centre 227 crop, raw 0..255; RGB (the models' `bgr` preprocessing swaps). */
async function customVisionPixels(path: string): Promise<tf.Tensor4D> {
  const image = sharp(path).rotate().removeAlpha();
  const { width, height } = await image.metadata();
  const side = Math.min(width!, height!);
  const raw = await image
    .extract({ left: Math.floor(width! / 2) - Math.floor(side / 2), top: Math.floor(height! / 2) - Math.floor(side / 2), width: side, height: side })
    .resize(256, 256, { kernel: 'linear' })
    .extract({ left: 15, top: 15, width: 227, height: 227 })
    .raw()
    .toBuffer();
  return tf.tensor4d(Float32Array.from(raw), [1, 227, 227, 3]);
}

/** The CIFAR net from its definition in float64: conv 7x7 stride 2 VALID + bconv1, ReLU, reshape, MatMul W1 (+ b1). */
async function cifarReference(bundlePath: string, pixels: Float32Array, withB1: boolean): Promise<Float64Array> {
  const bundle = await readTensorBundle(bundlePath);
  const v = async (name: string) => (await bundle.read(name)).values as Float32Array;
  const conv = relu(conv2dValid({ h: 32, w: 32, c: 3, data: Float64Array.from(pixels) }, await v('Wconv1'), 7, 7, 32, await v('bconv1'), 2));
  expect([conv.h, conv.w, conv.c]).toEqual([13, 13, 32]);
  return dense(conv.data, await v('W1'), 10, withB1 ? await v('b1') : undefined).data;
}

let cifarPixels: tf.Tensor4D;
let checkpoint: LoadedImageModel;
let frozen: LoadedImageModel;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  cifarPixels = pixelsToTensor(await Promise.all(IMAGES.map((f) => loadPixels(f, { size: [32, 32], resize: 'squash' }))));
  modelDir('steps', { 'model.ckpt-8000': SIBLING, 'model.ckpt-12000': REAL }, 'model.ckpt-12000');
  utimesSync(join(STEPS_DIR, 'model.ckpt-8000.index'), new Date('2024-03-01T10:00:00Z'), new Date('2024-03-01T10:00:00Z'));
  utimesSync(join(STEPS_DIR, 'model.ckpt-12000.index'), new Date('2024-03-02T10:00:00Z'), new Date('2024-03-02T10:00:00Z'));
  checkpoint = await loadImageModel(CIFAR_DIR, { engine: 'tfjs' });
  frozen = await loadImageModel(FROZEN, { engine: 'tfjs' });
});

afterAll(() => {
  checkpoint?.dispose();
  frozen?.dispose();
  cifarPixels?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a TF1 training checkpoint', () => {
  it('is cut to the inference graph: inferred input and output, training ops pruned', async () => {
    expect(checkpoint.info.format).toBe('checkpoint');
    expect(checkpoint.info.graphCut?.input).toMatchObject({ name: 'Input:0', chosenBy: 'the one float image placeholder' });
    expect(checkpoint.info.graphCut?.output).toMatchObject({ name: 'Output:0', op: 'MatMul' });
    expect([checkpoint.inputShape, checkpoint.classes, checkpoint.output]).toEqual([[32, 32, 3], 10, 'logit']);
    const g = await convertGraphFile(CIFAR_DIR);
    expect(Object.keys(g.converted.opCounts).sort()).toEqual(['Add', 'Const', 'Conv2D', 'Identity', 'MatMul', 'Placeholder', 'Relu', 'Reshape']);
    const all = Object.keys(Object.fromEntries((g.graph.node ?? []).map((n) => [n.op, 1])));
    for (const op of ['ApplyAdam', 'SaveV2', 'RestoreV2', 'Assign', 'SoftmaxCrossEntropyWithLogits', 'VariableV2']) {
      expect(all).toContain(op);
      expect(g.converted.opCounts[op]).toBeUndefined();
    }
  });

  it('freezes the same weights as its frozen graph, byte for byte, and predicts identically', async () => {
    const g = await convertGraphFile(CIFAR_DIR);
    const frozenGraph = await readGraphFile(FROZEN);
    const weights = tf.io.decodeWeights(g.converted.artifacts.weightData!, g.converted.artifacts.weightSpecs!);
    for (const name of ['W1', 'Wconv1', 'bconv1']) {
      const node = frozenGraph.graph.node!.find((n) => n.name === name)!;
      const expected = decodeTensorProto(node.attr!['value']!.tensor!).values as Float32Array;
      expect(Buffer.from((await weights[name]!.data()).buffer).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), name).toBe(true);
    }
    tf.dispose(Object.values(weights));
    const a = await checkpoint.forward(cifarPixels);
    const b = await frozen.forward(cifarPixels);
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([a, b]);
  });

  it('matches a plain-JS forward pass from readTensorBundle values (checkpoint and its sibling SavedModel)', async () => {
    const pixels = (await cifarPixels.data()) as Float32Array;
    const saved = await imageModelFromSavedModel(CIFAR_SAVEDMODEL, { engine: 'tfjs' });
    try {
      const got = { checkpoint: (await (await checkpoint.forward(cifarPixels)).array()) as number[][], saved: (await (await saved.forward(cifarPixels)).array()) as number[][] };
      let worst = 0;
      for (let n = 0; n < IMAGES.length; n++) {
        const one = pixels.subarray(n * 3072, (n + 1) * 3072);
        worst = Math.max(worst, relativeError(got.checkpoint[n]!, await cifarReference(join(CIFAR_DIR, 'model.ckpt'), one, false)));
        worst = Math.max(worst, relativeError(got.saved[n]!, await cifarReference(CIFAR_SAVEDMODEL, one, true)));
      }
      expect(worst).toBeLessThan(1e-5);
    } finally {
      saved.dispose();
    }
  });

  it('chooses a step: the newest by default, --checkpoint N, or a model.ckpt-N prefix', async () => {
    const listed = listCheckpoints(STEPS_DIR);
    expect(listed.map((c) => [c.step, c.date?.toISOString()])).toEqual([
      [8000, '2024-03-01T10:00:00.000Z'],
      [12000, '2024-03-02T10:00:00.000Z'],
    ]);
    expect(resolveCheckpoint(STEPS_DIR).step).toBe(12000);
    const newest = await loadImageModel(STEPS_DIR, { engine: 'tfjs' });
    const older = await loadImageModel(STEPS_DIR, { checkpoint: 8000, engine: 'tfjs' });
    const prefix = await loadImageModel(join(STEPS_DIR, 'model.ckpt-8000'), { engine: 'tfjs' });
    try {
      expect(older.info.graphCut?.checkpoint?.step).toBe(8000);
      const [a, b, c, ref] = await Promise.all([newest.forward(cifarPixels), older.forward(cifarPixels), prefix.forward(cifarPixels), checkpoint.forward(cifarPixels)]);
      expect(Array.from(await a!.data())).toEqual(Array.from(await ref!.data()));
      expect(Array.from(await c!.data())).toEqual(Array.from(await b!.data()));
      expect(relativeError(await b!.data(), await a!.data())).toBeGreaterThan(0.1);
      tf.dispose([a!, b!, c!, ref!]);
    } finally {
      [newest, older, prefix].forEach((m) => m.dispose());
    }
    await expectLensError(loadImageModel(STEPS_DIR, { checkpoint: 500 }), 'NOT_FOUND', /steps has no checkpoint 500 \(it has: 8000, 12000\)/);
  });

  it('finds its files when the checkpoint file holds absolute paths of the training machine', async () => {
    const dir = modelDir('moved', { 'model.ckpt-42': REAL }, 'model.ckpt-42');
    writeFileSync(join(dir, 'checkpoint'), 'model_checkpoint_path: "/home/trainer/run7/model.ckpt-42"\nall_model_checkpoint_paths: "/home/trainer/run7/model.ckpt-42"\n');
    expect(resolveCheckpoint(dir).prefix).toBe(join(dir, 'model.ckpt-42'));
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([42]);
  });

  it('cuts an input pipeline away: IteratorGetNext upstream of the image is pruned', async () => {
    // The same training graph with its image placeholder turned into an input pipeline's output.
    const dir = modelDir('pipeline', { 'model.ckpt-1': REAL }, 'model.ckpt-1');
    const meta = decodeMessage<MetaGraphDefMessage>('tensorflow.MetaGraphDef', readFileSync(join(dir, 'model.ckpt-1.meta')), 'meta');
    const nodes = meta.graph_def!.node!;
    const input = nodes.find((n) => n.name === 'Input')!;
    const shape = (dims: number[]) => ({ dim: dims.map((size) => ({ size })) });
    nodes.push({ name: 'IteratorV2', op: 'IteratorV2', input: [], attr: { output_types: { list: { type: [1, 9] } }, output_shapes: { list: { shape: [shape([-1, 32, 32, 3]), shape([-1])] } }, shared_name: { s: new Uint8Array() }, container: { s: new Uint8Array() } } });
    Object.assign(input, { op: 'IteratorGetNext', input: ['IteratorV2'], attr: { output_types: { list: { type: [1, 9] } }, output_shapes: { list: { shape: [shape([-1, 32, 32, 3]), shape([-1])] } } } });
    for (const n of nodes) n.input = (n.input ?? []).map((r) => (r === 'Placeholder' ? 'Input:1' : r));
    writeFileSync(join(dir, 'model.ckpt-1.meta'), encodeMessage('tensorflow.MetaGraphDef', meta as unknown as Record<string, unknown>));
    const g = await convertGraphFile(dir);
    expect(g.input).toMatchObject({ name: 'Input:0', op: 'IteratorGetNext', chosenBy: 'the float image output of the input pipeline (Input)', shape: [-1, 32, 32, 3] });
    expect(g.converted.opCounts.IteratorGetNext).toBeUndefined();
    expect(g.converted.opCounts.IteratorV2).toBeUndefined();
    const model = await loadImageModel(dir, { engine: 'tfjs' });
    try {
      const [a, b] = await Promise.all([model.forward(cifarPixels), checkpoint.forward(cifarPixels)]);
      expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
      tf.dispose([a, b]);
    } finally {
      model.dispose();
    }
  });

  it('gives the same input gradients on tfjs and onnxruntime', async () => {
    for (const spec of [CIFAR_DIR, FROZEN]) {
      const ort = await loadImageModel(spec, { engine: 'onnxruntime' });
      try {
        expect(ort.engine.name).toBe('onnxruntime');
        const a = await checkpoint.gradient!(cifarPixels, [0, 3, 5, 9]);
        const b = await ort.gradient!(cifarPixels, [0, 3, 5, 9]);
        expect(tf.norm(a.gradients).dataSync()[0]).toBeGreaterThan(0);
        expect(relativeError(await b.gradients.data(), await a.gradients.data())).toBeLessThan(1e-4);
        tf.dispose([a.gradients, a.values, b.gradients, b.values]);
      } finally {
        ort.dispose();
      }
    }
  });
});

describe('frozen Custom Vision graphs', () => {
  it('give the expected scores of SOURCES.md on the four test photos (upstream cropping, bgr preprocessing)', async () => {
    const expected: Record<string, number[]> = {
      // [apples_bananas_model.pb score, fruits_model.pb score] for the photo's own label.
      apple1: [1.0, 0.19],
      apple2: [1.0, 0.64],
      banana1: [1.0, 0.9997],
      banana2: [0.9999, 0.996],
    };
    for (const [file, labelsFile, column] of [['apples_bananas_model.pb', 'apples_bananas_labels.txt', 0], ['fruits_model.pb', 'fruits_labels.txt', 1]] as const) {
      const model = await loadImageModel(join(FRUITS, file), { labels: join(FRUITS, labelsFile), preprocess: 'bgr', engine: 'tfjs' });
      try {
        expect([model.inputShape, model.output, model.info.graphCut?.output.name]).toEqual([[227, 227, 3], 'probability', 'loss:0']);
        for (const photo of PHOTOS) {
          const name = photo.split('/').pop()!.replace('.jpg', '');
          const x = await customVisionPixels(photo);
          const scores = Array.from(await (await model.forward(x)).data());
          const label = name.startsWith('apple') ? 'Apple' : 'Banana';
          const best = scores.indexOf(Math.max(...scores));
          expect(model.labels![best], `${file} ${name}`).toBe(label);
          expect(scores[best], `${file} ${name}`).toBeCloseTo(expected[name]![column]!, 1);
          x.dispose();
        }
      } finally {
        model.dispose();
      }
    }
  });

  it('compile to onnxruntime (in-graph mean subtraction folds) with the same gradients', async () => {
    // apple1 on the four-fruit model scores 0.19: the sigmoid is far from saturation, so the gradient is well conditioned.
    const x = await customVisionPixels(PHOTOS[0]!);
    const [a, b] = [await loadImageModel(join(FRUITS, 'fruits_model.pb'), { preprocess: 'bgr', engine: 'tfjs' }), await loadImageModel(join(FRUITS, 'fruits_model.pb'), { preprocess: 'bgr', engine: 'onnxruntime' })];
    try {
      const ga = await a.gradient!(x, 0);
      const gb = await b.gradient!(x, 0);
      // 26 float32 convolutions deep, the engines' summation orders differ: compare the maps' direction and their largest entries.
      const [da, db] = [await ga.gradients.data(), await gb.gradients.data()];
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let i = 0; i < da.length; i++) {
        dot += da[i]! * db[i]!;
        na += da[i]! ** 2;
        nb += db[i]! ** 2;
      }
      expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.99999);
      expect(relativeError(db, da)).toBeLessThan(1e-2);
      expect(Math.abs((await gb.values.data())[0]! - (await ga.values.data())[0]!)).toBeLessThan(1e-5);
      tf.dispose([ga.gradients, ga.values, gb.gradients, gb.values]);
    } finally {
      a.dispose();
      b.dispose();
      x.dispose();
    }
  });
});

describe('bad checkpoints and graphs: one-line errors naming the file and the fault', () => {
  it('a checkpoint file pointing at missing shards', async () => {
    const dir = modelDir('missing', { 'model.ckpt-300': REAL }, 'model.ckpt-300');
    rmSync(join(dir, 'model.ckpt-300.data-00000-of-00001'));
    await expectLensError(loadImageModel(dir), 'MODEL_CORRUPT', /missing\/checkpoint names checkpoint model\.ckpt-300, but it has no data shards/);
    // An index that expects more shards than there are.
    copyFileSync(REAL.data, join(dir, 'model.ckpt-300.data-00000-of-00001'));
    writeFileSync(join(dir, 'checkpoint'), 'model_checkpoint_path: "model.ckpt-400"\n');
    await expectLensError(loadImageModel(dir), 'MODEL_CORRUPT', /names checkpoint model\.ckpt-400, but .*model\.ckpt-400\.index does not exist/);
  });

  it('a V1 checkpoint', async () => {
    const dir = join(tmp, 'v1');
    mkdirSync(dir);
    copyFileSync(join(CIFAR_DIR, 'model.ckpt.meta'), join(dir, 'model.ckpt-5.meta'));
    copyFileSync(REAL.data, join(dir, 'model.ckpt-5'));
    writeFileSync(join(dir, 'checkpoint'), 'model_checkpoint_path: "model.ckpt-5"\n');
    await expectLensError(loadImageModel(dir), 'MODEL_UNSUPPORTED', /v1\/model\.ckpt-5 is a V1 checkpoint \(one tensor-slice file, no \.index\)/);
  });

  it('graph flags on a model that is no graph file', async () => {
    await expectLensError(loadImageModel(FROZEN, { checkpoint: 3 }), 'INVALID_ARGUMENT', /--checkpoint applies to TF1 checkpoint directories; .*frozen_model\.pb is a frozen-graph model/);
    await expectLensError(loadImageModel(join(EXT, 'keras3-mnist-cnn/mnist_cnn.keras'), { inputTensor: 'x:0' }), 'INVALID_ARGUMENT', /--input-tensor applies to TF1 checkpoints and frozen graphs; .*mnist_cnn\.keras is a keras3 model/);
  });

  it('a .meta without the named tensor', async () => {
    await expectLensError(loadImageModel(CIFAR_DIR, { inputTensor: 'Images:0' }), 'UNKNOWN_TENSOR', /model\.ckpt\.meta has no tensor "Images:0" \(--input-tensor\)/);
    await expectLensError(loadImageModel(FROZEN, { outputTensor: 'logits:0' }), 'UNKNOWN_TENSOR', /frozen_model\.pb has no tensor "logits:0" \(--output-tensor\)/);
    // An output on the loss path needs the labels placeholder, which an image model does not feed.
    await expectLensError(loadImageModel(CIFAR_DIR, { outputTensor: 'hinge_loss/Sub:0' }), 'SAVEDMODEL_UNSUPPORTED', /model\.ckpt\.meta: its outputs need placeholder\(s\) "Placeholder"; the cut from Input:0 to hinge_loss\/Sub:0 needs them/);
  });

  it('an op TensorFlow.js cannot run, named with its node', async () => {
    const graph = decodeMessage<{ node: { name: string; op: string }[] }>('tensorflow.GraphDef', readFileSync(FROZEN), 'pb');
    graph.node.find((n) => n.op === 'Relu')!.op = 'FancyActivation';
    const path = join(tmp, 'fancy.pb');
    writeFileSync(path, encodeMessage('tensorflow.GraphDef', graph as unknown as Record<string, unknown>));
    await expectLensError(loadImageModel(path), 'UNSUPPORTED_OP', /fancy\.pb: .*FancyActivation \(node "OutputConvRelu_1"\)/);
  });

  it('a graph whose input cannot be inferred asks for --input-tensor', async () => {
    const graph = decodeMessage<{ node: { name: string; op: string; attr?: Record<string, unknown> }[] }>('tensorflow.GraphDef', readFileSync(FROZEN), 'pb');
    graph.node.push(
      { name: 'Second', op: 'Placeholder', attr: { dtype: { type: 1 }, shape: { shape: { dim: [{ size: -1 }, { size: 8 }, { size: 8 }, { size: 3 }] } } } },
      { name: 'Doubled', op: 'AddV2', input: ['Second', 'Second'], attr: { T: { type: 1 } } } as never,
    );
    const path = join(tmp, 'two-inputs.pb');
    writeFileSync(path, encodeMessage('tensorflow.GraphDef', graph as unknown as Record<string, unknown>));
    await expectLensError(loadImageModel(path), 'INVALID_ARGUMENT', /two-inputs\.pb: cannot tell the image input \(candidates: Input:0, Second:0\); name it with --input-tensor NAME:0/);
    const ok = await loadImageModel(path, { inputTensor: 'Input:0', engine: 'tfjs' });
    expect(ok.inputShape).toEqual([32, 32, 3]);
    ok.dispose();
  });
});

describe('lens inspect on checkpoints and frozen graphs', () => {
  it('lists the checkpoints with steps and dates, the variables, and the cut', async () => {
    const r = await runLens(['inspect', STEPS_DIR, '--checkpoint', '8000']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\* step 8000\s+2024-03-01T10:00:00\.000Z\s+.*model\.ckpt-8000$/m);
    expect(r.stdout).toMatch(/^ {2}step 12000\s+2024-03-02T10:00:00\.000Z/m);
    expect(r.stdout).toMatch(/^ {2}Wconv1\s+DT_FLOAT\s+\[7,7,3,32\]$/m);
    expect(r.stdout).toMatch(/^input: {2}Input:0 \(Placeholder, \(-1, 32, 32, 3\)\): the one float image placeholder$/m);
    expect(r.stdout).toMatch(/^output: Output:0 \(MatMul\): the node named Output$/m);
    const j = await runLens(['inspect', join(FRUITS, 'fruits_model.pb'), '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ kind: 'frozen-graph', nodes: 216, ops: { Conv2D: 25, Sigmoid: 1 }, cut: { output: { name: 'loss:0' } } });
  });
});
