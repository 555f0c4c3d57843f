/**
 * Integrated Gradients (Sundararajan, Taly, Yan 2017) and Expected Gradients (Erion et al. 2021).
 *
 * IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da, approximated by a quadrature
 * rule (fixed, or placed from forward passes along the path: adaptive-rules.ts); the attributions
 * sum to F(x) - F(x') up to the reported completeness delta. With several baselines the maps are
 * averaged. Expected Gradients draws the baseline from a set of reference images and alpha
 * uniformly, one gradient per sample.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { makeBaselines, type BaselineSpec } from './baselines.js';
import { checkImage, defaultBatchSize, mapSize, pathSum, requireGradient, type PathPoint } from './engine.js';
import { total } from './image-ops.js';
import { ADAPTIVE_INITIAL_SEGMENTS, ADAPTIVE_TOLERANCE, adaptivePath, nonUniformPath, type AdaptiveRuleContext } from './adaptive-rules.js';
import { IG_RULES, isAdaptiveRule, quadrature, relativeL2, splitDifferenceWeights, type IgRule, type IntegrationRule } from './integration.js';
import { MAP_ADAPTIVE_BUDGET, MAP_ADAPTIVE_INITIAL_SEGMENTS, MAP_TOLERANCE, mapAdaptivePath } from './map-tolerance.js';
import { DEFAULT_SEED, seededRandom } from '../core/random.js';
import { scoreInput } from './targets.js';
import type { Attribution, CommonOptions, Completeness, ImageInput, PathTrace } from './types.js';

export interface IntegratedGradientsOptions extends CommonOptions {
  /** Default 'black'. */
  baseline?: BaselineSpec;
  /**
   * Gradient points on the path per baseline; for rules 'adaptive' and 'map_adaptive' their budget:
   * at most steps x (number of baselines) gradient evaluations in all. Default 50 (Captum's
   * default), or 1024 for 'map_adaptive'.
   */
  steps?: number;
  /**
   * Default 'gausslegendre' (Captum's default). 'nonuniform' and 'adaptive' also spend forward
   * passes to place the points (counted in `forwardEvaluations`):
   * - nonuniform: `segments - 1` forward passes per baseline, then `steps` gradient points;
   * - adaptive: `segments - 1` forward passes per baseline, 2 gradient points per segment, then
   *   per halved segment 1 forward pass and 4 gradient points, until the relative completeness
   *   delta is under `tolerance` or the budget is spent (`details.converged` says which). It
   *   makes the completeness delta small, which does not make the map as accurate as a uniform
   *   rule's at the same cost (bench/results/ig-convergence.json).
   * - map_adaptive (chosen by `mapTolerance`): no extra forward passes; 2 x segments + 1 gradient
   *   points per baseline, then 2 per halved segment, until the estimated relative L2 error of the
   *   map (`Attribution.mapErrorEstimate`) is at most `mapTolerance` / 1.2 (a measured margin) or
   *   the budget is spent (`details.converged` says which). See map-tolerance.ts.
   */
  rule?: IgRule;
  /** Rule 'adaptive' only: the relative completeness delta to reach, in (0, 1). Default 0.01. */
  tolerance?: number;
  /**
   * The map error to reach, in (0, 1): the estimated ||map - converged map|| / ||map|| (L2 over
   * pixels and channels). Selects rule 'map_adaptive' (the only rule that takes it). Default 0.01
   * with that rule.
   */
  mapTolerance?: number;
  /**
   * Rules 'nonuniform' (forward sweep segments, default steps / 2, at most `steps`), 'adaptive'
   * (initial segments, default 4; `steps` must be at least twice this) and 'map_adaptive' (initial
   * segments, default 4; `steps` must be at least twice this plus one).
   */
  segments?: number;
  /** Return the path: scores per step, and with 'gradients' each step's gradient and class scores. */
  returnPath?: boolean | 'gradients';
}

/** Completeness of an attribution against F(x) - F(x'). */
export function completenessOf(attribution: ArrayLike<number>, inputScore: number, baselineScore: number): Completeness {
  const sum = total(attribution);
  const expected = inputScore - baselineScore;
  const delta = Math.abs(sum - expected);
  const relative = expected !== 0 ? delta / Math.abs(expected) : delta === 0 ? 0 : Infinity;
  return { sum, inputScore, baselineScore, delta, relative };
}

/**
 * Integrated Gradients of one target class.
 *
 * @example
 * const attr = await integratedGradients(model, image, { baseline: 'black', steps: 64, rule: 'gausslegendre' });
 * console.log(attr.target.label, attr.completeness?.delta);
 * // Stop once complete within 0.5%, spending at most 256 gradient evaluations:
 * const fast = await integratedGradients(model, image, { rule: 'adaptive', tolerance: 0.005, steps: 256 });
 * console.log(fast.gradientEvaluations, fast.forwardEvaluations, fast.details?.converged);
 * // A map within an estimated 1% (relative L2) of the converged one, steps placed by lens:
 * const sure = await integratedGradients(model, image, { mapTolerance: 0.01 });
 * console.log(sure.mapErrorEstimate, sure.gradientEvaluations);
 */
