/**
 * Attribution pictures, one function for every convention: Captum's `visualize_image_attr`
 * methods, PAIR saliency's grayscale and diverging images, outlines of the regions holding most of
 * the attribution mass, and colour overlays on the image. Pure functions: attribution (+ image)
 * in, RGBA out, with the colour scale used so grids can draw a colour bar.
 *
 * Pixel rules (what the tests check by hand):
 * - A colormap lookup is `lut[min(255, floor(t * 256))]` (see colormap.ts).
 * - `heat_map`: t = n for signs positive/negative/absolute_value, t = (n + 1) / 2 for `all`, where
 *   n is Captum's normalised value (normalize.ts). Opaque.
 * - `blended_heat_map`: grey = the channel mean of the image scaled min..max to 0..1 and looked up
 *   in the gray table (matplotlib's autoscaled `imshow(..., cmap='gray')`); out = round(alpha * heat
 *   + (1 - alpha) * grey), alpha default 0.5.
 * - `masked_image`: out = floor(image * n), clamped to 0..255. Not for sign `all`.
 * - `alpha_scaling`: RGB = round(image), A = floor(n * 255). Not for sign `all`.
 * - `original_image`: round(image), opaque.
 * - `saliency_grayscale`: t = PAIR grayscale value, gray table unless a colormap is given.
 * - `saliency_diverging`: t = clamp(PAIR diverging value, 0, 1), `rdbu_r` unless given (0.5 is zero).
 * - `overlay` (lens's default view, chosen in docs/attribution-views.md): v = the signed channel
 *   sum kept for the sign, t = clamp(v / span, -1, 1) with span the `percentile` (default 99)
 *   of |v| over the pixels with any attribution; base = 40 + 130 grey / 255 (the grey photo as
 *   `blended_heat_map` takes it, dimmed); w = alpha |t| (alpha default 0.85); out = round(w * lut(t')
 *   + (1 - w) * base) with t' = |t| (or (t + 1) / 2 for sign `all`), colormap `inferno` (`rdbu_r`
 *   for `all`). The photo shows through where attribution is small; the colour bar is marked
 *   clipped.
 * - `outline`: the image, with pixels of the top-mass region that lie within `outlineWidth` pixels
 *   (square neighbourhood) of a pixel outside it, or of the border, painted `outlineColor`.
 *
 * @example
 * const viz = visualize(attr, { method: 'blended_heat_map', sign: 'positive', image: pixels });
 * await writePngAtomic('out/cat.png', await encodeRgbaPng(viz), { method: 'integrated_gradients' });
 *
 * // several maps on one scale
 * const scale = sharedScale(maps, { method: 'heat_map', sign: 'all' });
 * const vizs = maps.map((m) => visualize(m, { method: 'heat_map', sign: 'all', scale }));
 */
import { LensError } from '../core/errors.js';
import { colormapLut, lutIndex, type ColormapName } from './colormap.js';
import {
  captumNormalize,
  checkAttributionMap,
  cumulativeSumThreshold,
  numpyPercentile,
  saliencyDiverging,
  signedValues,
  saliencyGrayscale,
  sumAbsChannels,
  sumChannels,
  thresholdBasis,
  topMassMask,
  type AttributionMap,
  type AttributionSign,
} from './normalize.js';
import { channelValue, checkImage, createRgba, rgbaFromImage, type ImageLike, type RgbaImage } from './rgba.js';

export const VISUALIZATION_METHODS = [
  'heat_map',
  'blended_heat_map',
  'masked_image',
  'alpha_scaling',
  'original_image',
  'saliency_grayscale',
  'saliency_diverging',
  'overlay',
  'outline',
] as const;
export type VisualizationMethod = (typeof VISUALIZATION_METHODS)[number];

/** Checks a user-given visualization method (e.g. a CLI `--viz` flag). */
export function parseVisualizationMethod(value: string): VisualizationMethod {
  if ((VISUALIZATION_METHODS as readonly string[]).includes(value)) return value as VisualizationMethod;
  throw new LensError('INVALID_ARGUMENT', `unknown visualization "${value}": expected one of ${VISUALIZATION_METHODS.join(', ')}`);
}

/** A colour scale: colormap position 0 shows attribution value `from`, position 1 shows `to`. */
export interface ColorbarSpec {
  colormap: ColormapName;
  from: number;
  to: number;
  /** What the values are, e.g. `attribution`, `|attribution|`, `sum |attribution|`. */
  label: string;
  /** Values beyond the ends were clipped to them: the end labels read `≥ to` (and `≤ from` when negative). */
  clipped?: boolean;
}

