import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { readKerasWeights, writeKerasH5 } from '../../src/convert/keras/index.js';
import { loadImageModel } from '../../src/models/load.js';
import { buildResNet50 } from '../../src/models/zoo/resnet50.js';

const tmp = mkdtempSync(join(tmpdir(), 'lens-resnet50-'));

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('ResNet50 (Keras Applications layout)', () => {
  it('has Keras ResNet50 v1 layer names, parameter count and a logits head', async () => {
    const net = await buildResNet50();
    try {
      expect(net.model.countParams()).toBe(25_636_712); // Keras: model.count_params() of ResNet50(weights=None)
      const names = net.model.layers.map((l) => l.name);
      expect(names).toHaveLength(178); // Keras's 177 layers + the separate softmax
      expect(names.slice(0, 7)).toEqual(['input_1', 'conv1_pad', 'conv1_conv', 'conv1_bn', 'conv1_relu', 'pool1_pad', 'pool1_pool']);
      const block1 = ['0_conv', '0_bn', '1_conv', '1_bn', '1_relu', '2_conv', '2_bn', '2_relu', '3_conv', '3_bn', 'add', 'out'].map((s) => `conv2_block1_${s}`);
      expect(names.filter((n) => n.startsWith('conv2_block1_')).sort()).toEqual([...block1].sort());
      for (const n of ['conv3_block4_out', 'conv4_block6_3_bn', 'conv5_block1_0_conv', 'conv5_block3_out', 'avg_pool', 'predictions', 'predictions_softmax']) expect(names).toContain(n);
      expect(names).not.toContain('conv2_block2_0_conv'); // identity shortcuts after the first block
      expect(net.model.getLayer('conv1_conv').weights.map((w) => w.originalName)).toEqual(['conv1_conv/kernel', 'conv1_conv/bias']);
      expect(net.model.getLayer('conv1_bn').weights.map((w) => w.originalName)).toEqual(['conv1_bn/gamma', 'conv1_bn/beta', 'conv1_bn/moving_mean', 'conv1_bn/moving_variance']);
      expect(net.model.getLayer('conv3_block1_1_conv').getConfig()).toMatchObject({ strides: [2, 2], kernelSize: [1, 1] }); // v1: stride on the first 1x1
      expect(net.model.getLayer('conv2_block1_1_conv').getConfig()).toMatchObject({ strides: [1, 1] });
      expect(net.model.getLayer('conv5_block3_out').output).toMatchObject({ shape: [null, 7, 7, 2048] });
      expect(net.finalSoftmax).toBe(true);
      expect(net.preprocessing).toBe('caffe');
      const x = tf.randomUniform([1, 224, 224, 3], -120, 120, 'float32', 2);
      const [logits, probs] = [net.logits.predict(x) as tf.Tensor, net.model.predict(x) as tf.Tensor];
      expect(logits.shape).toEqual([1, 1000]);
      expect(tf.max(tf.abs(tf.sub(tf.softmax(logits), probs))).dataSync()[0]).toBeLessThan(1e-6);
      tf.dispose([x, logits, probs]);
    } finally {
      net.model.dispose();
    }
  });

  it('loads a weights file in the official layout by layer and weight name, and through loadImageModel', async () => {
    const source = await buildResNet50({ inputShape: [64, 64, 3] });
    const path = join(tmp, 'resnet50_weights_tf_dim_ordering_tf_kernels.h5');
    await writeKerasH5(source.model, path); // weights-only, as keras save_weights writes
    const set = await readKerasWeights(path);
    expect(set.layers.get('conv1_conv')!.map((w) => w.name)).toEqual(['conv1_conv/kernel:0', 'conv1_conv/bias:0']);
    expect(set.layers.get('predictions')!.map((w) => w.shape)).toEqual([[2048, 1000], [1000]]);
    const x = tf.randomUniform([2, 64, 64, 3], 0, 255, 'float32', 9) as tf.Tensor4D;
    const want = tf.tidy(() => source.logits.predict(tf.sub(tf.reverse(x, 3), tf.tensor1d([103.939, 116.779, 123.68]))) as tf.Tensor);
    const rebuilt = await buildResNet50({ weights: set, inputShape: [64, 64, 3] });
    expect(tf.max(tf.abs(tf.sub(rebuilt.logits.predict(tf.sub(tf.reverse(x, 3), tf.tensor1d([103.939, 116.779, 123.68]))) as tf.Tensor, want))).dataSync()[0]).toBeLessThan(1e-4);
    rebuilt.model.dispose();
    source.model.dispose();
    // loadImageModel recognises the layout of a weights-only file and uses the ResNet50 architecture and its caffe preprocessing.
    const model = await loadImageModel(path);
    try {
      expect(model.info).toMatchObject({ format: 'keras-h5', preprocessingSource: 'zoo', finalSoftmax: true });
      expect(model.preprocessing).toBe('caffe');
      expect(model.output).toBe('logit');
      expect(model.inputShape).toEqual([224, 224, 3]);
      expect(model.classes).toBe(1000);
    } finally {
      model.dispose();
    }
    tf.dispose([x, want]);
  });
});