export async function integratedGradients(model: ImageModel, image: ImageInput, options: IntegratedGradientsOptions = {}): Promise<Attribution> {
  requireGradient(model, 'integrated_gradients');
  checkImage(model, image);
  const rule = options.rule ?? (options.mapTolerance !== undefined ? 'map_adaptive' : 'gausslegendre');
  const steps = options.steps ?? (rule === 'map_adaptive' ? MAP_ADAPTIVE_BUDGET : 50);
  if (!Number.isInteger(steps) || steps < 1) throw new LensError('INVALID_ARGUMENT', `steps must be a positive integer, got ${steps}`);
  const settings = ruleSettings(rule, steps, options);
  const batchSize = options.batchSize ?? defaultBatchSize(model.inputShape);
  const baselineSpec = options.baseline ?? 'black';
  const { images: baselines, description } = makeBaselines(model, image, baselineSpec, seededRandom(options.seed ?? DEFAULT_SEED));
  // F(x) and F(x') once, in one batched forward call.
  const { target, rows } = await scoreInput(model, image, options, baselines, batchSize);
  const baselineScores = rows.slice(1).map((r) => r[target.index]!);
  const common = {
    batchSize,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.returnPath ? { trace: options.returnPath } : {}),
  };
  let result: { sum: Float32Array; errorSum?: Float32Array; mapErrorEstimate?: number; gradientEvaluations: number; forwardEvaluations: number; trace?: PathTrace; details?: Record<string, unknown> };
  if (settings.kind === 'fixed') {
    const { alphas, weights } = quadrature(settings.rule, steps);
    const errorWeights = splitDifferenceWeights(alphas, weights);
    const points: PathPoint[] = [];
    baselines.forEach((_, b) => {
      for (let i = 0; i < steps; i++) {
        points.push({ start: b, alpha: alphas[i]!, weight: weights[i]! / baselines.length, ...(errorWeights ? { errorWeight: errorWeights[i]! / baselines.length } : {}) });
      }
    });
    result = await pathSum(model, image, baselines, points, target.index, { ...common, stage: 'integrated gradients' });
  } else {
    const ctx: AdaptiveRuleContext = { ...common, model, image, baselines, target: target.index, inputScore: target.score, baselineScores, steps };
    result =
      settings.kind === 'nonuniform'
        ? await nonUniformPath(ctx, settings.segments)
        : settings.kind === 'adaptive'
          ? await adaptivePath(ctx, settings)
          : await mapAdaptivePath(ctx, settings);
  }
  const baselineScore = baselineScores.reduce((s, v) => s + v, 0) / baselines.length;
  return {
    data: result.sum,
    ...mapSize(image),
    method: 'integrated_gradients',
    target,
    output: model.output,
    baseline: description,
    // map_adaptive: the points it placed per baseline (its budget is in `details`).
    steps: settings.kind === 'map_adaptive' ? result.gradientEvaluations / baselines.length : steps,
    rule,
    completeness: completenessOf(result.sum, target.score, baselineScore),
    gradientEvaluations: result.gradientEvaluations,
    forwardEvaluations: baselines.length + 1 + result.forwardEvaluations,
    ...(result.mapErrorEstimate !== undefined
      ? { mapErrorEstimate: result.mapErrorEstimate }
      : result.errorSum
        ? { mapErrorEstimate: relativeL2(result.errorSum, result.sum) }
        : {}),
    ...(result.trace ? { path: result.trace } : {}),
    ...(result.details ? { details: result.details } : {}),
  };
}

type RuleSettings =
  | { kind: 'fixed'; rule: IntegrationRule }
  | { kind: 'nonuniform'; segments: number }
  | { kind: 'adaptive'; tolerance: number; initialSegments: number }
  | { kind: 'map_adaptive'; tolerance: number; initialSegments: number };

