/**
 * Every Keras layer the onnxruntime engine compiles (lowered to TensorFlow ops by src/graph/keras.ts,
 * compiled by src/engines/onnx/graph-compile.ts) against tfjs: small models built in code with seeded
 * weights, run on both engines with the same pixels (batch 3, one target class per image). The
 * scores, the input gradients and the target values must agree within a relative L2 of 1e-4.
 * Pooling ties, negative maxima and 'same' average pooling: pooling.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { PREPROCESSING_NAMES, type PreprocessingName } from '../../src/core/preprocess.js';
import { compileLayersModel } from '../../src/engines/onnx/index.js';
import { decodeMessage } from '../../src/proto/index.js';
import { ap, compareEngines, functional, randomPixels, seedWeights } from './helpers.js';

const TOLERANCE = 1e-4;
const BATCH = 3;
/** Odd sizes, so that strided 'same' convolutions drop rows and output_padding matters. */
const ODD: [number, number, number] = [13, 11, 3];

interface Case {
  name: string;
  build: () => tfl.LayersModel;
  preprocessing?: PreprocessingName;
  probabilities?: boolean;
  /** What the onnxruntime model must say its scores are (default 'logit'). */
  output?: 'logit' | 'probability';
}

const conv = (args: Parameters<typeof tfl.layers.conv2d>[0]) => tfl.layers.conv2d(args);
const dense = (units: number, activation?: 'softmax' | 'tanh' | 'relu' | 'linear', useBias = true) => tfl.layers.dense({ units, useBias, ...(activation ? { activation } : {}) });
const flatten = () => tfl.layers.flatten();
/** Conv layers end in a small dense head so that every case has class scores. */
const head = (x: tfl.SymbolicTensor, classes = 5) => ap(dense(classes), ap(flatten(), x));

const convCase = (name: string, args: Parameters<typeof tfl.layers.conv2d>[0], shape = ODD): Case => ({
  name,
  build: () => functional(name, shape, (x) => head(ap(conv(args), x))),
});

