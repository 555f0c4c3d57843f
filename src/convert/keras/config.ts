/**
 * Keras model configs (the `model_config` JSON of an HDF5 file) translated into what the
 * tfjs-layers deserializer accepts, with a clear error for layers that have no tfjs equivalent.
 *
 * tfjs-layers reads Keras 2.x configs almost as they are. The differences handled here:
 * training-only settings (regularizers, constraints) are dropped, unknown initializers become
 * Zeros (weights are loaded afterwards anyway), list-valued BatchNormalization axes become
 * numbers, dropout variants that tfjs lacks become Dropout (both are the identity at inference),
 * and Keras 3 node/shape/dtype notation is rewritten in Keras 2 form.
 */
import { LensError } from '../../core/errors.js';

/** Layer classes the importer rebuilds (tfjs-layers implements them with Keras semantics). */
export const SUPPORTED_KERAS_LAYERS: readonly string[] = [
  'InputLayer',
  'Conv1D',
  'Conv2D',
  'Conv2DTranspose',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'Dense',
  'BatchNormalization',
  'LayerNormalization',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'PReLU',
  'ELU',
  'ThresholdedReLU',
  'Softmax',
  'Add',
  'Multiply',
  'Average',
  'Maximum',
  'Minimum',
  'Concatenate',
  'AveragePooling1D',
  'AveragePooling2D',
  'MaxPooling1D',
  'MaxPooling2D',
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'ZeroPadding2D',
  'Cropping2D',
  'UpSampling2D',
  'Flatten',
  'Reshape',
  'Permute',
  'Rescaling',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Functional',
  'Model',
  'Sequential',
];

/** Layers that are the identity at inference and that tfjs lacks: rebuilt as Dropout. */
const AS_DROPOUT = new Set(['SpatialDropout2D']);

const KNOWN_INITIALIZERS = new Set([
  'Zeros', 'Ones', 'Constant', 'RandomNormal', 'RandomUniform', 'TruncatedNormal', 'VarianceScaling',
  'GlorotUniform', 'GlorotNormal', 'HeNormal', 'HeUniform', 'LeCunNormal', 'LeCunUniform', 'Orthogonal', 'Identity',
]);

const KNOWN_ACTIVATIONS = new Set([
  'linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hard_sigmoid', 'softmax', 'log_softmax', 'softplus', 'softsign',
  'tanh', 'swish', 'mish', 'gelu',
]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One unsupported layer found in a config. */
export interface UnsupportedLayer {
  className: string;
  name: string;
}

/** Every layer of a (possibly nested) model config, depth first. */
function* walkLayers(config: JsonObject): Generator<{ className: string; name: string; layer: JsonObject }> {
  const inner = isObject(config.config) ? config.config : undefined;
  const layers = inner && Array.isArray(inner.layers) ? inner.layers : [];
  for (const layer of layers) {
    if (!isObject(layer)) continue;
    const className = String(layer.class_name ?? '?');
    const cfg = isObject(layer.config) ? layer.config : {};
    const name = String(layer.name ?? cfg.name ?? '?');
    yield { className, name, layer };
    if (['Functional', 'Model', 'Sequential'].includes(className)) yield* walkLayers(layer);
  }
}

/** Layers of a config that the importer cannot rebuild, with their activations checked too. */
export function unsupportedLayers(modelConfig: object): UnsupportedLayer[] {
  const out: UnsupportedLayer[] = [];
  for (const { className, name, layer } of walkLayers(modelConfig as JsonObject)) {
    if (!SUPPORTED_KERAS_LAYERS.includes(className)) {
      out.push({ className, name });
      continue;
    }
    const cfg = isObject(layer.config) ? layer.config : {};
    const act = cfg.activation;
    if (typeof act === 'string' && !KNOWN_ACTIVATIONS.has(act)) out.push({ className: `${className}(activation=${act})`, name });
    if (className === 'Conv2D' && typeof cfg.groups === 'number' && cfg.groups !== 1) {
      out.push({ className: `Conv2D(groups=${cfg.groups})`, name });
    }
  }
  return out;
}

function dtypeName(v: Json): Json {
  // Keras 3 writes dtype policies as objects: {"class_name": "DTypePolicy", "config": {"name": "float32"}}.
  if (isObject(v) && isObject(v.config) && typeof v.config.name === 'string') return v.config.name === 'mixed_float16' ? 'float32' : v.config.name;
  return v;
}

function translateInitializer(v: Json): Json {
  if (!isObject(v)) return v;
  const cls = String(v.class_name ?? '');
  if (KNOWN_INITIALIZERS.has(cls)) {
    const config = isObject(v.config) ? { ...v.config } : {};
    return { class_name: cls, config };
  }
  return { class_name: 'Zeros', config: {} };
}

/** Keras 3 inbound node {"args": [...], "kwargs": {...}} -> Keras 2 [[name, node, tensor, kwargs], ...]. */
function translateInboundNode(node: Json): Json {
  if (Array.isArray(node)) return node;
  if (!isObject(node)) return node;
  const refs: Json[] = [];
  const collect = (v: Json): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (isObject(v) && v.class_name === '__keras_tensor__' && isObject(v.config) && Array.isArray(v.config.keras_history)) {
      const [layer, nodeIndex, tensorIndex] = v.config.keras_history;
      refs.push([layer ?? null, nodeIndex ?? 0, tensorIndex ?? 0, {}]);
    }
  };
  collect(node.args ?? []);
  return refs;
}

