/**
 * One entry point from a MODEL string to an ImageModel: a SavedModel directory, a Keras `.h5`,
 * a `.tflite`, a tfjs `model.json` (or a folder holding one, with an optional `lens.json`
 * sidecar), a zoo id (`resnet50`) or `default` (the bundled shapes model).
 *
 * Preprocessing: the explicit option wins, then the sidecar, the zoo entry or the TFLite input
 * quantization, else 'raw'. Models ending in a softmax are evaluated up to their logits where
 * possible; `info.output` says which the scores are.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, initBackend } from '../engines/tfjs/index.js';
import { LensError, errorMessage } from '../core/errors.js';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { LayersHead } from './keras.js';
import type { ModelStructure } from '../graph/body.js';
import type { CutTensor } from '../convert/checkpoint/graph-file.js';
import type { ImageModel, ScoreKind } from '../core/model.js';
import type { EngineChoice, EngineInfo, OnnxModelOptions } from '../engines/onnx/model.js';
import { readLabelsFile } from './labels.js';
import { parsePreprocessing, type PreprocessingName } from '../core/preprocess.js';

/** The bundled default model, relative to the package root (src/models or dist/models -> ../../). */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/shapes-resnet');

/** Contents of a model folder's `lens.json`. */
export interface LensSidecar {
  name?: string;
  inputShape?: [number, number, number];
  classes?: number;
  labels?: string[];
  /** Label file (one per line), relative to the folder. */
  labelsFile?: string;
  preprocessing?: PreprocessingName;
  output?: ScoreKind;
  format?: 'layers' | 'graph' | 'savedmodel';
  [extra: string]: unknown;
}

export type ModelFormat = 'savedmodel' | 'keras-h5' | 'keras3' | 'tflite' | 'layers' | 'graph' | 'checkpoint' | 'frozen-graph' | 'zoo';

/** Where a loaded model came from and how its inputs and outputs were decided. */
export interface LoadedModelInfo {
  spec: string;
  format: ModelFormat;
  /** Resolved file or folder (absent for zoo models, which live in the cache). */
  path?: string;
  preprocessingSource: 'option' | 'sidecar' | 'zoo' | 'quantization' | 'default';
  /** The model's own last operation is a softmax. */
  finalSoftmax: boolean;
  labelsSource?: string;
  sidecar?: LensSidecar;
  /** The model object underneath, for code that needs its structure (SavedModel export). */
  structure?: ModelStructure;
  /** Checkpoints and frozen graphs: where the graph was cut, and the checkpoint whose variables were frozen. */
  graphCut?: { input: CutTensor; output: CutTensor; checkpoint?: { prefix: string; step?: number } };
}

/** A loaded model with where it came from and which engine runs its forward and gradient passes. */
export type LoadedImageModel = ImageModel & { info: LoadedModelInfo; engine: EngineInfo };

export interface LoadImageModelOptions {
  /** Overrides every other source of preprocessing. */
  preprocess?: PreprocessingName | string;
  /** Labels, or a label file (one per line, a JSON array, or a JSON {index: name} object). */
  labels?: readonly string[] | string;
  /** SavedModel signature (default serving_default). */
  signature?: string;
  /** tfjs backend to initialise first (auto when omitted). */
  backend?: string;
  /** Cache directory for zoo models. */
  cacheDir?: string;
  /**
   * Engine for forward and gradient passes of Keras/tfjs LayersModels, SavedModels and tfjs graph
   * models: `auto` (onnxruntime's native kernels when available and every layer or op compiles, see
   * src/engines/onnx), `onnxruntime` or `tfjs`. Default LENS_ENGINE, else auto. TFLite models run on tfjs.
   */
  engine?: EngineChoice | string;
  /** TF1 checkpoint directories: the step (or prefix name) to load instead of the newest. */
  checkpoint?: number | string;
  /** Checkpoints and frozen graphs: the image input tensor (`NAME:0`), when it cannot be inferred. */
  inputTensor?: string;
  /** Checkpoints and frozen graphs: the scores output tensor (`NAME:0`), when it cannot be inferred. */
  outputTensor?: string;
}

