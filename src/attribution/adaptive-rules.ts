/**
 * The integration rules that look at the model before placing gradient points: `nonuniform` and
 * `adaptive` (see integration.ts). Both spend forward passes along the path, which cost less than
 * gradient evaluations (a forward is about 40% of a gradient on wasm, far less on fast kernels),
 * to spend gradient evaluations where the score F changes. Integrated Gradients calls these; the
 * straight path from each baseline x' to the input x is x' + alpha (x - x').
 */
import type { ImageModel } from '../core/model.js';
import { forwardRows, gradientsAt, pathSum, type PathPoint } from './engine.js';
import { nonUniformQuadrature, quadrature, SPLIT_ERROR_FACTOR, splitDifferenceWeights } from './integration.js';
import type { ImageInput, PathTrace, ProgressCallback } from './types.js';

/** What the adaptive rules get from Integrated Gradients. */
export interface AdaptiveRuleContext {
  model: ImageModel & Required<Pick<ImageModel, 'gradient'>>;
  image: ImageInput;
  baselines: readonly Float32Array[];
  target: number;
  /** F(x), the target score on the input. */
  inputScore: number;
  /** F(x') for each baseline. */
  baselineScores: readonly number[];
  /** Gradient points per baseline (nonuniform), or at most that many (adaptive). */
  steps: number;
  batchSize: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  trace?: boolean | 'gradients';
}

/** The attribution sum (mean over baselines) and what it cost beyond F(x) and F(x'). */
export interface AdaptiveRuleResult {
  sum: Float32Array;
  /** The estimated error of `sum`, HWC (integration.ts splitDifferenceWeights). */
  errorSum?: Float32Array;
  /** Or the rule's own relative estimate of it, when it is not the norm of one error map. */
  mapErrorEstimate?: number;
  gradientEvaluations: number;
  forwardEvaluations: number;
  trace?: PathTrace;
  details: Record<string, unknown>;
}

/** Default initial segments of the adaptive rule (its minimum budget is twice this). */
export const ADAPTIVE_INITIAL_SEGMENTS = 4;
/** Default relative completeness delta the adaptive rule stops under. */
export const ADAPTIVE_TOLERANCE = 0.01;
/** Segments narrower than this (in alpha) are not halved: float32 pixels cannot tell the halves apart. */
const MIN_SEGMENT_WIDTH = 2 ** -20;

/** The point start + alpha (input - start) of a straight path, HWC. */
export function pathImage(start: Float32Array, input: Float32Array, alpha: number): Float32Array {
  const out = new Float32Array(input.length);
  for (let i = 0; i < out.length; i++) out[i] = start[i]! + alpha * (input[i]! - start[i]!);
  return out;
}

/**
 * Gradients at points on the paths, in one batched call; progress counts them as `done` onward
 * of `budget` gradient evaluations.
 */
export function pathGradients(ctx: AdaptiveRuleContext, at: readonly { baseline: number; alpha: number }[], stage: string, done: number, budget: number): ReturnType<typeof gradientsAt> {
  return gradientsAt(ctx.model, at.map(({ baseline, alpha }) => pathImage(ctx.baselines[baseline]!, ctx.image.data, alpha)), ctx.target, {
    batchSize: ctx.batchSize,
    stage,
    progressOffset: done,
    progressTotal: budget,
    ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
}

/** Mean of per-segment maps, summed in float64. */
function meanOf(parts: readonly Float32Array[], count: number, length: number): Float32Array {
  const sum = new Float64Array(length);
  for (const p of parts) for (let i = 0; i < length; i++) sum[i]! += p[i]!;
  return Float32Array.from(sum, (v) => v / count);
}

/**
 * Nonuniform IG (integratedGradients checks `segments <= steps`): F is evaluated on `segments` equal segments of each path (`segments - 1` forward
 * passes per baseline: the ends are F(x') and F(x), already known), then the `steps` gradient
 * points go one to each segment and the rest in proportion to |change of F| across them, at
 * Gauss-Legendre nodes within each segment. Memory is that of a fixed rule.
 */
export async function nonUniformPath(ctx: AdaptiveRuleContext, segments: number): Promise<AdaptiveRuleResult> {
  const { model, image, baselines, steps } = ctx;
  const interior = Array.from({ length: segments - 1 }, (_, j) => (j + 1) / segments);
  const sweepImages = baselines.flatMap((start) => interior.map((alpha) => pathImage(start, image.data, alpha)));
  const sweepCount = sweepImages.length;
  const gradientCount = steps * baselines.length;
  const stage = 'integrated gradients (nonuniform)';
  const rows = await forwardRows(model, sweepImages, ctx.batchSize, {
    stage,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.onProgress ? { onProgress: (p) => ctx.onProgress!({ done: p.done, total: sweepCount + gradientCount, stage }) } : {}),
  });
  const points: PathPoint[] = [];
  const allocation: number[][] = [];
  baselines.forEach((_, b) => {
    const scores = [ctx.baselineScores[b]!, ...interior.map((_, j) => rows[b * interior.length + j]![ctx.target]!), ctx.inputScore];
    const q = nonUniformQuadrature(scores, steps);
    allocation.push(Array.from(q.counts));
    const errorWeights = splitDifferenceWeights(q.alphas, q.weights);
    for (let i = 0; i < steps; i++) {
      points.push({ start: b, alpha: q.alphas[i]!, weight: q.weights[i]! / baselines.length, ...(errorWeights ? { errorWeight: errorWeights[i]! / baselines.length } : {}) });
    }
  });
  const result = await pathSum(model, image, baselines, points, ctx.target, {
    batchSize: ctx.batchSize,
    stage,
    progressOffset: sweepCount,
    progressTotal: sweepCount + gradientCount,
    ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.trace ? { trace: ctx.trace } : {}),
  });
  return {
    sum: result.sum,
    ...(result.errorSum ? { errorSum: result.errorSum } : {}),
    gradientEvaluations: result.gradientEvaluations,
    forwardEvaluations: sweepCount + result.forwardEvaluations,
    ...(result.trace ? { trace: result.trace } : {}),
    details: { segments, pointsPerSegment: allocation },
  };
}

