/**
 * Quality metrics for attributions, for researchers comparing methods and baselines:
 * - completeness delta (see `completenessOf`);
 * - deletion and insertion curves and their areas (Petsiuk et al. 2018): the target probability
 *   as the most important pixels are removed from the image, or added to a blurred/baseline one;
 * - the model-randomisation sanity check (Adebayo et al. 2018): cascading re-initialisation from
 *   the top layer down, and the rank correlation between the original and the randomised maps;
 * - ground-truth scores when the object mask is known (the shapes dataset): the share of positive
 *   attribution inside the mask (for signed gradient maps), the same share centred on the map's
 *   median (for maps positive everywhere: RISE, occlusion), the pointing game (is the map's
 *   maximum inside the mask: fit for every method, coarse ones included), and the ceiling a map
 *   made of coarse cells can reach (for Grad-CAM, whose layer may be 4x4).
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { makeBaselines, type BaselineSpec } from './baselines.js';
import { checkImage, defaultBatchSize, forwardRows, toProbabilities } from './engine.js';
import { contentMask } from '../image/geometry.js';
import { channelSum, gaussianBlur, paddedContent } from './image-ops.js';
import { hasLayerAccess } from '../models/layer-access.js';
import { DEFAULT_SEED, seededRandom } from '../core/random.js';
import { spearman } from './stats.js';
import type { Attribution, AttributionMethod, CommonOptions, ImageInput, ProgressCallback } from './types.js';

export { completenessOf } from './integrated-gradients.js';

/** What replaces removed pixels (deletion) or forms the starting image (insertion). */
export type CurveFill = { kind: 'blur'; sigma?: number } | { kind: 'baseline'; baseline: BaselineSpec };

export interface CurveOptions {
  /** Points on the curve after the first (fractions 0, 1/steps, ..., 1). Default 32. */
  steps?: number;
  /** Default: deletion fills with black, insertion starts from the image blurred with sigma 5. */
  fill?: CurveFill;
  /** 'probability' (default, as the RISE paper) or the model's raw output. */
  score?: 'probability' | 'output';
  batchSize?: number;
  onProgress?: ProgressCallback;
}

export interface Curve {
  kind: 'deletion' | 'insertion';
  /** Share of pixels removed or inserted at each point, 0..1. */
  fractions: Float32Array;
  scores: Float32Array;
  /** Area under the curve by the trapezoid rule over fractions (lower is better for deletion, higher for insertion). */
  auc: number;
}

function fillImage(model: ImageModel, image: ImageInput, fill: CurveFill): Float32Array {
  if (fill.kind === 'blur') return gaussianBlur(image, fill.sigma ?? 5).data;
  return makeBaselines(model, image, fill.baseline, seededRandom(DEFAULT_SEED)).images[0]!;
}

/** Indices of the pixels that show the photo (all of them unless the input has padding). */
export function imagePixels(image: ImageInput): number[] {
  const all = Array.from({ length: image.height * image.width }, (_, i) => i);
  if (!paddedContent(image)) return all;
  const mask = contentMask(image.geometry!);
  return all.filter((p) => mask[p] === 1);
}

/** Trapezoid area under y over x. */
export function trapezoidArea(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i]! - x[i - 1]!) * (y[i]! + y[i - 1]!)) / 2;
  return area;
}

/**
 * The deletion or insertion curve of an attribution: pixels in decreasing order of their
 * channel-summed attribution are moved from the image to the fill (deletion) or from the image
 * into the fill (insertion), and the model scores each stage.
 *
 * @example
 * const del = await attributionCurve(model, image, attr, 'deletion', { steps: 20 });
 * const ins = await attributionCurve(model, image, attr, 'insertion', { fill: { kind: 'blur', sigma: 10 } });
 * console.log(del.auc, ins.auc);
 */
