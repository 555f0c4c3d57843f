import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { loadPixels, pixelsToTensor } from '../../src/image/index.js';
import { topK } from '../../src/core/model.js';
import { imageModelFromLayers } from '../../src/models/keras.js';
import {
  importKerasModel,
  readKerasFile,
  translateKerasConfig,
  writeKerasH5,
} from '../../src/convert/keras/index.js';
import { createHdf5 } from '../../src/convert/keras/h5.js';
import { importTflite } from '../../src/convert/tflite/index.js';
import { imageModelFromTflite } from '../../src/models/tflite.js';
import { SHARED } from '../helpers/cli.js';

const EXT = join(SHARED, 'models-external');
const RESNET8 = join(EXT, 'mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const VWW_H5 = join(EXT, 'mlcommons-vww-96/vww_96.h5');
const VWW_TFLITE = join(EXT, 'mlcommons-vww-96/vww_96_float.tflite');
const CIFAR = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const tmp = mkdtempSync(join(tmpdir(), 'lens-keras-'));

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

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('real Keras HDF5 files', () => {
  it('imports ResNet-8 (CIFAR-10): structure, logits behind the final softmax, trained predictions', async () => {
    const info = await readKerasFile(RESNET8);
    expect(info.kerasVersion).toBe('2.4.0');
    expect(info.hasTrainingConfig).toBe(true);
    const layers = await importKerasModel(RESNET8);
    const classes = layers.layers.map((l) => l.getClassName());
    expect(classes).toHaveLength(30);
    expect(classes.filter((c) => c === 'Conv2D')).toHaveLength(9);
    expect(classes.filter((c) => c === 'Add')).toHaveLength(3);
    const model = imageModelFromLayers(layers, { name: 'resnet8', preprocessing: 'raw', labels: CIFAR });
    try {
      expect(model.head.finalSoftmax).toBe(true);
      expect(model.output).toBe('logit');
      expect(model.inputShape).toEqual([32, 32, 3]);
      const pixels = await Promise.all(['cat.bmp', 'bird.bmp', 'parrot.jpg'].map((f) => loadPixels(join(SHARED, 'images', f), { size: [32, 32], resize: 'squash' })));
      const x = pixelsToTensor(pixels);
      const logits = await model.forward(x);
      // The logits are the Dense layer before its softmax: softmax(logits) is the Keras output.
      const probs = layers.predict(x) as tf.Tensor;
      expect(maxAbsDiff(tf.softmax(logits), probs)).toBeLessThan(1e-5);
      const top = ((await logits.array()) as number[][]).map((r) => topK(r, 1, CIFAR)[0]!.label);
      expect(top).toEqual(['cat', 'bird', 'bird']);
      tf.dispose([x, logits, probs]);
    } finally {
      model.dispose();
    }
  });

  it('vww_96.h5 and vww_96_float.tflite agree within 1e-4', async () => {
    const keras = imageModelFromLayers(await importKerasModel(VWW_H5), { name: 'vww-h5', preprocessing: 'unit' });
    const lite = await imageModelFromTflite(await importTflite(VWW_TFLITE), { name: 'vww-tflite', preprocessing: 'unit' });
    const kerasProbs = imageModelFromLayers(await importKerasModel(VWW_H5), { name: 'vww-h5-p', preprocessing: 'unit', probabilities: true });
    const liteProbs = await imageModelFromTflite(await importTflite(VWW_TFLITE), { name: 'vww-tflite-p', preprocessing: 'unit', probabilities: true });
    try {
      expect(keras.output).toBe('logit');
      expect(lite.output).toBe('logit');
      const photos = await Promise.all(['grace_hopper.bmp', 'cat.bmp', 'hot_dog.jpg'].map((f) => loadPixels(join(SHARED, 'images', f), { size: [96, 96], resize: 'squash' })));
      const x = tf.concat([pixelsToTensor(photos), tf.randomUniform([2, 96, 96, 3], 0, 255, 'float32', 11)]) as tf.Tensor4D;
      const [a, b, pa, pb] = await Promise.all([keras.forward(x), lite.forward(x), kerasProbs.forward(x), liteProbs.forward(x)]);
      expect(a.shape).toEqual([5, 2]);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
      expect(maxAbsDiff(pa, pb)).toBeLessThan(1e-4);
      // Grace Hopper is a person (class 1).
      expect(topK((await pa.array() as number[][])[0]!, 1)[0]!.index).toBe(1);
      tf.dispose([x, a, b, pa, pb]);
    } finally {
      [keras, lite, kerasProbs, liteProbs].forEach((m) => m.dispose());
    }
  });

  it('input gradients of an imported model match finite differences (cpu backend)', async () => {
    await initBackend({ backend: 'cpu' });
    const model = imageModelFromLayers(await importKerasModel(RESNET8), { name: 'resnet8', preprocessing: 'raw' });
    try {
      const x = tf.randomUniform([1, 32, 32, 3], 0, 255, 'float32', 5) as tf.Tensor4D;
      const { gradients, values } = await model.gradient!(x, 3);
      const g = (await gradients.data()) as Float32Array;
      const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
      expect(norm).toBeGreaterThan(0);
      const dir = tf.div(gradients, norm);
      const eps = 0.05;
      const f = async (t: tf.Tensor) => ((await (await model.forward(t as tf.Tensor4D)).array()) as number[][])[0]![3]!;
      const fd = ((await f(tf.add(x, tf.mul(dir, eps)))) - (await f(tf.sub(x, tf.mul(dir, eps))))) / (2 * eps);
      expect(Math.abs(fd - norm) / norm).toBeLessThan(0.02);
      expect((await values.data())[0]).toBeCloseTo(await f(x), 3);
      tf.dispose([x, gradients, values, dir]);
    } finally {
      model.dispose();
      await initBackend({ backend: 'wasm' });
    }
  });
});

function smallNet(filters = 4): tfl.LayersModel {
  const input = tfl.input({ shape: [12, 12, 3], name: 'pixels' });
  let x = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters, kernelSize: 3, strides: 2, name: 'conv' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'relu6' }).apply(x) as tfl.SymbolicTensor;
  const y = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.add({ name: 'add' }).apply([x, y]) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.5, name: 'drop' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 3, name: 'logits' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.softmax({ name: 'probs' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out, name: 'small' });
  // Non-trivial batch-norm statistics so that a wrong assignment shows.
  const bn = model.getLayer('bn');
  bn.setWeights(bn.getWeights().map((w, i) => tf.add(w, tf.randomUniform(w.shape, 0.1, 0.5, 'float32', i))));
  return model;
}

