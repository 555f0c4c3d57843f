/**
 * Statistics for comparing attribution methods: means with percentile-bootstrap confidence
 * intervals (which stay inside the range of the data, so an AUC or a share in [0, 1] never gets
 * an end outside it) or Student-t intervals,
 * proportions (pointing game hits) with Wilson score intervals, which stay inside [0, 1] where a
 * t-interval of 0/1 outcomes does not, and Spearman rank correlation (the sanity check's
 * similarity of maps).
 */
import jStat from 'jstat';
import { LensError } from '../core/errors.js';
import { seededRandom } from '../core/random.js';

/** A mean with its confidence interval. */
export interface MeanInterval {
  mean: number;
  /** Lower and upper ends of the interval (equal to the mean when n < 2). */
  low: number;
  high: number;
  /** Sample standard deviation (0 when n < 2). */
  stdev: number;
  n: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** How the interval was made. Default (absent) `student-t`. */
  method?: 'student-t' | 'bootstrap-percentile';
}

/** A proportion of successes with its Wilson score interval. */
export interface ProportionInterval {
  /** successes / n (NaN when n = 0); called `mean` like {@link MeanInterval}'s, so tables show both alike. */
  mean: number;
  /** Lower and upper ends of the interval, always within [0, 1] (NaN when n = 0). */
  low: number;
  high: number;
  successes: number;
  n: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
}

/** An estimate with its confidence interval: a mean (Student t) or a proportion (Wilson score). */
export type Interval = MeanInterval | ProportionInterval;

function checkProbability(p: number): void {
  if (!(p > 0 && p < 1)) throw new LensError('INVALID_ARGUMENT', `probability must be in (0, 1), got ${p}`);
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new LensError('INVALID_ARGUMENT', `confidence level must be in (0, 1), got ${level}`);
}

/** Arithmetic mean (NaN for an empty list). */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** P(T <= t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  return jStat.studentt.cdf(t, df);
}

/** The t value with P(T <= t) = p. */
export function studentTQuantile(p: number, df: number): number {
  checkProbability(p);
  return jStat.studentt.inv(p, df);
}

/** The standard normal CDF. */
export function normalCdf(z: number): number {
  return jStat.normal.cdf(z, 0, 1);
}

/** The z with P(Z <= z) = p for a standard normal Z. */
export function normalQuantile(p: number): number {
  checkProbability(p);
  return jStat.normal.inv(p, 0, 1);
}

/**
 * The Wilson score interval of `successes` out of `n` (default 95%): the proportions p whose
 * normal test against the observed share does not reject at `level`. Unlike a t-interval of 0/1
 * outcomes it stays inside [0, 1] and is not zero-width at 0/n or n/n.
 *
 * @example
 * wilsonInterval(10, 10); // { mean: 1, low: 0.722..., high: 1, successes: 10, n: 10, level: 0.95 }
 * wilsonInterval(5, 10);  // { mean: 0.5, low: 0.237..., high: 0.763..., ... }
 */
export function wilsonInterval(successes: number, n: number, level = 0.95): ProportionInterval {
  checkLevel(level);
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(successes) || successes < 0 || successes > n) {
    throw new LensError('INVALID_ARGUMENT', `a proportion needs whole numbers 0 <= successes <= n, got ${successes} of ${n}`);
  }
  if (n === 0) return { mean: NaN, low: NaN, high: NaN, successes, n, level };
  const z = normalQuantile(1 - (1 - level) / 2);
  const p = successes / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  // At 0/n and n/n one end is exactly 0 or 1; rounding would otherwise leave it a hair off.
  const low = successes === 0 ? 0 : Math.max(0, centre - half);
  const high = successes === n ? 1 : Math.min(1, centre + half);
  return { mean: p, low, high, successes, n, level };
}

/**
 * The proportion of hits among 0/1 outcomes (e.g. pointing game per image) with its Wilson score
 * interval. NaN values are left out; anything else but 0 and 1 is an error.
 *
 * @example
 * proportionInterval([1, 1, 0, 1]); // { mean: 0.75, successes: 3, n: 4, low: 0.30..., high: 0.95..., level: 0.95 }
 */
