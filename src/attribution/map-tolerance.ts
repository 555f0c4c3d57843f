/**
 * The `map_adaptive` rule: Integrated Gradients to a requested map error. Each baseline's path is
 * cut into segments; each segment has gradients at its ends and its midpoint, and its share of the
 * map is the trapezoid rule on its two halves. The map-error estimate is the one every rule
 * reports (integration.ts splitDifferenceWeights): the trapezoid on the segment ends against the
 * midpoint rule, as vectors over pixels, summed over segments; or, when larger, the root of the
 * segments' squared norms (a jump in the gradient inside a segment gives an error whose sign is
 * not that of its estimate, so signed estimates of two segments can cancel where their errors
 * add). While the estimate is above tolerance / {@link MAP_TOLERANCE_MARGIN}, the segments with the
 * largest per-pixel error norm are halved (2 new gradients each; the 3 old points are kept), so
 * points go where the gradient changes along the path, not where a scalar score does: for the
 * random-walk gradients of ReLU networks the trapezoid is the best estimate between points, so
 * placement is all there is to gain (bench/results/ig-map-error.json, "oracle placement"; directional
 * derivatives and a smoothing estimate between points do not change that: ig-map-error-routes.json).
 * No forward passes beyond F(x) and F(x').
 */
import { LensError } from '../core/errors.js';
import { SPLIT_ERROR_FACTOR } from './integration.js';
import { pathGradients, type AdaptiveRuleContext, type AdaptiveRuleResult } from './adaptive-rules.js';
import type { PathTrace } from './types.js';

/** Default initial segments of the map_adaptive rule (2 x segments + 1 gradients per baseline to start). */
export const MAP_ADAPTIVE_INITIAL_SEGMENTS = 4;
/** Default relative L2 map error the map_adaptive rule stops under. */
export const MAP_TOLERANCE = 0.01;
/**
 * The rule stops when its estimate is under tolerance / margin. The margin is measured: for the
 * independent increments of a ReLU network's path gradient the estimate's factor is exact
 * (integration.ts SPLIT_ERROR_FACTOR), what is left is its scatter, and true error / estimate at
 * the stop was at most 1.10 on the bench's photos and shapes (bench/results/ig-map-error.json,
 * "map_adaptive true error / estimate (max)"). The reported estimate is the unscaled one.
 */
export const MAP_TOLERANCE_MARGIN = 1.2;
/** Default gradient budget per baseline when only a map tolerance is given. */
export const MAP_ADAPTIVE_BUDGET = 1024;
/** The rule keeps one map per gradient point; budgets that would need more than this are refused up front. */
const MAX_KEPT_BYTES = 2 ** 30;
/** Segments narrower than this (in alpha) are not halved: float32 pixels cannot tell the halves apart. */
const MIN_SEGMENT_WIDTH = 2 ** -20;
/**
 * Halving a segment whose quadrature errors behave like noise leaves its two halves about a
 * quarter of its squared error estimate (each half is half as wide, with errors of half the size
 * that add in squares); used to refine only as many segments as the tolerance needs.
 */
const SQUARED_ERROR_KEPT_BY_HALVING = 0.25;

/** A gradient point: alpha, the target score there, and gradient x (x - x') per pixel. */
interface Node {
  alpha: number;
  score: number;
  product: Float32Array;
  gradient?: Float32Array;
}

/** A segment [a, b] of one baseline's path with its midpoint m. */
interface Segment {
  baseline: number;
  a: Node;
  m: Node;
  b: Node;
  /** ||error estimate of this segment||^2 over pixels. */
  squaredError: number;
}

/**
 * Integrated Gradients with points placed until `||estimated error|| <= tolerance / MAP_TOLERANCE_MARGIN * ||map||`, or
 * `steps` x baselines gradient evaluations are spent (`details.converged` says which). Memory:
 * one attribution-sized map per gradient point, checked against 1 GiB before starting.
 */