/** Checks the options that belong to one rule, with their defaults. */
function ruleSettings(rule: IgRule, steps: number, options: IntegratedGradientsOptions): RuleSettings {
  if (!IG_RULES.includes(rule)) throw new LensError('INVALID_ARGUMENT', `unknown integration rule "${String(rule)}": expected one of ${IG_RULES.join(', ')}`);
  if (options.tolerance !== undefined && rule !== 'adaptive') {
    throw new LensError('INVALID_ARGUMENT', `tolerance applies to rule 'adaptive' only (rule is '${rule}', which spends exactly steps gradient points)`);
  }
  if (options.mapTolerance !== undefined && rule !== 'map_adaptive') {
    throw new LensError('INVALID_ARGUMENT', `mapTolerance chooses the step placement itself (rule 'map_adaptive'); it does not go with rule '${rule}'`);
  }
  if (options.segments !== undefined && !isAdaptiveRule(rule)) {
    throw new LensError('INVALID_ARGUMENT', `segments applies to rules 'nonuniform', 'adaptive' and 'map_adaptive' only, not '${rule}'`);
  }
  if (options.segments !== undefined && (!Number.isInteger(options.segments) || options.segments < 1)) {
    throw new LensError('INVALID_ARGUMENT', `segments must be a positive integer, got ${options.segments}`);
  }
  if (rule === 'nonuniform') {
    const segments = options.segments ?? Math.max(1, Math.floor(steps / 2));
    if (segments > steps) {
      throw new LensError('INVALID_ARGUMENT', `the nonuniform rule gives each of its ${segments} sweep segments a gradient point, so it needs steps >= ${segments}, got ${steps}`);
    }
    return { kind: 'nonuniform', segments };
  }
  if (rule === 'adaptive') {
    const tolerance = options.tolerance ?? ADAPTIVE_TOLERANCE;
    if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance <= 0 || tolerance >= 1) {
      throw new LensError('INVALID_ARGUMENT', `tolerance is a relative completeness delta in (0, 1), e.g. 0.01 for 1%; got ${String(tolerance)}`);
    }
    const initialSegments = options.segments ?? ADAPTIVE_INITIAL_SEGMENTS;
    if (steps < 2 * initialSegments) {
      throw new LensError(
        'INVALID_ARGUMENT',
        `the adaptive rule starts with ${initialSegments} segments of 2 gradient points each, so its budget needs steps >= ${2 * initialSegments} per baseline, got ${steps}`,
      );
    }
    return { kind: 'adaptive', tolerance, initialSegments };
  }
  if (rule === 'map_adaptive') {
    const tolerance = options.mapTolerance ?? MAP_TOLERANCE;
    if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance <= 0 || tolerance >= 1) {
      throw new LensError('INVALID_ARGUMENT', `map tolerance is a relative L2 map error in (0, 1), e.g. 0.01 for 1%; got ${String(tolerance)}`);
    }
    const initialSegments = options.segments ?? MAP_ADAPTIVE_INITIAL_SEGMENTS;
    if (steps < 2 * initialSegments + 1) {
      throw new LensError(
        'INVALID_ARGUMENT',
        `the map_adaptive rule starts with gradients at ${2 * initialSegments + 1} points (${initialSegments} segments, ends and midpoints), so its budget needs steps >= ${2 * initialSegments + 1} per baseline, got ${steps}`,
      );
    }
    return { kind: 'map_adaptive', tolerance, initialSegments };
  }
  return { kind: 'fixed', rule };
}

export interface ExpectedGradientsOptions extends CommonOptions {
  /** The images baselines are drawn from (e.g. a sample of the training set), each like the input. */
  references: readonly ImageInput[];
  /** Gradient samples (reference, alpha) pairs. Default 64. */
  samples?: number;
  returnPath?: boolean | 'gradients';
}

/**
 * Expected Gradients: IG with the baseline drawn from `references` and alpha drawn uniformly per
 * sample. Completeness is reported against the mean score of the drawn references.
 *
 * @example
 * const attr = await expectedGradients(model, image, { references: trainingSample, samples: 128, seed: 1 });
 */
export async function expectedGradients(model: ImageModel, image: ImageInput, options: ExpectedGradientsOptions): Promise<Attribution> {
  requireGradient(model, 'expected_gradients');
  checkImage(model, image);
  if (!options.references || options.references.length === 0) {
    throw new LensError('INVALID_ARGUMENT', 'expected gradients needs at least one reference image');
  }
  options.references.forEach((r, i) => checkImage(model, r, `reference image ${i}`));
  const samples = options.samples ?? 64;
  if (!Number.isInteger(samples) || samples < 1) throw new LensError('INVALID_ARGUMENT', `samples must be a positive integer, got ${samples}`);
  const batchSize = options.batchSize ?? defaultBatchSize(model.inputShape);
  const rng = seededRandom(options.seed ?? DEFAULT_SEED);
  const drawn = Array.from({ length: samples }, () => ({ ref: rng.int(options.references.length), alpha: rng.uniform() }));
  // Only the references actually drawn go to the backend.
  const used = [...new Set(drawn.map((d) => d.ref))];
  const slot = new Map(used.map((r, i) => [r, i]));
  const starts = used.map((r) => options.references[r]!.data);
  const { target, rows } = await scoreInput(model, image, options, starts, batchSize);
  const points: PathPoint[] = drawn.map((d) => ({ start: slot.get(d.ref)!, alpha: d.alpha, weight: 1 / samples }));
  const result = await pathSum(model, image, starts, points, target.index, {
    batchSize,
    stage: 'expected gradients',
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.returnPath ? { trace: options.returnPath } : {}),
  });
  const baselineScore = drawn.reduce((s, d) => s + rows[1 + slot.get(d.ref)!]![target.index]!, 0) / samples;
  return {
    data: result.sum,
    ...mapSize(image),
    method: 'expected_gradients',
    target,
    output: model.output,
    baseline: `expected(references=${options.references.length})`,
    steps: samples,
    completeness: completenessOf(result.sum, target.score, baselineScore),
    gradientEvaluations: result.gradientEvaluations,
    forwardEvaluations: starts.length + 1 + result.forwardEvaluations,
    ...(result.trace ? { path: result.trace } : {}),
  };
}