export function proportionInterval(outcomes: readonly number[], level = 0.95): ProportionInterval {
  const v = outcomes.filter((x) => !Number.isNaN(x));
  const bad = v.find((x) => x !== 0 && x !== 1);
  if (bad !== undefined) throw new LensError('INVALID_ARGUMENT', `a proportion counts outcomes of 0 or 1, got ${bad}`);
  return wilsonInterval(v.filter((x) => x === 1).length, v.length, level);
}

/**
 * Mean and two-sided Student-t confidence interval (default 95%). NaN values are left out.
 *
 * @example
 * meanInterval([0.8, 0.75, 0.9, 0.82]); // { mean: 0.8175, low: 0.72..., high: 0.91..., n: 4, ... }
 */
export function meanInterval(values: readonly number[], level = 0.95): MeanInterval {
  const v = values.filter((x) => !Number.isNaN(x));
  const n = v.length;
  const m = mean(v);
  if (n < 2) return { mean: m, low: m, high: m, stdev: 0, n, level };
  const variance = v.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1);
  const stdev = Math.sqrt(variance);
  const half = studentTQuantile(1 - (1 - level) / 2, n - 1) * (stdev / Math.sqrt(n));
  return { mean: m, low: m - half, high: m + half, stdev, n, level };
}

export interface BootstrapOptions {
  /** Confidence level. Default 0.95. */
  level?: number;
  /** Resamples. Default 4000. */
  resamples?: number;
  /** Seed of the resampling (results are reproducible). Default 0. */
  seed?: number;
}

/**
 * The mean with its percentile-bootstrap confidence interval (Efron): the mean of `resamples`
 * samples drawn with replacement, and the (1 - level) / 2 and (1 + level) / 2 quantiles of those
 * means (numpy's linear rule). The ends are means of data values, so they lie within the data's
 * range: an AUC or a share in [0, 1] keeps its interval in [0, 1]. NaN values are left out.
 *
 * @example
 * bootstrapInterval([0.8, 0.75, 0.9, 0.82]); // { mean: 0.8175, low: 0.77..., high: 0.86..., method: 'bootstrap-percentile', ... }
 */
export function bootstrapInterval(values: readonly number[], options: BootstrapOptions = {}): MeanInterval {
  const level = options.level ?? 0.95;
  checkLevel(level);
  const resamples = options.resamples ?? 4000;
  if (!Number.isInteger(resamples) || resamples < 1) throw new LensError('INVALID_ARGUMENT', `bootstrap resamples must be a positive integer, got ${resamples}`);
  const v = values.filter((x) => !Number.isNaN(x));
  const n = v.length;
  const m = mean(v);
  const stdev = n < 2 ? 0 : Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
  if (n < 2) return { mean: m, low: m, high: m, stdev, n, level, method: 'bootstrap-percentile' };
  const rng = seededRandom(options.seed ?? 0);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += v[rng.int(n)]!;
    means[b] = s / n;
  }
  means.sort();
  const quantile = (q: number) => {
    const at = q * (resamples - 1);
    const lo = Math.floor(at);
    const hi = Math.min(resamples - 1, lo + 1);
    return means[lo]! + (at - lo) * (means[hi]! - means[lo]!);
  };
  return { mean: m, low: quantile((1 - level) / 2), high: quantile((1 + level) / 2), stdev, n, level, method: 'bootstrap-percentile' };
}

/** Ranks 1..n with ties given their average rank. */
export function ranks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const out = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]!] = rank;
    i = j + 1;
  }
  return out;
}

/** Pearson correlation (NaN when either side is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new LensError('INVALID_ARGUMENT', `cannot correlate ${a.length} values with ${b.length}`);
  return jStat.corrcoeff(a, b);
}

/**
 * Spearman rank correlation.
 *
 * @example
 * spearman([1, 2, 3], [10, 20, 30]); // 1
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(ranks(a), ranks(b));
}
