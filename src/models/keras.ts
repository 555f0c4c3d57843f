/**
 * A tfjs LayersModel (imported from Keras, loaded from model.json, or built in code) as an
 * ImageModel. When the model ends in a softmax, the scores are the pre-softmax logits:
 * attribution wants the logit, whose gradient does not saturate.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError } from '../core/errors.js';
import { createTfModel, type ImageModel } from '../core/model.js';
import type { EngineInfo, OnnxModelOptions } from '../engines/onnx/model.js';
import type { EngineChoice } from './engine.js';

/** How the scores of a LayersModel are computed. */
export interface LayersHead {
  /** Preprocessed input -> scores [N, classes]. */
  scores: (x: tf.Tensor4D) => tf.Tensor2D;
  /** The model's last operation is a softmax. */
  finalSoftmax: boolean;
  /** `scores` returns pre-softmax logits (false: probabilities, or a model without softmax). */
  logits: boolean;
  /** Width of the scores. */
  classes: number;
}

function activationOf(layer: tfl.layers.Layer): string | undefined {
  const cfg = layer.getConfig() as { activation?: unknown };
  if (layer.getClassName() === 'Softmax') return 'softmax';
  return typeof cfg.activation === 'string' ? cfg.activation : undefined;
}

function flatten2d(y: tf.Tensor): tf.Tensor2D {
  return (y.rank === 2 ? y : tf.reshape(y, [y.shape[0]!, -1])) as tf.Tensor2D;
}

/** The innermost layer that makes a container's output, looking through nested models. */
function finalLayerOf(container: tfl.LayersModel): tfl.layers.Layer {
  let layer = container.outputs[0]!.sourceLayer as tfl.layers.Layer;
  while (layer instanceof tfl.LayersModel && layer.outputs.length === 1) layer = layer.outputs[0]!.sourceLayer as tfl.layers.Layer;
  return layer;
}

/** `container`'s input -> `tensor`, one of its symbolic tensors. */
function subgraph(container: tfl.LayersModel, tensor: tfl.SymbolicTensor): (x: tf.Tensor) => tf.Tensor {
  if (tensor === container.inputs[0]) return (x) => x;
  const part = tfl.model({ inputs: container.inputs, outputs: tensor });
  return (x) => part.apply(x) as tf.Tensor;
}

/**
 * The pre-softmax scores of a single-input, single-output container as a function of its input,
 * when its final softmax (an Activation/Softmax layer, or a Dense layer with softmax activation)
 * can be cut; the softmax may sit inside nested models, which are entered through the call
 * that makes the container's output. Undefined when there is no softmax to cut there.
 */
function logitsOf(container: tfl.LayersModel): ((x: tf.Tensor) => tf.Tensor) | undefined {
  if (container.inputs.length !== 1 || container.outputs.length !== 1) return undefined;
  const out = container.outputs[0]!;
  const layer = out.sourceLayer as tfl.layers.Layer;
  const pre = out.inputs[0];
  if (!pre || out.inputs.length !== 1) return undefined;
  if (layer instanceof tfl.LayersModel) {
    const inner = logitsOf(layer);
    if (!inner) return undefined;
    const feed = subgraph(container, pre);
    return (x) => inner(feed(x));
  }
  if (activationOf(layer) !== 'softmax') return undefined;
  const cls = layer.getClassName();
  if (cls === 'Activation' || cls === 'Softmax') return subgraph(container, pre);
  if (cls === 'Dense' && pre.shape.length === 2) {
    // Dense(activation='softmax'): recompute its linear part on the features it receives.
    const features = subgraph(container, pre);
    const [kernel, bias] = layer.weights;
    return (x) => {
      const z = tf.matMul(features(x) as tf.Tensor2D, kernel!.read() as tf.Tensor2D);
      return bias ? tf.add(z, bias.read()) : z;
    };
  }
  return undefined;
}

