/**
 * Keras HDF5 weights: reading them by layer and weight name, assigning them to a tfjs
 * LayersModel, and writing a model's weights in the same layout.
 *
 * Layout (Keras 2.x, both `model.save()` and `model.save_weights()`): a group holding attribute
 * `layer_names`; one subgroup per layer with attribute `weight_names` ("conv1/kernel:0", ...);
 * each weight a dataset at `<layer group>/<weight name>`. Full-model files keep this under
 * `model_weights/`; weights-only files keep it at the root.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../../core/errors.js';
import { withAtomicFile } from '../../fs/atomic.js';
import { halfToFloat } from '../../tensor/index.js';
import { createHdf5, hdf5Reason, isDataset, isGroup, readHdf5, stringListAttr, type Group, type H5File } from './h5.js';

/** One weight array as stored in the file. */
export interface KerasWeight {
  /** Name as stored, e.g. "conv1_conv/kernel:0". */
  name: string;
  shape: number[];
  values: Float32Array;
}

/** All weights of a file, by layer name, in file order. */
export interface KerasWeightSet {
  source: string;
  layerNames: string[];
  layers: Map<string, KerasWeight[]>;
}

/** "conv1_conv/kernel:0" -> "kernel". */
export function shortWeightName(name: string): string {
  const last = name.split('/').pop() ?? name;
  return last.replace(/:\d+$/, '');
}

export function datasetFloats(ds: ReturnType<H5File['get']>, where: string): { shape: number[]; values: Float32Array } {
  if (!isDataset(ds)) throw new LensError('MODEL_CORRUPT', `${where} is not a dataset`);
  let raw: unknown;
  try {
    raw = ds.value;
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `cannot read ${where}: ${hdf5Reason(e)}`);
  }
  const shape = ds.shape ?? [];
  const meta = ds.metadata;
  let values: Float32Array;
  if (raw instanceof Float32Array) values = raw;
  else if (raw instanceof Float64Array) values = Float32Array.from(raw);
  else if (raw instanceof Uint16Array && meta.type === 1 && meta.size === 2) values = Float32Array.from(raw, halfToFloat);
  else if (typeof raw === 'number') values = Float32Array.of(raw);
  else throw new LensError('MODEL_UNSUPPORTED', `${where} has dtype ${String(ds.dtype)}; only float16/32/64 weights are supported`);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    throw new LensError('MODEL_CORRUPT', `${where} holds ${values.length} values for shape [${shape.join(',')}]`);
  }
  return { shape, values };
}

/** Reads the weights under a Keras weights group (the file root or `model_weights`). */
export function readWeightsGroup(group: Group, source: string): KerasWeightSet {
  const layerNames = stringListAttr(group, 'layer_names');
  if (!layerNames) {
    throw new LensError('MODEL_CORRUPT', `${source}: group ${group.path} has no layer_names attribute, so it holds no Keras weights`);
  }
  const layers = new Map<string, KerasWeight[]>();
  for (const layer of layerNames) {
    const g = group.get(layer);
    if (!isGroup(g)) throw new LensError('MODEL_CORRUPT', `${source}: layer ${layer} is listed in layer_names but has no group`);
    const names = stringListAttr(g, 'weight_names') ?? [];
    layers.set(
      layer,
      names.map((name) => ({ name, ...datasetFloats(g.get(name), `${source}: weight ${layer}/${name}`) })),
    );
  }
  return { source, layerNames, layers };
}

/**
 * Reads every weight of a Keras HDF5 file (full model or weights-only).
 *
 * @example
 * const weights = await readKerasWeights('resnet50_weights_tf_dim_ordering_tf_kernels.h5');
 * weights.layers.get('conv1_conv')?.map((w) => w.name); // ['conv1_conv/kernel:0', 'conv1_conv/bias:0']
 */
export async function readKerasWeights(path: string): Promise<KerasWeightSet> {
  return readHdf5(path, (file) => {
    const nested = file.get('model_weights');
    return readWeightsGroup(isGroup(nested) ? nested : file, path);
  });
}

/** Layers of a model that own weights, descending into nothing: nested models count as one layer, as in Keras files. */
function describeMissing(names: string[]): string {
  return `${names.slice(0, 8).join(', ')}${names.length > 8 ? ` and ${names.length - 8} more` : ''}`;
}