/** A point inside a segment, kept for the returned path. */
interface SegmentNode {
  alpha: number;
  weight: number;
  score: number;
  gradient?: Float32Array;
}

/** A piece [a, b] of one baseline's path with its 2-point Gauss-Legendre estimate. */
interface Segment {
  baseline: number;
  a: number;
  b: number;
  /** F at the ends (forward passes). */
  fa: number;
  fb: number;
  /** Estimate of the integral over [a, b] of grad F . (x - x'): what F should change by. */
  estimate: number;
  /** The segment's share of the attribution, HWC. */
  contribution: Float32Array;
  /**
   * Its share of the map-error estimate: each of its two points alone as a 1-point rule over the
   * segment, the first minus the second, times SPLIT_ERROR_FACTOR.
   */
  difference: Float32Array;
  nodes: SegmentNode[];
}

/** (fb - fa) - estimate: how far the segment's gradients miss the exact change of F across it. */
const segmentError = (s: Segment) => s.fb - s.fa - s.estimate;

/**
 * Adaptive IG by segment bisection (integratedGradients checks `steps >= 2 * initialSegments`).
 * Each baseline's path starts as `initialSegments` equal segments; each segment gets a 2-point
 * Gauss-Legendre estimate of the integral of grad F . (x - x') over it, which should equal the
 * exact change of F across it (forward passes at its ends). While the completeness delta
 * |sum(attribution) - (F(x) - F(x'))| is at or above `tolerance` times |F(x) - F(x')| and the
 * budget (`steps` x baselines gradient evaluations in all) allows, the segment that misses most is
 * halved: one forward pass at its midpoint and 4 gradient evaluations in one call. Calls after
 * the initial grid are therefore small (4 images), which costs little on CPU backends and more on
 * a GPU.
 *
 * What it makes small is the completeness delta, a sum over pixels: misses of opposite sign can
 * cancel, and the per-pixel integrals are not checked, so at equal gradient evaluations its maps
 * are not closer to a converged IG map than uniform rules' (bench/results/ig-convergence.json).
 * Besides the batch, it keeps two attribution-sized maps per live segment (its share of the map
 * and of the map-error estimate; at most steps / 2 segments per baseline).
 */
