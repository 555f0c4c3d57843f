/**
 * TensorFlow.js graph models on disk: writing `model.json` + weight shards from a converted
 * signature, and a file-system IOHandler to load them back (tfjs-core alone has no `file://`
 * handler; tfjs-node adds one, and `tf.loadGraphModel('file://...')` then reads the same files).
 *
 * @example
 * await writeGraphModel('out/', converted);
 * const model = await loadGraphModelFromDir('out/');
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import { LensError, errorMessage } from '../../core/errors.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import type { ConvertedGraph } from './convert.js';

/** Shard size tfjs's own converter uses. */
export const SHARD_BYTES = 4 * 1024 * 1024;

export interface WriteGraphModelOptions {
  /** Bytes per weight shard (default 4 MiB). */
  shardBytes?: number;
  /** Called after each file is written. */
  onProgress?(written: number, total: number): void;
}

/** What {@link writeGraphModel} wrote. */
export interface WrittenGraphModel {
  modelJson: string;
  shards: string[];
  weightBytes: number;
}

/**
 * Writes a converted signature as a tfjs graph model: `model.json` (format "graph-model", with the
 * signature) and `group1-shardXofN.bin` files, each written atomically (model.json last).
 *
 * @example
 * const { modelJson } = await writeGraphModel('/tmp/tfjs_model', converted);
 */
export async function writeGraphModel(outDir: string, graph: ConvertedGraph, options: WriteGraphModelOptions = {}): Promise<WrittenGraphModel> {
  if (graph.stateVariables.length > 0) {
    throw new LensError(
      'SAVEDMODEL_UNSUPPORTED',
      `signature "${graph.signature.name}" assigns to variables (${graph.stateVariables.join(', ')}); a tfjs graph model on disk cannot hold state`,
    );
  }
  const shardBytes = options.shardBytes ?? SHARD_BYTES;
  await mkdir(outDir, { recursive: true });
  // Split the weight byte stream into fixed-size shards, cutting chunks where needed (views, no copies).
  const shards: Uint8Array[][] = [[]];
  let fill = 0;
  for (let chunk of graph.weightChunks) {
    while (chunk.length > 0) {
      if (fill === shardBytes) {
        shards.push([]);
        fill = 0;
      }
      const take = Math.min(chunk.length, shardBytes - fill);
      shards[shards.length - 1]!.push(chunk.subarray(0, take));
      fill += take;
      chunk = chunk.subarray(take);
    }
  }
  const names = shards.map((_, i) => `group1-shard${i + 1}of${shards.length}.bin`);
  const total = shards.length + 1;
  for (let i = 0; i < shards.length; i++) {
    await writeFileAtomic(join(outDir, names[i]!), Buffer.concat(shards[i]!));
    options.onProgress?.(i + 1, total);
  }
  const a = graph.artifacts;
  const modelJson = {
    format: a.format,
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: names, weights: a.weightSpecs }],
    signature: a.signature,
  };
  const jsonPath = join(outDir, 'model.json');
  await writeFileAtomic(jsonPath, `${JSON.stringify(modelJson)}\n`);
  options.onProgress?.(total, total);
  return { modelJson: jsonPath, shards: names.map((n) => join(outDir, n)), weightBytes: graph.weightBytes };
}

/** Reads a tfjs model.json and its weight shards from disk (tfjs-core has no file:// loader without tfjs-node). */
export async function readModelArtifacts(modelJsonPath: string): Promise<tf.io.ModelArtifacts> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `cannot read ${modelJsonPath}: ${errorMessage(e)}`);
  }
  if (!json.modelTopology) throw new LensError('MODEL_CORRUPT', `${modelJsonPath} has no modelTopology`);
  const dir = dirname(modelJsonPath);
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      try {
        buffers.push(await readFile(join(dir, p)));
      } catch (e) {
        throw new LensError('MODEL_CORRUPT', `${modelJsonPath} lists weight file ${p}, which cannot be read: ${errorMessage(e)}`);
      }
    }
  }
  const all = Buffer.concat(buffers);
  const { weightsManifest: _manifest, ...rest } = json;
  return {
    ...rest,
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  } as tf.io.ModelArtifacts;
}

/**
 * A tfjs IOHandler that loads a model.json and its weight files from the local file system.
 *
 * @example
 * const model = await tf.loadGraphModel(fileModelHandler('out/model.json'));
 */
export function fileModelHandler(modelJsonPath: string): tf.io.IOHandler {
  const path = resolve(modelJsonPath);
  return { load: () => readModelArtifacts(path) };
}

/**
 * Loads a tfjs graph model (a directory holding model.json, or the model.json path) from disk.
 *
 * @example
 * const model = await loadGraphModelFromDir('out/');
 * const y = model.execute({ x: tf.tensor2d([[1]]) }, 'y:0');
 */
export async function loadGraphModelFromDir(path: string): Promise<GraphModel> {
  const json = path.endsWith('.json') ? path : join(path, 'model.json');
  // Imported here: readModelArtifacts' callers (the model loader) should not load tfjs-converter.
  const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
  return loadGraphModel(fileModelHandler(json));
}
