import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { DEFAULT_MODEL_DIR, loadImageModel } from '../../src/models/load.js';
import { preprocess } from '../../src/core/preprocess.js';
import { SHARED } from '../helpers/cli.js';

const EXT = join(SHARED, 'models-external');
const RESNET8 = join(EXT, 'mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const V1 = join(EXT, 'mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant.tflite');
const CIFAR = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const tmp = mkdtempSync(join(tmpdir(), 'lens-load-'));

async function expectLensError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isLensError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an error');
}

/** Saves a LayersModel as model.json + weights.bin, the tfjs layout. */
async function saveLayers(model: tfl.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData as ArrayBuffer;
      writeFileSync(join(dir, 'weights.bin'), Buffer.from(data));
      const json = { format: 'layers-model', generatedBy: 'test', convertedBy: null, modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

function tinyClassifier(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'head' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('loadImageModel', () => {
  it('loads a .tflite with quantization-derived preprocessing and embedded labels; --preprocess wins', async () => {
    const model = await loadImageModel(V1);
    expect(model.info).toMatchObject({ format: 'tflite', preprocessingSource: 'quantization', finalSoftmax: true, labelsSource: `${V1}#imagenet_labels.txt` });
    expect(model.name).toBe('mobilenet_v1_0.25_128_quant');
    expect(model.preprocessing).toBe('symmetric');
    expect(model.labels?.[89]).toBe('macaw');
    // Compiled to onnxruntime through the lowering to TensorFlow ops, unless tfjs is chosen.
    expect(model.engine.name).toBe('onnxruntime');
    const unit = await loadImageModel(V1, { preprocess: 'unit', engine: 'tfjs' });
    expect(unit.info.preprocessingSource).toBe('option');
    expect(unit.preprocessing).toBe('unit');
    expect(unit.engine).toMatchObject({ name: 'tfjs', reason: 'engine tfjs was chosen' });
    model.dispose();
    unit.dispose();
  });

  it('loads a Keras .h5 with labels from a file and layer access for Grad-CAM', async () => {
    const labelsFile = join(tmp, 'cifar.txt');
    writeFileSync(labelsFile, `${CIFAR.join('\n')}\n`);
    const model = await loadImageModel(RESNET8, { labels: labelsFile });
    try {
      expect(model.info).toMatchObject({ format: 'keras-h5', preprocessingSource: 'default', finalSoftmax: true, labelsSource: labelsFile });
      expect(model.preprocessing).toBe('raw');
      expect(model.output).toBe('logit');
      expect(model.labels).toEqual(CIFAR);
      const access = (model as unknown as { layerAccess: { layers(): { name: string; className: string }[] } }).layerAccess;
      expect(access.layers().filter((l) => l.className === 'Conv2D')).toHaveLength(9);
      await expectLensError(loadImageModel(RESNET8, { labels: ['a', 'b'] }), 'SHAPE_MISMATCH', /has 10 classes but 2 labels were given/);
    } finally {
      model.dispose();
    }
  });

  it('loads a tfjs model.json folder with a lens.json sidecar (logits behind Dense softmax)', async () => {
    const source = tinyClassifier();
    const dir = join(tmp, 'tiny');
    await saveLayers(source, dir);
    writeFileSync(join(dir, 'lens.json'), JSON.stringify({ name: 'tiny', inputShape: [8, 8, 3], classes: 3, labels: ['a', 'b', 'c'], preprocessing: 'unit', output: 'probability', format: 'layers', accuracy: 0.5 }));
    const model = await loadImageModel(dir);
    try {
      expect(model.name).toBe('tiny');
      expect(model.info).toMatchObject({ format: 'layers', preprocessingSource: 'sidecar', finalSoftmax: true, labelsSource: `${dir}/lens.json` });
      expect(model.info.sidecar?.accuracy).toBe(0.5);
      expect(model.preprocessing).toBe('unit');
      expect(model.output).toBe('logit');
      expect(model.labels).toEqual(['a', 'b', 'c']);
      const pixels = tf.randomUniform([2, 8, 8, 3], 0, 255, 'float32', 4) as tf.Tensor4D;
      const logits = await model.forward(pixels);
      const probs = source.predict(preprocess(pixels, 'unit')) as tf.Tensor;
      expect(tf.max(tf.abs(tf.sub(tf.softmax(logits), probs))).dataSync()[0]).toBeLessThan(1e-5);
      // The model.json path itself works too, and an explicit preprocessing beats the sidecar.
      const direct = await loadImageModel(join(dir, 'model.json'), { preprocess: 'raw' });
      expect(direct.info.preprocessingSource).toBe('option');
      expect(direct.preprocessing).toBe('raw');
      direct.dispose();
      tf.dispose([pixels, logits, probs]);
    } finally {
      model.dispose();
    }
  });

  it('loads a tfjs graph model and takes the logits before its Softmax node, with gradients', async () => {
    const dir = join(tmp, 'graph');
    mkdirSync(dir, { recursive: true });
    const w = Float32Array.from({ length: 16 * 3 }, (_, i) => Math.cos(i));
    const shape = Int32Array.from([-1, 16]);
    writeFileSync(join(dir, 'w.bin'), Buffer.concat([Buffer.from(w.buffer), Buffer.from(shape.buffer)]));
    const f32 = { type: 'DT_FLOAT' };
    const json = {
      format: 'graph-model',
      generatedBy: 'test',
      convertedBy: 'test',
      modelTopology: {
        node: [
          { name: 'x', op: 'Placeholder', attr: { dtype: f32, shape: { shape: { dim: [{ size: '-1' }, { size: '4' }, { size: '4' }, { size: '1' }] } } } },
          { name: 'w', op: 'Const', attr: { dtype: f32, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '16' }, { size: '3' }] } } } } },
          { name: 'flat/shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: { dim: [{ size: '2' }] } } } } },
          { name: 'flat', op: 'Reshape', input: ['x', 'flat/shape'], attr: { T: f32, Tshape: { type: 'DT_INT32' } } },
          { name: 'logits', op: 'MatMul', input: ['flat', 'w'], attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } } },
          { name: 'probs', op: 'Softmax', input: ['logits'], attr: { T: f32 } },
        ],
        versions: { producer: 1 },
      },
      weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'w', shape: [16, 3], dtype: 'float32' }, { name: 'flat/shape', shape: [2], dtype: 'int32' }] }],
    };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
    const model = await loadImageModel(dir, { preprocess: 'unit' });
    try {
      expect(model.info).toMatchObject({ format: 'graph', finalSoftmax: true });
      expect(model.output).toBe('logit');
      expect(model.inputShape).toEqual([4, 4, 1]);
      const pixels = tf.randomUniform([2, 4, 4, 1], 0, 255, 'float32', 6) as tf.Tensor4D;
      const logits = await model.forward(pixels);
      const want = tf.matMul(tf.reshape(tf.div(pixels, 255), [2, 16]), tf.tensor2d(w, [16, 3]));
      expect(tf.max(tf.abs(tf.sub(logits, want))).dataSync()[0]).toBeLessThan(1e-5);
      // d logit_1 / d pixel = w[:, 1] / 255 for a linear graph.
      const { gradients } = await model.gradient!(pixels, 1);
      const g = Array.from(await gradients.data()).slice(0, 16);
      g.forEach((v, i) => expect(v).toBeCloseTo(w[i * 3 + 1]! / 255, 6));
      tf.dispose([pixels, logits, want, gradients]);
    } finally {
      model.dispose();
    }
  });

  it('delegates SavedModel folders and TF Serving base paths to the SavedModel loader', async () => {
    const mnist = await loadImageModel(join(SHARED, 'testdata/savedmodels-cnn/dotnet-mnist-conv-tf1'), { preprocess: 'unit' });
    try {
      expect(mnist.info).toMatchObject({ format: 'savedmodel', preprocessingSource: 'option', finalSoftmax: true });
      expect(mnist.inputShape).toEqual([28, 28, 1]);
      expect(mnist.classes).toBe(10);
      expect(mnist.preprocessing).toBe('unit');
    } finally {
      mnist.dispose();
    }
    // A base path picks its highest numeric version (here a non-image model, refused by name).
    await expectLensError(loadImageModel(join(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_2_versions')), 'MODEL_UNSUPPORTED', /saved_model_half_plus_two_2_versions\/00000124: input "x" has shape \[-1,1\]/);
  });

  it.runIf(existsSync(DEFAULT_MODEL_DIR))('loads the bundled default model', async () => {
    const model = await loadImageModel('default');
    try {
      expect(model.info.format).toBe('layers');
      expect(model.info.preprocessingSource).toBe('sidecar');
      expect(model.output).toBe('logit');
      expect(model.labels?.length).toBe(model.classes);
    } finally {
      model.dispose();
    }
  });

  it('says what is wrong with specs it cannot load', async () => {
    await expectLensError(loadImageModel('no-such-model-anywhere'), 'UNKNOWN_MODEL', /neither a file or folder nor a known name/);
    const keras3 = join(tmp, 'model.keras');
    writeFileSync(keras3, 'PK');
    await expectLensError(loadImageModel(keras3), 'MODEL_CORRUPT', /model\.keras is not a readable \.keras \(zip\) archive/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    await expectLensError(loadImageModel(empty), 'UNKNOWN_MODEL', /holds no saved_model\.pb .*, no model\.json and no TF1 checkpoint/);
    const badSidecar = join(tmp, 'bad-sidecar');
    await saveLayers(tinyClassifier(), badSidecar);
    writeFileSync(join(badSidecar, 'lens.json'), JSON.stringify({ preprocessing: 'imagenet' }));
    await expectLensError(loadImageModel(badSidecar), 'MODEL_CORRUPT', /lens\.json: unknown preprocessing "imagenet"/);
    await expectLensError(loadImageModel(RESNET8, { preprocess: 'yuv' }), 'INVALID_ARGUMENT', /unknown preprocessing "yuv"/);
    const txt = join(tmp, 'weights.npz');
    writeFileSync(txt, 'x');
    await expectLensError(loadImageModel(txt), 'UNKNOWN_MODEL', /cannot tell the format/);
    // A photo, or a folder of photos, where the model goes.
    await expectLensError(loadImageModel(join(SHARED, 'images/parrot.jpg')), 'UNKNOWN_MODEL', /images\/parrot\.jpg is an image, not a model: give the model to --model and the images as the command's arguments$/);
    await expectLensError(loadImageModel(join(SHARED, 'images')), 'UNKNOWN_MODEL', /holds no saved_model\.pb .*, only images: give the model to --model/);
  });
});