export async function attributionCurve(model: ImageModel, image: ImageInput, attribution: Attribution, kind: 'deletion' | 'insertion', options: CurveOptions = {}): Promise<Curve> {
  checkImage(model, image);
  if (attribution.height !== image.height || attribution.width !== image.width) {
    throw new LensError('SHAPE_MISMATCH', `attribution is ${attribution.height}x${attribution.width}, image is ${image.height}x${image.width}`);
  }
  const steps = options.steps ?? 32;
  if (!Number.isInteger(steps) || steps < 1) throw new LensError('INVALID_ARGUMENT', `curve steps must be a positive integer, got ${steps}`);
  const fill = options.fill ?? (kind === 'deletion' ? { kind: 'baseline', baseline: 'black' } : { kind: 'blur', sigma: 5 });
  const filler = fillImage(model, image, fill);
  const { height: h, width: w, channels: c } = image;
  const map = channelSum(attribution);
  // Padding is not image: only the photo's pixels are ranked, removed and inserted.
  const inside = imagePixels(image);
  const order = inside.sort((a, b) => map[b]! - map[a]! || a - b);
  const [from, to] = kind === 'deletion' ? [image.data, filler] : [filler, image.data];
  const fractions = Float32Array.from({ length: steps + 1 }, (_, i) => i / steps);
  const stages = Array.from(fractions, (f) => {
    const k = Math.round(f * order.length);
    const data = new Float32Array(from);
    for (let r = 0; r < k; r++) {
      const p = order[r]!;
      for (let ch = 0; ch < c; ch++) data[p * c + ch] = to[p * c + ch]!;
    }
    return data;
  });
  const rows = await forwardRows(model, stages, options.batchSize ?? defaultBatchSize(model.inputShape), {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    stage: kind,
  });
  const t = attribution.target.index;
  const scores = Float32Array.from(rows, (r) => (options.score === 'output' ? r[t]! : toProbabilities(r, model.output)[t]!));
  return { kind, fractions, scores, auc: trapezoidArea(fractions, scores) };
}

/** Ground-truth agreement of one attribution with an object mask. */
export interface MaskScores {
  /** Positive attribution inside the mask / all positive attribution (channel sums). NaN if none is positive. */
  positiveShareInMask: number;
  /**
   * The same share after subtracting the map's median (its background level) from every pixel:
   * fit for maps that are positive everywhere (RISE's E[p | pixel kept], occlusion), where the
   * uncentred share only measures the mask's area. NaN if nothing is above the median.
   */
  centredShareInMask: number;
  /** The pointing game: the pixel with the largest attribution lies in the mask (within `tolerance`). */
  pointingHit: boolean;
  /** Share of the image the mask covers (what a uniform map would score). */
  maskArea: number;
}

/**
 * Scores an attribution against an object mask (H*W, 1 inside), as on the shapes dataset.
 *
 * @example
 * const { positiveShareInMask, pointingHit } = maskScores(attr, sample.mask);
 */
export function maskScores(attribution: Attribution | ImageInput, mask: Uint8Array, options: { tolerance?: number } = {}): MaskScores {
  const { height: h, width: w } = attribution;
  if (mask.length !== h * w) throw new LensError('SHAPE_MISMATCH', `mask holds ${mask.length} pixels, the attribution ${h}x${w}`);
  const map = channelSum(attribution);
  let inside = 0;
  let all = 0;
  let best = -Infinity;
  let bestAt = 0;
  let area = 0;
  for (let p = 0; p < map.length; p++) {
    const v = map[p]!;
    if (mask[p]) area++;
    if (v > 0) {
      all += v;
      if (mask[p]) inside += v;
    }
    if (v > best) {
      best = v;
      bestAt = p;
    }
  }
  const tolerance = options.tolerance ?? 0;
  const by = Math.floor(bestAt / w);
  const bx = bestAt % w;
  let hit = false;
  for (let y = Math.max(0, by - tolerance); y <= Math.min(h - 1, by + tolerance) && !hit; y++) {
    for (let x = Math.max(0, bx - tolerance); x <= Math.min(w - 1, bx + tolerance); x++) {
      if ((y - by) ** 2 + (x - bx) ** 2 <= tolerance * tolerance && mask[y * w + x]) {
        hit = true;
        break;
      }
    }
  }
  // Padding is not image: the median and the area are over the photo's pixels only.
  const pixels = imagePixels(attribution);
  const median = medianOf(pixels.map((p) => map[p]!));
  let centredInside = 0;
  let centredAll = 0;
  for (const p of pixels) {
    const v = map[p]! - median;
    if (v > 0) {
      centredAll += v;
      if (mask[p]) centredInside += v;
    }
  }
  const imageArea = pixels.reduce((n, p) => n + (mask[p] ? 1 : 0), 0);
  return {
    positiveShareInMask: all > 0 ? inside / all : NaN,
    centredShareInMask: centredAll > 0 ? centredInside / centredAll : NaN,
    pointingHit: hit,
    maskArea: pixels.length > 0 ? imageArea / pixels.length : area / map.length,
  };
}

