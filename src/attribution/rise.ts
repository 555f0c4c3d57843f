/**
 * RISE (Petsiuk, Das, Saenko, BMVC 2018): the importance of a pixel is the expected target
 * probability over random masks that keep it, E[p | pixel kept] = sum_i p_i m_i / (N keep).
 * Forward calls only, so it works on a remote TF Serving model.
 *
 * Mask geometry, against the paper (Sec. 3.2): the paper draws an h x w binary grid, upsamples it
 * bilinearly to (h+1)C x (w+1)C with C = ceil(H/h) and crops H x W at a random shift in [0, C).
 * Here the grid is extended to (cells+1) x (cells+1) by repeating its last row and column, then
 * upsampled to (cells+1)C and cropped at a random shift in [0, C): cells are exactly C pixels
 * (the paper's are (h+1)/h C), and the extra row/column repeats a drawn cell instead of blending
 * towards it. Both give smooth masks with a random sub-cell offset and keep probability `keep`.
 *
 * Fill: masked-out pixels become `black` (pixel 0, as the paper's `image * mask`; default) or the
 * model-space `zero` (the pixel the model's preprocessing maps to 0: grey for [-1,1] models, the
 * ImageNet mean for caffe/torch), which is what multiplying the preprocessed tensor by the mask,
 * as the reference implementation does after normalising, amounts to.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { modelZeroPixel } from './baselines.js';
import { checkImage, defaultBatchSize, forwardRows, toProbabilities } from './engine.js';
import { broadcastChannels, resizeBilinear } from './image-ops.js';
import { DEFAULT_SEED, seededRandom, type Random } from '../core/random.js';
import { scoreInput } from './targets.js';
import type { Attribution, CommonOptions, ImageInput } from './types.js';

export interface RiseOptions extends CommonOptions {
  /** Random masks. Default 2000. */
  masks?: number;
  /** Grid cells per side of a mask. Default 8. */
  cells?: number;
  /** Probability that a cell is kept. Default 0.5. */
  keep?: number;
  /** What masked-out pixels become (see the module comment). Default 'black'. */
  riseFill?: RiseFill;
}

export const RISE_FILLS = ['black', 'zero'] as const;
/** `black`: pixel 0; `zero`: the pixel the model's preprocessing maps to 0. */
export type RiseFill = (typeof RISE_FILLS)[number];

/** One RISE mask (H*W, values in [0,1]). */
function randomMask(h: number, w: number, cells: number, keep: number, rng: Random): Float32Array {
  const grid = new Float32Array(cells * cells);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.uniform() < keep ? 1 : 0;
  const cellH = Math.ceil(h / cells);
  const cellW = Math.ceil(w / cells);
  // Upsample a (cells+1)-sized grid to cover the image plus one cell, then crop at a random shift.
  const bigH = (cells + 1) * cellH;
  const bigW = (cells + 1) * cellW;
  const padded = new Float32Array((cells + 1) * (cells + 1));
  for (let y = 0; y <= cells; y++) for (let x = 0; x <= cells; x++) padded[y * (cells + 1) + x] = grid[Math.min(y, cells - 1) * cells + Math.min(x, cells - 1)]!;
  const big = resizeBilinear(padded, cells + 1, cells + 1, bigH, bigW);
  const dy = rng.int(cellH);
  const dx = rng.int(cellW);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = big[(y + dy) * bigW + x + dx]!;
  return out;
}

/**
 * RISE saliency of one target class (each pixel's value repeated over channels).
 *
 * @example
 * const attr = await rise(remoteModel, image, { masks: 1000, cells: 7, seed: 3 });
 */
export async function rise(model: ImageModel, image: ImageInput, options: RiseOptions = {}): Promise<Attribution> {
  checkImage(model, image);
  const count = options.masks ?? 2000;
  const cells = options.cells ?? 8;
  const keep = options.keep ?? 0.5;
  if (!Number.isInteger(count) || count < 1) throw new LensError('INVALID_ARGUMENT', `masks must be a positive integer, got ${count}`);
  if (!Number.isInteger(cells) || cells < 1) throw new LensError('INVALID_ARGUMENT', `cells must be a positive integer, got ${cells}`);
  if (!(keep > 0 && keep <= 1)) throw new LensError('INVALID_ARGUMENT', `keep probability must be in (0, 1], got ${keep}`);
  const { height: h, width: w, channels: c } = image;
  const batchSize = options.batchSize ?? defaultBatchSize(model.inputShape);
  const rng = seededRandom(options.seed ?? DEFAULT_SEED);
  const { target } = await scoreInput(model, image, options);
  const fillMode = options.riseFill ?? 'black';
  if (!(RISE_FILLS as readonly string[]).includes(fillMode)) throw new LensError('INVALID_ARGUMENT', `RISE fill must be one of ${RISE_FILLS.join(', ')}, got ${fillMode}`);
  const fill = fillMode === 'zero' ? modelZeroPixel(model) : new Array<number>(c).fill(0);
  const saliency = new Float64Array(h * w);
  for (let m0 = 0; m0 < count; m0 += batchSize) {
    const n = Math.min(batchSize, count - m0);
    const masks = Array.from({ length: n }, () => randomMask(h, w, cells, keep, rng));
    const masked = masks.map((mask) => {
      const data = new Float32Array(h * w * c);
      for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) data[p * c + ch] = fill[ch]! + (image.data[p * c + ch]! - fill[ch]!) * mask[p]!;
      return data;
    });
    const rows = await forwardRows(model, masked, batchSize, { ...(options.signal ? { signal: options.signal } : {}) });
    masks.forEach((mask, k) => {
      const p = toProbabilities(rows[k]!, model.output)[target.index]!;
      for (let i = 0; i < saliency.length; i++) saliency[i]! += p * mask[i]!;
    });
    options.onProgress?.({ done: m0 + n, total: count, stage: 'rise' });
  }
  const map = new Float32Array(h * w);
  for (let i = 0; i < map.length; i++) map[i] = saliency[i]! / (count * keep);
  return {
    data: broadcastChannels(map, c),
    height: h,
    width: w,
    channels: c,
    method: 'rise',
    target,
    output: model.output,
    baseline: fillMode,
    gradientEvaluations: 0,
    forwardEvaluations: 1 + count,
    details: { masks: count, cells, keep, fill: fillMode, score: 'probability' },
  };
}