/** Reads and checks a folder's `lens.json`, or returns undefined when there is none. */
export async function readSidecar(dir: string): Promise<LensSidecar | undefined> {
  const path = join(dir, 'lens.json');
  if (!existsSync(path)) return undefined;
  let sidecar: LensSidecar;
  try {
    sidecar = JSON.parse(await readFile(path, 'utf8')) as LensSidecar;
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `${path} is not valid JSON: ${errorMessage(e)}`);
  }
  if (typeof sidecar !== 'object' || sidecar === null || Array.isArray(sidecar)) throw new LensError('MODEL_CORRUPT', `${path} must hold a JSON object`);
  if (sidecar.preprocessing !== undefined) {
    try {
      parsePreprocessing(String(sidecar.preprocessing));
    } catch (e) {
      throw new LensError('MODEL_CORRUPT', `${path}: ${errorMessage(e)}`);
    }
  }
  if (sidecar.labels !== undefined && !(Array.isArray(sidecar.labels) && sidecar.labels.every((l) => typeof l === 'string'))) {
    throw new LensError('MODEL_CORRUPT', `${path}: "labels" must be an array of strings`);
  }
  return sidecar;
}

interface Resolved {
  format: Exclude<ModelFormat, 'zoo'>;
  path: string;
  /** Folder holding lens.json, if the model is a folder. */
  dir?: string;
}

/** A SavedModel dir, or a TF Serving base path whose highest numeric version holds one. */
function savedModelDir(dir: string): string | undefined {
  if (existsSync(join(dir, 'saved_model.pb')) || existsSync(join(dir, 'saved_model.pbtxt'))) return dir;
  const versions = readdirSync(dir)
    .filter((d) => /^\d+$/.test(d) && statSync(join(dir, d)).isDirectory())
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const sub = join(dir, v);
    if (existsSync(join(sub, 'saved_model.pb')) || existsSync(join(sub, 'saved_model.pbtxt'))) return sub;
  }
  return undefined;
}

async function modelJsonFormat(path: string): Promise<'layers' | 'graph'> {
  try {
    const json = JSON.parse(await readFile(path, 'utf8')) as { format?: string; modelTopology?: { node?: unknown; class_name?: unknown; model_config?: unknown } };
    if (json.format === 'graph-model' || Array.isArray(json.modelTopology?.node)) return 'graph';
    return 'layers';
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `${path} is not valid JSON: ${errorMessage(e)}`);
  }
}