export async function adaptivePath(ctx: AdaptiveRuleContext, options: { tolerance: number; initialSegments: number }): Promise<AdaptiveRuleResult> {
  const { model, image, baselines, target, steps, tolerance, initialSegments } = { ...ctx, ...options };
  const per = image.data.length;
  const diffs = baselines.map((start) => Float32Array.from(image.data, (v, i) => v - start[i]!));
  const budget = steps * baselines.length;
  const stage = 'integrated gradients (adaptive)';
  const keepGradients = ctx.trace === 'gradients';
  const gl = quadrature('gausslegendre', 2);
  let gradients = 0;
  let forwards = 0;

  /** Class scores at points on the paths (counted as forward passes). */
  const rowsAt = async (at: readonly { baseline: number; alpha: number }[]): Promise<Float32Array[]> => {
    if (at.length === 0) return [];
    forwards += at.length;
    return forwardRows(
      model,
      at.map((p) => pathImage(baselines[p.baseline]!, image.data, p.alpha)),
      ctx.batchSize,
      ctx.signal ? { signal: ctx.signal } : undefined,
    );
  };
  const scoresAt = async (at: readonly { baseline: number; alpha: number }[]): Promise<number[]> => (await rowsAt(at)).map((r) => r[target]!);

  /** Estimates and contributions of new segments, 2 gradient evaluations each. */
  const estimate = async (pieces: readonly Omit<Segment, 'estimate' | 'contribution' | 'difference' | 'nodes'>[]): Promise<Segment[]> => {
    const nodes = pieces.flatMap((s) => [0, 1].map((i) => ({ s, alpha: s.a + (s.b - s.a) * gl.alphas[i]!, weight: (s.b - s.a) * gl.weights[i]! })));
    const result = await pathGradients(ctx, nodes.map((n) => ({ baseline: n.s.baseline, alpha: n.alpha })), stage, gradients, budget);
    gradients += nodes.length;
    return pieces.map((piece, j) => {
      const contribution = new Float32Array(per);
      const difference = new Float32Array(per);
      const spread = SPLIT_ERROR_FACTOR * (piece.b - piece.a);
      const kept: SegmentNode[] = [];
      let value = 0;
      for (let i = 0; i < 2; i++) {
        const node = nodes[2 * j + i]!;
        const g = result.gradients[2 * j + i]!;
        const d = diffs[piece.baseline]!;
        let dot = 0;
        for (let k = 0; k < per; k++) {
          const term = g[k]! * d[k]!;
          dot += term;
          contribution[k]! += node.weight * term;
          difference[k]! += (i === 0 ? spread : -spread) * term;
        }
        value += node.weight * dot;
        kept.push({ alpha: node.alpha, weight: node.weight, score: result.scores[2 * j + i]!, ...(keepGradients ? { gradient: g } : {}) });
      }
      return { ...piece, estimate: value, contribution, difference, nodes: kept };
    });
  };

  // The initial grid: F at the interior grid points, then every segment's estimate.
  const grid = Array.from({ length: initialSegments + 1 }, (_, j) => j / initialSegments);
  const interior = baselines.flatMap((_, b) => grid.slice(1, -1).map((alpha) => ({ baseline: b, alpha })));
  const interiorScores = await scoresAt(interior);
  const fAt = (b: number, j: number) => (j === 0 ? ctx.baselineScores[b]! : j === initialSegments ? ctx.inputScore : interiorScores[b * (initialSegments - 1) + j - 1]!);
  const live = await estimate(
    baselines.flatMap((_, b) => Array.from({ length: initialSegments }, (_, j) => ({ baseline: b, a: grid[j]!, b: grid[j + 1]!, fa: fAt(b, j), fb: fAt(b, j + 1) }))),
  );

  // Completeness of the mean over baselines: compare sums, the 1/B factors cancel.
  const expected = baselines.reduce((s, _, b) => s + ctx.inputScore - ctx.baselineScores[b]!, 0);
  const delta = () => Math.abs(live.reduce((s, seg) => s + seg.estimate, 0) - expected);
  let rounds = 0;
  let converged = delta() < tolerance * Math.abs(expected);
  // One segment per round, the one that misses most (as QUADPACK's adaptive rules do): the delta
  // is checked after every 4 gradient evaluations, so the rule stops as soon as it can.
  while (!converged && budget - gradients >= 4) {
    let worst: Segment | undefined;
    for (const seg of live) {
      if (seg.b - seg.a < 2 * MIN_SEGMENT_WIDTH) continue;
      if (!worst || Math.abs(segmentError(seg)) > Math.abs(segmentError(worst))) worst = seg;
    }
    if (!worst || segmentError(worst) === 0) break;
    const m = (worst.a + worst.b) / 2;
    const [fm] = await scoresAt([{ baseline: worst.baseline, alpha: m }]);
    const halves = await estimate([
      { baseline: worst.baseline, a: worst.a, b: m, fa: worst.fa, fb: fm! },
      { baseline: worst.baseline, a: m, b: worst.b, fa: fm!, fb: worst.fb },
    ]);
    live.splice(live.indexOf(worst), 1, ...halves);
    rounds++;
    converged = delta() < tolerance * Math.abs(expected);
  }
  ctx.onProgress?.({ done: gradients, total: gradients, stage });

  const sum = meanOf(
    live.map((s) => s.contribution),
    baselines.length,
    per,
  );
  let trace: PathTrace | undefined;
  if (ctx.trace) {
    const nodes = live.flatMap((s) => s.nodes.map((n) => ({ ...n, baseline: s.baseline })));
    trace = {
      alphas: Float32Array.from(nodes, (n) => n.alpha),
      weights: Float32Array.from(nodes, (n) => n.weight / baselines.length),
      scores: Float32Array.from(nodes, (n) => n.score),
    };
    if (keepGradients) {
      // Class scores at the kept points only (the gradient calls give the target's score alone).
      const rows = await rowsAt(nodes);
      const classes = rows[0]?.length ?? 0;
      const classScores = new Float32Array(rows.length * classes);
      rows.forEach((r, i) => classScores.set(r, i * classes));
      trace.gradients = nodes.map((n) => n.gradient!);
      trace.classScores = classScores;
    }
  }
  return {
    sum,
    errorSum: meanOf(
      live.map((s) => s.difference),
      baselines.length,
      per,
    ),
    gradientEvaluations: gradients,
    forwardEvaluations: forwards,
    ...(trace ? { trace } : {}),
    details: { tolerance, converged, initialSegments, segments: live.length, rounds },
  };
}