/** Pairs each weighted model layer with its stored weights: by layer name, else in file order. */
function pairLayers(model: tfl.LayersModel, set: KerasWeightSet, allowExtraLayers: boolean): [tfl.layers.Layer, KerasWeight[]][] {
  const layers = model.layers.filter((l) => l.weights.length > 0);
  const missing = layers.filter((l) => !set.layers.has(l.name) || set.layers.get(l.name)!.length === 0).map((l) => l.name);
  const storedWeighted = set.layerNames.filter((n) => (set.layers.get(n)?.length ?? 0) > 0);
  if (missing.length) {
    // Keras's own load_weights goes by order when names differ (files saved from renamed layers).
    const sameShapes =
      storedWeighted.length === layers.length &&
      layers.every((l, i) => {
        const stored = set.layers.get(storedWeighted[i]!)!;
        return stored.length === l.weights.length && stored.every((w, k) => w.shape.join(',') === l.weights[k]!.shape.join(','));
      });
    if (sameShapes) return layers.map((l, i) => [l, set.layers.get(storedWeighted[i]!)!]);
    throw new LensError('MODEL_CORRUPT', `${set.source} has no weights for layer${missing.length > 1 ? 's' : ''} ${describeMissing(missing)} of model ${model.name}`);
  }
  if (!allowExtraLayers) {
    const wanted = new Set(layers.map((l) => l.name));
    const extra = storedWeighted.filter((n) => !wanted.has(n));
    if (extra.length) throw new LensError('MODEL_CORRUPT', `${set.source} has weights for layers that model ${model.name} lacks: ${describeMissing(extra)}`);
  }
  return layers.map((l) => [l, set.layers.get(l.name)!]);
}

/**
 * Sets a model's weights from a Keras weight set: layers by name (in file order when no names
 * match, as Keras does), weights by name within a layer (by order when names differ, as for
 * nested models); shapes must match.
 *
 * @param options.allowExtraLayers accept layers in the file that the model lacks (e.g. a classifier head)
 * @example
 * assignKerasWeights(model, await readKerasWeights('weights.h5'));
 */
export function assignKerasWeights(model: tfl.LayersModel, set: KerasWeightSet, options: { allowExtraLayers?: boolean } = {}): void {
  for (const [layer, stored] of pairLayers(model, set, options.allowExtraLayers ?? false)) {
    const vars = layer.weights;
    if (stored.length !== vars.length) {
      throw new LensError(
        'MODEL_CORRUPT',
        `${set.source}: layer ${layer.name} has ${stored.length} weights (${stored.map((w) => w.name).join(', ')}) but the model's layer has ${vars.length}`,
      );
    }
    const storedShort = stored.map((w) => shortWeightName(w.name));
    const varShort = vars.map((v) => shortWeightName(v.originalName));
    const byName = new Set(storedShort).size === stored.length && varShort.every((n) => storedShort.includes(n));
    const ordered = byName ? varShort.map((n) => stored[storedShort.indexOf(n)]!) : stored;
    const tensors = ordered.map((w, i) => {
      const v = vars[i]!;
      if (w.shape.length !== v.shape.length || w.shape.some((d, k) => d !== v.shape[k])) {
        throw new LensError(
          'SHAPE_MISMATCH',
          `${set.source}: weight ${w.name} has shape [${w.shape.join(',')}] but layer ${layer.name} expects [${v.shape.join(',')}] for ${v.originalName}`,
        );
      }
      return tf.tensor(w.values, w.shape, 'float32');
    });
    try {
      layer.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
  }
}

/**
 * Writes a model's weights as a Keras HDF5 file, atomically. With `modelConfig` the file is a
 * full-model file (`model_config` attribute, weights under `model_weights/`), otherwise a
 * weights-only file as `save_weights` writes.
 *
 * @example
 * await writeKerasH5(model, 'tiny.h5', { modelConfig: model.toJSON(null, false) as object });
 */
export async function writeKerasH5(model: tfl.LayersModel, path: string, options: { modelConfig?: object; kerasVersion?: string } = {}): Promise<void> {
  await withAtomicFile(path, async (tempPath) => {
    // HDF5 opens the (exclusively created, empty) temporary file by name and fills it.
    const file = await createHdf5(tempPath);
    try {
      const version = options.kerasVersion ?? '2.4.0';
      let root: Group = file;
      if (options.modelConfig) {
        file.create_attribute('model_config', JSON.stringify(options.modelConfig));
        file.create_attribute('keras_version', version);
        file.create_attribute('backend', 'tensorflow');
        root = file.create_group('model_weights');
      }
      root.create_attribute('keras_version', version);
      root.create_attribute('backend', 'tensorflow');
      root.create_attribute('layer_names', model.layers.map((l) => l.name));
      for (const layer of model.layers) {
        const g = root.create_group(layer.name);
        const names = layer.weights.map((v) => `${v.originalName}:0`);
        if (names.length) g.create_attribute('weight_names', names);
        else g.create_attribute('weight_names', new Float64Array(0), [0]);
        layer.weights.forEach((v, i) => {
          const parts = names[i]!.split('/');
          let parent = g;
          for (const part of parts.slice(0, -1)) {
            const existing = parent.get(part);
            parent = isGroup(existing) ? existing : parent.create_group(part);
          }
          const values = v.read().dataSync() as Float32Array;
          parent.create_dataset({ name: parts[parts.length - 1]!, data: Float32Array.from(values), shape: v.shape.map((d) => d ?? 1), dtype: '<f' });
        });
      }
    } catch (e) {
      throw e instanceof LensError ? e : new LensError('INTERNAL', `cannot write ${path}: ${errorMessage(e)}`);
    } finally {
      file.close();
    }
  });
}
