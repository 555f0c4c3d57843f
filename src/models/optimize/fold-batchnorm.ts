/**
 * Folding inference-mode batch normalisation into the convolution (or Dense layer) before it.
 *
 * In inference a BatchNormalization layer is a per-channel affine map,
 * y = gamma * (z - mean) / sqrt(var + eps) + beta, so after a linear layer z = W*x + b it folds
 * into that layer: W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps).
 * The folded model computes the same function with fewer kernels, and its gradient skips the
 * batch-norm backward pass entirely. The result is for inference and attribution only: training
 * it would no longer normalise batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../../core/errors.js';
import { batchNormAffine, foldAffineIntoKernel } from '../../graph/batchnorm.js';

/** One batch normalisation that was folded. */
export interface FoldedPair {
  /** Name of the layer that absorbed it (inside nested models: `outer/inner`). */
  layer: string;
  batchNorm: string;
}

export interface FoldResult {
  /** The equivalent model without the folded batch-norm layers (a new model; the input is untouched). */
  model: tfl.LayersModel;
  folded: FoldedPair[];
}

type Json = Record<string, unknown>;
/** [layerName, nodeIndex, tensorIndex, kwargs?] in a functional model config. */
type NodeRef = [string, number, number, ...unknown[]];

/**
 * Layers that end in a per-output-channel linear map, with the index of the weight to scale (its
 * output channel is the fastest-varying index, as `foldAffineIntoKernel` needs).
 */
const FOLDABLE: Record<string, { scaled: number; channelsLast: boolean }> = {
  Conv2D: { scaled: 0, channelsLast: true },
  DepthwiseConv2D: { scaled: 0, channelsLast: true },
  SeparableConv2D: { scaled: 1, channelsLast: true },
  Dense: { scaled: 0, channelsLast: false },
};

const CONTAINERS = new Set(['Model', 'Functional', 'Sequential']);

interface Fold {
  layer: string;
  batchNorm: string;
}

function isLinear(cfg: Json): boolean {
  return cfg.activation === undefined || cfg.activation === null || cfg.activation === 'linear';
}

/** Whether `bn` (config) normalises the last axis of `layer`'s output and `layer` is linear. */
function foldable(layer: Json, bn: Json): boolean {
  const kind = FOLDABLE[String(layer.class_name)];
  if (!kind) return false;
  const cfg = layer.config as Json;
  const bnCfg = bn.config as Json;
  if (!isLinear(cfg)) return false;
  if (kind.channelsLast && cfg.data_format !== undefined && cfg.data_format !== 'channels_last') return false;
  const axis = bnCfg.axis;
  const lastAxis = kind.channelsLast ? 3 : 1;
  return axis === -1 || axis === lastAxis || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === lastAxis));
}

function refs(layer: Json): NodeRef[] {
  const nodes = (layer.inbound_nodes ?? []) as NodeRef[][];
  return nodes.flat();
}

/** Rewrites a functional model config in place; returns the folds made at this level. */
function foldFunctional(config: Json): Fold[] {
  const layers = config.layers as Json[];
  const byName = new Map(layers.map((l) => [String(l.name), l]));
  const outputs = config.output_layers as NodeRef[];
  const consumers = new Map<string, number>();
  for (const l of layers) for (const r of refs(l)) consumers.set(r[0], (consumers.get(r[0]) ?? 0) + 1);
  for (const r of outputs) consumers.set(r[0], (consumers.get(r[0]) ?? 0) + 1);
  const folds: Fold[] = [];
  for (const bn of layers) {
    if (bn.class_name !== 'BatchNormalization') continue;
    const nodes = (bn.inbound_nodes ?? []) as NodeRef[][];
    if (nodes.length !== 1 || nodes[0]!.length !== 1) continue;
    const [srcName, nodeIndex, tensorIndex] = nodes[0]![0]!;
    const src = byName.get(srcName);
    // The source must be used once (by this batch norm only) and not be shared between inputs.
    if (!src || nodeIndex !== 0 || tensorIndex !== 0 || consumers.get(srcName) !== 1) continue;
    if (((src.inbound_nodes ?? []) as unknown[]).length !== 1 || !foldable(src, bn)) continue;
    folds.push({ layer: srcName, batchNorm: String(bn.name) });
  }
  const bnToLayer = new Map(folds.map((f) => [f.batchNorm, f.layer]));
  const redirect = (r: NodeRef): NodeRef => {
    const target = bnToLayer.get(r[0]);
    return target === undefined ? r : ([target, 0, 0, ...r.slice(3)] as NodeRef);
  };
  config.layers = layers.filter((l) => !bnToLayer.has(String(l.name)));
  for (const l of config.layers as Json[]) {
    if (Array.isArray(l.inbound_nodes)) l.inbound_nodes = (l.inbound_nodes as NodeRef[][]).map((node) => node.map(redirect));
  }
  config.output_layers = outputs.map(redirect);
  for (const f of folds) ((byName.get(f.layer)!.config as Json).use_bias = true);
  return folds;
}

