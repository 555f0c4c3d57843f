/**
 * Normalisation conventions that turn an HWC attribution into one value per pixel, named after
 * the libraries they come from so that pictures compare with theirs:
 *
 * - PAIR saliency's `VisualizeImageGrayscale`: sum of |a| over channels, then
 *   `clip((v - min) / (p99 - min), 0, 1)` with p99 numpy's (linearly interpolated) 99th percentile.
 * - PAIR saliency's `VisualizeImageDiverging`: signed sum over channels, span = |p99| of that sum,
 *   then `clip((v + span) / (2 span), -1, 1)` (0.5 is zero attribution).
 * - Captum's `_normalize_attr`: signed sum over channels, keep the chosen sign, divide by a
 *   cumulative-mass threshold and clip to [-1, 1]; `outlier_perc` is a share of the total
 *   attribution mass, not a value percentile.
 *
 * Every function takes a fixed `scale` instead of the per-map statistic, for maps that must be
 * compared on one scale. Where the source would divide by zero (an all-zero map), the result here
 * is all zeros (0.5 for diverging) instead of NaN or an assertion error.
 *
 * @example
 * const { values, threshold } = captumNormalize(attr, { sign: 'positive', outlierPerc: 2 });
 * const gray = saliencyGrayscale(attr).values;          // Float32Array H*W in [0, 1]
 */
import { LensError } from '../core/errors.js';

