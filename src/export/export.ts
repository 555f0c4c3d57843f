/**
 * `exportSavedModel`: any model serving-lens loads, written as a SavedModel that TensorFlow
 * Serving loads (`<base>/<version>/saved_model.pb` + `variables/`), with the signatures of the
 * TF Serving tutorial:
 *
 * | signature | input | outputs |
 * |---|---|---|
 * | `serving_default`, `predict` | `image_bytes`: DT_STRING [-1], JPEG (or PNG/GIF) bytes | `classes`, `class_ids`, `probabilities` |
 * | `predict_pixels` | `images`: DT_FLOAT [-1,H,W,C], RGB pixels 0..255 | `classes`, `class_ids`, `probabilities` |
 *
 * `classes` is DT_STRING [-1,k] (the names of the top-k classes, best first, from the labels the
 * model carries, else the indices as text), `class_ids` DT_INT64 [-1,k] (their indices) and
 * `probabilities` DT_FLOAT [-1,classes] (the full softmax). Decoding, resizing (bilinear, to the model size)
 * and the model's own preprocessing happen in-graph. With `input: 'float'` the float signature is
 * also `serving_default`; with `input: 'jpeg'` there is no `predict_pixels`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../engines/tfjs/index.js';
import { layersHead } from '../models/keras.js';
import { LensError } from '../core/errors.js';
import { loadImageModel, type LoadImageModelOptions, type LoadedImageModel } from '../models/load.js';
import type { AffinePreprocessing, PreprocessingName } from '../core/preprocess.js';
import { checkMetaGraph } from './check.js';
import { GraphBuilder } from '../graph/builder.js';
import type { ModelBody, ModelStructure } from '../graph/body.js';
import { LayersExporter } from '../graph/keras.js';
import { addHead, addJpegDecoder, addPreprocessing } from './serving-graph.js';
import { exportTfliteGraph } from '../graph/tflite.js';
import { exportConvertedGraph } from '../graph/converted.js';
import { VariableSet } from '../graph/variables.js';
import { buildMetaGraph, encodeSavedModel, writeVersionDir, type SignatureSpecForExport } from './write.js';

export type ExportInput = 'jpeg' | 'float' | 'both';

/** Progress of an export: building the graph (with a fraction over layers/ops), writing. */
export interface ExportProgress {
  phase: 'build' | 'check' | 'write';
  fraction: number;
}

export interface ExportOptions {
  /** Version folder number, a whole number >= 0 (TF Serving serves the highest by default). */
  version: number;
  /** Model name recorded in lens.json (default: the model's name). */
  name?: string;
  /** Signatures to write (default 'both'). */
  input?: ExportInput;
  /** Number of top classes in `classes` (default 5, at most the number of classes). */
  topK?: number;
  /** Replace an existing version folder. */
  force?: boolean;
  /** Preprocessing of a bare LayersModel (default 'raw'; loaded models carry their own). */
  preprocessing?: PreprocessingName;
  /** Labels recorded in lens.json (loaded models carry their own). */
  labels?: readonly string[];
  onProgress?(p: ExportProgress): void;
}

/** What a model to export must provide. */
export interface ExportSource {
  name: string;
  structure: ModelStructure;
  preprocessing: PreprocessingName | AffinePreprocessing;
  labels?: readonly string[];
  /** [H, W, C] and class count, when known (graph models may not record them). */
  inputShape?: readonly [number, number, number];
  classes?: number;
}

export interface ExportResult {
  /** The version folder written. */
  dir: string;
  version: number;
  signatures: string[];
  /** Nodes of the GraphDef. */
  nodes: number;
  /** Ops used and how often. */
  opCounts: Record<string, number>;
  variables: number;
  /** Bytes of saved_model.pb. */
  savedModelBytes: number;
  /** Bytes of variables/ (index + data). */
  variablesBytes: number;
  inputShape: [number, number, number];
  classes: number;
  topK: number;
}