function medianOf(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The largest positive-share-in-mask a map of `cellHeight` x `cellWidth` cells can reach (the
 * share of the best cell's pixels inside the mask): Grad-CAM on a coarse layer cannot place mass
 * finer than a cell, so its mask share is best read against this ceiling, not against 1.
 *
 * @example
 * const ceiling = cellShareCeiling(sample.mask, 64, 64, 16, 16);   // a 4 x 4 layer on a 64 x 64 input
 */
export function cellShareCeiling(mask: Uint8Array, height: number, width: number, cellHeight: number, cellWidth: number): number {
  if (mask.length !== height * width) throw new LensError('SHAPE_MISMATCH', `mask holds ${mask.length} pixels, expected ${height}x${width}`);
  if (!(cellHeight >= 1 && cellWidth >= 1)) throw new LensError('INVALID_ARGUMENT', `cell size must be at least 1x1, got ${cellHeight}x${cellWidth}`);
  let best = 0;
  for (let y0 = 0; y0 < height; y0 += cellHeight) {
    for (let x0 = 0; x0 < width; x0 += cellWidth) {
      let inside = 0;
      let count = 0;
      for (let y = y0; y < Math.min(height, y0 + cellHeight); y++) {
        for (let x = x0; x < Math.min(width, x0 + cellWidth); x++) {
          count++;
          inside += mask[y * width + x]!;
        }
      }
      best = Math.max(best, inside / count);
    }
  }
  return best;
}

export interface RandomizationOptions<O extends CommonOptions> {
  /** Options for the method (its target is fixed to the original top class or the given target). */
  methodOptions?: Omit<O, 'target'>;
  target?: CommonOptions['target'];
  /** Layers to randomise, top first; default every layer with weights, from the output down. */
  layers?: readonly string[];
  seed?: number;
  onProgress?: ProgressCallback;
}

export interface RandomizationStep {
  /** The layer randomised at this step (all layers above it are randomised too). */
  layer: string;
  /** Spearman correlation of |map| (channel sums) with the original's. */
  spearmanAbs: number;
  /** Spearman correlation of the signed maps. */
  spearman: number;
}

/**
 * The cascading model-randomisation sanity check: re-initialise layers from the top down, one
 * more at each step, recompute the map and correlate it with the original. Maps that stay
 * similar while the model is destroyed do not explain the model. The weights are restored at the end.
 * Needs layer access (`model.layerAccess`).
 *
 * @example
 * const steps = await modelRandomization(integratedGradients, model, image, { methodOptions: { steps: 32 } });
 * steps.forEach((s) => console.log(s.layer, s.spearmanAbs.toFixed(2)));
 */
export async function modelRandomization<O extends CommonOptions>(
  method: AttributionMethod<O>,
  model: ImageModel,
  image: ImageInput,
  options: RandomizationOptions<O> = {},
): Promise<{ original: Attribution; steps: RandomizationStep[] }> {
  if (!hasLayerAccess(model)) {
    throw new LensError('UNSUPPORTED', `the randomisation check needs the layers of model ${model.name}; it works on models backed by a tfjs LayersModel`);
  }
  const access = model.layerAccess;
  const layers = options.layers ?? access.layers().filter((l) => l.weights > 0).map((l) => l.name).reverse();
  const original = await method(model, image, { ...(options.methodOptions ?? {}), ...(options.target !== undefined ? { target: options.target } : {}) } as O);
  const fixed = { ...(options.methodOptions ?? {}), target: original.target.index } as O;
  const base = channelSum(original);
  const baseAbs = base.map(Math.abs);
  const restores: (() => void)[] = [];
  const steps: RandomizationStep[] = [];
  try {
    for (let i = 0; i < layers.length; i++) {
      restores.push(access.randomizeWeights([layers[i]!], (options.seed ?? DEFAULT_SEED) + i));
      const map = channelSum(await method(model, image, fixed));
      steps.push({ layer: layers[i]!, spearmanAbs: spearman(baseAbs, map.map(Math.abs)), spearman: spearman(base, map) });
      options.onProgress?.({ done: i + 1, total: layers.length, stage: 'randomisation' });
    }
  } finally {
    for (const restore of restores.reverse()) restore();
  }
  return { original, steps };
}