/** A rendered attribution picture. */
export interface Visualization extends RgbaImage {
  method: VisualizationMethod;
  /** The colour scale, for methods that colour by value. */
  colorbar?: ColorbarSpec;
  /** The statistic that mapped to full intensity (Captum threshold, saliency vmax or span). */
  scale?: number;
}

export interface VisualizeOptions {
  /** Default `heat_map` (Captum's default). */
  method?: VisualizationMethod;
  /** The image the attribution explains, 0..255 HWC; needed by every method but the heat maps. */
  image?: ImageLike;
  /** Captum sign for heat maps, overlay and outline. Default `absolute_value` (Captum's default). */
  sign?: AttributionSign;
  /** Captum outlier share of the attribution mass, in percent. Default 2. */
  outlierPerc?: number;
  /** PAIR saliency percentile. Default 99. */
  percentile?: number;
  /** Fixed scale shared by several maps (see `sharedScale`); replaces the per-map statistic. */
  scale?: number;
  /** Colormap; defaults follow the source convention (Captum: blues/greens/reds/rdwhgn by sign). */
  colormap?: ColormapName;
  /** Heat opacity for `blended_heat_map` (default 0.5) and `overlay` (default 0.7). */
  alpha?: number;
  /** Share of the attribution mass the outlined region holds. Default 0.5. */
  massFraction?: number;
  /** Outline colour, RGB. Default [0, 255, 0]. */
  outlineColor?: readonly [number, number, number];
  /** Outline thickness in pixels. Default 1. */
  outlineWidth?: number;
}

const CAPTUM_METHODS: readonly VisualizationMethod[] = ['heat_map', 'blended_heat_map', 'masked_image', 'alpha_scaling'];

/** Captum's default colormap for a sign (`visualize_image_attr` with `cmap=None`). */
export function captumDefaultColormap(sign: AttributionSign): ColormapName {
  return ({ all: 'rdwhgn', positive: 'greens', negative: 'reds', absolute_value: 'blues' } as const)[sign];
}

function captumColorbar(sign: AttributionSign, threshold: number, colormap: ColormapName): ColorbarSpec {
  if (sign === 'all') return { colormap, from: -threshold, to: threshold, label: 'attribution' };
  if (sign === 'negative') return { colormap, from: 0, to: -threshold, label: 'attribution' };
  return { colormap, from: 0, to: threshold, label: sign === 'positive' ? 'attribution' : '|attribution|' };
}

function needImage(method: VisualizationMethod, image: ImageLike | undefined, map: AttributionMap): ImageLike {
  if (!image) throw new LensError('INVALID_ARGUMENT', `visualization ${method} needs the original image`);
  checkImage(image);
  if (image.height !== map.height || image.width !== map.width) {
    throw new LensError(
      'SHAPE_MISMATCH',
      `image is ${image.height}x${image.width} but the attribution is ${map.height}x${map.width}; ${method} needs them equal`,
    );
  }
  return image;
}

function checkFraction(name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) throw new LensError('INVALID_ARGUMENT', `${name} must be within 0..1, got ${value}`);
}

/** Paints every pixel from a colormap position per pixel. */
function paintLut(out: RgbaImage, positions: Float32Array, colormap: ColormapName): void {
  const lut = colormapLut(colormap);
  for (let p = 0; p < positions.length; p++) {
    const k = lutIndex(positions[p]!) * 3;
    out.data[p * 4] = lut[k]!;
    out.data[p * 4 + 1] = lut[k + 1]!;
    out.data[p * 4 + 2] = lut[k + 2]!;
    out.data[p * 4 + 3] = 255;
  }
}

/**
 * Renders an attribution with one of the named conventions (see the module comment for the exact
 * pixel rules).
 *
 * @example
 * const viz = visualize(attr, { method: 'overlay', sign: 'positive', image: pixels, colormap: 'inferno' });
 */
