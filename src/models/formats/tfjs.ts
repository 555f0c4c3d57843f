/** TensorFlow.js model.json files (or folders holding one): LayersModels and graph models. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { LensError, errorMessage } from '../../core/errors.js';
import { readModelArtifacts } from '../../convert/graph/io.js';
import type { DetectedModel, FormatTarget, ModelFormatHandler } from './types.js';

async function modelJsonFormat(path: string): Promise<'layers' | 'graph'> {
  try {
    const json = JSON.parse(await readFile(path, 'utf8')) as { format?: string; modelTopology?: { node?: unknown } };
    return json.format === 'graph-model' || Array.isArray(json.modelTopology?.node) ? 'graph' : 'layers';
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `${path} is not valid JSON: ${errorMessage(e)}`);
  }
}

/** The model.json a target names and which kind it is: lens.json's `format` decides, else the file's own. */
async function detectModelJson({ path, exists, isDirectory, sidecar }: FormatTarget, kind: 'layers' | 'graph'): Promise<DetectedModel | undefined> {
  if (!exists) return undefined;
  if (isDirectory) {
    const json = join(path, 'model.json');
    if (!existsSync(json)) return undefined;
    const format = sidecar?.format === 'graph' || sidecar?.format === 'layers' ? sidecar.format : await modelJsonFormat(json);
    return format === kind ? { path: json, dir: path } : undefined;
  }
  if (extname(path).toLowerCase() !== '.json') return undefined;
  return (await modelJsonFormat(path)) === kind ? { path, dir: dirname(path) } : undefined;
}

export const layersFormat: ModelFormatHandler<'layers'> = {
  name: 'layers',
  detect: (target) => detectModelJson(target, 'layers'),
  async load({ path, name, labels, preprocessing, engine }) {
    const tfl = await import('@tensorflow/tfjs-layers');
    const { layersImageModel } = await import('../keras.js');
    const artifacts = await readModelArtifacts(path);
    let layers;
    try {
      layers = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
    } catch (e) {
      throw new LensError('MODEL_CORRUPT', `cannot load tfjs LayersModel ${path}: ${errorMessage(e)}`);
    }
    const model = await layersImageModel(layers, { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}), ...engine });
    return { model, finalSoftmax: model.head.finalSoftmax, structure: { kind: 'layers', model: layers } };
  },
};

export const graphFormat: ModelFormatHandler<'graph'> = {
  name: 'graph',
  detect: (target) => detectModelJson(target, 'graph'),
  async load({ path, name, labels, preprocessing, sidecar, engine }) {
    const { imageModelFromGraphModel } = await import('../graph.js');
    const artifacts = await readModelArtifacts(path);
    const model = await imageModelFromGraphModel(artifacts, { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}), ...(sidecar?.inputShape ? { inputShape: sidecar.inputShape } : {}), ...engine });
    return { model, finalSoftmax: model.finalSoftmax, structure: { kind: 'graph', artifacts } };
  },
};