function isLoadedImageModel(m: unknown): m is LoadedImageModel {
  return typeof m === 'object' && m !== null && 'info' in m && 'forward' in m;
}

/** A LayersModel's body: the layers from the image input to the (flattened) scores. */
function layersBody(model: tfl.LayersModel): ModelBody {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || !shape || shape.length !== 4 || shape.slice(1).some((d) => d === null || d === undefined)) {
    throw new LensError('MODEL_UNSUPPORTED', `model ${model.name} takes input [${shape?.map((d) => d ?? '?').join(',') ?? '?'}]; image models need one [N,H,W,C] input with H, W and C known`);
  }
  const head = layersHead(model);
  const total = model.layers.length;
  return {
    inputShape: [shape[1]!, shape[2]!, shape[3]!],
    async emit(g, vars, input, progress) {
      let done = 0;
      const exporter = new LayersExporter(g, vars, () => progress(Math.min(1, ++done / total)));
      const [out] = await exporter.model(model, [input]);
      let scores = out!;
      if (model.outputs[0]!.shape.length !== 2) {
        scores = g.op('Reshape', [scores, g.int32('scores/shape', [-1, head.classes])], { T: 'DT_FLOAT', Tshape: 'DT_INT32' }, { name: 'scores' });
      }
      return { scores, probabilities: head.finalSoftmax, classes: head.classes };
    },
  };
}

async function bodyOf(source: ExportSource): Promise<ModelBody> {
  const s = source.structure;
  switch (s.kind) {
    case 'layers':
      return layersBody(s.model);
    case 'tflite':
      return exportTfliteGraph(s.tflite);
    case 'graph':
    case 'savedmodel':
      return exportConvertedGraph(s, source.name, {
        ...(source.inputShape ? { inputShape: source.inputShape } : {}),
        ...(source.classes ? { classes: source.classes } : {}),
      });
  }
}

/** Turns what the caller gave into an ExportSource. */
export function exportSourceOf(model: tfl.LayersModel | LoadedImageModel | ExportSource, options: Pick<ExportOptions, 'preprocessing' | 'labels' | 'name'> = {}): ExportSource {
  if (model instanceof tfl.LayersModel) {
    return {
      name: options.name ?? model.name,
      structure: { kind: 'layers', model },
      preprocessing: options.preprocessing ?? 'raw',
      ...(options.labels ? { labels: options.labels } : {}),
    };
  }
  if (isLoadedImageModel(model)) {
    const structure = model.info.structure;
    if (!structure) {
      throw new LensError('MODEL_UNSUPPORTED', `model ${model.name} (${model.info.format}) does not expose its structure; it cannot be exported (zoo models: export the file they are built from)`);
    }
    // A quantized TFLite input without a matching preset keeps its exact affine map.
    const fold = structure.kind === 'tflite' && model.info.preprocessingSource === 'quantization' && !structure.tflite.preprocessing ? structure.tflite.inputAffine : undefined;
    const labels = options.labels ?? model.labels;
    return {
      name: options.name ?? model.name,
      structure,
      inputShape: model.inputShape,
      classes: model.classes,
      preprocessing: fold ? { channelOrder: [0, 1, 2], scale: [fold.scale, fold.scale, fold.scale], offset: [fold.offset, fold.offset, fold.offset] } : (options.preprocessing ?? model.preprocessing),
      ...(labels ? { labels } : {}),
    };
  }
  return model;
}

/**
 * Loads a MODEL spec for export: what `loadImageModel` accepts, with zoo ids (`resnet50`) loaded
 * from their cached weights file so that the architecture is available (a zoo model must have
 * been downloaded with `lens models download <id>`).
 *
 * @example
 * const model = await loadExportableModel('resnet50');   // after lens models download resnet50
 * await exportSavedModel(model, '/models/resnet50', { version: 1 });
 */
