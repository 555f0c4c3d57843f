/**
 * Access to a model's inner layers, for the methods that need more than input gradients:
 * Grad-CAM (activations of a named conv layer and the gradient of the score with respect to them)
 * and the model-randomisation sanity check (re-initialising weights layer by layer).
 *
 * It is an optional hook on an ImageModel: `model.layerAccess`. Models backed by a tfjs
 * LayersModel get it from `withLayerAccess(model, layersModel)`; converted graphs and remote
 * models have no layers to open, and the methods that need them say so.
 *
 * Activations are read by wrapping the layer's `call` for the duration of one computation: the
 * wrapper records the layer's output and adds a zero tensor that the gradient is taken against,
 * which gives dF/dA for any topology (skip connections included) without rebuilding the model.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { preprocess, type PreprocessingName } from '../core/preprocess.js';
import { seededRandom } from '../core/random.js';

/** A layer as the hook lists it. */
export interface LayerInfo {
  name: string;
  /** Keras class name, e.g. Conv2D. */
  className: string;
  /** Output shape without the batch dimension (null for unknown sizes). */
  outputShape: (number | null)[];
  /** Number of weight tensors (trainable or not). */
  weights: number;
}

/** What layer-level methods need from a model. */
export interface LayerAccess {
  /** Layers in forward order, nested models flattened. */
  layers(): LayerInfo[];
  /**
   * Activations of `layer` on a batch of pixels (0..255), and the gradient of each image's target
   * score with respect to them. The caller disposes the tensors.
   */
  activationGradient(pixels: tf.Tensor4D, layer: string, target: number): Promise<{ activations: tf.Tensor; gradients: tf.Tensor; values: tf.Tensor1D }>;
  /**
   * Re-initialises the weights of the named layers as Keras initialises them (Glorot-uniform
   * kernels, zero biases, batch-norm to identity), seeded. Returns a function that restores them.
   */
  randomizeWeights(layers: readonly string[], seed: number): () => void;
}

/** An ImageModel with layer access. */
export type ImageModelWithLayers = ImageModel & { readonly layerAccess: LayerAccess };

/** True when the model offers layer access. */
export function hasLayerAccess(model: ImageModel): model is ImageModelWithLayers {
  const access = (model as { layerAccess?: unknown }).layerAccess;
  return typeof access === 'object' && access !== null && typeof (access as LayerAccess).activationGradient === 'function';
}

interface TfLayer {
  name: string;
  getClassName(): string;
  outputShape: unknown;
  weights: { name: string; originalName?: string; shape: (number | null)[] }[];
  getWeights(): tf.Tensor[];
  setWeights(w: tf.Tensor[]): void;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
  layers?: TfLayer[];
}

function flatten(layers: readonly TfLayer[], out: TfLayer[] = []): TfLayer[] {
  for (const l of layers) {
    if (Array.isArray(l.layers)) flatten(l.layers, out);
    else out.push(l);
  }
  return out;
}

function outputShapeOf(layer: TfLayer): (number | null)[] {
  const s = layer.outputShape;
  const shape = Array.isArray(s) && Array.isArray(s[0]) ? (s[0] as (number | null)[]) : (s as (number | null)[]);
  return Array.isArray(shape) ? shape.slice(1) : [];
}

/** Keras' default initial value for a weight, by its name and shape. */
function initialValue(name: string, shape: number[], rng: ReturnType<typeof seededRandom>): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const leaf = name.split('/').pop() ?? name;
  if (/gamma|moving_variance/.test(leaf)) return new Float32Array(size).fill(1);
  if (/beta|moving_mean|bias/.test(leaf) || shape.length < 2) return new Float32Array(size);
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const fanIn = receptive * shape[shape.length - 2]!;
  const fanOut = receptive * shape[shape.length - 1]!;
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return Float32Array.from({ length: size }, () => (rng.uniform() * 2 - 1) * limit);
}

/**
 * Layer access for a tfjs LayersModel whose input is the preprocessed image. `scores` maps the
 * preprocessed input to the class scores the ImageModel reports (e.g. the logits before a final
 * softmax) and must run through `layersModel`'s layers; default: the model's output.
 *
 * @example
 * const access = layerAccessFor(layersModel, { preprocessing: 'unit' });
 * console.log(access.layers().filter((l) => l.className === 'Conv2D').map((l) => l.name));
 */
