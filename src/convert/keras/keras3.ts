/**
 * Keras 3 `.keras` archives (the default of `model.save()` since Keras 3 / TensorFlow 2.16): a zip
 * holding `metadata.json` (Keras version, date), `config.json` (the model in Keras 3's
 * serialization format: `module`, `class_name`, `config`, `registered_name`, `build_config`) and
 * `model.weights.h5`.
 *
 * The config goes through the same translation to tfjs-layers as a Keras 2 `.h5` model_config.
 * The weights file has its own layout: `layers/<key>/vars/<i>`, where `<key>` is not the layer's
 * configured name but its class in snake case, numbered per class in layer order (`conv2d`,
 * `conv2d_1`, ...; nested models hold `layers/<key>/layers/...`). Weights are matched to layers
 * by that key, then assigned like a Keras 2 file's.
 *
 * @example
 * const model = await importKeras3Model('../shared/models-external/keras3-mnist-cnn/mnist_cnn.keras');
 * const archive = await readKerasArchive('mnist_cnn.keras');
 * archive.metadata.keras_version; // '3.12.0'
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../../core/errors.js';
import { isObject, translateKerasConfig, unsupportedLayers } from './config.js';
import { isGroup, openHdf5, type Group } from './h5.js';
import { assignKerasWeights, datasetFloats, type KerasWeight, type KerasWeightSet } from './weights.js';

const MEMBERS = ['config.json', 'metadata.json', 'model.weights.h5'] as const;
/** Larger archives than this are refused before they are read (a .keras image classifier is far smaller). */
const MAX_ARCHIVE_BYTES = 2 ** 31 - 1;
const MODEL_CLASSES = new Set(['Functional', 'Model', 'Sequential']);

type JsonObject = { [key: string]: unknown };

/** One layer of the archive's config with where its weights are stored. */
export interface Keras3Layer {
  /** Name in config.json. */
  name: string;
  className: string;
  /** `registered_name` of a custom object (absent for built-in Keras layers). */
  registeredName?: string;
  /** Path of its group in model.weights.h5 (`layers/conv2d_1`). */
  weightsPath: string;
  /** Shapes of its stored variables. */
  weightShapes: number[][];
}

/** What a `.keras` archive holds. */
export interface KerasArchive {
  path: string;
  metadata: { keras_version?: string; date_saved?: string; [key: string]: unknown };
  /** config.json as stored. */
  config: JsonObject;
  /** Top-level layers in order, with their weight keys. */
  layers: Keras3Layer[];
  /** Weights by config layer name (nested models: all their layers' variables in order). */
  weights: KerasWeightSet;
}

/** Keras's `naming.to_snake_case` of a class name: `Conv2D` -> `conv2d`, `BatchNormalization` -> `batch_normalization`. */
export function kerasSnakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

function readMembers(bytes: Uint8Array, path: string): Record<(typeof MEMBERS)[number], Uint8Array> {
  let names: string[] = [];
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        names.push(f.name);
        if (f.originalSize > MAX_ARCHIVE_BYTES) throw new LensError('MODEL_UNSUPPORTED', `${path}: member ${f.name} unpacks to ${f.originalSize} bytes, more than ${MAX_ARCHIVE_BYTES}`);
        return (MEMBERS as readonly string[]).includes(f.name);
      },
    });
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('MODEL_CORRUPT', `${path} is not a readable .keras (zip) archive: ${errorMessage(e)}`);
  }
  names = [...new Set(names)];
  for (const m of MEMBERS) {
    if (!files[m]) throw new LensError('MODEL_CORRUPT', `${path}: the .keras archive has no ${m} (it holds: ${names.join(', ') || 'nothing'})`);
  }
  return files as Record<(typeof MEMBERS)[number], Uint8Array>;
}

function parseJson(bytes: Uint8Array, path: string, member: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `${path}: ${member} is not valid JSON: ${errorMessage(e)}`);
  }
  if (!isObject(v)) throw new LensError('MODEL_CORRUPT', `${path}: ${member} does not hold a JSON object`);
  return v;
}

/** The layers list of a model config. */
function layersOf(model: JsonObject): JsonObject[] {
  const cfg = isObject(model.config) ? model.config : {};
  return (Array.isArray(cfg.layers) ? cfg.layers : []).filter(isObject);
}

const layerName = (layer: JsonObject): string => String((isObject(layer.config) ? layer.config.name : undefined) ?? layer.name ?? '?');

/** Refuses layer classes tfjs-layers cannot rebuild, naming the layer and a custom object's registered_name. */
function checkLayers(config: JsonObject, path: string): void {
  const bad = unsupportedLayers(config);
  if (bad.length === 0) return;
  const registered = new Map<string, string>();
  const walk = (model: JsonObject): void => {
    for (const l of layersOf(model)) {
      if (typeof l.registered_name === 'string') registered.set(layerName(l), l.registered_name);
      if (MODEL_CLASSES.has(String(l.class_name))) walk(l);
    }
  };
  walk(config);
  const described = bad.map((b) => {
    const reg = registered.get(b.name);
    return reg && reg !== b.className ? `${b.name} (class ${b.className}, registered_name "${reg}": a custom object whose code is not in the archive)` : `${b.name} (class ${b.className})`;
  });
  throw new LensError('MODEL_UNSUPPORTED', `${path}: unknown Keras layer class${bad.length > 1 ? 'es' : ''}: ${described.join(', ')}`);
}

