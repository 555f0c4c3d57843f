/**
 * Serialisable descriptions of a model, so that worker threads (each with its own tfjs backend)
 * can load the same model as the main thread.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import type { PreprocessingName } from '../core/preprocess.js';

/**
 * A model a worker can load by itself:
 * - `spec`: anything `loadImageModel(spec)` takes (SavedModel dir, .h5, .tflite, model.json,
 *   `resnet50`, `default`).
 * - `layers`: a tfjs LayersModel, as in-memory artifacts (see {@link describeLayersModel}) or a
 *   model.json path, with the ImageModel facts; batch norms are folded unless told otherwise.
 * - `module`: an ES module (path or file URL) whose export (default `default`) is called with
 *   `args` and returns an ImageModel, for models built in code.
 *
 * @example
 * const byName: ModelDescription = { kind: 'spec', spec: '../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5' };
 * const byCode: ModelDescription = { kind: 'module', module: './my-model.js', export: 'build', args: [{ classes: 10 }] };
 */
export type ModelDescription =
  | { kind: 'spec'; spec: string; preprocess?: PreprocessingName; labels?: string[]; signature?: string }
  | {
      kind: 'layers';
      artifacts?: tf.io.ModelArtifacts;
      path?: string;
      name: string;
      preprocessing: PreprocessingName;
      labels?: string[];
      /** Use the model's output even when logits are reachable. */
      probabilities?: boolean;
    }
  | { kind: 'module'; module: string; export?: string; args?: unknown[] };

export interface LoadDescriptionOptions {
  /** Fold inference batch norms into the layers before them (`layers` descriptions; default true). */
  foldBatchNorm?: boolean;
}

/** The ImageModel facts a worker reports back (everything but the functions). */
export interface ModelFacts {
  name: string;
  inputShape: [number, number, number];
  classes: number;
  labels?: string[];
  output: ImageModel['output'];
  preprocessing: PreprocessingName;
  gradient: boolean;
}

/** The facts of a loaded model, to send across threads. */
export function factsOf(model: ImageModel): ModelFacts {
  return {
    name: model.name,
    inputShape: [...model.inputShape],
    classes: model.classes,
    ...(model.labels ? { labels: [...model.labels] } : {}),
    output: model.output,
    preprocessing: model.preprocessing,
    gradient: typeof model.gradient === 'function',
  };
}

/**
 * Describes a LayersModel as `layers` (topology and weights in memory; workers receive a
 * copy each).
 *
 * @example
 * const { logits } = await buildResNet50();
 * const source = await describeLayersModel(logits, { name: 'resnet50', preprocessing: 'caffe' });
 * const model = await parallelGradientModel(source);
 */
export async function describeLayersModel(
  model: tfl.LayersModel,
  facts: { name: string; preprocessing: PreprocessingName; labels?: readonly string[]; probabilities?: boolean },
): Promise<ModelDescription> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!captured) throw new LensError('INTERNAL', `model ${facts.name} produced no artifacts when saved`);
  return {
    kind: 'layers',
    artifacts: captured,
    name: facts.name,
    preprocessing: facts.preprocessing,
    ...(facts.labels ? { labels: [...facts.labels] } : {}),
    ...(facts.probabilities !== undefined ? { probabilities: facts.probabilities } : {}),
  };
}

/** Resolves relative paths in a description against the current directory (workers may not share it). */
export function absoluteDescription(source: ModelDescription): ModelDescription {
  const abs = (p: string) => (p.startsWith('file:') || isAbsolute(p) ? p : resolve(p));
  if (source.kind === 'module') return { ...source, module: abs(source.module) };
  if (source.kind === 'layers' && source.path) return { ...source, path: abs(source.path) };
  return source;
}

/**
 * Loads a described model as an ImageModel on the current backend.
 *
 * @example
 * const model = await loadModelDescription({ kind: 'spec', spec: 'default' });
 */
export async function loadModelDescription(source: ModelDescription, options: LoadDescriptionOptions = {}): Promise<ImageModel> {
  switch (source.kind) {
    case 'spec': {
      const { loadImageModel } = await import('./load.js');
      return loadImageModel(source.spec, {
        ...(source.preprocess ? { preprocess: source.preprocess } : {}),
        ...(source.labels ? { labels: source.labels } : {}),
        ...(source.signature ? { signature: source.signature } : {}),
        // Descriptions feed the wasm worker pool, whose parallelism is one tfjs backend per worker.
        engine: 'tfjs',
      });
    }
    case 'layers': {
      let artifacts = source.artifacts;
      if (!artifacts) {
        if (!source.path) throw new LensError('INVALID_ARGUMENT', `layers description ${source.name} needs artifacts or a model.json path`);
        const { readModelArtifacts } = await import('../convert/graph/io.js');
        artifacts = await readModelArtifacts(source.path);
      }
      let layers = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
      if (options.foldBatchNorm ?? true) {
        const { foldBatchNorm } = await import('./optimize/fold-batchnorm.js');
        const folded = await foldBatchNorm(layers);
        layers.dispose();
        layers = folded.model;
      }
      const { imageModelFromLayers } = await import('./keras.js');
      return imageModelFromLayers(layers, { name: source.name, preprocessing: source.preprocessing, labels: source.labels, probabilities: source.probabilities });
    }
    case 'module': {
      const url = source.module.startsWith('file:') ? source.module : pathToFileURL(source.module).href;
      let mod: Record<string, unknown>;
      try {
        mod = (await import(url)) as Record<string, unknown>;
      } catch (e) {
        throw new LensError('NOT_FOUND', `cannot import model module ${source.module}: ${errorMessage(e)}`);
      }
      const name = source.export ?? 'default';
      const factory = mod[name];
      if (typeof factory !== 'function') throw new LensError('INVALID_ARGUMENT', `model module ${source.module} has no function export "${name}"`);
      const model = (await (factory as (...a: unknown[]) => unknown)(...(source.args ?? []))) as ImageModel;
      if (!model || typeof model.forward !== 'function') {
        throw new LensError('INVALID_ARGUMENT', `${source.module} export "${name}" did not return an ImageModel`);
      }
      return model;
    }
  }
}