export async function mapAdaptivePath(ctx: AdaptiveRuleContext, options: { tolerance: number; initialSegments: number }): Promise<AdaptiveRuleResult> {
  const { image, baselines, steps } = ctx;
  const { tolerance, initialSegments } = options;
  const goal = tolerance / MAP_TOLERANCE_MARGIN;
  const per = image.data.length;
  const budget = steps * baselines.length;
  if (budget * per * 4 > MAX_KEPT_BYTES) {
    throw new LensError(
      'INVALID_ARGUMENT',
      `the map_adaptive rule keeps every gradient point's map: ${steps} steps x ${baselines.length} baseline(s) x ${per} values would take ${((budget * per * 4) / 2 ** 20).toFixed(0)} MiB; give at most ${Math.floor(MAX_KEPT_BYTES / (4 * per * baselines.length))} steps`,
    );
  }
  const diffs = baselines.map((start) => Float32Array.from(image.data, (v, i) => v - start[i]!));
  const keepGradients = ctx.trace === 'gradients';
  const stage = 'integrated gradients (map tolerance)';
  let gradients = 0;

  /** Gradient points at (baseline, alpha) pairs, in one batched call. */
  const evaluate = async (at: readonly { baseline: number; alpha: number }[]): Promise<Node[]> => {
    const result = await pathGradients(ctx, at, stage, gradients, budget);
    gradients += at.length;
    return at.map(({ baseline, alpha }, k) => {
      const g = result.gradients[k]!;
      const d = diffs[baseline]!;
      const product = new Float32Array(per);
      for (let i = 0; i < per; i++) product[i] = g[i]! * d[i]!;
      return { alpha, score: result.scores[k]!, product, ...(keepGradients ? { gradient: g } : {}) };
    });
  };

  // Running map and error estimate (sums over baselines; divided by their number at the end).
  const sum = new Float64Array(per);
  const error = new Float64Array(per);
  /** Adds (sign 1) or removes (sign -1) a segment's share of the map and of the error estimate. */
  const account = (s: Segment, sign: 1 | -1): void => {
    const h = s.b.alpha - s.a.alpha;
    const pa = s.a.product;
    const pm = s.m.product;
    const pb = s.b.product;
    let squared = 0;
    for (let i = 0; i < per; i++) {
      // Trapezoid on the two halves; error: factor x (trapezoid on the ends - midpoint rule).
      sum[i] += sign * (h / 4) * (pa[i]! + 2 * pm[i]! + pb[i]!);
      const e = SPLIT_ERROR_FACTOR * h * ((pa[i]! + pb[i]!) / 2 - pm[i]!);
      error[i] += sign * e;
      squared += e * e;
    }
    s.squaredError = squared;
  };
  const segment = (baseline: number, a: Node, m: Node, b: Node): Segment => {
    const s: Segment = { baseline, a, m, b, squaredError: 0 };
    account(s, 1);
    return s;
  };

  // The initial grid: 2 x initialSegments + 1 uniform points per baseline.
  const gridPoints = 2 * initialSegments + 1;
  const grid = await evaluate(baselines.flatMap((_, baseline) => Array.from({ length: gridPoints }, (_, j) => ({ baseline, alpha: j / (gridPoints - 1) }))));
  const live: Segment[] = baselines.flatMap((_, b) =>
    Array.from({ length: initialSegments }, (_, j) => segment(b, grid[b * gridPoints + 2 * j]!, grid[b * gridPoints + 2 * j + 1]!, grid[b * gridPoints + 2 * j + 2]!)),
  );

  const estimate = (): number => {
    let coherent = 0;
    let den = 0;
    for (let i = 0; i < per; i++) {
      coherent += error[i]! ** 2;
      den += sum[i]! ** 2;
    }
    const num = Math.max(
      coherent,
      live.reduce((t, s) => t + s.squaredError, 0),
    );
    return den > 0 ? Math.sqrt(num / den) : num === 0 ? 0 : Infinity;
  };
  let current = estimate();
  let rounds = 0;
  const pairsPerCall = Math.max(1, Math.floor(ctx.batchSize / 2));
  while (current > goal && budget - gradients >= 2) {
    // Refine the segments with the largest error norms until halving them should bring the
    // squared estimate under the tolerance's share (at least one, at most a batch of points).
    const candidates = live.filter((s) => s.b.alpha - s.a.alpha >= 2 * MIN_SEGMENT_WIDTH && s.squaredError > 0).sort((p, q) => q.squaredError - p.squaredError);
    if (candidates.length === 0) break;
    const total = candidates.reduce((t, s) => t + s.squaredError, 0);
    const needed = Math.min(1, (1 - (goal / current) ** 2) / (1 - SQUARED_ERROR_KEPT_BY_HALVING)) * total;
    const limit = Math.min(pairsPerCall, Math.floor((budget - gradients) / 2));
    const chosen: Segment[] = [];
    let covered = 0;
    for (const s of candidates) {
      if (chosen.length >= limit || (chosen.length > 0 && covered >= needed)) break;
      chosen.push(s);
      covered += s.squaredError;
    }
    const fresh = await evaluate(chosen.flatMap((s) => [(s.a.alpha + s.m.alpha) / 2, (s.m.alpha + s.b.alpha) / 2].map((alpha) => ({ baseline: s.baseline, alpha }))));
    chosen.forEach((s, k) => {
      account(s, -1);
      const halves = [segment(s.baseline, s.a, fresh[2 * k]!, s.m), segment(s.baseline, s.m, fresh[2 * k + 1]!, s.b)];
      live.splice(live.indexOf(s), 1, ...halves);
    });
    rounds++;
    current = estimate();
  }
  ctx.onProgress?.({ done: gradients, total: gradients, stage });

  const count = baselines.length;
  let trace: PathTrace | undefined;
  if (ctx.trace) {
    // Each point's weight: a quarter of each segment it ends, half of the one it halves.
    const weights = new Map<Node, { baseline: number; weight: number }>();
    const add = (n: Node, baseline: number, w: number) => weights.set(n, { baseline, weight: (weights.get(n)?.weight ?? 0) + w / count });
    for (const s of live) {
      const h = s.b.alpha - s.a.alpha;
      add(s.a, s.baseline, h / 4);
      add(s.m, s.baseline, h / 2);
      add(s.b, s.baseline, h / 4);
    }
    const nodes = [...weights.entries()].sort((p, q) => p[1].baseline - q[1].baseline || p[0].alpha - q[0].alpha);
    trace = {
      alphas: Float32Array.from(nodes, ([n]) => n.alpha),
      weights: Float32Array.from(nodes, ([, w]) => w.weight),
      scores: Float32Array.from(nodes, ([n]) => n.score),
      ...(keepGradients ? { gradients: nodes.map(([n]) => n.gradient!) } : {}),
    };
  }
  return {
    sum: Float32Array.from(sum, (v) => v / count),
    mapErrorEstimate: current,
    gradientEvaluations: gradients,
    forwardEvaluations: 0,
    ...(trace ? { trace } : {}),
    details: { tolerance, converged: current <= goal, budget: steps, initialSegments, segments: live.length, rounds },
  };
}
