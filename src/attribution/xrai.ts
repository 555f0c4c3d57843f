/**
 * XRAI (Kapishnikov et al., ICCV 2019): region attribution. Pixel attributions (by default IG
 * averaged over black and white baselines) are summarised over image segments from Felzenszwalb
 * segmentation at several scales; segments are added greedily by attribution density, and each
 * pixel gets the density of the segment that first covered it. Brighter regions matter more.
 *
 * As in PAIR's saliency library: the image is segmented at 224x224 with values in [-1, 1],
 * scales 50..1200, sigma 0.8, minimum segment 150 pixels, masks dilated by 5 pixels; channels
 * of the pixel attribution are reduced by their maximum.
 */
import type { ImageModel } from '../core/model.js';
import { checkImage } from './engine.js';
import { broadcastChannels, resizeBilinear } from './image-ops.js';
import { integratedGradients } from './integrated-gradients.js';
import { dilateMask, felzenszwalbScales, segmentMasks } from './segmentation.js';
import type { Attribution, CommonOptions, ImageInput } from './types.js';
import { LensError } from '../core/errors.js';

export interface XraiOptions extends CommonOptions {
  /** Pixel attributions to summarise; default IG with black and white baselines averaged. */
  attribution?: Attribution;
  /** IG steps per baseline when `attribution` is not given. Default 50. */
  steps?: number;
  /** Felzenszwalb scales. Default [50, 100, 150, 250, 500, 1200]. */
  scales?: readonly number[];
  /** Side of the square image the segmentation runs on. Default 224. */
  segmentationSize?: number;
  /** Mask dilation radius at the segmentation size. Default 5. */
  dilation?: number;
}

export interface XraiRegion {
  /** Pixels (row-major H*W indices) first covered by this segment. */
  pixels: Int32Array;
  /** Mean attribution over those pixels. */
  gain: number;
}

/** Segments of the image at several scales, as masks at the image's size (H*W, 1 inside). */
export function xraiSegments(image: ImageInput, options: Pick<XraiOptions, 'scales' | 'segmentationSize' | 'dilation'> = {}): Uint8Array[] {
  const size = options.segmentationSize ?? 224;
  const scales = options.scales ?? [50, 100, 150, 250, 500, 1200];
  const dilation = options.dilation ?? 5;
  const { height: h, width: w, channels: c } = image;
  // Bring the image to size x size in [-1, 1], channel by channel.
  const resized = new Float32Array(size * size * c);
  for (let ch = 0; ch < c; ch++) {
    const plane = new Float32Array(h * w);
    for (let p = 0; p < h * w; p++) plane[p] = image.data[p * c + ch]! / 127.5 - 1;
    const big = resizeBilinear(plane, h, w, size, size);
    for (let p = 0; p < size * size; p++) resized[p * c + ch] = big[p]!;
  }
  const small = { data: resized, height: size, width: size, channels: c };
  // Nearest sample of the segmentation grid for each image pixel.
  const sample = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(size - 1, Math.floor(((y + 0.5) * size) / h));
    for (let x = 0; x < w; x++) sample[y * w + x] = sy * size + Math.min(size - 1, Math.floor(((x + 0.5) * size) / w));
  }
  const masks: Uint8Array[] = [];
  for (const seg of felzenszwalbScales(small, scales, { sigma: 0.8, minSize: 150 })) {
    for (const m of segmentMasks(seg)) {
      const grown = dilateMask(m, size, size, dilation);
      const mask = new Uint8Array(h * w);
      let any = false;
      for (let p = 0; p < h * w; p++) {
        if (grown[sample[p]!]) {
          mask[p] = 1;
          any = true;
        }
      }
      if (any) masks.push(mask);
    }
  }
  return masks;
}

/**
 * The greedy XRAI region ordering over a 2-D attribution map (H*W): returns the per-pixel
 * output map and the regions in the order they were added.
 */
