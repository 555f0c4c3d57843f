/**
 * Guided Integrated Gradients (Kapishnikov et al., CVPR 2021): an adaptive path from the baseline
 * to the input. At each step the features whose gradient is smallest in magnitude move first
 * (a `fraction` of them at a time), so the path avoids regions where the gradient is noisy and
 * large; every feature stays within `maxDist` (in alpha) of the straight-line schedule.
 * The path needs each step's gradient before choosing the next point, so it runs one image at a time.
 * Its map-error estimate pairs consecutive steps: each pair's move is taken once with the first
 * step's gradient and once with the second's, and SPLIT_ERROR_FACTOR times the difference, summed
 * over pairs, is the estimate (as splitDifferenceWeights does for straight paths).
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { makeBaselines, type BaselineSpec } from './baselines.js';
import { checkAborted, checkImage, gradientsAt, mapSize, requireGradient } from './engine.js';
import { completenessOf } from './integrated-gradients.js';
import { relativeL2, SPLIT_ERROR_FACTOR } from './integration.js';
import { DEFAULT_SEED, seededRandom } from '../core/random.js';
import { scoreInput } from './targets.js';
import type { Attribution, CommonOptions, ImageInput } from './types.js';

export interface GuidedIgOptions extends CommonOptions {
  /** Default 'black'. A baseline that averages several images uses the first. */
  baseline?: BaselineSpec;
  /** Gradient evaluations along the path. Default 128. */
  steps?: number;
  /** Share of features moved per inner iteration. Default 0.25. */
  fraction?: number;
  /** Largest lead or lag of a feature behind the straight-line schedule, in alpha. Default 0.02. */
  maxDist?: number;
}

const EPSILON = 1e-9;

/** The value at position `q` (0..1) of the ascending order, rounding the index down. */
function lowerQuantile(values: Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

/**
 * Guided Integrated Gradients of one target class.
 *
 * @example
 * const attr = await guidedIntegratedGradients(model, image, { steps: 64, fraction: 0.25, maxDist: 0.02 });
 */
export async function guidedIntegratedGradients(model: ImageModel, image: ImageInput, options: GuidedIgOptions = {}): Promise<Attribution> {
  requireGradient(model, 'guided_ig');
  checkImage(model, image);
  const steps = options.steps ?? 128;
  const fraction = options.fraction ?? 0.25;
  const maxDist = options.maxDist ?? 0.02;
  if (!Number.isInteger(steps) || steps < 1) throw new LensError('INVALID_ARGUMENT', `steps must be a positive integer, got ${steps}`);
  if (!(fraction > 0 && fraction <= 1)) throw new LensError('INVALID_ARGUMENT', `fraction must be in (0, 1], got ${fraction}`);
  if (!(maxDist >= 0 && maxDist <= 1)) throw new LensError('INVALID_ARGUMENT', `maxDist must be in [0, 1], got ${maxDist}`);
  const { images, description } = makeBaselines(model, image, options.baseline ?? 'black', seededRandom(options.seed ?? DEFAULT_SEED));
  const baseline = images[0]!;
  const { target, rows } = await scoreInput(model, image, options, [baseline], 2);

  const n = image.data.length;
  const input = Float64Array.from(image.data);
  const base = Float64Array.from(baseline);
  const x = Float64Array.from(baseline);
  const attribution = new Float64Array(n);
  let totalDistance = 0;
  for (let i = 0; i < n; i++) totalDistance += Math.abs(input[i]! - base[i]!);
  const at = (alpha: number, i: number) => base[i]! + (input[i]! - base[i]!) * alpha;
  const grad = new Float64Array(n);
  const magnitude = new Float64Array(n);
  const before = new Float64Array(n);
  const error = new Float64Array(n);
  // The first step of the current pair: where it started and its gradient.
  const pairStart = new Float64Array(n);
  let pairGradient: Float32Array | undefined;

  for (let step = 0; step < steps; step++) {
    checkAborted(options.signal);
    const { gradients } = await gradientsAt(model, [Float32Array.from(x)], target.index, {
      batchSize: 1,
      stage: 'guided ig',
      progressOffset: step,
      progressTotal: steps,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    const actual = gradients[0]!;
    if (step % 2 === 0) {
      pairStart.set(x);
      pairGradient = actual;
    }
    const alpha = (step + 1) / steps;
    const alphaMin = Math.max(alpha - maxDist, 0);
    const alphaMax = Math.min(alpha + maxDist, 1);
    const l1Target = totalDistance * (1 - alpha);
    for (let i = 0; i < n; i++) grad[i] = actual[i]!;
    for (;;) {
      before.set(x);
      // Features lagging more than maxDist behind the schedule catch up first.
      for (let i = 0; i < n; i++) {
        const span = input[i]! - base[i]!;
        const featureAlpha = span === 0 ? alphaMax : (x[i]! - base[i]!) / span;
        if (featureAlpha < alphaMin) x[i] = at(alphaMin, i);
      }
      let l1Current = 0;
      for (let i = 0; i < n; i++) l1Current += Math.abs(x[i]! - input[i]!);
      if (Math.abs(l1Current - l1Target) <= EPSILON * Math.max(1, Math.abs(l1Target))) {
        for (let i = 0; i < n; i++) attribution[i]! += (x[i]! - before[i]!) * actual[i]!;
        break;
      }
      // Features already at the upper limit cannot move further in this step.
      for (let i = 0; i < n; i++) magnitude[i] = x[i] === at(alphaMax, i) ? Infinity : Math.abs(grad[i]!);
      const threshold = lowerQuantile(magnitude, fraction);
      let l1Selected = 0;
      for (let i = 0; i < n; i++) if (magnitude[i]! <= threshold && magnitude[i] !== Infinity) l1Selected += Math.abs(x[i]! - at(alphaMax, i));
      if (l1Selected === 0) {
        // Nothing left to move (every feature is at its limit): the step is done.
        for (let i = 0; i < n; i++) attribution[i]! += (x[i]! - before[i]!) * actual[i]!;
        break;
      }
      const gamma = (l1Current - l1Target) / l1Selected;
      for (let i = 0; i < n; i++) {
        if (magnitude[i]! <= threshold && magnitude[i] !== Infinity) {
          const limit = at(alphaMax, i);
          x[i] = gamma > 1 ? limit : x[i]! + (limit - x[i]!) * gamma;
        }
      }
      for (let i = 0; i < n; i++) attribution[i]! += (x[i]! - before[i]!) * actual[i]!;
      if (gamma <= 1) break;
    }
    if (step % 2 === 1) {
      for (let i = 0; i < n; i++) error[i]! += SPLIT_ERROR_FACTOR * (x[i]! - pairStart[i]!) * (pairGradient![i]! - actual[i]!);
    }
  }
  const data = Float32Array.from(attribution);
  return {
    data,
    ...mapSize(image),
    method: 'guided_ig',
    target,
    output: model.output,
    baseline: description,
    steps,
    completeness: completenessOf(data, target.score, rows[1]![target.index]!),
    gradientEvaluations: steps,
    forwardEvaluations: 2,
    ...(steps >= 2 ? { mapErrorEstimate: relativeL2(error, data) } : {}),
    details: { fraction, maxDist },
  };
}
