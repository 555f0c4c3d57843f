/**
 * Comparing IG baselines on a set of images, as Sturmfels et al. (Distill 2020) did: for each
 * image and baseline, Integrated Gradients and its quality metrics (completeness, deletion and
 * insertion AUC, and with object masks the share of positive attribution inside the mask and the
 * pointing game), then per-baseline means with 95% intervals (percentile bootstrap, inside the
 * metric's range; Wilson score for the pointing game, a proportion of hits).
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import type { BaselineSpec } from './baselines.js';
import { checkImage, forwardRows } from './engine.js';
import { expectedGradients, integratedGradients } from './integrated-gradients.js';
import type { IgRule } from './integration.js';
import { attributionCurve, maskScores } from './metrics.js';
import { bootstrapInterval, proportionInterval, type Interval } from './stats.js';
import { resolveTarget } from './targets.js';
import type { Attribution, ImageInput, ProgressCallback, TargetSpec } from './types.js';

/** An image to compare on; `mask` (H*W, 1 inside the object) enables the ground-truth scores. */
export interface CompareImage {
  name: string;
  image: ImageInput;
  mask?: Uint8Array;
}

/** A baseline column: IG with `spec`, or Expected Gradients drawn from the other images. */
export interface BaselineEntry {
  name: string;
  spec: BaselineSpec | 'expected';
}

