/**
 * Types shared by every attribution method. Inputs and attributions are images in pixel space
 * (0..255, HWC, float32): preprocessing lives inside the model, so a map lines up with the image
 * the user gave, and the `.npy` written by the CLI has the shape of the input tensor.
 */
import type { ImageGeometry } from '../image/geometry.js';
import type { ScoreKind } from '../core/model.js';
import type { IgRule } from './integration.js';

/** One image, row-major HWC, values 0..255 (`Pixels` from src/image fits). */
export interface ImageInput {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
  /**
   * Where the photo lies in this input (from `loadPixels` with a size). Pixels outside
   * `geometry.content` are padding, not image: baselines and paths keep them equal to the input's,
   * so they receive no attribution, and metrics leave them out.
   */
  geometry?: ImageGeometry;
}

/**
 * Which class to explain: `'top1'` (the model's best class), a class index, or a label. Each of
 * the k best classes: `attributeTargets(method, model, image, { topK: k })`.
 */
export type TargetSpec = 'top1' | number | string;

/** The class an attribution explains, with the model's answer for it on the input. */
export interface TargetInfo {
  index: number;
  label?: string;
  /** The model's output for this class on the input (logit or probability, see `Attribution.output`). */
  score: number;
  /** Softmax of the logits for this class (the score itself when the model outputs probabilities). */
  probability: number;
}

/** How far an attribution is from summing to the change in the model's output. */
export interface Completeness {
  /** sum(attribution). */
  sum: number;
  /** F(x): the target score on the input. */
  inputScore: number;
  /** F(x'): the target score on the baseline (mean over baselines when several are averaged). */
  baselineScore: number;
  /** |sum(attribution) - (F(x) - F(x'))|. */
  delta: number;
  /** delta / |F(x) - F(x')| (Infinity when the difference is 0 and delta is not). */
  relative: number;
}

/** Points along an integration path, returned when asked (`returnPath`). */
export interface PathTrace {
  /** Position of each point: alpha in [0,1] for straight paths, sigma for Blur IG, step for Guided IG. */
  alphas: Float32Array;
  /** Quadrature weight of each point. */
  weights: Float32Array;
  /** Target score F at each point. */
  scores: Float32Array;
  /** All class scores at each point, row-major [points, classes]. */
  classScores?: Float32Array;
  /** The input gradient at each point (HWC each). */
  gradients?: Float32Array[];
}

/** A per-pixel attribution of one target class, with what produced it. */
export interface Attribution extends ImageInput {
  /** Method id, e.g. `integrated_gradients`, `smoothgrad(gradient)`. */
  method: string;
  target: TargetInfo;
  /** What F is: the model's pre-softmax logit or its probability. */
  output: ScoreKind;
  /** Baseline description, for methods that use one. */
  baseline?: string;
  steps?: number;
  rule?: IgRule;
  completeness?: Completeness;
  /** Input-gradient evaluations spent (one per image per gradient call). */
  gradientEvaluations: number;
  /** Forward-only evaluations spent. */
  forwardEvaluations: number;
  /**
   * Estimated relative L2 distance of `data` from the converged integral (path methods): from the
   * method's own evaluations, split into two interleaved halves (integration.ts
   * `splitDifferenceWeights`). Compare with `completeness`, which a map can meet while wrong pixel by pixel.
   */
  mapErrorEstimate?: number;
  path?: PathTrace;
  /** Method-specific facts (segments kept by XRAI, the Grad-CAM layer, ...). */
  details?: Record<string, unknown>;
}

/** Progress of a long computation, in model evaluations. */
export interface Progress {
  done: number;
  total: number;
  /** What is being computed, for a progress bar label. */
  stage?: string;
}

export type ProgressCallback = (progress: Progress) => void;

/** Options every method takes. */
export interface CommonOptions {
  target?: TargetSpec;
  /**
   * Images per model call. Memory grows with it and not with the number of steps or samples.
   * Default: `defaultBatchSize(model.inputShape)`.
   */
  batchSize?: number;
  /** Seed for methods that draw random numbers. Default 0. */
  seed?: number;
  /**
   * F(x), the model's scores on the input, when the caller has them already (it resolved the
   * targets with them): the method does not compute them again. Its cost still counts them.
   */
  inputScores?: Float32Array;
  onProgress?: ProgressCallback;
  /** Stops the computation between model calls. */
  signal?: AbortSignal;
}

/** A method with the common calling convention, as SmoothGrad and the metrics take it. */
export type AttributionMethod<O extends CommonOptions = CommonOptions> = (
  model: import('../core/model.js').ImageModel,
  image: ImageInput,
  options?: O,
) => Promise<Attribution>;
