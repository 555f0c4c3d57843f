/**
 * Small image operations on HWC float arrays that several methods share: Gaussian blur (blurred
 * baselines, Blur IG, the blur fill of insertion/deletion curves), channel sums, bilinear resizing
 * of coarse maps (Grad-CAM, RISE) and broadcasting a map over channels.
 */
import { contentMask, hasPadding, type Rect } from '../image/geometry.js';
import type { ImageInput } from './types.js';

/** Index into [0, n) by mirror reflection about the edges (scipy's 'reflect': d c b a | a b c d | d c b a). */
function reflect(i: number, n: number): number {
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/** Normalised 1-D Gaussian kernel truncated at 4 sigma (as scipy's gaussian_filter). */
function gaussianKernel(sigma: number): Float64Array {
  const radius = Math.max(1, Math.ceil(4 * sigma));
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

/**
 * Gaussian blur of each channel with standard deviation `sigma` pixels (0 returns a copy). An
 * image with padding (`geometry`) has its photo part blurred on its own (reflected at the photo's
 * edges) and its padding left as it is, so blurred baselines and Blur IG paths never move padding.
 *
 * @example
 * const soft = gaussianBlur(image, 3);
 */
export function gaussianBlur<T extends ImageInput>(image: T, sigma: number): T {
  const content = paddedContent(image);
  if (content && sigma > 0) {
    const inner = cropRect(image, content);
    const blurred = blurWhole(inner, sigma);
    const out = new Float32Array(image.data);
    pasteRect(out, image.width, image.channels, blurred, content);
    return { ...image, data: out };
  }
  return { ...image, data: blurWhole(image, sigma) };
}

/** The content rectangle of an image with padding, or undefined when every pixel is image. */
export function paddedContent(image: ImageInput): Rect | undefined {
  const g = image.geometry;
  if (!g || !hasPadding(g) || g.input.height !== image.height || g.input.width !== image.width) return undefined;
  return g.content;
}

function cropRect(image: ImageInput, r: Rect): ImageInput {
  const c = image.channels;
  const data = new Float32Array(r.height * r.width * c);
  for (let y = 0; y < r.height; y++) {
    const from = ((r.top + y) * image.width + r.left) * c;
    data.set(image.data.subarray(from, from + r.width * c), y * r.width * c);
  }
  return { data, height: r.height, width: r.width, channels: c };
}

function pasteRect(out: Float32Array, width: number, channels: number, part: Float32Array, r: Rect): void {
  for (let y = 0; y < r.height; y++) out.set(part.subarray(y * r.width * channels, (y + 1) * r.width * channels), ((r.top + y) * width + r.left) * channels);
}

/**
 * Sets every padding pixel (outside `image.geometry.content`) of `data` to the image's own value
 * there, so that a baseline or path point equals the input on padding. Returns `data`.
 *
 * @example
 * const baseline = keepPadding(image, new Float32Array(image.data.length).fill(255));
 */
export function keepPadding(image: ImageInput, data: Float32Array): Float32Array {
  const content = paddedContent(image);
  if (!content) return data;
  const mask = contentMask(image.geometry!);
  const c = image.channels;
  for (let p = 0; p < mask.length; p++) if (!mask[p]) for (let ch = 0; ch < c; ch++) data[p * c + ch] = image.data[p * c + ch]!;
  return data;
}

/**
 * Zeroes an attribution on the padding of `image` (a no-op without padding); for methods whose
 * construction does not already leave padding at zero (gradients, Grad-CAM, RISE, occlusion).
 */
export function zeroPadding(image: ImageInput, data: Float32Array): Float32Array {
  if (!paddedContent(image)) return data;
  const mask = contentMask(image.geometry!);
  const c = image.channels;
  for (let p = 0; p < mask.length; p++) if (!mask[p]) data.fill(0, p * c, (p + 1) * c);
  return data;
}

function blurWhole(image: ImageInput, sigma: number): Float32Array {
  const { height: h, width: w, channels: c } = image;
  if (!(sigma > 0)) return new Float32Array(image.data);
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) / 2;
  const tmp = new Float64Array(h * w * c);
  const out = new Float32Array(h * w * c);
  const src = image.data;
  // Precomputed reflected indices keep the inner loops free of branches.
  const colIndex = new Int32Array(w + 2 * radius);
  for (let i = 0; i < colIndex.length; i++) colIndex[i] = reflect(i - radius, w);
  const rowIndex = new Int32Array(h + 2 * radius);
  for (let i = 0; i < rowIndex.length; i++) rowIndex[i] = reflect(i - radius, h);
  for (let y = 0; y < h; y++) {
    const row = y * w * c;
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let k = 0; k < kernel.length; k++) s += kernel[k]! * src[row + colIndex[x + k]! * c + ch]!;
        tmp[row + x * c + ch] = s;
      }
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let k = 0; k < kernel.length; k++) s += kernel[k]! * tmp[(rowIndex[y + k]! * w + x) * c + ch]!;
        out[(y * w + x) * c + ch] = s;
      }
    }
  }
  return out;
}

/** Sum over channels: an [H*W] map from HWC data. */
export function channelSum(image: ImageInput): Float32Array {
  const { height: h, width: w, channels: c, data } = image;
  const out = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += data[p * c + ch]!;
    out[p] = s;
  }
  return out;
}

/** An [H*W] map repeated over `channels` (HWC). */
export function broadcastChannels(map: Float32Array, channels: number): Float32Array {
  if (channels === 1) return new Float32Array(map);
  const out = new Float32Array(map.length * channels);
  for (let p = 0; p < map.length; p++) out.fill(map[p]!, p * channels, (p + 1) * channels);
  return out;
}

/**
 * Bilinear resize of a single-channel map (half-pixel centres, as tf.image.resizeBilinear with
 * halfPixelCenters), used to bring coarse maps to the input size.
 */
export function resizeBilinear(map: Float32Array, height: number, width: number, toHeight: number, toWidth: number): Float32Array {
  const out = new Float32Array(toHeight * toWidth);
  const sy = height / toHeight;
  const sx = width / toWidth;
  for (let y = 0; y < toHeight; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    for (let x = 0; x < toWidth; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, width - 1);
      const wx = fx - x0;
      const top = map[y0 * width + x0]! * (1 - wx) + map[y0 * width + x1]! * wx;
      const bottom = map[y1 * width + x0]! * (1 - wx) + map[y1 * width + x1]! * wx;
      out[y * toWidth + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** Sum of all values, in double precision. */
export function total(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}