/** The stored variables of one layer group (`vars/0`, `vars/1`, ...), and of nested models' layers, in order. */
function groupVariables(group: Group, where: string, layer: JsonObject): KerasWeight[] {
  const out: KerasWeight[] = [];
  const vars = group.get('vars');
  if (isGroup(vars)) {
    const keys = vars.keys().filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b));
    for (const k of keys) out.push({ name: `${where}/vars/${k}`, ...datasetFloats(vars.get(k), `${where}/vars/${k}`) });
  }
  if (MODEL_CLASSES.has(String(layer.class_name))) {
    const inner = group.get('layers');
    if (isGroup(inner)) for (const sub of keyedLayers(layer)) {
      const g = inner.get(sub.key);
      if (isGroup(g)) out.push(...groupVariables(g, `${where}/layers/${sub.key}`, sub.layer));
    }
  }
  return out;
}

/** Each layer of a model config with its key in model.weights.h5 (class in snake case, numbered per class). */
function keyedLayers(model: JsonObject): { layer: JsonObject; key: string }[] {
  const used = new Map<string, number>();
  const out: { layer: JsonObject; key: string }[] = [];
  for (const layer of layersOf(model)) {
    // A Sequential model does not track its InputLayer among the layers it saves.
    if (layer.class_name === 'InputLayer' && model.class_name === 'Sequential') continue;
    const base = kerasSnakeCase(String(layer.class_name ?? ''));
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    out.push({ layer, key: n === undefined ? base : `${base}_${n + 1}` });
  }
  return out;
}

async function readWeights(h5Bytes: Uint8Array, config: JsonObject, path: string): Promise<{ layers: Keras3Layer[]; weights: KerasWeightSet }> {
  const source = `${path}#model.weights.h5`;
  // h5wasm reads files in place: the member goes to a private temporary file for as long as it is read.
  const dir = mkdtempSync(join(tmpdir(), 'lens-keras3-'));
  const file = join(dir, 'model.weights.h5');
  try {
    writeFileSync(file, h5Bytes, { mode: 0o600 });
    let h5;
    try {
      h5 = await openHdf5(file);
    } catch (e) {
      throw new LensError('MODEL_CORRUPT', `${path}: model.weights.h5 ${errorMessage(e).replace(/^.*?model\.weights\.h5:?\s*/, '')}`);
    }
    try {
      const root = h5.get('layers');
      const layers: Keras3Layer[] = [];
      const byName = new Map<string, KerasWeight[]>();
      for (const { layer, key } of keyedLayers(config)) {
        const g = isGroup(root) ? root.get(key) : undefined;
        const vars = isGroup(g) ? groupVariables(g, `layers/${key}`, layer) : [];
        const name = layerName(layer);
        const registeredName = typeof layer.registered_name === 'string' ? layer.registered_name : undefined;
        layers.push({ name, className: String(layer.class_name), ...(registeredName ? { registeredName } : {}), weightsPath: `layers/${key}`, weightShapes: vars.map((v) => v.shape) });
        byName.set(name, vars.map((v) => ({ ...v, name: `${source}/${v.name}` })));
      }
      return { layers, weights: { source, layerNames: [...byName.keys()], layers: byName } };
    } finally {
      h5.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads a `.keras` archive: metadata, config and weights (no model is built). Throws
 * MODEL_CORRUPT naming the archive and the member at fault (missing, not JSON, not HDF5), and
 * MODEL_UNSUPPORTED for layer classes tfjs-layers lacks (custom objects with their registered_name).
 *
 * @example
 * const a = await readKerasArchive('../shared/models-external/keras3-mnist-cnn-bn/mnist_cnn.keras');
 * a.layers.find((l) => l.name === 'conv2d_4')?.weightsPath; // 'layers/conv2d'
 */
export async function readKerasArchive(path: string): Promise<KerasArchive> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    throw new LensError('NOT_FOUND', `cannot read ${path}: ${errorMessage(e)}`);
  }
  if (size > MAX_ARCHIVE_BYTES) throw new LensError('MODEL_UNSUPPORTED', `${path} has ${size} bytes, more than ${MAX_ARCHIVE_BYTES}`);
  const members = readMembers(await readFile(path), path);
  const metadata = parseJson(members['metadata.json'], path, 'metadata.json');
  const config = parseJson(members['config.json'], path, 'config.json');
  if (typeof config.class_name !== 'string' || !isObject(config.config)) throw new LensError('MODEL_CORRUPT', `${path}: config.json is not a Keras model config (no class_name/config)`);
  if (!MODEL_CLASSES.has(config.class_name)) {
    const reg = typeof config.registered_name === 'string' ? `, registered_name "${config.registered_name}"` : '';
    throw new LensError('MODEL_UNSUPPORTED', `${path}: model class ${config.class_name}${reg} is not supported (Functional and Sequential are; subclassed models keep their code outside the archive)`);
  }
  checkLayers(config, path);
  const { layers, weights } = await readWeights(members['model.weights.h5'], config, path);
  return { path, metadata: metadata as KerasArchive['metadata'], config, layers, weights };
}

/**
 * Imports a Keras 3 `.keras` archive as a tfjs LayersModel.
 *
 * @example
 * const model = await importKeras3Model('../shared/models-external/keras3-mnist-cnn/mnist_cnn.keras');
 * (model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor).shape; // [1, 10]
 */
export async function importKeras3Model(path: string): Promise<tfl.LayersModel> {
  const archive = await readKerasArchive(path);
  return layersModelFromArchive(archive);
}

/** Builds the LayersModel of an archive already read. */
export async function layersModelFromArchive(archive: KerasArchive): Promise<tfl.LayersModel> {
  const topology = translateKerasConfig(archive.config, `${archive.path}: config.json`);
  let model: tfl.LayersModel;
  try {
    model = await tfl.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]);
  } catch (e) {
    throw new LensError('MODEL_UNSUPPORTED', `${archive.path}: tfjs-layers cannot rebuild config.json: ${errorMessage(e)}`);
  }
  try {
    assignKerasWeights(model, archive.weights);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
