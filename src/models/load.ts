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
import { LensError, errorMessage } from '../core/errors.js';
import { parsePreprocessing } from '../core/preprocess.js';
import { initBackend } from '../engines/tfjs/index.js';
import { IMAGE_EXTENSIONS } from '../image/files.js';
import { MODEL_FORMATS } from './formats/index.js';
import type { ImageModel } from '../core/model.js';
import type { EngineInfo } from '../engines/onnx/model.js';
import type { ModelStructure } from '../graph/body.js';
import type { FormatOption, FormatTarget, GraphCut, LensSidecar, LoadImageModelOptions } from './formats/types.js';
import { readLabelsFile } from './labels.js';

export { readModelArtifacts } from '../convert/graph/io.js';
export type { LensSidecar, LoadImageModelOptions } from './formats/types.js';
export type { ModelStructure } from '../graph/body.js';

/** Every format's name: the names in MODEL_FORMATS, and the zoo. */
export type ModelFormat = (typeof MODEL_FORMATS)[number]['name'] | 'zoo';

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
  graphCut?: GraphCut;
}

/** A loaded model with where it came from and which engine runs its forward and gradient passes. */
export type LoadedImageModel = ImageModel & { info: LoadedModelInfo; engine: EngineInfo };

/** The bundled default model, relative to the package root (src/models or dist/models -> ../../). */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/shapes-resnet');

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
    const model = await zoo.loadZooModel(spec, { cacheDir: options.cacheDir, labels: optionLabels, preprocessing: explicit, engine: options.engine });
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

  if (spec === 'default' && !existsSync(DEFAULT_MODEL_DIR)) {
    throw new LensError('NOT_FOUND', `the bundled default model is missing (${DEFAULT_MODEL_DIR}); run npm run train:default`);
  }
  const path = resolve(spec === 'default' ? DEFAULT_MODEL_DIR : spec);
  const exists = existsSync(path);
  const isDirectory = exists && statSync(path).isDirectory();
  const target: FormatTarget = { path, exists, isDirectory, ...(isDirectory ? { sidecar: await readSidecar(path) } : {}) };
  const { format, detected } = await detectFormat(spec, target);
  // Graph-cutting options silently ignored would load another model than the one asked for.
  for (const [key, flag, appliesTo] of FORMAT_OPTIONS) {
    if (options[key] !== undefined && !format.takes?.includes(key)) {
      throw new LensError('INVALID_ARGUMENT', `${flag} applies to ${appliesTo}; ${spec} is a ${format.name} model`);
    }
  }
  const dir = detected.dir;
  // A SavedModel version folder may keep lens.json in its base path (OUT_BASE_PATH/lens.json next to 1/, 2/...).
  const sidecar = dir
    ? ((await readSidecar(dir)) ?? (format.name === 'savedmodel' && /^\d+$/.test(basename(detected.path)) ? await readSidecar(dirname(detected.path)) : undefined))
    : undefined;
  let sidecarLabels: string[] | undefined = sidecar?.labels;
  if (!sidecarLabels && sidecar?.labelsFile && dir) sidecarLabels = await readLabelsFile(join(dir, sidecar.labelsFile));
  const labels = optionLabels ?? sidecarLabels;
  const preprocessing = explicit ?? sidecar?.preprocessing;
  const namedExplicitly = sidecar?.name !== undefined || spec === 'default';
  const name = sidecar?.name ?? (spec === 'default' ? 'default' : basename(dir ?? detected.path).replace(/\.(h5|hdf5|keras|tflite|json|pb|meta|index)$/i, ''));
  const loaded = await format.load({
    path: detected.path,
    ...(dir ? { dir } : {}),
    name,
    namedExplicitly,
    ...(labels ? { labels } : {}),
    ...(preprocessing ? { preprocessing } : {}),
    ...(sidecar ? { sidecar } : {}),
    options,
    engine: options.engine !== undefined ? { engine: options.engine } : {},
  });
  const labelsSource = labelsSourceOf(sidecarLabels ? `${dir}/lens.json` : undefined) ?? loaded.labelsSource;
  return Object.assign(loaded.model, {
    info: {
      spec,
      format: format.name,
      path: detected.path,
      ...(sidecar ? { sidecar } : {}),
      preprocessingSource: explicit ? ('option' as const) : sidecar?.preprocessing ? ('sidecar' as const) : (loaded.preprocessingSource ?? ('default' as const)),
      finalSoftmax: loaded.finalSoftmax,
      ...(labelsSource ? { labelsSource } : {}),
      ...(loaded.structure ? { structure: loaded.structure } : {}),
      ...(loaded.graphCut ? { graphCut: loaded.graphCut } : {}),
    },
  });
}

/** Options only some formats take: the option, its flag, and what it applies to (for the error). */
const FORMAT_OPTIONS: readonly (readonly [FormatOption, string, string])[] = [
  ['checkpoint', '--checkpoint', 'TF1 checkpoint directories'],
  ['inputTensor', '--input-tensor', 'TF1 checkpoints and frozen graphs'],
  ['outputTensor', '--output-tensor', 'TF1 checkpoints and frozen graphs'],
];

/** The first format that claims the target, or a one-line error saying what was expected. */
async function detectFormat(spec: string, target: FormatTarget) {
  for (const format of MODEL_FORMATS) {
    const detected = await format.detect(target);
    if (detected) return { format, detected };
  }
  if (!target.exists) {
    throw new LensError(
      'UNKNOWN_MODEL',
      `model "${spec}" is neither a file or folder nor a known name; give a SavedModel folder, a .h5, a .keras, a .tflite, a model.json (or its folder), a checkpoint directory or model.ckpt-N prefix, a frozen .pb, "resnet50" or "default"`,
    );
  }
  // Images where the model goes (arguments swapped, or a photo folder given to --model) are named as such.
  const imagesInstead = 'give the model to --model and the images as the command\'s arguments';
  if (target.isDirectory) {
    const images = readdirSync(target.path).some((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()));
    throw new LensError('UNKNOWN_MODEL', `folder ${spec} holds no saved_model.pb (nor a numbered version folder with one), no model.json and no TF1 checkpoint${images ? `, only images: ${imagesInstead}` : ''}`);
  }
  if (IMAGE_EXTENSIONS.includes(extname(spec).toLowerCase())) throw new LensError('UNKNOWN_MODEL', `${spec} is an image, not a model: ${imagesInstead}`);
  throw new LensError('UNKNOWN_MODEL', `cannot tell the format of ${spec} from its name: expected .h5, .keras, .tflite, .pb, model.json, a checkpoint or a SavedModel folder`);
}
