/**
 * Quadrature rules for path integrals over alpha in [0, 1], named as Captum names them, so that
 * `steps` and `rule` mean the same thing here as there.
 *
 * - riemann_left: alphas 0, 1/n, ..., (n-1)/n, weights 1/n
 * - riemann_right: alphas 1/n, ..., 1, weights 1/n
 * - riemann_middle: alphas (i + 1/2)/n, weights 1/n
 * - riemann_trapezoid: alphas i/(n-1) including both ends (Captum's too), weights 1/(n-1) with halves
 *   at the ends, summing to 1: the textbook trapezoid rule. Captum's `riemann_trapezoid` differs in
 *   its weights: 1/n with halves at the ends, which sum to (n-1)/n, so Captum's maps are lens's
 *   times (n-1)/n and its completeness delta carries an extra F(x) - F(x') share of 1/n.
 * - gausslegendre: the n Gauss-Legendre nodes mapped to [0, 1]; exact for polynomials of degree 2n-1
 *
 * The Riemann rules match Captum's points and weights except for that trapezoid factor; Captum also
 * refuses n = 1 for them, where lens's left, right and middle rules take one point.
 *
 * Two more rules place the points after looking at the model's score F along the path, so they
 * also spend forward passes (Integrated Gradients runs them, see adaptive-rules.ts):
 *
 * - nonuniform (after Bhat and Raychowdhury, arXiv 2302.11107): F on a coarse uniform grid, then
 *   gradient points spread over its segments in proportion to |change of F| ({@link nonUniformQuadrature})
 * - adaptive: 2-point Gauss-Legendre per segment, bisecting the segment whose estimate misses the
 *   exact change of F across it most, until the completeness delta is under a tolerance
 *
 * One rule places its points from the gradients themselves (map-tolerance.ts), spending no
 * forward passes beyond F(x) and F(x'):
 *
 * - map_adaptive: trapezoid on bisected segments, refining where the per-pixel error estimate
 *   is largest until the estimated relative L2 error of the map is under a tolerance
 *
 * Every rule reports a map-error estimate from the same evaluations ({@link splitDifferenceWeights}).
 */
import { LensError } from '../core/errors.js';

export const INTEGRATION_RULES = ['riemann_left', 'riemann_right', 'riemann_middle', 'riemann_trapezoid', 'gausslegendre'] as const;
export type IntegrationRule = (typeof INTEGRATION_RULES)[number];

/** Rules that place their points after looking at the model along the path (forward passes or gradients). */
export const ADAPTIVE_RULES = ['nonuniform', 'adaptive', 'map_adaptive'] as const;
export type AdaptiveRule = (typeof ADAPTIVE_RULES)[number];

/** Every rule Integrated Gradients takes: the fixed quadratures and the adaptive placements. */
export type IgRule = IntegrationRule | AdaptiveRule;
export const IG_RULES: readonly IgRule[] = [...INTEGRATION_RULES, ...ADAPTIVE_RULES];

/**
 * True for the rules that look at the model to place their points.
 *
 * @example
 * isAdaptiveRule('adaptive'); // true; isAdaptiveRule('gausslegendre') is false
 */
export function isAdaptiveRule(rule: IgRule): rule is AdaptiveRule {
  return (ADAPTIVE_RULES as readonly string[]).includes(rule);
}

/** Points and weights of a rule; the weights sum to 1 (the length of [0, 1]). */
export interface Quadrature {
  alphas: Float64Array;
  weights: Float64Array;
}

/**
 * Parses a rule name (Captum's spellings, plus `gauss-legendre`, `left`, `trapezoid`, ..., `map_adaptive`,
 * `nonuniform` and `adaptive`).
 *
 * @example
 * parseIntegrationRule('gauss-legendre'); // 'gausslegendre'
 * parseIntegrationRule('non-uniform'); // 'nonuniform'
 */
export function parseIntegrationRule(value: string): IgRule {
  const v = value.trim().toLowerCase().replace(/-/g, '_');
  const aliases: Record<string, IgRule> = {
    gauss_legendre: 'gausslegendre',
    gl: 'gausslegendre',
    left: 'riemann_left',
    right: 'riemann_right',
    middle: 'riemann_middle',
    trapezoid: 'riemann_trapezoid',
    non_uniform: 'nonuniform',
  };
  const rule = aliases[v] ?? v;
  if ((IG_RULES as readonly string[]).includes(rule)) return rule as IgRule;
  throw new LensError('INVALID_ARGUMENT', `unknown integration rule "${value}": expected one of ${IG_RULES.join(', ')}`);
}