describe('Keras HDF5 written by the project', () => {
  it('round-trips a full model (config + weights) and a weights-only file', async () => {
    const source = smallNet();
    const x = tf.randomUniform([2, 12, 12, 3], 0, 1, 'float32', 1);
    const want = source.predict(x) as tf.Tensor;
    const full = join(tmp, 'small_full.h5');
    await writeKerasH5(source, full, { modelConfig: source.toJSON(null, false) as object });
    const back = await importKerasModel(full);
    expect(maxAbsDiff(back.predict(x) as tf.Tensor, want)).toBeLessThan(1e-6);
    // The Softmax layer is found and cut for logits.
    const wrapped = imageModelFromLayers(back, { name: 'small', preprocessing: 'unit' });
    expect(wrapped.head.logits).toBe(true);
    const weightsOnly = join(tmp, 'small_weights.h5');
    await writeKerasH5(source, weightsOnly);
    await expectLensError(importKerasModel(weightsOnly), 'MODEL_UNSUPPORTED', /holds weights only \(no model_config\); pass the architecture/);
    const into = await importKerasModel(weightsOnly, { architecture: smallNet });
    expect(maxAbsDiff(into.predict(x) as tf.Tensor, want)).toBeLessThan(1e-6);
    // A renamed architecture still loads, by layer order as Keras does.
    const renamed = await importKerasModel(weightsOnly, {
      architecture: () => {
        const m = smallNet();
        m.layers.forEach((l) => ((l as unknown as { name: string }).name = `other_${l.name}`));
        return m;
      },
    });
    expect(maxAbsDiff(renamed.predict(x) as tf.Tensor, want)).toBeLessThan(1e-6);
    // An architecture of another shape is refused with the weight at fault.
    await expectLensError(importKerasModel(weightsOnly, { architecture: () => smallNet(5) }), 'SHAPE_MISMATCH', /conv\/kernel:0 has shape \[3,3,3,4\] but layer conv expects \[3,3,3,5\]/);
    tf.dispose([x, want]);
  });

  it('translates Keras 3 style configs (batch_shape, dtype policies, args/kwargs nodes)', async () => {
    const tensor = (layer: string) => ({ class_name: '__keras_tensor__', config: { shape: [null, 8], dtype: 'float32', keras_history: [layer, 0, 0] } });
    const policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
    const config = {
      module: 'keras.src.models.functional',
      class_name: 'Functional',
      config: {
        name: 'k3',
        trainable: true,
        layers: [
          { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 8], dtype: 'float32', sparse: false, ragged: false, name: 'in' }, registered_name: null, name: 'in', inbound_nodes: [] },
          {
            module: 'keras.layers', class_name: 'Dense', registered_name: null, name: 'd1',
            config: { name: 'd1', trainable: true, dtype: policy, units: 4, activation: 'relu', use_bias: true, kernel_initializer: { module: 'keras.initializers', class_name: 'GlorotUniform', config: { seed: null } }, bias_initializer: { class_name: 'Zeros', config: {} }, kernel_regularizer: { class_name: 'L2', config: { l2: 0.01 } } },
            inbound_nodes: [{ args: [tensor('in')], kwargs: {} }],
          },
          { module: 'keras.layers', class_name: 'Dense', registered_name: null, name: 'd2', config: { name: 'd2', dtype: policy, units: 4, activation: 'linear' }, inbound_nodes: [{ args: [tensor('in')], kwargs: {} }] },
          { module: 'keras.layers', class_name: 'Add', registered_name: null, name: 'sum', config: { name: 'sum', dtype: policy }, inbound_nodes: [{ args: [[tensor('d1'), tensor('d2')]], kwargs: {} }] },
        ],
        input_layers: ['in', 0, 0],
        output_layers: ['sum', 0, 0],
      },
    };
    const topology = translateKerasConfig(config, 'k3.h5');
    const model = await tfl.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]);
    expect(model.layers.map((l) => l.name)).toEqual(['in', 'd1', 'd2', 'sum']);
    expect(model.outputs[0]!.shape).toEqual([null, 4]);
  });

  it('imports a Keras 2 Sequential model saved with model.save (config as Keras writes it)', async () => {
    const reg = { class_name: 'L1L2', config: { l1: 0, l2: 0.001 } };
    const config = {
      class_name: 'Sequential',
      config: {
        name: 'seq',
        layers: [
          { class_name: 'InputLayer', config: { batch_input_shape: [null, 6, 6, 1], dtype: 'float32', sparse: false, ragged: false, name: 'in' } },
          { class_name: 'Conv2D', config: { name: 'c', trainable: true, dtype: 'float32', filters: 2, kernel_size: [3, 3], strides: [1, 1], padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: true, kernel_initializer: { class_name: 'HeNormal', config: { seed: null } }, bias_initializer: { class_name: 'Zeros', config: {} }, kernel_regularizer: reg, bias_regularizer: null, activity_regularizer: null, kernel_constraint: { class_name: 'MaxNorm', config: { max_value: 2, axis: 0 } }, bias_constraint: null } },
          { class_name: 'Activation', config: { name: 'act', trainable: true, dtype: 'float32', activation: 'swish' } },
          { class_name: 'AveragePooling2D', config: { name: 'avg', trainable: true, dtype: 'float32', pool_size: [2, 2], padding: 'valid', strides: [2, 2], data_format: 'channels_last' } },
          { class_name: 'Reshape', config: { name: 'r', trainable: true, dtype: 'float32', target_shape: [8] } },
          { class_name: 'SpatialDropout2D', config: { name: 'sd', trainable: true, dtype: 'float32', rate: 0.1, noise_shape: null, seed: null } },
          { class_name: 'Dense', config: { name: 'd', trainable: true, dtype: 'float32', units: 3, activation: 'softmax', use_bias: true, kernel_initializer: { class_name: 'SomeCustomInit', config: {} }, bias_initializer: { class_name: 'Zeros', config: {} } } },
        ],
      },
    };
    const kernel = Float32Array.from({ length: 18 }, (_, i) => (i - 9) / 10);
    const dense = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i));
    const path = join(tmp, 'seq.h5');
    const file = await createHdf5(path);
    file.create_attribute('model_config', JSON.stringify(config));
    file.create_attribute('keras_version', '2.4.0');
    const weights = file.create_group('model_weights');
    weights.create_attribute('layer_names', ['c', 'act', 'avg', 'r', 'sd', 'd']);
    const put = (layer: string, items: [string, Float32Array, number[]][]) => {
      const g = weights.create_group(layer);
      if (items.length === 0) {
        g.create_attribute('weight_names', new Float64Array(0), [0]);
        return;
      }
      g.create_attribute('weight_names', items.map(([n]) => `${layer}/${n}:0`));
      const inner = g.create_group(layer);
      for (const [n, data, shape] of items) inner.create_dataset({ name: `${n}:0`, data, shape, dtype: '<f' });
    };
    put('c', [['kernel', kernel, [3, 3, 1, 2]], ['bias', Float32Array.from([0.5, -0.5]), [2]]]);
    for (const l of ['act', 'avg', 'r', 'sd']) put(l, []);
    put('d', [['kernel', dense, [8, 3]], ['bias', Float32Array.from([0, 0.1, 0.2]), [3]]]);
    file.close();
    const model = await importKerasModel(path);
    expect(model.layers.map((l) => l.getClassName()).filter((c) => c !== 'InputLayer')).toEqual(['Conv2D', 'Activation', 'AveragePooling2D', 'Reshape', 'Dropout', 'Dense']);
    const x = tf.randomUniform([2, 6, 6, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
    const want = tf.tidy(() => {
      let h: tf.Tensor = tf.add(tf.conv2d(x, tf.tensor4d(kernel, [3, 3, 1, 2]), 1, 'valid'), tf.tensor1d([0.5, -0.5]));
      h = tf.mul(h, tf.sigmoid(h));
      h = tf.reshape(tf.avgPool(h as tf.Tensor4D, 2, 2, 'valid'), [2, 8]);
      return tf.softmax(tf.add(tf.matMul(h as tf.Tensor2D, tf.tensor2d(dense, [8, 3])), tf.tensor1d([0, 0.1, 0.2])));
    });
    expect(maxAbsDiff(model.predict(x) as tf.Tensor, want)).toBeLessThan(1e-5);
    const wrapped = imageModelFromLayers(model, { name: 'seq', preprocessing: 'raw' });
    expect(wrapped.head.logits).toBe(true);
    tf.dispose([x, want]);
  });

  it('rejects truncated, non-HDF5 and unsupported files with specific errors', async () => {
    const truncated = join(tmp, 'truncated.h5');
    writeFileSync(truncated, readFileSync(RESNET8).subarray(0, 500_000));
    await expectLensError(importKerasModel(truncated), 'MODEL_CORRUPT', /truncated\.h5 is truncated: it has 500000 bytes but its superblock says 1116712/);
    const garbage = join(tmp, 'garbage.h5');
    writeFileSync(garbage, 'definitely not HDF5');
    await expectLensError(importKerasModel(garbage), 'MODEL_CORRUPT', /garbage\.h5 is not an HDF5 file/);
    await expectLensError(importKerasModel(join(tmp, 'absent.h5')), 'NOT_FOUND', /cannot read HDF5 file/);
    // Damage inside the group B-trees, past every header check: HDF5 fails deep in a lookup and
    // throws its whole diagnostic stack; the error is one line naming the file and the reason.
    const damaged = readFileSync(RESNET8);
    for (let i = 100_000; i < 600_000; i += 31) damaged[i] = 0xa5;
    const corrupt = join(tmp, 'corrupt.h5');
    writeFileSync(corrupt, damaged);
    for (const read of [importKerasModel, readKerasFile]) {
      const e = await read(corrupt).catch((x: unknown) => x);
      expect(isLensError(e, 'MODEL_CORRUPT')).toBe(true);
      expect((e as Error).message).toBe(`HDF5 file ${corrupt} is corrupt or unreadable: unknown symbol table entry cache type`);
    }
    // A real config with a Lambda layer spliced in, as Keras writes for Python lambdas.
    const config = structuredClone((await readKerasFile(RESNET8)).modelConfig) as {
      config: { layers: { class_name: string; name: string; config: Record<string, unknown> }[] };
    };
    const flatten = config.config.layers.find((l) => l.class_name === 'Flatten')!;
    flatten.class_name = 'Lambda';
    flatten.name = 'my_lambda';
    config.config.layers.find((l) => l.class_name === 'Activation')!.config.activation = 'my_custom_act';
    const lambda = join(tmp, 'lambda.h5');
    const file = await createHdf5(lambda);
    file.create_attribute('model_config', JSON.stringify(config));
    file.create_group('model_weights').create_attribute('layer_names', ['input_1']);
    file.close();
    await expectLensError(importKerasModel(lambda), 'MODEL_UNSUPPORTED', /unsupported Keras layers: activation \(Activation\(activation=my_custom_act\)\), my_lambda \(Lambda\)/);
  });
});

describe('HDF5 attribute details', () => {
  it('joins Keras chunked list attributes (layer_names0, layer_names1, ...)', async () => {
    const { openHdf5, stringListAttr } = await import('../../src/convert/keras/h5.js');
    const path = join(tmp, 'chunked.h5');
    const file = await createHdf5(path);
    file.create_attribute('layer_names0', ['a', 'b']);
    file.create_attribute('layer_names1', ['c']);
    file.close();
    const back = await openHdf5(path);
    try {
      expect(stringListAttr(back, 'layer_names')).toEqual(['a', 'b', 'c']);
      expect(stringListAttr(back, 'weight_names')).toBeUndefined();
    } finally {
      back.close();
    }
  });
});