const CASES: Case[] = [
  // Conv2D: padding, strides, dilation, bias, every fused activation.
  convCase('conv same stride1 relu', { filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
  convCase('conv valid stride2 relu6 no bias', { filters: 4, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu6', useBias: false }),
  convCase('conv same stride2 sigmoid (odd input)', { filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'sigmoid' }),
  convCase('conv same stride2 kernel 4 tanh (odd input)', { filters: 3, kernelSize: 4, strides: 2, padding: 'same', activation: 'tanh' }),
  convCase('conv same 5x3 kernel stride [2,1] linear', { filters: 3, kernelSize: [5, 3], strides: [2, 1], padding: 'same' }),
  convCase('conv valid dilation 2 swish', { filters: 4, kernelSize: 3, dilationRate: 2, padding: 'valid', activation: 'swish' }),
  convCase('conv same dilation 2 tanh', { filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'tanh' }),
  convCase('conv 1x1 stride 2 (odd input)', { filters: 5, kernelSize: 1, strides: 2, activation: 'relu' }),
  convCase('conv 1x1 stride 2 same (even input)', { filters: 5, kernelSize: 1, strides: 2, padding: 'same' }, [12, 10, 3]),
  convCase('conv 1x1 stride [1,2]', { filters: 2, kernelSize: 1, strides: [1, 2] }),
  convCase('conv valid stride2 even input', { filters: 4, kernelSize: 2, strides: 2, padding: 'valid', activation: 'linear' }, [12, 10, 3]),
  // DepthwiseConv2D and SeparableConv2D.
  {
    name: 'depthwise multiplier 1 same',
    build: () => functional('dw1', ODD, (x) => head(ap(tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu' }), x))),
  },
  {
    name: 'depthwise multiplier 2 stride 2 same (odd input)',
    build: () => functional('dw2', ODD, (x) => head(ap(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same' }), x))),
  },
  {
    name: 'depthwise 1x1 multiplier 2 stride 2',
    build: () => functional('dw1x1', ODD, (x) => head(ap(tfl.layers.depthwiseConv2d({ kernelSize: 1, depthMultiplier: 2, strides: 2 }), x))),
  },
  {
    name: 'depthwise multiplier 2 valid no bias',
    build: () => functional('dw3', ODD, (x) => head(ap(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'valid', useBias: false, activation: 'tanh' }), x))),
  },
  {
    name: 'separable conv multiplier 2 stride 2 same relu',
    build: () =>
      functional('sep', ODD, (x) => head(ap(tfl.layers.separableConv2d({ filters: 5, kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', activation: 'relu' }), x))),
  },
  {
    name: 'separable conv valid no bias',
    build: () => functional('sep2', ODD, (x) => head(ap(tfl.layers.separableConv2d({ filters: 4, kernelSize: 3, padding: 'valid', useBias: false }), x))),
  },
  // Dense.
  {
    name: 'dense tanh, dense without bias',
    build: () => functional('dense', [6, 5, 2], (x) => ap(dense(4, 'linear', false), ap(dense(7, 'tanh'), ap(flatten(), x)))),
  },
  // Batch norm after an activation (not foldable), on 4-D and 2-D tensors.
  {
    name: 'batch norm after an activation (4-D and 2-D)',
    build: () =>
      functional('bn', ODD, (x) => {
        const y = ap(tfl.layers.batchNormalization(), ap(conv({ filters: 4, kernelSize: 3, activation: 'relu' }), x));
        const z = ap(tfl.layers.batchNormalization({ epsilon: 0.01 }), ap(dense(6, 'relu'), ap(flatten(), y)));
        return ap(dense(3), z);
      }),
  },
  // Rescaling as a first layer (Keras models that scale pixels themselves).
  {
    name: 'rescaling',
    preprocessing: 'raw',
    build: () => functional('rescale', ODD, (x) => head(ap(conv({ filters: 3, kernelSize: 3, activation: 'relu' }), ap(tfl.layers.rescaling({ scale: 1 / 127.5, offset: -1 }), x)))),
  },
  // Activation layers.
  {
    name: 'activation layers and ReLU layers (plain and maxValue 6)',
    build: () =>
      functional('acts', ODD, (x) => {
        let y = ap(tfl.layers.activation({ activation: 'tanh' }), ap(conv({ filters: 4, kernelSize: 3 }), x));
        y = ap(tfl.layers.reLU({ maxValue: 6 }), ap(conv({ filters: 4, kernelSize: 3 }), y));
        y = ap(tfl.layers.reLU(), ap(conv({ filters: 4, kernelSize: 3 }), y));
        y = ap(tfl.layers.activation({ activation: 'sigmoid' }), y);
        return head(y);
      }),
  },
  {
    name: 'ReLU capped at 3 (a Minimum with a constant)',
    preprocessing: 'raw',
    build: () => functional('relu_cap3', [6, 5, 3], (x) => head(ap(tfl.layers.reLU({ maxValue: 3 }), ap(tfl.layers.rescaling({ scale: 0.05, offset: -6 }), x)))),
  },
  {
    name: 'relu6 with pre-activations reaching past 6',
    preprocessing: 'raw',
    build: () => functional('relu6', [6, 5, 3], (x) => head(ap(tfl.layers.activation({ activation: 'relu6' }), ap(tfl.layers.rescaling({ scale: 0.05, offset: -3 }), x)))),
  },
  {
    name: 'LeakyReLU (alpha 0.1 and default) and ELU layers',
    build: () =>
      functional('leaky_elu', ODD, (x) => {
        let y = ap(tfl.layers.leakyReLU({ alpha: 0.1 }), ap(conv({ filters: 4, kernelSize: 3 }), x));
        y = ap(tfl.layers.leakyReLU(), ap(conv({ filters: 4, kernelSize: 3 }), y));
        y = ap(tfl.layers.elu(), ap(conv({ filters: 4, kernelSize: 3 }), y));
        return head(y);
      }),
  },
  {
    name: 'elu, hardSigmoid (both clipped sides), softplus activations; hard-swish as x * hardSigmoid(x)',
    preprocessing: 'raw',
    build: () =>
      functional('more_acts', ODD, (x) => {
        const wide = ap(tfl.layers.rescaling({ scale: 0.05, offset: -6 }), x);
        const hardSwish = ap(tfl.layers.multiply(), [wide, ap(tfl.layers.activation({ activation: 'hardSigmoid' }), wide)]);
        let y = ap(conv({ filters: 4, kernelSize: 3, activation: 'elu' }), hardSwish);
        y = ap(conv({ filters: 4, kernelSize: 3, activation: 'softplus' }), y);
        const f = ap(flatten(), y);
        return ap(dense(5), ap(tfl.layers.dense({ units: 6, activation: 'hardSigmoid' }), f));
      }),
  },
  // Softmax heads: logits by default, probabilities on request.
  ...(['Softmax layer', 'Activation softmax', 'Dense softmax'] as const).flatMap((kind): Case[] =>
    [false, true].map((probabilities) => ({
      name: `${kind} head, ${probabilities ? 'probabilities' : 'logits'}`,
      probabilities,
      output: probabilities ? 'probability' : 'logit',
      build: () =>
        functional(`softmax_${kind.replace(/ /g, '_')}`, [6, 5, 3], (x) => {
          const features = ap(flatten(), ap(conv({ filters: 3, kernelSize: 3, activation: 'relu' }), x));
          if (kind === 'Dense softmax') return ap(dense(6, 'softmax'), features);
          const logits = ap(dense(6), features);
          return ap(kind === 'Softmax layer' ? tfl.layers.softmax() : tfl.layers.activation({ activation: 'softmax' }), logits);
        }),
    })),
  ),
  {
    name: 'softmax inside the network',
    build: () => functional('inner_softmax', [6, 5, 3], (x) => ap(dense(4), ap(dense(6, 'softmax'), ap(flatten(), x)))),
  },
  // Merges.
  {
    name: 'add (residual block)',
    build: () =>
      functional('residual', ODD, (x) => {
        const a = ap(conv({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
        const b = ap(conv({ filters: 4, kernelSize: 3, padding: 'same' }), a);
        return head(ap(tfl.layers.activation({ activation: 'relu' }), ap(tfl.layers.add(), [a, b])));
      }),
  },
  {
    name: 'concatenate channels (4-D) and features (2-D)',
    build: () =>
      functional('concat', ODD, (x) => {
        const a = ap(conv({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
        const b = ap(conv({ filters: 3, kernelSize: 1, activation: 'tanh' }), x);
        const c = ap(tfl.layers.concatenate(), [a, b, a]);
        const f = ap(flatten(), c);
        const d = ap(tfl.layers.concatenate({ axis: 1 }), [ap(dense(4, 'tanh'), f), ap(dense(3, 'relu'), f)]);
        return ap(dense(5), d);
      }),
  },
  // Products of activations (squeeze-and-excitation, swish written out, gating).
  {
    name: 'squeeze-and-excitation block: pool, dense, reshape to [1,1,C], multiply (broadcast)',
    build: () =>
      functional('se_block', ODD, (x) => {
        const a = ap(conv({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
        const squeezed = ap(dense(4, 'linear'), ap(dense(2, 'relu'), ap(tfl.layers.globalAveragePooling2d({}), a)));
        const excite = ap(tfl.layers.reshape({ targetShape: [1, 1, 4] }), ap(tfl.layers.activation({ activation: 'sigmoid' }), squeezed));
        return head(ap(tfl.layers.multiply(), [a, excite]));
      }),
  },
  {
    name: 'multiply: x * sigmoid(x), [1,1,C] first, three operands, features',
    build: () =>
      functional('products', ODD, (x) => {
        const a = ap(conv({ filters: 3, kernelSize: 3 }), x);
        const swish = ap(tfl.layers.multiply(), [a, ap(tfl.layers.activation({ activation: 'sigmoid' }), a)]);
        const gate = ap(tfl.layers.reshape({ targetShape: [1, 1, 3] }), ap(dense(3, 'tanh'), ap(tfl.layers.globalAveragePooling2d({}), a)));
        const gated = ap(tfl.layers.multiply(), [gate, swish, a]);
        const f = ap(flatten(), gated);
        return ap(dense(5), ap(tfl.layers.multiply(), [ap(dense(6, 'tanh'), f), ap(dense(6), f)]));
      }),
  },
  {
    name: 'reshape: flatten to [F], and identity',
    build: () =>
      functional('reshapes', [5, 4, 3], (x) => {
        const same = ap(tfl.layers.reshape({ targetShape: [5, 4, 3] }), ap(conv({ filters: 3, kernelSize: 1, activation: 'tanh' }), x));
        return ap(dense(4), ap(tfl.layers.reshape({ targetShape: [60] }), same));
      }),
  },
  // Nearest upsampling (U-Net-style decoders).
  {
    name: 'UpSampling2D nearest: size 2, size [3,2], then a conv over the blocks',
    build: () =>
      functional('upsample', [5, 4, 3], (x) => {
        const a = ap(conv({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
        const up = ap(tfl.layers.upSampling2d({ size: [2, 2] }), a);
        const up2 = ap(tfl.layers.upSampling2d({ size: [3, 2] }), ap(conv({ filters: 2, kernelSize: 3, strides: 2, padding: 'same' }), up));
        return head(ap(conv({ filters: 2, kernelSize: 3, padding: 'same', activation: 'tanh' }), up2));
      }),
  },
  // Pooling (ties, negative maxima and 'same' average pooling: pooling.test.ts, where tfjs is not the reference).
  {
    name: 'max pool 3x3 stride 2 same (overlapping windows)',
    build: () => functional('maxpool_same', ODD, (x) => head(ap(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x))),
  },
  {
    name: 'max pool 3x3 stride 2 valid (overlapping windows)',
    build: () => functional('maxpool_valid', ODD, (x) => head(ap(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid' }), x))),
  },
  {
    name: 'max pool 3x3 stride 2 same after conv relu, then 2x2',
    build: () =>
      functional('maxpool_conv', ODD, (x) => {
        const y = ap(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), ap(conv({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }), x));
        return head(ap(tfl.layers.maxPooling2d({ poolSize: 2 }), y));
      }),
  },
  {
    name: 'average pool 3x3 stride 2 valid (even input: a dropped row)',
    build: () => functional('avgpool_valid3', [8, 10, 3], (x) => head(ap(tfl.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'valid' }), ap(conv({ filters: 3, kernelSize: 1, activation: 'tanh' }), x)))),
  },
  {
    name: 'average pool 2x2 valid',
    build: () => functional('avgpool_valid', ODD, (x) => head(ap(tfl.layers.averagePooling2d({ poolSize: 2, padding: 'valid' }), x))),
  },
  {
    name: 'global average pool',
    build: () => functional('gap', ODD, (x) => ap(dense(4), ap(tfl.layers.globalAveragePooling2d({}), ap(conv({ filters: 6, kernelSize: 3, activation: 'relu' }), x)))),
  },
  // Shape layers.
  {
    name: 'zero padding (asymmetric)',
    build: () => functional('zeropad', ODD, (x) => head(ap(conv({ filters: 3, kernelSize: 3, strides: 2, activation: 'relu' }), ap(tfl.layers.zeroPadding2d({ padding: [[1, 2], [0, 3]] }), x)))),
  },
  {
    name: 'flatten after a conv (NHWC order), dropout',
    build: () => functional('flatten_order', [5, 4, 3], (x) => ap(dense(6), ap(tfl.layers.dropout({ rate: 0.5 }), ap(flatten(), ap(conv({ filters: 3, kernelSize: 2, activation: 'tanh' }), x))))),
  },
  // A Sequential used as a layer inside a functional model.
  {
    name: 'nested sequential',
    build: () => {
      const block = tfl.sequential({
        name: 'block',
        layers: [
          tfl.layers.conv2d({ inputShape: [13, 11, 4], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.batchNormalization(),
        ],
      });
      return functional('nested', ODD, (x) => head(ap(block, ap(conv({ filters: 4, kernelSize: 3, padding: 'same', activation: 'tanh' }), x))));
    },
  },
  // A plain Sequential model.
  {
    name: 'sequential model',
    build: () =>
      tfl.sequential({
        name: 'seq',
        layers: [tfl.layers.conv2d({ inputShape: ODD, filters: 4, kernelSize: 3, strides: 2, activation: 'relu' }), tfl.layers.globalAveragePooling2d({}), tfl.layers.dense({ units: 3 })],
      }),
  },
  // Every preprocessing preset (caffe reorders channels).
  ...PREPROCESSING_NAMES.map(
    (preprocessing): Case => ({
      name: `preprocessing ${preprocessing}`,
      preprocessing,
      build: () => functional(`pre_${preprocessing}`, [7, 6, 3], (x) => head(ap(conv({ filters: 4, kernelSize: 3, activation: 'tanh' }), x))),
    }),
  ),
];

describe('onnxruntime layer rules agree with tfjs', () => {
  beforeAll(async () => {
    await initBackend();
  });

  CASES.forEach((c, index) => {
    it(c.name, async () => {
      const layers = c.build();
      seedWeights(layers, 1000 + index);
      const [h, w, ch] = layers.inputs[0]!.shape.slice(1) as [number, number, number];
      const pixels = randomPixels([BATCH, h, w, ch], 2000 + index);
      const result = await compareEngines(layers, { preprocessing: c.preprocessing ?? 'unit', pixels, ...(c.probabilities ? { probabilities: true } : {}) });
      expect(result.classes).toBe(result.tfjsClasses);
      expect(result.output).toBe(c.output ?? 'logit');
      expect(result.tfjsOutput).toBe(result.output);
      expect(result.scores).toBeLessThan(TOLERANCE);
      expect(result.gradients).toBeLessThan(TOLERANCE);
      expect(result.values).toBeLessThan(TOLERANCE);
      pixels.dispose();
      layers.dispose();
    });
  });

  it('batch norms without centre or without scale', async () => {
    const partial = functional('bn_partial', ODD, (x) => {
      const y = ap(tfl.layers.activation({ activation: 'tanh' }), ap(conv({ filters: 4, kernelSize: 3 }), x));
      const y2 = ap(tfl.layers.batchNormalization({ center: false }), y);
      const z = ap(dense(6, 'relu'), ap(flatten(), y2));
      return ap(dense(3), ap(tfl.layers.batchNormalization({ scale: false }), z));
    });
    seedWeights(partial, 66);
    const pixels = randomPixels([BATCH, ...ODD], 67);
    const result = await compareEngines(partial, { preprocessing: 'unit', pixels });
    expect(result.scores).toBeLessThan(TOLERANCE);
    expect(result.gradients).toBeLessThan(TOLERANCE);
    tf.dispose(pixels);
    partial.dispose();
  });

  it('a softmax head inside a nested model: logits by default, probabilities on request', async () => {
    const build = () => {
      const classifier = tfl.sequential({ name: 'classifier', layers: [tfl.layers.flatten({ inputShape: [5, 4, 4] }), tfl.layers.dense({ units: 6, activation: 'softmax' })] });
      const layers = functional('nested_head', [7, 6, 3], (x) => ap(classifier, ap(conv({ filters: 4, kernelSize: 3, activation: 'relu' }), x)));
      seedWeights(layers, 77);
      return layers;
    };
    const pixels = randomPixels([BATCH, 7, 6, 3], 78);
    const forCompile = build();
    const compiled = await compileLayersModel(forCompile, { name: 'nested_head', preprocessing: 'unit' });
    expect(compiled.finalSoftmax).toBe(true);
    expect(compiled.logits).toBe(true);
    forCompile.dispose();
    // Both engines cut the nested softmax: tfjs is the reference for logits and probabilities alike.
    const layers = build();
    const logits = await compareEngines(layers, { preprocessing: 'unit', pixels });
    expect(logits.output).toBe('logit');
    expect(logits.tfjsOutput).toBe('logit');
    expect(logits.scores).toBeLessThan(TOLERANCE);
    expect(logits.gradients).toBeLessThan(TOLERANCE);
    const probabilities = await compareEngines(layers, { preprocessing: 'unit', pixels, probabilities: true });
    expect(probabilities.output).toBe('probability');
    expect(probabilities.scores).toBeLessThan(TOLERANCE);
    expect(probabilities.gradients).toBeLessThan(TOLERANCE);
    pixels.dispose();
    layers.dispose();
  });

  it('counts the layers it compiled by class', async () => {
    const layers = functional('counts', ODD, (x) => head(ap(conv({ filters: 2, kernelSize: 3 }), ap(conv({ filters: 2, kernelSize: 3 }), x))));
    const compiled = await compileLayersModel(layers, { name: 'counts', preprocessing: 'unit' });
    expect(compiled.layers).toEqual({ Conv2D: 2, Flatten: 1, Dense: 1 });
    expect(compiled.inputShape).toEqual(ODD);
    expect(compiled.classes).toBe(5);
    expect(compiled.finalSoftmax).toBe(false);
    layers.dispose();
  });

  it('folds biases, batch norms and rescalings into the convolution or Dense layer before them, and agrees with tfjs', async () => {
    const layers = functional('folds', ODD, (x) => {
      const c = ap(tfl.layers.batchNormalization(), ap(conv({ filters: 4, kernelSize: 3 }), x));
      const d = ap(tfl.layers.rescaling({ scale: 0.5, offset: 1 }), ap(dense(6), ap(flatten(), ap(tfl.layers.activation({ activation: 'relu' }), c))));
      return ap(dense(3), ap(tfl.layers.activation({ activation: 'tanh' }), d));
    });
    seedWeights(layers, 88);
    const compiled = await compileLayersModel(layers, { name: 'folds', preprocessing: 'raw' });
    const ops = decodeMessage<{ graph: { node: { op_type: string }[] } }>('onnx.ModelProto', compiled.forward, 'forward graph').graph.node.map((n) => n.op_type);
    // BiasAdd, FusedBatchNormV3 and Rescaling's Mul/AddV2 by constants leave no Mul or Add behind.
    expect(ops.filter((op) => op === 'Mul' || op === 'Add')).toEqual([]);
    expect(ops.filter((op) => op === 'Conv' || op === 'Gemm')).toEqual(['Conv', 'Gemm', 'Gemm']);
    expect(compiled.layers).toEqual({ Conv2D: 1, Activation: 2, Flatten: 1, Dense: 2 });
    const pixels = randomPixels([BATCH, ...ODD], 89);
    const result = await compareEngines(layers, { preprocessing: 'raw', pixels });
    expect(result.scores).toBeLessThan(TOLERANCE);
    expect(result.gradients).toBeLessThan(TOLERANCE);
    pixels.dispose();
    layers.dispose();
  });
});