export async function loadExportableModel(spec: string, options: LoadImageModelOptions = {}): Promise<LoadedImageModel> {
  const zoo = await import('../models/zoo/index.js');
  if (!zoo.isZooModel(spec)) return loadImageModel(spec, options);
  const status = zoo.zooStatus(options.cacheDir ? { cacheDir: options.cacheDir } : {}).find((z) => z.id === spec)!;
  if (!status.cached || status.fileStatus.length !== 1) {
    throw new LensError('NOT_FOUND', `zoo model ${spec} is not in the cache; run: lens models download ${spec}`);
  }
  const { imagenetLabels } = await import('../models/labels.js');
  const labels = options.labels ?? (status.classes === 1000 || status.classes === 1001 ? imagenetLabels(status.classes) : undefined);
  const model = await loadImageModel(status.fileStatus[0]!.path, { ...options, preprocess: options.preprocess ?? status.preprocessing, ...(labels ? { labels } : {}) });
  return Object.assign(model, { name: spec });
}

function signaturesFor(input: ExportInput, image: SignatureSpecForExport['inputs'], pixels: SignatureSpecForExport['inputs'], outputs: SignatureSpecForExport['outputs']): Record<string, SignatureSpecForExport> {
  const jpeg = { inputs: image, outputs };
  const float = { inputs: pixels, outputs };
  if (input === 'jpeg') return { serving_default: jpeg, predict: jpeg };
  if (input === 'float') return { serving_default: float, predict_pixels: float };
  return { serving_default: jpeg, predict: jpeg, predict_pixels: float };
}

/**
 * Exports a model as `<outBasePath>/<version>/` for TensorFlow Serving (see the module comment
 * for the signatures). `model` is a tfjs LayersModel, a model from `loadImageModel` (Keras .h5,
 * tfjs model.json, TFLite, tfjs graph model, SavedModel), or an {@link ExportSource}. The graph is
 * checked against TensorFlow's op definitions before anything is written; the version folder
 * appears atomically.
 *
 * @example
 * const model = await loadImageModel('../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
 * const r = await exportSavedModel(model, '/models/resnet8', { version: 1, topK: 3 });
 * r.dir;        // '/models/resnet8/1'
 * r.signatures; // ['serving_default', 'predict', 'predict_pixels']
 */