export interface CompareOptions {
  /** IG steps per baseline; Expected Gradients samples. Default 64. */
  steps?: number;
  rule?: IgRule;
  target?: TargetSpec;
  batchSize?: number;
  seed?: number;
  /** Points on the deletion and insertion curves; 0 skips them. Default 16. */
  curveSteps?: number;
  /** Reference images for Expected Gradients; default every other image of the set. */
  references?: readonly ImageInput[];
  /** Attributions kept (for a grid) for the first this many images. Default 8. */
  keep?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export const COMPARE_METRICS = ['relativeDelta', 'deletionAuc', 'insertionAuc', 'maskShare', 'pointing'] as const;
export type CompareMetric = (typeof COMPARE_METRICS)[number];

/** Metrics whose per-image values are 0/1 outcomes: summarised as proportions with Wilson intervals. */
export const PROPORTION_METRICS: ReadonlySet<CompareMetric> = new Set<CompareMetric>(['pointing']);

/** One image and baseline. */
export interface CompareRow {
  image: string;
  baseline: string;
  target: number;
  label?: string;
  probability: number;
  delta: number;
  relativeDelta: number;
  deletionAuc?: number;
  insertionAuc?: number;
  maskShare?: number;
  /** 1 when the map's maximum lies inside the mask, else 0. */
  pointing?: number;
}

/** Per baseline, per metric: the estimate with its 95% interval. */
export type CompareSummary = Record<string, Partial<Record<CompareMetric, Interval>>>;

export interface CompareResult {
  baselines: string[];
  rows: CompareRow[];
  /** Per baseline, per metric: mean with its 95% interval, a ProportionInterval (Wilson) for {@link PROPORTION_METRICS}. */
  summary: CompareSummary;
  /** attributions[i][b] for the first `keep` images. */
  attributions: Attribution[][];
  gradientEvaluations: number;
}

/**
 * Runs IG with each baseline on each image and scores the maps.
 *
 * @example
 * const result = await compareBaselines(model, samples, [{ name: 'black', spec: 'black' }, { name: 'blur', spec: 'blur' }], { steps: 64 });
 * console.log(result.summary.black?.maskShare?.mean);
 */
export async function compareBaselines(model: ImageModel, images: readonly CompareImage[], baselines: readonly BaselineEntry[], options: CompareOptions = {}): Promise<CompareResult> {
  if (images.length === 0) throw new LensError('INVALID_ARGUMENT', 'no images to compare baselines on');
  if (baselines.length === 0) throw new LensError('INVALID_ARGUMENT', 'no baselines to compare');
  images.forEach((i) => checkImage(model, i.image, `image ${i.name}`));
  if (baselines.some((b) => b.spec === 'expected') && !options.references && images.length < 2) {
    throw new LensError('INVALID_ARGUMENT', 'the expected-gradients baseline draws from the other images: give at least 2 images (or reference images)');
  }
  const steps = options.steps ?? 64;
  const curveSteps = options.curveSteps ?? 16;
  const keep = options.keep ?? 8;
  const rows: CompareRow[] = [];
  const attributions: Attribution[][] = [];
  let gradientEvaluations = 0;
  const total = images.length * baselines.length;
  for (let i = 0; i < images.length; i++) {
    const item = images[i]!;
    // Fix the target once per image so every baseline explains the same class.
    const [scores] = await forwardRows(model, [item.image.data], 1);
    const target = resolveTarget(model, scores!, options.target);
    const kept: Attribution[] = [];
    for (let b = 0; b < baselines.length; b++) {
      const entry = baselines[b]!;
      const common = {
        target: target.index,
        inputScores: scores!,
        seed: (options.seed ?? 0) + i,
        ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      };
      const attr =
        entry.spec === 'expected'
          ? await expectedGradients(model, item.image, { ...common, samples: steps, references: options.references ?? images.filter((_, j) => j !== i).map((x) => x.image) })
          : await integratedGradients(model, item.image, { ...common, steps, baseline: entry.spec, ...(options.rule ? { rule: options.rule } : {}) });
      gradientEvaluations += attr.gradientEvaluations;
      const row: CompareRow = {
        image: item.name,
        baseline: entry.name,
        target: target.index,
        ...(target.label !== undefined ? { label: target.label } : {}),
        probability: target.probability,
        delta: attr.completeness!.delta,
        relativeDelta: attr.completeness!.relative,
      };
      if (curveSteps > 0) {
        const curve = { steps: curveSteps, ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}) };
        row.deletionAuc = (await attributionCurve(model, item.image, attr, 'deletion', curve)).auc;
        row.insertionAuc = (await attributionCurve(model, item.image, attr, 'insertion', curve)).auc;
      }
      if (item.mask) {
        const s = maskScores(attr, item.mask);
        row.maskShare = s.positiveShareInMask;
        row.pointing = s.pointingHit ? 1 : 0;
      }
      rows.push(row);
      if (i < keep) kept.push(attr);
      options.onProgress?.({ done: i * baselines.length + b + 1, total, stage: `${item.name} ${entry.name}` });
    }
    if (i < keep) attributions.push(kept);
  }
  const names = baselines.map((b) => b.name);
  return { baselines: names, rows, summary: compareSummary(rows, names), attributions, gradientEvaluations };
}

/**
 * Per baseline and metric, the 95% interval over the images: the percentile bootstrap of the mean
 * (its ends lie within the values' range, so AUCs and shares stay inside [0, 1]), Wilson score for
 * {@link PROPORTION_METRICS}. Missing and non-finite values are left out.
 *
 * @example
 * compareSummary(rows, ['black']).black?.pointing; // { mean: 0.9, low: 0.596, high: 0.982, successes: 9, n: 10, level: 0.95 }
 */
export function compareSummary(rows: readonly CompareRow[], baselines: readonly string[]): CompareSummary {
  const summary: CompareSummary = {};
  for (const name of baselines) {
    const mine = rows.filter((r) => r.baseline === name);
    const s: Partial<Record<CompareMetric, Interval>> = {};
    for (const metric of COMPARE_METRICS) {
      const values = mine.map((r) => r[metric]).filter((v): v is number => v !== undefined && Number.isFinite(v));
      if (values.length > 0) s[metric] = PROPORTION_METRICS.has(metric) ? proportionInterval(values) : bootstrapInterval(values);
    }
    summary[name] = s;
  }
  return summary;
}