/**
 * Finds the scores of a single-input, single-output LayersModel: the logits before a final
 * softmax (a Softmax/Activation layer, or a Dense layer with softmax activation), else the
 * output. The final layer may sit inside nested models (e.g. a classifier head built as its own
 * Sequential); the softmax is cut there.
 *
 * @example
 * const head = layersHead(model);
 * head.logits; // true for a Keras classifier ending in Dense(activation='softmax')
 */
export function layersHead(model: tfl.LayersModel): LayersHead {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new LensError('MODEL_UNSUPPORTED', `model ${model.name} has ${model.inputs.length} inputs and ${model.outputs.length} outputs; image models need one of each`);
  }
  const out = model.outputs[0]!;
  const classes = out.shape.slice(1).reduce((a: number, b) => a * (b ?? 1), 1);
  const finalSoftmax = activationOf(finalLayerOf(model)) === 'softmax';
  const logits = finalSoftmax ? logitsOf(model) : undefined;
  if (logits) return { scores: (x) => flatten2d(logits(x)), finalSoftmax, logits: true, classes };
  return { scores: (x) => flatten2d(model.apply(x) as tf.Tensor), finalSoftmax, logits: false, classes };
}

/** The ImageModel facts of a LayersModel; `probabilities` keeps a final softmax (default: its logits). */
export type LayersImageModelOptions = Pick<OnnxModelOptions, 'name' | 'preprocessing' | 'labels' | 'probabilities'>;

/**
 * Wraps a LayersModel as an ImageModel (pixels 0..255 in, logits or probabilities out, with gradients).
 *
 * @example
 * const model = imageModelFromLayers(await importKerasModel('resnet8.h5'), { name: 'resnet8', preprocessing: 'raw' });
 * const scores = await model.forward(pixels); // logits [N, 10]
 */
export function imageModelFromLayers(model: tfl.LayersModel, options: LayersImageModelOptions): ImageModel & { head: LayersHead } {
  const shape = model.inputs[0]?.shape;
  if (!shape || shape.length !== 4 || shape.slice(1).some((d) => d === null || d === undefined)) {
    throw new LensError('MODEL_UNSUPPORTED', `model ${options.name} takes input [${shape?.map((d) => d ?? '?').join(',')}]; image models need [N,H,W,C] with H, W and C known`);
  }
  let head = layersHead(model);
  if (options.probabilities && head.logits) {
    head = { scores: (x) => flatten2d(model.apply(x) as tf.Tensor), finalSoftmax: true, logits: false, classes: head.classes };
  }
  if (options.labels && options.labels.length !== head.classes) {
    throw new LensError('SHAPE_MISMATCH', `model ${options.name} has ${head.classes} classes but ${options.labels.length} labels were given`);
  }
  const base = createTfModel({
    name: options.name,
    inputShape: [shape[1]!, shape[2]!, shape[3]!],
    classes: head.classes,
    ...(options.labels ? { labels: options.labels } : {}),
    output: head.logits || !head.finalSoftmax ? 'logit' : 'probability',
    preprocessing: options.preprocessing,
    scores: head.scores,
    dispose: () => model.dispose(),
  });
  return Object.assign(base, { head });
}

/**
 * The ImageModel of a LayersModel as the loader serves it: layer access for Grad-CAM and
 * randomisation checks, and forward and gradient passes on onnxruntime when the engine choice allows.
 *
 * @example
 * const model = await layersImageModel(await importKerasModel('resnet8.h5'), { name: 'resnet8', preprocessing: 'raw' });
 * model.engine.name; // 'onnxruntime'
 */
export async function layersImageModel(
  layers: tfl.LayersModel,
  options: LayersImageModelOptions & { engine?: EngineChoice | string },
): Promise<ImageModel & { head: LayersHead; engine: EngineInfo }> {
  const { withLayerAccess } = await import('./layer-access.js');
  const { withEngine } = await import('./engine.js');
  const model = imageModelFromLayers(layers, options);
  return withEngine(withLayerAccess(model, layers, model.head.scores), layers, options);
}