export function visualize(attribution: AttributionMap, options: VisualizeOptions = {}): Visualization {
  const method = options.method ?? 'heat_map';
  parseVisualizationMethod(method);
  checkAttributionMap(attribution);
  const sign = options.sign ?? 'absolute_value';
  const { height, width } = attribution;
  const out = createRgba(width, height);
  const pixels = width * height;

  if (method === 'original_image') {
    return { ...rgbaFromImage(needImage(method, options.image, attribution)), method };
  }

  if (method === 'saliency_grayscale') {
    const g = saliencyGrayscale(attribution, { percentile: options.percentile, scale: options.scale });
    const colormap = options.colormap ?? 'gray';
    paintLut(out, g.values, colormap);
    return { ...out, method, scale: g.vmax, colorbar: { colormap, from: g.vmin, to: g.vmax, label: 'sum |attribution|' } };
  }

  if (method === 'saliency_diverging') {
    const d = saliencyDiverging(attribution, { percentile: options.percentile, scale: options.scale });
    const colormap = options.colormap ?? 'rdbu_r';
    paintLut(out, d.values, colormap);
    return { ...out, method, scale: d.span, colorbar: { colormap, from: -d.span, to: d.span, label: 'attribution' } };
  }

  if (method === 'outline') {
    const image = needImage(method, options.image, attribution);
    const fraction = options.massFraction ?? 0.5;
    const mask = topMassMask(attribution, { fraction, sign });
    const [r, g, b] = options.outlineColor ?? [0, 255, 0];
    const radius = options.outlineWidth ?? 1;
    if (!(Number.isInteger(radius) && radius >= 1)) throw new LensError('INVALID_ARGUMENT', `outline width must be a whole number >= 1, got ${radius}`);
    const base = rgbaFromImage(image);
    out.data.set(base.data);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (!mask[y * width + x] || !touchesOutside(mask, width, height, x, y, radius)) continue;
        const k = (y * width + x) * 4;
        out.data[k] = r;
        out.data[k + 1] = g;
        out.data[k + 2] = b;
      }
    }
    return { ...out, method };
  }

  // Captum-normalised methods.
  if ((method === 'masked_image' || method === 'alpha_scaling') && sign === 'all') {
    throw new LensError('INVALID_ARGUMENT', `${method} cannot show positive and negative attributions together: choose sign positive, negative or absolute_value`);
  }
  const n = method === 'overlay' ? { values: new Float32Array(0), threshold: 0 } : captumNormalize(attribution, { sign, outlierPerc: options.outlierPerc, scale: options.scale });
  const positions = sign === 'all' ? n.values.map((v) => (v + 1) / 2) : n.values;
  const overlayDefault: ColormapName = sign === 'all' ? 'rdbu_r' : 'inferno';
  const colormap = options.colormap ?? (method === 'overlay' ? overlayDefault : captumDefaultColormap(sign));
  const colorbar = captumColorbar(sign, n.threshold, colormap);

  if (method === 'heat_map') {
    paintLut(out, positions, colormap);
    return { ...out, method, colorbar, scale: n.threshold };
  }

  const image = needImage(method, options.image, attribution);
  if (method === 'masked_image') {
    for (let p = 0; p < pixels; p++) {
      for (let c = 0; c < 3; c++) out.data[p * 4 + c] = Math.floor(channelValue(image, p, c) * n.values[p]!);
      out.data[p * 4 + 3] = 255;
    }
    return { ...out, method, scale: n.threshold };
  }
  if (method === 'alpha_scaling') {
    out.data.set(rgbaFromImage(image).data);
    for (let p = 0; p < pixels; p++) out.data[p * 4 + 3] = Math.floor(n.values[p]! * 255);
    return { ...out, method, scale: n.threshold };
  }

  const lut = colormapLut(colormap);
  if (method === 'blended_heat_map') {
    const alpha = options.alpha ?? 0.5;
    checkFraction('alpha', alpha);
    const grey = greyLevels(image);
    for (let p = 0; p < pixels; p++) {
      const k = lutIndex(positions[p]!) * 3;
      for (let c = 0; c < 3; c++) out.data[p * 4 + c] = Math.round(alpha * lut[k + c]! + (1 - alpha) * grey[p]!);
      out.data[p * 4 + 3] = 255;
    }
    return { ...out, method, colorbar, scale: n.threshold };
  }

  // overlay: robust (percentile) scale, colour opacity growing with |value| over the dimmed grey photo.
  const alpha = options.alpha ?? 0.85;
  checkFraction('alpha', alpha);
  const o = overlayValues(attribution, sign, options);
  const grey = greyLevels(image);
  for (let p = 0; p < pixels; p++) {
    const t = o.values[p]!;
    const k = lutIndex(sign === 'all' ? (t + 1) / 2 : Math.abs(t)) * 3;
    const w = alpha * Math.abs(t);
    const base = DIM_FLOOR + DIM_RANGE * (grey[p]! / 255);
    for (let c = 0; c < 3; c++) out.data[p * 4 + c] = Math.round(w * lut[k + c]! + (1 - w) * base);
    out.data[p * 4 + 3] = 255;
  }
  const overlayBar: ColorbarSpec = sign === 'all'
    ? { colormap, from: -o.span, to: o.span, label: 'attribution', clipped: true }
    : { colormap, from: 0, to: sign === 'negative' ? -o.span : o.span, label: sign === 'absolute_value' ? '|attribution|' : 'attribution', clipped: true };
  return { ...out, method, colorbar: overlayBar, scale: o.span };
}