export function xraiFromMap(map: Float32Array, masks: readonly Uint8Array[], minPixelDiff: number): { output: Float32Array; regions: XraiRegion[] } {
  const n = map.length;
  const output = new Float32Array(n).fill(-Infinity);
  const covered = new Uint8Array(n);
  let coveredCount = 0;
  const remaining = new Map<number, Int32Array>();
  masks.forEach((m, i) => {
    const idx: number[] = [];
    m.forEach((v, p) => {
      if (v) idx.push(p);
    });
    remaining.set(i, Int32Array.from(idx));
  });
  const regions: XraiRegion[] = [];
  while (coveredCount < n && remaining.size > 0) {
    let bestKey = -1;
    let bestGain = -Infinity;
    for (const [key, pixels] of remaining) {
      let count = 0;
      let sum = 0;
      for (const p of pixels) {
        if (!covered[p]) {
          count++;
          sum += map[p]!;
        }
      }
      if (count < minPixelDiff) {
        remaining.delete(key);
        continue;
      }
      const gain = sum / count;
      if (gain > bestGain) {
        bestGain = gain;
        bestKey = key;
      }
    }
    if (bestKey < 0) break;
    const added: number[] = [];
    for (const p of remaining.get(bestKey)!) {
      if (!covered[p]) {
        covered[p] = 1;
        output[p] = bestGain;
        added.push(p);
      }
    }
    coveredCount += added.length;
    regions.push({ pixels: Int32Array.from(added), gain: bestGain });
    remaining.delete(bestKey);
  }
  if (coveredCount < n) {
    // Pixels no segment claimed share one value: their mean attribution.
    let sum = 0;
    let count = 0;
    for (let p = 0; p < n; p++) {
      if (!covered[p]) {
        sum += map[p]!;
        count++;
      }
    }
    const rest: number[] = [];
    for (let p = 0; p < n; p++) {
      if (!covered[p]) {
        output[p] = sum / count;
        rest.push(p);
      }
    }
    regions.push({ pixels: Int32Array.from(rest), gain: sum / count });
  }
  return { output, regions };
}

/**
 * XRAI region attribution of one target class. The map has the input's shape; the value of
 * each pixel is repeated over channels.
 *
 * @example
 * const attr = await xrai(model, image, { steps: 32 });
 * const regions = attr.details?.regions; // order in which segments were added
 */
export async function xrai(model: ImageModel, image: ImageInput, options: XraiOptions = {}): Promise<Attribution> {
  checkImage(model, image);
  const base =
    options.attribution ??
    (await integratedGradients(model, image, {
      baseline: { kind: 'average', of: ['black', 'white'] },
      steps: options.steps ?? 50,
      ...(options.target !== undefined ? { target: options.target } : {}),
      ...(options.inputScores ? { inputScores: options.inputScores } : {}),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    }));
  if (base.height !== image.height || base.width !== image.width || base.channels !== image.channels) {
    throw new LensError('SHAPE_MISMATCH', 'the attribution given to XRAI does not have the image shape');
  }
  const { height: h, width: w, channels: c } = image;
  const map = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let m = -Infinity;
    for (let ch = 0; ch < c; ch++) m = Math.max(m, base.data[p * c + ch]!);
    map[p] = m;
  }
  const size = options.segmentationSize ?? 224;
  const masks = xraiSegments(image, options);
  // PAIR skips segments adding fewer than 50 new pixels at 224x224; scale that to this image.
  const minPixelDiff = Math.max(1, Math.round((50 * h * w) / (size * size)));
  const { output, regions } = xraiFromMap(map, masks, minPixelDiff);
  return {
    data: broadcastChannels(output, c),
    height: h,
    width: w,
    channels: c,
    method: 'xrai',
    target: base.target,
    output: model.output,
    ...(base.baseline !== undefined ? { baseline: base.baseline } : {}),
    ...(base.steps !== undefined ? { steps: base.steps } : {}),
    gradientEvaluations: options.attribution ? 0 : base.gradientEvaluations,
    forwardEvaluations: options.attribution ? 0 : base.forwardEvaluations,
    details: { segments: masks.length, regions: regions.map((r) => ({ pixels: r.pixels.length, gain: r.gain })), pixelMethod: base.method },
  };
}