function translateLayerConfig(className: string, cfg: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(cfg)) {
    if (/_regularizer$/.test(key) || /_constraint$/.test(key)) continue;
    if (/_initializer$/.test(key)) out[key] = translateInitializer(value);
    else if (key === 'dtype') out[key] = dtypeName(value);
    else out[key] = value;
  }
  if (className === 'InputLayer') {
    // Keras 3 names it batch_shape.
    if (out.batch_input_shape === undefined && Array.isArray(out.batch_shape)) out.batch_input_shape = out.batch_shape;
    delete out.batch_shape;
    delete out.ragged;
    delete out.optional;
  }
  if ((className === 'BatchNormalization' || className === 'LayerNormalization') && Array.isArray(out.axis) && out.axis.length === 1) {
    out.axis = out.axis[0]!;
  }
  if (className === 'Conv2D' || className === 'DepthwiseConv2D' || className === 'Conv1D') delete out.groups;
  return out;
}

function translateModel(model: JsonObject): JsonObject {
  const className = String(model.class_name);
  const cfg = isObject(model.config) ? model.config : {};
  const layers = Array.isArray(cfg.layers) ? cfg.layers : [];
  const translated = layers.map((layer): Json => {
    if (!isObject(layer)) return layer;
    let cls = String(layer.class_name);
    if (['Functional', 'Model', 'Sequential'].includes(cls)) {
      const inner = translateModel(layer);
      return { ...inner, ...(layer.name !== undefined ? { name: layer.name } : {}), ...(layer.inbound_nodes !== undefined ? { inbound_nodes: (layer.inbound_nodes as Json[]).map(translateInboundNode) } : {}) };
    }
    const lcfg = isObject(layer.config) ? layer.config : {};
    let config = translateLayerConfig(cls, lcfg);
    if (AS_DROPOUT.has(cls)) {
      cls = 'Dropout';
      config = { name: config.name ?? null, rate: config.rate ?? 0, trainable: config.trainable ?? true, dtype: config.dtype ?? 'float32' };
    }
    const out: JsonObject = { class_name: cls, config };
    if (layer.name !== undefined) out.name = layer.name;
    if (Array.isArray(layer.inbound_nodes)) out.inbound_nodes = layer.inbound_nodes.map(translateInboundNode);
    return out;
  });
  const outCfg: JsonObject = { ...cfg, layers: translated };
  delete outCfg.trainable;
  // Keras 3 may write a single input/output as a bare [name, node, tensor] triple.
  for (const key of ['input_layers', 'output_layers'] as const) {
    const v = outCfg[key];
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string') outCfg[key] = [v];
  }
  return { class_name: className === 'Model' ? 'Functional' : className, config: outCfg };
}

/**
 * Translates a Keras `model_config` into a config tfjs-layers deserializes; throws
 * MODEL_UNSUPPORTED naming every layer it cannot rebuild.
 *
 * @example
 * const topology = translateKerasConfig(JSON.parse(modelConfigAttr), 'model.h5');
 * const model = await tfl.models.modelFromJSON({ modelTopology: topology });
 */
export function translateKerasConfig(modelConfig: object, source: string): JsonObject {
  if (!isObject(modelConfig) || typeof modelConfig.class_name !== 'string' || !isObject(modelConfig.config)) {
    throw new LensError('MODEL_CORRUPT', `${source}: model_config is not a Keras model config (no class_name/config)`);
  }
  if (!['Functional', 'Model', 'Sequential'].includes(modelConfig.class_name)) {
    throw new LensError('MODEL_UNSUPPORTED', `${source}: model class ${modelConfig.class_name} is not supported (Functional and Sequential are)`);
  }
  const bad = unsupportedLayers(modelConfig);
  if (bad.length) {
    throw new LensError(
      'MODEL_UNSUPPORTED',
      `${source}: unsupported Keras layer${bad.length > 1 ? 's' : ''}: ${bad.map((b) => `${b.name} (${b.className})`).join(', ')}. Supported: ${SUPPORTED_KERAS_LAYERS.join(', ')}`,
    );
  }
  return translateModel(modelConfig);
}
