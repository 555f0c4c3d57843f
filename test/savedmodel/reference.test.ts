/**
 * The TensorFlow-written CNN SavedModels against an independent computation: each architecture is
 * written out from its documentation (../shared/testdata/savedmodels-cnn/SOURCES.md) in plain
 * JavaScript (test/helpers/reference-ops.ts) over the raw checkpoint values, and the project's
 * SavedModel runtime and both engines must give the same outputs. This catches wrong variable
 * mapping (a swapped batch-norm scale and offset, a transposed kernel) that engine-against-engine
 * checks cannot, since both engines start from the same converted graph.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { loadImageModel } from '../../src/models/load.js';
import { readTensorBundle } from '../../src/savedmodel/index.js';
import { loadSavedModel } from '../../src/engines/tfjs/savedmodel.js';
import { SHARED } from '../helpers/cli.js';
import {
  averagePool,
  batchNorm,
  conv2d,
  dense,
  flatten,
  fromFloat32,
  maxRelativeError,
  relu,
  reluRows,
  seededUniform,
  softmaxRows,
  type Nhwc,
} from '../helpers/reference-ops.js';

const fixture = (name: string) => join(SHARED, 'testdata/savedmodels-cnn', name);
const BATCH = 3;

type Weights = (name: string) => Promise<{ values: ArrayLike<number>; shape: number[] }>;

async function weightsOf(dir: string): Promise<Weights> {
  const bundle = await readTensorBundle(join(dir, 'variables/variables'));
  return async (name) => {
    const t = await bundle.read(name);
    return { values: t.values as ArrayLike<number>, shape: [...t.shape] };
  };
}

interface Reference {
  dir: string;
  input: string;
  output: string;
  shape: [number, number, number];
  /** The documented architecture over the checkpoint's values; returns the signature's output rows. */
  compute(x: Nhwc, w: Weights): Promise<Float64Array>;
  outputIsSoftmax: boolean;
}

const references: Reference[] = [
  {
    dir: 'dotnet-mnist-conv-tf1',
    input: 'Features',
    output: 'Prediction',
    shape: [28, 28, 1],
    outputIsSoftmax: true,
    async compute(x, w) {
      const layer = async (h: Nhwc, k: string, b: string, stride: number) => {
        const [kw, bw] = [await w(k), await w(b)];
        return relu(conv2d(h, kw.values, kw.shape, { stride, padding: 'same', bias: bw.values }));
      };
      let h = await layer(x, 'Variable', 'Variable_1', 1);
      h = await layer(h, 'Variable_2', 'Variable_3', 2);
      h = await layer(h, 'Variable_4', 'Variable_5', 2);
      const [w6, b7, w8, b9] = [await w('Variable_6'), await w('Variable_7'), await w('Variable_8'), await w('Variable_9')];
      const hidden = reluRows(dense(flatten(h), w6.values, w6.shape, b7.values));
      // Dropout keeps everything at the graph's default keep probability of 1.
      return softmaxRows(dense(hidden, w8.values, w8.shape, b9.values));
    },
  },
  {
    dir: 'dotnet-cifar-conv-tf1',
    input: 'Input',
    output: 'Output',
    shape: [32, 32, 3],
    outputIsSoftmax: false,
    async compute(x, w) {
      const [k, b, w1, b1] = [await w('Wconv1'), await w('bconv1'), await w('W1'), await w('b1')];
      // 32 -> 13 per side: a 7x7 kernel at stride 2 without padding.
      const h = relu(conv2d(x, k.values, k.shape, { stride: 2, padding: 'valid', bias: b.values }));
      return dense(flatten(h), w1.values, w1.shape, b1.values).data;
    },
  },
  {
    dir: 'mlcommons-tiny-kws-dscnn-tf2',
    input: 'input_1',
    output: 'dense',
    shape: [49, 10, 1],
    outputIsSoftmax: true,
    async compute(x, w) {
      const v = (i: number, name: string) => w(`layer_with_weights-${i}/${name}/.ATTRIBUTES/VARIABLE_VALUE`);
      const bn = async (h: Nhwc, i: number) =>
        batchNorm(h, {
          gamma: (await v(i, 'gamma')).values,
          beta: (await v(i, 'beta')).values,
          mean: (await v(i, 'moving_mean')).values,
          variance: (await v(i, 'moving_variance')).values,
          epsilon: 1e-3, // Keras BatchNormalization's default
        });
      const conv = async (h: Nhwc, i: number, stride: number, depthwise: boolean) => {
        const k = await v(i, depthwise ? 'depthwise_kernel' : 'kernel');
        return conv2d(h, k.values, k.shape, { stride, padding: 'same', bias: (await v(i, 'bias')).values, depthwise });
      };
      let h = relu(await bn(await conv(x, 0, 2, false), 1));
      for (let block = 0; block < 4; block++) {
        const i = 2 + 4 * block;
        h = relu(await bn(await conv(h, i, 1, true), i + 1));
        h = relu(await bn(await conv(h, i + 2, 1, false), i + 3));
      }
      h = averagePool(h, 25, 5);
      const [k, b] = [await v(18, 'kernel'), await v(18, 'bias')];
      return softmaxRows(dense(flatten(h), k.values, k.shape, b.values));
    },
  },
];

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('TensorFlow-written CNN SavedModels against their documented architectures in plain JS', () => {
  for (const ref of references) {
    it(`${ref.dir}: the SavedModel runtime and both engines give the reference outputs within 1e-5`, async () => {
      const dir = fixture(ref.dir);
      const [h, w, c] = ref.shape;
      const values = seededUniform(BATCH * h * w * c, 97, 0, 1);
      const expected = await ref.compute(fromFloat32(values, [BATCH, h, w, c]), await weightsOf(dir));
      expect(expected.every(Number.isFinite)).toBe(true);
      // The reference must separate the classes, or a wrong model could still agree with it.
      expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(ref.outputIsSoftmax ? 0.05 : 0.5);

      const saved = await loadSavedModel(dir);
      const x = tf.tensor4d(values, [BATCH, h, w, c]);
      const out = await saved.predictTensors({ [ref.input]: x });
      const y = out[ref.output]!;
      expect(maxRelativeError(await y.data(), expected)).toBeLessThan(1e-5);
      tf.dispose([y]);
      saved.dispose();

      for (const engine of ['tfjs', 'onnxruntime']) {
        const model = await loadImageModel(dir, { engine, preprocess: 'raw' });
        try {
          expect(model.engine.name, model.engine.reason).toBe(engine);
          const scores = await model.forward(x as tf.Tensor4D);
          let got = Float64Array.from(await scores.data());
          // An ImageModel may report logits where the graph ends in a softmax: compare probabilities then.
          if (ref.outputIsSoftmax && model.output === 'logit') got = softmaxRows({ data: got, rows: BATCH });
          expect(maxRelativeError(got, expected), engine).toBeLessThan(1e-5);
          scores.dispose();
        } finally {
          model.dispose();
        }
      }
      x.dispose();
    });
  }
});