async function resolveSpec(spec: string): Promise<Resolved> {
  const path = resolve(spec);
  const { graphFileKind } = await import('../convert/checkpoint/checkpoint.js');
  if (!existsSync(path)) {
    // A checkpoint prefix (model_dir/model.ckpt-N) names files that start with it.
    if (graphFileKind(path) === 'checkpoint') return { format: 'checkpoint', path, dir: dirname(path) };
    throw new LensError(
      'UNKNOWN_MODEL',
      `model "${spec}" is neither a file or folder nor a known name; give a SavedModel folder, a .h5, a .keras, a .tflite, a model.json (or its folder), a checkpoint directory or model.ckpt-N prefix, a frozen .pb, "resnet50" or "default"`,
    );
  }
  if (statSync(path).isDirectory()) {
    const sidecar = await readSidecar(path);
    const sm = sidecar?.format === 'savedmodel' || sidecar?.format === undefined ? savedModelDir(path) : undefined;
    if (sm) return { format: 'savedmodel', path: sm, dir: path };
    if (existsSync(join(path, 'model.json'))) {
      const format = sidecar?.format === 'graph' ? 'graph' : sidecar?.format === 'layers' ? 'layers' : await modelJsonFormat(join(path, 'model.json'));
      return { format, path: join(path, 'model.json'), dir: path };
    }
    if (graphFileKind(path) === 'checkpoint') return { format: 'checkpoint', path, dir: path };
    throw new LensError('UNKNOWN_MODEL', `folder ${spec} holds no saved_model.pb (nor a numbered version folder with one), no model.json and no TF1 checkpoint`);
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.h5' || ext === '.hdf5') return { format: 'keras-h5', path };
  if (ext === '.tflite') return { format: 'tflite', path };
  if (ext === '.json') return { format: await modelJsonFormat(path), path, dir: dirname(path) };
  if (basename(path) === 'saved_model.pb') return { format: 'savedmodel', path: dirname(path), dir: dirname(path) };
  if (ext === '.keras') return { format: 'keras3', path };
  const graphKind = graphFileKind(path);
  if (graphKind) return { format: graphKind, path, ...(graphKind === 'checkpoint' ? { dir: dirname(path) } : {}) };
  throw new LensError('UNKNOWN_MODEL', `cannot tell the format of ${spec} from its name: expected .h5, .keras, .tflite, .pb, model.json, a checkpoint or a SavedModel folder`);
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
 * Loads any supported model as an ImageModel.
 *
 * @example
 * const model = await loadImageModel('../shared/models-external/mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite');
 * model.preprocessing; // 'symmetric', from the input quantization
 * const resnet8 = await loadImageModel('pretrainedResnet.h5', { labels: ['airplane', 'automobile', ...] });
 * const shapes = await loadImageModel('default');
 */
export async function loadImageModel(spec: string, options: LoadImageModelOptions = {}): Promise<LoadedImageModel> {
  await initBackend(options.backend !== undefined ? { backend: options.backend } : {});
  const explicit = options.preprocess !== undefined ? parsePreprocessing(String(options.preprocess)) : undefined;
  const optionLabels = typeof options.labels === 'string' ? await readLabelsFile(options.labels) : options.labels;
  const labelsSourceOf = (fallback?: string) => (options.labels !== undefined ? (typeof options.labels === 'string' ? options.labels : 'option') : fallback);

  const zoo = await import('./zoo/index.js');
  if (zoo.isZooModel(spec)) {
    const model = await zoo.loadZooModel(spec, {
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      ...(optionLabels ? { labels: optionLabels } : {}),
      ...(explicit ? { preprocessing: explicit } : {}),
      ...(options.engine !== undefined ? { engine: options.engine } : {}),
    });
    const labelsSource = labelsSourceOf();
    return Object.assign(model, {
      info: {
        spec,
        format: 'zoo' as const,
        preprocessingSource: explicit ? ('option' as const) : ('zoo' as const),
        finalSoftmax: true,
        ...(labelsSource ? { labelsSource } : {}),
      },
    });
  }

  const target = spec === 'default' ? DEFAULT_MODEL_DIR : spec;
  if (spec === 'default' && !existsSync(DEFAULT_MODEL_DIR)) {
    throw new LensError('NOT_FOUND', `the bundled default model is missing (${DEFAULT_MODEL_DIR}); run npm run train:default`);
  }
  const resolved = await resolveSpec(target);
  // Graph-cutting options silently ignored would load another model than the one asked for.
  const graphOptions = [['--checkpoint', options.checkpoint], ['--input-tensor', options.inputTensor], ['--output-tensor', options.outputTensor]] as const;
  for (const [flag, value] of graphOptions) {
    const applies = flag === '--checkpoint' ? resolved.format === 'checkpoint' : resolved.format === 'checkpoint' || resolved.format === 'frozen-graph';
    if (value !== undefined && !applies) {
      throw new LensError('INVALID_ARGUMENT', `${flag} applies to ${flag === '--checkpoint' ? 'TF1 checkpoint directories' : 'TF1 checkpoints and frozen graphs'}; ${spec} is a ${resolved.format} model`);
    }
  }
  // A SavedModel version folder may keep lens.json in its base path (OUT_BASE_PATH/lens.json next to 1/, 2/...).
  const sidecar = resolved.dir
    ? ((await readSidecar(resolved.dir)) ?? (resolved.format === 'savedmodel' && /^\d+$/.test(basename(resolved.path)) ? await readSidecar(dirname(resolved.path)) : undefined))
    : undefined;
  let sidecarLabels: string[] | undefined = sidecar?.labels;
  if (!sidecarLabels && sidecar?.labelsFile && resolved.dir) sidecarLabels = await readLabelsFile(join(resolved.dir, sidecar.labelsFile));
  const labels = optionLabels ?? sidecarLabels;
  const preprocessing = explicit ?? sidecar?.preprocessing;
  const preprocessingSource = explicit ? ('option' as const) : sidecar?.preprocessing ? ('sidecar' as const) : ('default' as const);
  const name = sidecar?.name ?? (spec === 'default' ? 'default' : basename(resolved.dir && resolved.format !== 'keras-h5' && resolved.format !== 'tflite' ? resolved.dir : resolved.path).replace(/\.(h5|hdf5|keras|tflite|json|pb|meta|index)$/i, ''));
  const base = {
    spec,
    format: resolved.format,
    path: resolved.path,
    ...(sidecar ? { sidecar } : {}),
  };
  const labelsSource = labelsSourceOf(sidecarLabels ? `${resolved.dir}/lens.json` : undefined);
  const engineOption = options.engine !== undefined ? { engine: options.engine } : {};

  switch (resolved.format) {
    case 'keras-h5': {
      const { importKerasModel, readKerasFile } = await import('../convert/keras/import.js');
      const { imageModelFromLayers } = await import('./keras.js');
      const file = await readKerasFile(resolved.path);
      let layers;
      let zooPreprocessing: PreprocessingName | undefined;
      if (!file.modelConfig && file.weights.layers.has('conv1_conv') && file.weights.layers.has('conv5_block3_3_conv')) {
        // A weights-only file in Keras ResNet50 layout (e.g. the official weights): use the zoo architecture.
        const { buildResNet50 } = await import('./zoo/resnet50.js');
        const classes = file.weights.layers.get('predictions')?.find((w) => w.name.includes('bias'))?.shape[0] ?? 1000;
        const net = await buildResNet50({ weights: file.weights, classes });
        layers = net.model;
        zooPreprocessing = net.preprocessing;
      } else {
        layers = await importKerasModel(resolved.path);
      }
      // The ResNet50 layout means ImageNet classes: default to their names.
      const zooLabels = zooPreprocessing && !labels && layers.outputs[0]?.shape[1] === 1000 ? (await import('./labels.js')).imagenetLabels(1000) : undefined;
      const allLabels = labels ?? zooLabels;
      const facts = { name, preprocessing: preprocessing ?? zooPreprocessing ?? 'raw', ...(allLabels ? { labels: allLabels } : {}) };
      const model = await withLayers(imageModelFromLayers(layers, facts), layers, { ...facts, ...engineOption });
      const source = !preprocessing && zooPreprocessing ? ('zoo' as const) : preprocessingSource;
      return Object.assign(model, { info: { ...base, preprocessingSource: source, finalSoftmax: model.head.finalSoftmax, ...(labelsSource ? { labelsSource } : {}), structure: { kind: 'layers' as const, model: layers } } });
    }
    case 'keras3': {
      const { importKeras3Model } = await import('../convert/keras/keras3.js');
      const { imageModelFromLayers } = await import('./keras.js');
      const layers = await importKeras3Model(resolved.path);
      const facts = { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}) };
      const model = await withLayers(imageModelFromLayers(layers, facts), layers, { ...facts, ...engineOption });
      return Object.assign(model, { info: { ...base, preprocessingSource, finalSoftmax: model.head.finalSoftmax, ...(labelsSource ? { labelsSource } : {}), structure: { kind: 'layers' as const, model: layers } } });
    }
    case 'checkpoint':
    case 'frozen-graph': {
      const { convertGraphFile } = await import('../convert/checkpoint/graph-file.js');
      const { imageModelFromGraphModel } = await import('./graph.js');
      const g = await convertGraphFile(resolved.path, {
        ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}),
        ...(options.inputTensor !== undefined ? { inputTensor: options.inputTensor } : {}),
        ...(options.outputTensor !== undefined ? { outputTensor: options.outputTensor } : {}),
      });
      const { artifacts } = g.converted;
      const model = await imageModelFromGraphModel(artifacts, { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}), ...(sidecar?.inputShape ? { inputShape: sidecar.inputShape } : {}), ...engineOption });
      const graphCut = { input: g.input, output: g.output, ...(g.checkpoint ? { checkpoint: { prefix: g.checkpoint.prefix, ...(g.checkpoint.step !== undefined ? { step: g.checkpoint.step } : {}) } } : {}) };
      // Cut at a Softmax's input, the model's own last op is that softmax.
      const finalSoftmax = model.finalSoftmax || g.output.softmax !== undefined;
      return Object.assign(model, { info: { ...base, preprocessingSource, finalSoftmax, ...(labelsSource ? { labelsSource } : {}), structure: { kind: 'graph' as const, artifacts }, graphCut } });
    }
    case 'tflite': {
      const { importTflite } = await import('../convert/tflite/index.js');
      const { imageModelFromTflite } = await import('./tflite.js');
      const imp = await importTflite(resolved.path);
      const fromQuantization = !preprocessing && imp.inputAffine !== undefined;
      const model = imageModelFromTflite(imp, { name, ...(preprocessing ? { preprocessing } : {}), ...(labels ? { labels } : {}) });
      const source = labelsSource ?? (imp.labels && !labels ? `${resolved.path}#${imp.labels.file}` : undefined);
      return Object.assign(model, {
        engine: tfjsEngine('tflite'),
        info: { ...base, preprocessingSource: fromQuantization ? ('quantization' as const) : preprocessingSource, finalSoftmax: imp.softmax !== undefined, ...(source ? { labelsSource: source } : {}), structure: { kind: 'tflite' as const, tflite: imp } },
      });
    }
    case 'layers': {
      const tfl = await import('@tensorflow/tfjs-layers');
      const { imageModelFromLayers } = await import('./keras.js');
      const artifacts = await readModelArtifacts(resolved.path);
      let layers;
      try {
        layers = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
      } catch (e) {
        throw new LensError('MODEL_CORRUPT', `cannot load tfjs LayersModel ${resolved.path}: ${errorMessage(e)}`);
      }
      const facts = { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}) };
      const model = await withLayers(imageModelFromLayers(layers, facts), layers, { ...facts, ...engineOption });
      return Object.assign(model, { info: { ...base, preprocessingSource, finalSoftmax: model.head.finalSoftmax, ...(labelsSource ? { labelsSource } : {}), structure: { kind: 'layers' as const, model: layers } } });
    }
    case 'graph': {
      const { imageModelFromGraphModel } = await import('./graph.js');
      const artifacts = await readModelArtifacts(resolved.path);
      const model = await imageModelFromGraphModel(artifacts, { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}), ...(sidecar?.inputShape ? { inputShape: sidecar.inputShape } : {}), ...engineOption });
      return Object.assign(model, { info: { ...base, preprocessingSource, finalSoftmax: model.finalSoftmax, ...(labelsSource ? { labelsSource } : {}), structure: { kind: 'graph' as const, artifacts } } });
    }
    case 'savedmodel': {
      const { imageModelFromSavedModel } = await import('./savedmodel.js');
      const model = await imageModelFromSavedModel(resolved.path, {
        ...(options.signature !== undefined ? { signature: options.signature } : {}),
        preprocessing: preprocessing ?? 'raw',
        ...(labels ? { labels } : {}),
        ...(sidecar?.name || spec === 'default' ? { name } : {}),
        ...engineOption,
      });
      return Object.assign(model, {
        info: {
          ...base,
          preprocessingSource,
          finalSoftmax: model.output === 'probability',
          ...(labelsSource ? { labelsSource } : {}),
          structure: { kind: 'savedmodel' as const, dir: resolved.path, ...(options.signature !== undefined ? { signature: options.signature } : {}) },
        },
      });
    }
  }
}

/**
 * Adds layer access (Grad-CAM, randomisation checks) to a LayersModel-backed model, then moves its
 * forward and gradient passes to onnxruntime when the engine choice allows.
 */
async function withLayers<M extends ImageModel & { head: LayersHead }>(model: M, layers: LayersModel, options: OnnxModelOptions & { engine?: EngineChoice | string }): Promise<M & { engine: EngineInfo }> {
  const { withLayerAccess } = await import('./layer-access.js');
  const { withEngine } = await import('../engines/onnx/model.js');
  return withEngine(withLayerAccess(model, layers, model.head.scores), layers, options);
}

/** TFLite models stay on TensorFlow.js. */
function tfjsEngine(format: ModelFormat): EngineInfo {
  return { name: 'tfjs', detail: `tfjs ${currentBackend()?.name ?? 'backend'}`, reason: `${format} models run on TensorFlow.js (Keras and tfjs LayersModels, SavedModels and tfjs graph models compile to onnxruntime)` };
}
