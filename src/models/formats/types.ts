/**
 * The contract between the loader (models/load.ts) and one model file format: how to recognise
 * the format from a path, and how to turn it into an ImageModel. A format is one file in this
 * folder and one line in `MODEL_FORMATS` (index.ts), which also names it in `ModelFormat`.
 */
import type { CutTensor } from '../../convert/checkpoint/graph-file.js';
import type { ImageModel, ScoreKind } from '../../core/model.js';
import type { PreprocessingName } from '../../core/preprocess.js';
import type { EngineInfo } from '../../engines/onnx/model.js';
import type { ModelStructure } from '../../graph/body.js';
import type { EngineChoice } from '../engine.js';

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
   * Engine for forward and gradient passes of Keras/tfjs LayersModels, SavedModels, tfjs graph and
   * TFLite models: `auto` (onnxruntime's native kernels when available and every layer or op
   * compiles, see src/engines/onnx), `onnxruntime` or `tfjs`. Default LENS_ENGINE, else auto.
   */
  engine?: EngineChoice | string;
  /** TF1 checkpoint directories: the step (or prefix name) to load instead of the newest. */
  checkpoint?: number | string;
  /** Checkpoints and frozen graphs: the image input tensor (`NAME:0`), when it cannot be inferred. */
  inputTensor?: string;
  /** Checkpoints and frozen graphs: the scores output tensor (`NAME:0`), when it cannot be inferred. */
  outputTensor?: string;
}

/** A path the user gave, as the loader found it on disk. */
export interface FormatTarget {
  /** Absolute path. */
  path: string;
  exists: boolean;
  isDirectory: boolean;
  /** lens.json of a folder target. */
  sidecar?: LensSidecar;
}

/** What a format claims: the file or folder it loads, and the folder whose lens.json applies. */
export interface DetectedModel {
  path: string;
  dir?: string;
}

/** What the loader settled before the format loads: name, labels and preprocessing from options and lens.json. */
export interface FormatLoadContext {
  path: string;
  dir?: string;
  name: string;
  /** The name was set explicitly (lens.json or `default`), not derived from the path. */
  namedExplicitly: boolean;
  labels?: readonly string[];
  /** From the option or lens.json; the format may derive its own when absent. */
  preprocessing?: PreprocessingName;
  sidecar?: LensSidecar;
  options: LoadImageModelOptions;
  /** `{ engine }` when the caller chose one. */
  engine: { engine?: EngineChoice | string };
}

/** A loaded model and the facts only its format knows. */
export interface FormatLoaded {
  model: ImageModel & { engine: EngineInfo };
  finalSoftmax: boolean;
  /** Set when the format itself decided the preprocessing. */
  preprocessingSource?: 'zoo' | 'quantization';
  /** Set when the labels came from inside the file. */
  labelsSource?: string;
  structure?: ModelStructure;
  graphCut?: GraphCut;
}

/** Checkpoints and frozen graphs: where the graph was cut, and the checkpoint whose variables were frozen. */
export interface GraphCut {
  input: CutTensor;
  output: CutTensor;
  checkpoint?: { prefix: string; step?: number };
}

/** Options that apply to some formats only; the loader refuses them elsewhere. */
export type FormatOption = 'checkpoint' | 'inputTensor' | 'outputTensor';

export interface ModelFormatHandler<Name extends string = string> {
  readonly name: Name;
  /** The format-only options it takes. */
  readonly takes?: readonly FormatOption[];
  /** Claims a target, or returns undefined to let the next format try. */
  detect(target: FormatTarget): DetectedModel | undefined | Promise<DetectedModel | undefined>;
  load(context: FormatLoadContext): Promise<FormatLoaded>;
}