export function layerAccessFor(
  layersModel: LayersModel,
  options: { preprocessing: PreprocessingName; scores?: (input: tf.Tensor4D) => tf.Tensor2D },
): LayerAccess {
  const all = flatten(layersModel.layers as unknown as TfLayer[]);
  const find = (name: string): TfLayer => {
    const layer = all.find((l) => l.name === name);
    if (!layer) {
      throw new LensError('INVALID_ARGUMENT', `model has no layer "${name}" (layers include ${all.slice(-5).map((l) => l.name).join(', ')})`);
    }
    return layer;
  };
  const head =
    options.scores ??
    ((input: tf.Tensor4D): tf.Tensor2D => {
      const out = layersModel.apply(input) as tf.Tensor | tf.Tensor[];
      return (Array.isArray(out) ? out[0]! : out) as tf.Tensor2D;
    });
  const scores = (pixels: tf.Tensor4D): tf.Tensor2D => head(preprocess(pixels, options.preprocessing));
  return {
    layers: () =>
      all.map((l) => ({ name: l.name, className: l.getClassName(), outputShape: outputShapeOf(l), weights: l.weights.length })),
    async activationGradient(pixels, layerName, target) {
      const layer = find(layerName);
      const hadOwnCall = Object.prototype.hasOwnProperty.call(layer, 'call');
      const originalCall = layer.call;
      let delta: tf.Tensor | undefined;
      let captured: tf.Tensor | undefined;
      // Only the first call is wrapped, so a layer shared by several nodes reports its first use.
      layer.call = function (this: TfLayer, inputs, kwargs) {
        const out = originalCall.call(this, inputs, kwargs);
        const tensor = Array.isArray(out) ? out[0]! : out;
        if (captured !== undefined || delta === undefined) return out;
        captured = tf.keep(tensor);
        return tf.add(tensor, delta);
      };
      try {
        const layerShape = outputShapeOf(layer);
        if (layerShape.length === 0 || layerShape.some((d) => d === null)) {
          throw new LensError('UNSUPPORTED', `layer ${layerName} has no fixed output size ([${layerShape.join(',')}])`);
        }
        const zero = tf.zeros([pixels.shape[0], ...(layerShape as number[])]);
        try {
          const { value, grad } = tf.valueAndGrad((d: tf.Tensor) => {
            delta = d;
            const s = scores(pixels);
            if (target < 0 || target >= s.shape[1]) throw new LensError('INVALID_ARGUMENT', `target class ${target} is outside 0..${s.shape[1] - 1}`);
            return tf.sum(tf.slice(s, [0, target], [-1, 1]), 1) as tf.Tensor1D;
          })(zero);
          if (!captured) throw new LensError('ATTRIBUTION_FAILED', `layer ${layerName} did not run in the forward pass`);
          return { activations: captured, gradients: grad, values: value as tf.Tensor1D };
        } finally {
          zero.dispose();
        }
      } finally {
        if (hadOwnCall) layer.call = originalCall;
        else delete (layer as Partial<TfLayer>).call;
      }
    },
    randomizeWeights(names, seed) {
      const rng = seededRandom(seed);
      const saved: [TfLayer, tf.Tensor[]][] = [];
      for (const name of names) {
        const layer = find(name);
        const current = layer.getWeights();
        saved.push([layer, current.map((t) => tf.clone(t))]);
        const fresh = layer.weights.map((w, i) => tf.tensor(initialValue(w.originalName ?? w.name, current[i]!.shape, rng), current[i]!.shape));
        layer.setWeights(fresh);
        tf.dispose(fresh);
      }
      return () => {
        for (const [layer, weights] of saved.reverse()) {
          layer.setWeights(weights);
          tf.dispose(weights);
        }
      };
    },
  };
}

/**
 * Adds layer access to a model backed by `layersModel` (its forward runs through that model's
 * layers, after the model's preprocessing; pass the same `scores` head it uses). Returns the same object.
 *
 * @example
 * const model = withLayerAccess(createTfModel({ ...spec, scores: (x) => layersModel.apply(x) as tf.Tensor2D }), layersModel);
 * const cam = await gradCam(model, image);
 */
export function withLayerAccess<M extends ImageModel>(model: M, layersModel: LayersModel, scores?: (input: tf.Tensor4D) => tf.Tensor2D): M & { readonly layerAccess: LayerAccess } {
  return Object.assign(model, { layerAccess: layerAccessFor(layersModel, { preprocessing: model.preprocessing, ...(scores ? { scores } : {}) }) });
}
