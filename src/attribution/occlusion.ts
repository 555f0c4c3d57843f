/**
 * Occlusion (Zeiler and Fergus 2014, as Captum's Occlusion): slide a window over the image,
 * replace it with a baseline, and credit each pixel with the mean drop of the target score over
 * the windows that cover it. Forward calls only, so it works on a remote TF Serving model.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { makeBaselines, type BaselineSpec } from './baselines.js';
import { checkImage, defaultBatchSize, forwardRows } from './engine.js';
import { DEFAULT_SEED, seededRandom } from '../core/random.js';
import { scoreInput } from './targets.js';
import type { Attribution, CommonOptions, ImageInput } from './types.js';

export interface OcclusionOptions extends CommonOptions {
  /** Window side in pixels. Default: an eighth of the smaller image side (at least 1). */
  window?: number;
  /** Step between windows. Default: half the window. */
  stride?: number;
  /** What fills the window. Default 'black'. */
  fill?: BaselineSpec;
}

/**
 * Occlusion map of one target class (each pixel's value repeated over channels).
 *
 * @example
 * const attr = await occlusion(remoteModel, image, { window: 16, stride: 8 });
 */
export async function occlusion(model: ImageModel, image: ImageInput, options: OcclusionOptions = {}): Promise<Attribution> {
  checkImage(model, image);
  const { height: h, width: w, channels: c } = image;
  const window = options.window ?? Math.max(1, Math.round(Math.min(h, w) / 8));
  const stride = options.stride ?? Math.max(1, Math.floor(window / 2));
  if (!Number.isInteger(window) || window < 1 || window > Math.min(h, w)) throw new LensError('INVALID_ARGUMENT', `occlusion window must be an integer in 1..${Math.min(h, w)}, got ${window}`);
  if (!Number.isInteger(stride) || stride < 1) throw new LensError('INVALID_ARGUMENT', `occlusion stride must be a positive integer, got ${stride}`);
  const fill = makeBaselines(model, image, options.fill ?? 'black', seededRandom(options.seed ?? DEFAULT_SEED));
  const fillData = fill.images[0]!;
  const batchSize = options.batchSize ?? defaultBatchSize(model.inputShape);
  const starts = (size: number) => {
    const out: number[] = [];
    for (let s = 0; s + window <= size; s += stride) out.push(s);
    if (out.at(-1)! + window < size) out.push(size - window);
    return out;
  };
  const windows = starts(h).flatMap((y) => starts(w).map((x) => [y, x] as const));
  const { target } = await scoreInput(model, image, options);
  const sum = new Float64Array(h * w);
  const count = new Float64Array(h * w);
  for (let b0 = 0; b0 < windows.length; b0 += batchSize) {
    const chunk = windows.slice(b0, b0 + batchSize);
    const occluded = chunk.map(([y0, x0]) => {
      const data = new Float32Array(image.data);
      for (let y = y0; y < y0 + window; y++) {
        const row = (y * w + x0) * c;
        data.set(fillData.subarray(row, row + window * c), row);
      }
      return data;
    });
    const rows = await forwardRows(model, occluded, batchSize, { ...(options.signal ? { signal: options.signal } : {}) });
    chunk.forEach(([y0, x0], k) => {
      const drop = target.score - rows[k]![target.index]!;
      for (let y = y0; y < y0 + window; y++) {
        for (let x = x0; x < x0 + window; x++) {
          sum[y * w + x]! += drop;
          count[y * w + x]! += 1;
        }
      }
    });
    options.onProgress?.({ done: Math.min(windows.length, b0 + batchSize), total: windows.length, stage: 'occlusion' });
  }
  const data = new Float32Array(h * w * c);
  for (let p = 0; p < h * w; p++) data.fill(count[p]! > 0 ? sum[p]! / count[p]! : 0, p * c, (p + 1) * c);
  return {
    data,
    height: h,
    width: w,
    channels: c,
    method: 'occlusion',
    target,
    output: model.output,
    baseline: fill.description,
    gradientEvaluations: 0,
    forwardEvaluations: 1 + windows.length,
    details: { window, stride, windows: windows.length },
  };
}