/**
 * Alphas and weights of `rule` with `steps` points.
 *
 * @example
 * const { alphas, weights } = quadrature('gausslegendre', 16);
 * const integral = alphas.reduce((s, a, i) => s + weights[i]! * a * a, 0); // 1/3
 */
export function quadrature(rule: IntegrationRule, steps: number): Quadrature {
  if (!Number.isInteger(steps) || steps < 1) throw new LensError('INVALID_ARGUMENT', `steps must be a positive integer, got ${steps}`);
  const n = steps;
  const alphas = new Float64Array(n);
  const weights = new Float64Array(n);
  switch (rule) {
    case 'riemann_left':
    case 'riemann_right':
    case 'riemann_middle': {
      const shift = rule === 'riemann_left' ? 0 : rule === 'riemann_right' ? 1 : 0.5;
      for (let i = 0; i < n; i++) {
        alphas[i] = (i + shift) / n;
        weights[i] = 1 / n;
      }
      break;
    }
    case 'riemann_trapezoid': {
      if (n < 2) throw new LensError('INVALID_ARGUMENT', 'riemann_trapezoid needs at least 2 steps');
      for (let i = 0; i < n; i++) {
        alphas[i] = i / (n - 1);
        weights[i] = i === 0 || i === n - 1 ? 0.5 / (n - 1) : 1 / (n - 1);
      }
      break;
    }
    case 'gausslegendre': {
      const { nodes, weights: w } = gaussLegendre(n);
      for (let i = 0; i < n; i++) {
        alphas[i] = (nodes[i]! + 1) / 2;
        weights[i] = w[i]! / 2;
      }
      break;
    }
  }
  return { alphas, weights };
}

/**
 * Gauss-Legendre nodes (ascending) and weights on [-1, 1], by Newton's method on the Legendre
 * polynomial from the usual cosine initial guesses; accurate to machine precision for n in the thousands.
 */