export async function exportSavedModel(model: tfl.LayersModel | LoadedImageModel | ExportSource, outBasePath: string, options: ExportOptions): Promise<ExportResult> {
  await initBackend();
  const progress = options.onProgress ?? (() => undefined);
  if (!Number.isSafeInteger(options.version) || options.version < 0) {
    throw new LensError('INVALID_ARGUMENT', `version must be a whole number >= 0 (TensorFlow Serving's numeric version folders), got ${options.version}`);
  }
  if (options.topK !== undefined && (!Number.isInteger(options.topK) || options.topK < 1)) {
    throw new LensError('INVALID_ARGUMENT', `top-k must be a whole number >= 1, got ${options.topK}`);
  }
  const input = options.input ?? 'both';
  if (!['jpeg', 'float', 'both'].includes(input)) throw new LensError('INVALID_ARGUMENT', `input must be jpeg, float or both, got "${String(input)}"`);
  const finalDir = join(outBasePath, String(options.version));
  // Checked again when writing; here so that a refused export does not build the graph first.
  if (existsSync(finalDir) && !options.force) {
    throw new LensError('INVALID_ARGUMENT', `${finalDir} already exists; choose another --version or pass --force to replace it`);
  }
  const source = exportSourceOf(model, options);
  const body = await bodyOf(source);
  const [height, width, channels] = body.inputShape;
  if (input !== 'float' && channels !== 1 && channels !== 3) {
    throw new LensError('MODEL_UNSUPPORTED', `model ${source.name} takes ${channels} channels; JPEG inputs decode to 1 or 3 (use --input float)`);
  }

  progress({ phase: 'build', fraction: 0 });
  const g = new GraphBuilder();
  const vars = new VariableSet();
  const pixelsShape = [-1, height, width, channels];
  let pixels: string;
  if (input === 'float') {
    pixels = g.op('Placeholder', [], { dtype: 'DT_FLOAT', shape: pixelsShape }, { name: 'images' });
  } else {
    const jpegs = g.op('Placeholder', [], { dtype: 'DT_STRING', shape: [-1] }, { name: 'image_bytes' });
    const decoded = addJpegDecoder(g, jpegs, body.inputShape);
    // Feeding `images` (the float signature) replaces the decoder, which then does not run.
    pixels = input === 'both' ? g.op('PlaceholderWithDefault', [decoded], { dtype: 'DT_FLOAT', shape: pixelsShape }, { name: 'images' }) : decoded;
  }
  const preprocessed = addPreprocessing(g, pixels, source.preprocessing);
  const { scores, probabilities, classes } = await body.emit(g, vars, preprocessed, (f) => progress({ phase: 'build', fraction: 0.9 * f }));
  if (source.labels && source.labels.length !== classes) {
    throw new LensError('SHAPE_MISMATCH', `model ${source.name} has ${classes} classes but ${source.labels.length} labels`);
  }
  const topK = Math.min(options.topK ?? 5, classes);
  const head = addHead(g, scores, probabilities, topK, source.labels ?? Array.from({ length: classes }, (_, i) => String(i)));
  const saverDef = vars.addSaver(g);

  const outputs = {
    classes: { tensor: head.classes, dtype: 'DT_STRING', shape: [-1, topK] },
    class_ids: { tensor: head.classIds, dtype: 'DT_INT64', shape: [-1, topK] },
    probabilities: { tensor: head.probabilities, dtype: 'DT_FLOAT', shape: [-1, classes] },
  };
  const signatures = signaturesFor(
    input,
    { image_bytes: { tensor: 'image_bytes', dtype: 'DT_STRING', shape: [-1] } },
    { images: { tensor: pixels === 'images' ? 'images' : pixels, dtype: 'DT_FLOAT', shape: pixelsShape } },
    outputs,
  );
  const metaGraph = buildMetaGraph(g, vars, saverDef, signatures, `serving-lens-export`);

  progress({ phase: 'check', fraction: 0.9 });
  const problems = checkMetaGraph(metaGraph as Parameters<typeof checkMetaGraph>[0]);
  if (problems.length > 0) {
    throw new LensError('INTERNAL', `the exported graph of ${source.name} fails TensorFlow's op definitions (${problems.length} problems): ${problems.slice(0, 5).join('; ')}`);
  }

  progress({ phase: 'write', fraction: 0.92 });
  const savedModel = encodeSavedModel(metaGraph);
  const floatKey = input === 'float' ? 'serving_default' : 'predict_pixels';
  const sidecar = {
    name: options.name ?? source.name,
    inputShape: body.inputShape,
    classes,
    ...(source.labels ? { labels: [...source.labels] } : {}),
    // The float signature takes raw pixels; the model's preprocessing is inside the graph.
    preprocessing: 'raw',
    output: 'probability',
    format: 'savedmodel',
    ...(input !== 'jpeg' ? { signature: floatKey } : {}),
    outputKey: 'probabilities',
    export: {
      from: source.structure.kind,
      preprocessing: source.preprocessing,
      topK,
      signatures: Object.keys(signatures),
    },
  };
  const written = await writeVersionDir(outBasePath, options.version, { savedModel, variables: vars, sidecar }, options.force ?? false);
  progress({ phase: 'write', fraction: 1 });
  const opCounts: Record<string, number> = {};
  for (const n of g.nodes) opCounts[n.op] = (opCounts[n.op] ?? 0) + 1;
  return {
    dir: written.dir,
    version: options.version,
    signatures: Object.keys(signatures),
    nodes: g.nodes.length,
    opCounts,
    variables: vars.list.length,
    savedModelBytes: written.savedModelBytes,
    variablesBytes: written.variablesBytes,
    inputShape: body.inputShape,
    classes,
    topK,
  };
}