/** Grey level of the dimmed photo under an overlay: DIM_FLOOR + DIM_RANGE * grey / 255. */
const DIM_FLOOR = 40;
const DIM_RANGE = 130;

/**
 * The overlay's per-pixel values in [-1, 1]: the signed channel sum kept for `sign` (Captum's
 * reduction), divided by the `percentile` (default 99) of its magnitudes over the pixels that
 * carry any attribution (or by a fixed `scale`), clipped.
 */
function overlayValues(map: AttributionMap, sign: AttributionSign, options: VisualizeOptions): { values: Float32Array; span: number } {
  const v = signedValues(map, sign);
  let span = options.scale;
  if (span === undefined) {
    const magnitudes = Float64Array.from(v.filter((x) => x !== 0), Math.abs);
    span = magnitudes.length > 0 ? numpyPercentile(magnitudes, options.percentile ?? 99) : 0;
  }
  const values = new Float32Array(v.length);
  if (span > 0) for (let i = 0; i < v.length; i++) values[i] = Math.max(-1, Math.min(1, v[i]! / span));
  return { values, span };
}
/** Grey table entries (0..255) of the image's channel mean, autoscaled min..max as matplotlib does. */
function greyLevels(image: ImageLike): Uint8Array {
  const n = image.width * image.height;
  const channels = Math.min(image.channels, 3);
  const mean = new Float64Array(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let p = 0; p < n; p++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += channelValue(image, p, c);
    mean[p] = s / channels;
    lo = Math.min(lo, mean[p]!);
    hi = Math.max(hi, mean[p]!);
  }
  const levels = new Uint8Array(n);
  if (hi > lo) for (let p = 0; p < n; p++) levels[p] = lutIndex((mean[p]! - lo) / (hi - lo));
  return levels;
}

function touchesOutside(mask: Uint8Array, width: number, height: number, x: number, y: number, radius: number): boolean {
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      const xx = x + dx;
      const yy = y + dy;
      if (xx < 0 || yy < 0 || xx >= width || yy >= height || !mask[yy * width + xx]) return true;
    }
  }
  return false;
}

export interface SharedScaleOptions {
  /** The method the maps will be drawn with. Default `heat_map`. */
  method?: VisualizationMethod;
  sign?: AttributionSign;
  outlierPerc?: number;
  percentile?: number;
}

/**
 * One scale for several maps, computed over all their pixels together with the statistic the
 * method uses per map (Captum's cumulative-mass threshold, or saliency's percentile); pass it as
 * `scale` to `visualize` so that equal colours mean equal attribution across the maps.
 *
 * @example
 * const scale = sharedScale([black, blur, noise], { method: 'heat_map', sign: 'all' });
 * const pictures = [black, blur, noise].map((a) => visualize(a, { method: 'heat_map', sign: 'all', scale }));
 */
export function sharedScale(maps: readonly AttributionMap[], options: SharedScaleOptions = {}): number {
  const method = options.method ?? 'heat_map';
  if (maps.length === 0) throw new LensError('INVALID_ARGUMENT', 'shared scale of no attribution maps');
  const concat = (parts: Float64Array[]): Float64Array => {
    const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    return all;
  };
  if (method === 'overlay') {
    const magnitudes = concat(maps.map((m) => thresholdBasis(m, options.sign ?? 'absolute_value'))).filter((x) => x > 0);
    return magnitudes.length > 0 ? numpyPercentile(magnitudes, options.percentile ?? 99) : 0;
  }
  if (CAPTUM_METHODS.includes(method)) {
    const sign = options.sign ?? 'absolute_value';
    return cumulativeSumThreshold(concat(maps.map((m) => thresholdBasis(m, sign))), 100 - (options.outlierPerc ?? 2));
  }
  if (method === 'saliency_grayscale') return numpyPercentile(concat(maps.map(sumAbsChannels)), options.percentile ?? 99);
  if (method === 'saliency_diverging') return Math.abs(numpyPercentile(concat(maps.map(sumChannels)), options.percentile ?? 99));
  throw new LensError('INVALID_ARGUMENT', `visualization ${method} has no value scale to share`);
}