export function gaussLegendre(n: number): { nodes: Float64Array; weights: Float64Array } {
  const nodes = new Float64Array(n);
  const weights = new Float64Array(n);
  const half = Math.ceil(n / 2);
  for (let i = 0; i < half; i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let derivative = 0;
    for (let iter = 0; iter < 100; iter++) {
      // Three-term recurrence for P_n(x) and P_{n-1}(x).
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      derivative = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / derivative;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    const w = 2 / ((1 - x * x) * derivative * derivative);
    // Nodes come out descending from the cosine guesses; store them ascending and mirrored.
    nodes[n - 1 - i] = x;
    nodes[i] = -x;
    weights[n - 1 - i] = w;
    weights[i] = w;
  }
  return { nodes, weights };
}

/**
 * Splits `points` among path segments: one each, and the rest in proportion to how much F changes
 * across each segment (|change|), rounded by largest remainders (earlier segments win ties) so the
 * counts add up to `points`. When F does not change at all the rest is spread evenly.
 *
 * @example
 * allocateByChange([0, 3, 1, 0], 12); // Int32Array [1, 7, 3, 1]
 */
export function allocateByChange(changes: ArrayLike<number>, points: number): Int32Array {
  const n = changes.length;
  if (n < 1) throw new LensError('INVALID_ARGUMENT', 'allocateByChange needs at least one segment');
  if (!Number.isInteger(points) || points < n) {
    throw new LensError('INVALID_ARGUMENT', `${points} gradient points cannot give each of ${n} segments one: use at least ${n} steps or fewer segments`);
  }
  const magnitude = Array.from(changes, (c, j) => {
    if (!Number.isFinite(c)) throw new LensError('INVALID_ARGUMENT', `the change of F across segment ${j} is ${c}: the model's score is not finite on the path`);
    return Math.abs(c);
  });
  const totalChange = magnitude.reduce((a, b) => a + b, 0);
  const extra = points - n;
  const share = magnitude.map((m) => (totalChange > 0 ? (extra * m) / totalChange : extra / n));
  const counts = Int32Array.from(share, (x) => 1 + Math.floor(x));
  let left = points - counts.reduce((a, b) => a + b, 0);
  const order = share.map((x, j) => ({ remainder: x - Math.floor(x), j })).sort((p, q) => q.remainder - p.remainder || p.j - q.j);
  for (let k = 0; left > 0; k = (k + 1) % n, left--) counts[order[k]!.j]! += 1;
  return counts;
}

/**
 * The nonuniform rule's points (after arXiv 2302.11107): `scores` are F at the `segments + 1`
 * uniform grid points alpha = j / segments (both ends included); `steps` points are spread over
 * the segments by {@link allocateByChange} and placed at Gauss-Legendre nodes within each.
 * Weights sum to 1; alphas ascend; `counts` are the points per segment.
 *
 * @example
 * const q = nonUniformQuadrature([0, 0, 0.9, 1, 1], 12); // q.counts = [1, 8, 2, 1]: 10 points in [0.25, 0.75]
 */
export function nonUniformQuadrature(scores: ArrayLike<number>, steps: number): Quadrature & { counts: Int32Array } {
  const segments = scores.length - 1;
  if (segments < 1) throw new LensError('INVALID_ARGUMENT', 'the nonuniform rule needs F at 2 or more grid points');
  const counts = allocateByChange(
    Array.from({ length: segments }, (_, j) => scores[j + 1]! - scores[j]!),
    steps,
  );
  const alphas = new Float64Array(steps);
  const weights = new Float64Array(steps);
  let k = 0;
  counts.forEach((m, j) => {
    const q = quadrature('gausslegendre', m);
    for (let i = 0; i < m; i++, k++) {
      alphas[k] = (j + q.alphas[i]!) / segments;
      weights[k] = q.weights[i]! / segments;
    }
  });
  return { alphas, weights, counts };
}

/**
 * The map's error as a share of the difference of the two interleaved halves. The gradient of a
 * ReLU network along a straight path is piecewise constant with a jump wherever a unit switches,
 * and on ResNet-8 a unit switches in nearly every 1/4096 of the path with independent
 * jumps: the gradient x (x - x') is a random walk in alpha (bench/results/ig-map-error.json,
 * "increment check"). For a random walk the trapezoid of step h misses by h^2 rho / 12 in squared
 * L2 per unit of path, and the coarse trapezoid minus the midpoint rule (step 2h) by 12 times that,
 * so the factor is 1/sqrt(12) (between the smooth case's 1/6 and independent noise's 1/2).
 */
export const SPLIT_ERROR_FACTOR = 1 / Math.sqrt(12);

/**
 * Weights of an error estimate built from a rule's own points at no extra cost: the points, sorted
 * by alpha, are dealt alternately into two halves A and B, each keeping its points' weights scaled
 * to sum to 1, so each half is a rule of its own with half the points. On a uniform grid with both
 * ends (riemann_trapezoid with an odd count) they are the trapezoid on the even points and the
 * midpoint rule on the odd ones; for riemann_left, a left rule and a midpoint rule of twice the step,
 * so the left rule's one-sided bias shows. Returns, in the given order,
 * `SPLIT_ERROR_FACTOR * (wA - wB)` per point, so that `sum_k w_k * integrand(alpha_k)` is the error
 * estimate (per pixel); `undefined` for fewer than 2 points.
 *
 * @example
 * const q = quadrature('riemann_trapezoid', 5);
 * splitDifferenceWeights(q.alphas, q.weights); // [0.25, -0.5, 0.5, -0.5, 0.25] / sqrt(12): trapezoid(0, 0.5, 1) minus midpoint(0.25, 0.75)
 */
export function splitDifferenceWeights(alphas: ArrayLike<number>, weights: ArrayLike<number>): Float64Array | undefined {
  const n = alphas.length;
  if (n < 2) return undefined;
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => alphas[p]! - alphas[q]!);
  const out = new Float64Array(n);
  for (const [half, sign] of [
    [0, 1],
    [1, -1],
  ] as const) {
    const members = order.filter((_, rank) => rank % 2 === half);
    const total = members.reduce((t, k) => t + weights[k]!, 0);
    if (!(total > 0)) throw new LensError('INVALID_ARGUMENT', 'the points of a rule need positive weights for its map-error estimate');
    for (const k of members) out[k] = (sign * SPLIT_ERROR_FACTOR * weights[k]!) / total;
  }
  return out;
}

/**
 * ||error|| / ||map|| in L2 over pixels and channels, the form every map-error estimate takes
 * (Infinity when the map is 0 and the error is not).
 *
 * @example
 * relativeL2([0.1, 0], [1, 0]); // 0.1
 */
export function relativeL2(error: ArrayLike<number>, map: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < map.length; i++) {
    num += error[i]! ** 2;
    den += map[i]! ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : num === 0 ? 0 : Infinity;
}
