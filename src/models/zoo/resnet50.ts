/**
 * ResNet50 v1 with the exact layer layout and names of Keras Applications (`keras.applications.ResNet50`),
 * so that Keras's published weights file loads by layer and weight name.
 *
 * The only change to the Keras graph: the classifier `predictions` is a linear Dense followed by a
 * separate softmax layer (`predictions_softmax`). The weights are the same; the split gives
 * attribution the pre-softmax logits, which Keras's fused `Dense(activation='softmax')` hides.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError } from '../../core/errors.js';
import { assignKerasWeights, readKerasWeights, type KerasWeightSet } from '../../convert/keras/weights.js';

/** Keras Applications' BatchNormalization epsilon for ResNet. */
const BN_EPSILON = 1.001e-5;

export interface ResNet50Options {
  /** A Keras weights file (path) or weights already read; random (tfjs default initialisers) when omitted. */
  weights?: string | KerasWeightSet;
  /** Classifier width. Default 1000 (ImageNet). */
  classes?: number;
  /** [H, W, 3]. Default [224, 224, 3]; the official weights work at other sizes too (global pooling). */
  inputShape?: readonly [number, number, 3];
}

/** A built ResNet50: one set of layers, two heads. */
export interface ResNet50 {
  /** Preprocessed input -> probabilities, like Keras's model. */
  model: tfl.LayersModel;
  /** Preprocessed input -> pre-softmax logits (the same layers and weights). */
  logits: tfl.LayersModel;
  /** True: `model` ends in a softmax; use `logits` for attribution. */
  finalSoftmax: true;
  /** Keras ResNet50 expects caffe preprocessing (RGB->BGR, minus the ImageNet channel means). */
  preprocessing: 'caffe';
  inputShape: readonly [number, number, 3];
  classes: number;
}

type SymbolicTensor = tfl.SymbolicTensor;

function apply(layer: tfl.layers.Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
  return layer.apply(x) as SymbolicTensor;
}

function convBn(x: SymbolicTensor, filters: number, kernel: number, strides: number, name: string, padding: 'valid' | 'same' = 'valid'): SymbolicTensor {
  const y = apply(tfl.layers.conv2d({ filters, kernelSize: kernel, strides, padding, name: `${name}_conv` }), x);
  return apply(tfl.layers.batchNormalization({ axis: 3, epsilon: BN_EPSILON, name: `${name}_bn` }), y);
}

/** Keras `block1`: bottleneck residual block; the stride sits on the first 1x1 convolution (v1). */
function block(x: SymbolicTensor, filters: number, stride: number, convShortcut: boolean, name: string): SymbolicTensor {
  const shortcut = convShortcut ? convBn(x, 4 * filters, 1, stride, `${name}_0`) : x;
  let y = convBn(x, filters, 1, stride, `${name}_1`);
  y = apply(tfl.layers.activation({ activation: 'relu', name: `${name}_1_relu` }), y);
  y = convBn(y, filters, 3, 1, `${name}_2`, 'same');
  y = apply(tfl.layers.activation({ activation: 'relu', name: `${name}_2_relu` }), y);
  y = convBn(y, 4 * filters, 1, 1, `${name}_3`);
  y = apply(tfl.layers.add({ name: `${name}_add` }), [shortcut, y]);
  return apply(tfl.layers.activation({ activation: 'relu', name: `${name}_out` }), y);
}

/** Keras `stack1`: `blocks` bottleneck blocks, the first with a projection shortcut. */
function stack(x: SymbolicTensor, filters: number, blocks: number, stride: number, name: string): SymbolicTensor {
  let y = block(x, filters, stride, true, `${name}_block1`);
  for (let i = 2; i <= blocks; i++) y = block(y, filters, 1, false, `${name}_block${i}`);
  return y;
}

/**
 * Builds Keras Applications' ResNet50 (v1) in tfjs-layers, with the official weights when given.
 *
 * @example
 * const net = await buildResNet50();                       // random weights, for benchmarks
 * const official = await buildResNet50({ weights: '~/.cache/serving-lens/resnet50_weights_tf_dim_ordering_tf_kernels.h5' });
 * const logits = official.logits.predict(caffeInput) as tf.Tensor;
 */
export async function buildResNet50(options: ResNet50Options = {}): Promise<ResNet50> {
  const classes = options.classes ?? 1000;
  const inputShape = options.inputShape ?? ([224, 224, 3] as const);
  if (!Number.isInteger(classes) || classes < 1) throw new LensError('INVALID_ARGUMENT', `ResNet50 classes must be a positive integer, got ${classes}`);
  if (inputShape[2] !== 3 || inputShape[0] < 32 || inputShape[1] < 32) {
    throw new LensError('INVALID_ARGUMENT', `ResNet50 input must be [H>=32, W>=32, 3], got [${inputShape.join(',')}]`);
  }
  const input = tfl.input({ shape: [...inputShape], name: 'input_1' });
  let x = apply(tfl.layers.zeroPadding2d({ padding: [[3, 3], [3, 3]], name: 'conv1_pad' }), input);
  x = apply(tfl.layers.conv2d({ filters: 64, kernelSize: 7, strides: 2, name: 'conv1_conv' }), x);
  x = apply(tfl.layers.batchNormalization({ axis: 3, epsilon: BN_EPSILON, name: 'conv1_bn' }), x);
  x = apply(tfl.layers.activation({ activation: 'relu', name: 'conv1_relu' }), x);
  x = apply(tfl.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: 'pool1_pad' }), x);
  x = apply(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }), x);
  x = stack(x, 64, 3, 1, 'conv2');
  x = stack(x, 128, 4, 2, 'conv3');
  x = stack(x, 256, 6, 2, 'conv4');
  x = stack(x, 512, 3, 2, 'conv5');
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
  const logitsOut = apply(tfl.layers.dense({ units: classes, name: 'predictions' }), x);
  const probs = apply(tfl.layers.activation({ activation: 'softmax', name: 'predictions_softmax' }), logitsOut);
  const model = tfl.model({ inputs: input, outputs: probs, name: 'resnet50' });
  const logits = tfl.model({ inputs: input, outputs: logitsOut, name: 'resnet50_logits' });
  if (options.weights !== undefined) {
    try {
      const set = typeof options.weights === 'string' ? await readKerasWeights(options.weights) : options.weights;
      assignKerasWeights(model, set);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return { model, logits, finalSoftmax: true, preprocessing: 'caffe', inputShape, classes };
}