/** Attributions for one image, row-major HWC (H5's `Attribution` and `Pixels` fit). */
export interface AttributionMap {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

export const ATTRIBUTION_SIGNS = ['all', 'positive', 'negative', 'absolute_value'] as const;
/** Which attributions to show, as Captum's `sign` argument. */
export type AttributionSign = (typeof ATTRIBUTION_SIGNS)[number];

/** One value per pixel, row-major H x W. */
export interface PixelValues {
  values: Float32Array;
  height: number;
  width: number;
}

/** Checks a user-given sign (e.g. a CLI flag). */
export function parseAttributionSign(value: string): AttributionSign {
  if ((ATTRIBUTION_SIGNS as readonly string[]).includes(value)) return value as AttributionSign;
  throw new LensError('INVALID_ARGUMENT', `unknown sign "${value}": expected one of ${ATTRIBUTION_SIGNS.join(', ')}`);
}

/** Throws when `map` is not a consistent HWC array. */
export function checkAttributionMap(map: AttributionMap, what = 'attribution'): void {
  const { height, width, channels, data } = map;
  const dimsOk = [height, width, channels].every((d) => Number.isInteger(d) && d > 0);
  if (!dimsOk || data.length !== height * width * channels) {
    throw new LensError(
      'SHAPE_MISMATCH',
      `${what} has ${data.length} values for shape [${height}, ${width}, ${channels}] (HWC, positive dimensions expected)`,
    );
  }
}

function checkScale(scale: number | undefined): void {
  if (scale !== undefined && !(Number.isFinite(scale) && scale >= 0)) {
    throw new LensError('INVALID_ARGUMENT', `scale must be a finite number >= 0, got ${scale}`);
  }
}

function checkPercent(name: string, value: number): void {
  if (!(value >= 0 && value <= 100)) throw new LensError('INVALID_ARGUMENT', `${name} must be within 0..100, got ${value}`);
}

/** Signed sum over channels, one value per pixel. */
export function sumChannels(map: AttributionMap): Float64Array {
  return channelSums(map, false);
}

/** Sum of |a| over channels, one value per pixel. */
export function sumAbsChannels(map: AttributionMap): Float64Array {
  return channelSums(map, true);
}

function channelSums(map: AttributionMap, absolute: boolean): Float64Array {
  checkAttributionMap(map);
  const { data, channels } = map;
  const out = new Float64Array(map.height * map.width);
  for (let p = 0, i = 0; p < out.length; p++) {
    let s = 0;
    for (let c = 0; c < channels; c++, i++) s += absolute ? Math.abs(data[i]!) : data[i]!;
    out[p] = s;
  }
  return out;
}

/** numpy's default `np.percentile` (linear interpolation between the two nearest ranks). */
export function numpyPercentile(values: ArrayLike<number>, p: number): number {
  checkPercent('percentile', p);
  if (values.length === 0) throw new LensError('INVALID_ARGUMENT', 'percentile of an empty array');
  const sorted = Float64Array.from(values).sort();
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

/**
 * Captum's `_cumulative_sum_threshold`: sort the (non-negative) values ascending, take cumulative
 * sums, and return the first value whose cumulative sum reaches `percentile`% of the total.
 * With `percentile = 100 - outlier_perc`, the values above the result hold at most
 * `outlier_perc`% of the mass.
 */
export function cumulativeSumThreshold(values: ArrayLike<number>, percentile: number): number {
  checkPercent('percentile', percentile);
  if (values.length === 0) throw new LensError('INVALID_ARGUMENT', 'threshold of an empty array');
  const sorted = Float64Array.from(values).sort();
  let total = 0;
  for (const v of sorted) total += v;
  const target = total * 0.01 * percentile;
  let cumulative = 0;
  for (const v of sorted) {
    cumulative += v;
    if (cumulative >= target) return v;
  }
  return sorted[sorted.length - 1]!;
}

/** Per-pixel values Captum keeps for a sign: the signed channel sum, masked or made absolute. */
export function signedValues(map: AttributionMap, sign: AttributionSign): Float64Array {
  const v = sumChannels(map);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (sign === 'positive') v[i] = x > 0 ? x : 0;
    else if (sign === 'negative') v[i] = x < 0 ? x : 0;
    else if (sign === 'absolute_value') v[i] = Math.abs(x);
  }
  return v;
}

/** The magnitudes Captum's threshold is computed over for a sign. */
export function thresholdBasis(map: AttributionMap, sign: AttributionSign): Float64Array {
  const v = signedValues(map, sign);
  for (let i = 0; i < v.length; i++) v[i] = Math.abs(v[i]!);
  return v;
}

export interface CaptumNormalizeOptions {
  /** Default `absolute_value`, Captum's default. */
  sign?: AttributionSign;
  /** Share (percent) of the attribution mass treated as outliers and clipped to 1. Default 2. */
  outlierPerc?: number;
  /** A fixed threshold (>= 0) in place of the cumulative-mass one, for a shared scale. */
  scale?: number;
}

/**
 * Captum's `_normalize_attr` with `reduction_axis=2`: values in [-1, 1] for sign `all`, [0, 1]
 * otherwise (negative attributions come out positive for sign `negative`, as in Captum).
 * `threshold` is the magnitude that maps to 1.
 *
 * @example
 * captumNormalize(attr, { sign: 'all', outlierPerc: 2 }).values;   // Float32Array H*W in [-1, 1]
 */
export function captumNormalize(map: AttributionMap, options: CaptumNormalizeOptions = {}): PixelValues & { threshold: number } {
  const sign = options.sign ?? 'absolute_value';
  const outlierPerc = options.outlierPerc ?? 2;
  checkPercent('outlierPerc', outlierPerc);
  checkScale(options.scale);
  const v = signedValues(map, sign);
  const threshold = options.scale ?? cumulativeSumThreshold(thresholdBasis(map, sign), 100 - outlierPerc);
  const divisor = sign === 'negative' ? -threshold : threshold;
  const values = new Float32Array(v.length);
  if (threshold > 0) {
    for (let i = 0; i < v.length; i++) values[i] = Math.max(-1, Math.min(1, v[i]! / divisor));
  }
  return { values, height: map.height, width: map.width, threshold };
}

export interface SaliencyOptions {
  /** Percentile that maps to full intensity. Default 99, PAIR saliency's default. */
  percentile?: number;
  /**
   * A fixed full-intensity value in place of the percentile, for a shared scale. For grayscale the
   * per-map minimum is then not subtracted either (0 is black), so that maps compare.
   */
  scale?: number;
}

/** PAIR saliency's `VisualizeImageGrayscale`: values in [0, 1]; `vmin`, `vmax` in attribution units. */
export function saliencyGrayscale(map: AttributionMap, options: SaliencyOptions = {}): PixelValues & { vmin: number; vmax: number } {
  checkScale(options.scale);
  const v = sumAbsChannels(map);
  let vmin = 0;
  let vmax = options.scale ?? 0;
  if (options.scale === undefined) {
    vmax = numpyPercentile(v, options.percentile ?? 99);
    vmin = v.reduce((m, x) => Math.min(m, x), Infinity);
  }
  const values = new Float32Array(v.length);
  if (vmax > vmin) {
    for (let i = 0; i < v.length; i++) values[i] = Math.max(0, Math.min(1, (v[i]! - vmin) / (vmax - vmin)));
  }
  return { values, height: map.height, width: map.width, vmin, vmax };
}

/**
 * PAIR saliency's `VisualizeImageDiverging`: `clip((v + span) / (2 span), -1, 1)`, so 0.5 is zero
 * attribution, 1 is +span and 0 is -span (values below -span go negative, down to -1, as there).
 */
export function saliencyDiverging(map: AttributionMap, options: SaliencyOptions = {}): PixelValues & { span: number } {
  checkScale(options.scale);
  const v = sumChannels(map);
  const span = options.scale ?? Math.abs(numpyPercentile(v, options.percentile ?? 99));
  const values = new Float32Array(v.length).fill(0.5);
  if (span > 0) {
    for (let i = 0; i < v.length; i++) values[i] = Math.max(-1, Math.min(1, (v[i]! + span) / (2 * span)));
  }
  return { values, height: map.height, width: map.width, span };
}

export interface TopMassOptions {
  /** Share of the attribution mass (0..1] the region must hold. */
  fraction: number;
  /** Which values count as mass (Captum reduction: signed channel sum, then the sign). Default `absolute_value`. */
  sign?: AttributionSign;
}

/**
 * The smallest set of pixels, taken from the largest value down, whose values hold at least
 * `fraction` of the total mass (1 inside, 0 outside). Ties at the cut are all kept, so the result
 * is the same whatever the pixel order; pixels with no mass are never kept.
 *
 * @example
 * const region = topMassMask(attr, { fraction: 0.5 });   // Uint8Array H*W, 1 where half the mass lies
 */
export function topMassMask(map: AttributionMap, options: TopMassOptions): Uint8Array {
  const { fraction } = options;
  if (!(fraction > 0 && fraction <= 1)) throw new LensError('INVALID_ARGUMENT', `mass fraction must be within (0, 1], got ${fraction}`);
  const v = thresholdBasis(map, options.sign ?? 'absolute_value');
  const sorted = Float64Array.from(v).sort().reverse();
  let total = 0;
  for (const x of sorted) total += x;
  const mask = new Uint8Array(v.length);
  if (!(total > 0)) return mask;
  let cumulative = 0;
  let cut = sorted[0]!;
  for (const x of sorted) {
    cumulative += x;
    cut = x;
    if (cumulative >= total * fraction) break;
  }
  for (let i = 0; i < v.length; i++) mask[i] = v[i]! >= cut && v[i]! > 0 ? 1 : 0;
  return mask;
}