/** Sequential configs are chains: a batch norm right after a foldable layer folds into it. */
function foldSequential(config: Json): Fold[] {
  const layers = config.layers as Json[];
  const kept: Json[] = [];
  const folds: Fold[] = [];
  for (const l of layers) {
    const prev = kept[kept.length - 1];
    if (l.class_name === 'BatchNormalization' && prev && foldable(prev, l)) {
      const prevCfg = prev.config as Json;
      const bnCfg = l.config as Json;
      // The batch norm may carry the input shape when it is the first real layer; keep it.
      if (bnCfg.batch_input_shape !== undefined && prevCfg.batch_input_shape === undefined) prevCfg.batch_input_shape = bnCfg.batch_input_shape;
      prevCfg.use_bias = true;
      folds.push({ layer: String(prevCfg.name), batchNorm: String(bnCfg.name) });
      continue;
    }
    kept.push(l);
  }
  config.layers = kept;
  return folds;
}

/** Folds a model config (nested containers included); folds are keyed by container path. */
function foldConfig(topology: Json, path: string, out: Map<string, Fold[]>): void {
  const config = topology.config as Json;
  const folds = topology.class_name === 'Sequential' ? foldSequential(config) : foldFunctional(config);
  out.set(path, folds);
  for (const l of config.layers as Json[]) {
    if (CONTAINERS.has(String(l.class_name))) {
      const cfg = l.config as Json;
      foldConfig(l, `${path}${String(cfg.name ?? l.name)}/`, out);
    }
  }
}

/** New [kernel, bias] of `layer` absorbing batch norm `bn`, both from the original model. */
function foldedKernelAndBias(layer: tfl.layers.Layer, bn: tfl.layers.Layer): [tf.Tensor, tf.Tensor] {
  const kind = FOLDABLE[layer.getClassName()]!;
  const weights = layer.getWeights();
  const bnCfg = bn.getConfig() as { scale?: boolean; center?: boolean; epsilon?: number };
  const bnWeights = bn.getWeights().map((w) => w.dataSync());
  // Keras / tfjs order: gamma (if scale), beta (if center), moving mean, moving variance.
  let i = 0;
  const gamma = bnCfg.scale === false ? undefined : bnWeights[i++];
  const beta = bnCfg.center === false ? undefined : bnWeights[i++];
  const mean = bnWeights[i++];
  const variance = bnWeights[i++];
  if (!mean || !variance) throw new LensError('MODEL_CORRUPT', `batch norm ${bn.name} lacks its moving statistics`);
  const kernel = weights[kind.scaled]!;
  const bias = weights.length > kind.scaled + 1 ? weights[weights.length - 1]!.dataSync() : undefined;
  const folded = foldAffineIntoKernel(kernel.dataSync(), bias, batchNormAffine({ mean, variance, ...(gamma ? { gamma } : {}), ...(beta ? { beta } : {}), epsilon: bnCfg.epsilon ?? 1e-3 }));
  return [tf.tensor(folded.kernel, kernel.shape), tf.tensor1d(folded.bias)];
}

/** Copies weights from `source` into the rebuilt `target`, folding where the config was folded. */
function assignWeights(target: tfl.LayersModel, source: tfl.LayersModel, path: string, folds: Map<string, Fold[]>): void {
  const here = new Map((folds.get(path) ?? []).map((f) => [f.layer, f.batchNorm]));
  for (const layer of target.layers) {
    const original = source.getLayer(layer.name);
    if (layer instanceof tfl.LayersModel) {
      assignWeights(layer, original as tfl.LayersModel, `${path}${layer.name}/`, folds);
      continue;
    }
    const bnName = here.get(layer.name);
    if (bnName === undefined) {
      const weights = original.getWeights();
      if (weights.length) layer.setWeights(weights);
      continue;
    }
    const kept = original.getWeights().slice(0, FOLDABLE[original.getClassName()]!.scaled);
    const made = foldedKernelAndBias(original, source.getLayer(bnName));
    layer.setWeights([...kept, ...made]);
    tf.dispose(made);
  }
}

/**
 * Returns an equivalent model with every inference BatchNormalization that directly follows a
 * linear Conv2D, DepthwiseConv2D, SeparableConv2D or Dense layer folded into that layer's kernel
 * and bias. Batch norms after an activation, after a layer whose output is used elsewhere, or on
 * another axis stay as they are. Nested models are folded too.
 *
 * @example
 * const { model: folded, folded: pairs } = await foldBatchNorm(await importKerasModel('resnet8.h5'));
 * console.log(`${pairs.length} batch norms folded`);
 * const logits = folded.predict(x);            // same as the original within float rounding
 */
export async function foldBatchNorm(model: tfl.LayersModel): Promise<FoldResult> {
  const topology = model.toJSON(null, false) as Json;
  const folds = new Map<string, Fold[]>();
  foldConfig(topology, '', folds);
  const all = [...folds.entries()].flatMap(([path, list]) => list.map((f) => ({ layer: `${path}${f.layer}`, batchNorm: `${path}${f.batchNorm}` })));
  let rebuilt: tfl.LayersModel;
  try {
    rebuilt = await tfl.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]);
  } catch (e) {
    throw new LensError('MODEL_UNSUPPORTED', `model ${model.name}: cannot rebuild it with batch norms folded: ${errorMessage(e)}`);
  }
  try {
    assignWeights(rebuilt, model, '', folds);
  } catch (e) {
    rebuilt.dispose();
    throw e;
  }
  return { model: rebuilt, folded: all };
}
