/**
 * Single-gradient methods: the vanilla gradient (saliency, Simonyan et al. 2013) and
 * gradient x input, and SmoothGrad / VarGrad, which average any method over noisy copies of
 * the input (Smilkov et al. 2017; Adebayo et al. 2018).
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { checkImage, defaultBatchSize, gradientsAt, mapSize, requireGradient } from './engine.js';
import { DEFAULT_SEED, seededRandom } from '../core/random.js';
import { scoreInput } from './targets.js';
import type { Attribution, AttributionMethod, CommonOptions, ImageInput } from './types.js';

async function gradientAttribution(model: ImageModel, image: ImageInput, options: CommonOptions, timesInput: boolean): Promise<Attribution> {
  const method = timesInput ? 'gradient_x_input' : 'gradient';
  requireGradient(model, method);
  checkImage(model, image);
  const { target } = await scoreInput(model, image, options);
  const { gradients } = await gradientsAt(model, [image.data], target.index, {
    batchSize: 1,
    stage: method,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const data = gradients[0]!;
  if (timesInput) for (let i = 0; i < data.length; i++) data[i]! *= image.data[i]!;
  return { data, ...mapSize(image), method, target, output: model.output, gradientEvaluations: 1, forwardEvaluations: 1 };
}

/**
 * The input gradient dF/dx of the target score (PAIR saliency's "vanilla gradient").
 *
 * @example
 * const attr = await vanillaGradient(model, image, { target: 'top1' });
 */
export function vanillaGradient(model: ImageModel, image: ImageInput, options: CommonOptions = {}): Promise<Attribution> {
  return gradientAttribution(model, image, options, false);
}

/**
 * Gradient times input, x * dF/dx (pixels 0..255).
 *
 * @example
 * const attr = await gradientTimesInput(model, image);
 */
export function gradientTimesInput(model: ImageModel, image: ImageInput, options: CommonOptions = {}): Promise<Attribution> {
  return gradientAttribution(model, image, options, true);
}

export interface SmoothGradOptions<O extends CommonOptions = CommonOptions> extends CommonOptions {
  /** Noisy copies. Default 50. */
  samples?: number;
  /** Noise standard deviation as a fraction of the input's value range (max - min). Default 0.15. */
  stdevFraction?: number;
  /** Average the squares of the maps instead of the maps (SmoothGrad-Squared). Default false. */
  magnitude?: boolean;
  /** Options passed to the wrapped method (target, seed and progress are set by SmoothGrad). */
  methodOptions?: Omit<O, keyof CommonOptions>;
}

/** Noisy copies of the input, drawn as PAIR's saliency library does: stdev = fraction * (max - min). */
function noisyCopies(image: ImageInput, samples: number, stdevFraction: number, seed: number): ImageInput[] {
  if (!Number.isInteger(samples) || samples < 1) throw new LensError('INVALID_ARGUMENT', `samples must be a positive integer, got ${samples}`);
  if (!(stdevFraction >= 0)) throw new LensError('INVALID_ARGUMENT', `stdev fraction must be >= 0, got ${stdevFraction}`);
  let min = Infinity;
  let max = -Infinity;
  for (const v of image.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const stdev = stdevFraction * (max - min);
  const rng = seededRandom(seed);
  return Array.from({ length: samples }, () => {
    const data = new Float32Array(image.data.length);
    for (let i = 0; i < data.length; i++) data[i] = image.data[i]! + rng.normal() * stdev;
    return { data, ...mapSize(image) };
  });
}

async function noiseStatistics<O extends CommonOptions>(
  name: string,
  method: AttributionMethod<O>,
  model: ImageModel,
  image: ImageInput,
  options: SmoothGradOptions<O>,
  reduce: 'mean' | 'square' | 'variance',
): Promise<Attribution> {
  checkImage(model, image);
  const samples = options.samples ?? 50;
  const seed = options.seed ?? DEFAULT_SEED;
  const copies = noisyCopies(image, samples, options.stdevFraction ?? 0.15, seed);
  // The target is fixed on the clean input, so every noisy copy explains the same class.
  const { target } = await scoreInput(model, image, options);
  const mean = new Float64Array(image.data.length);
  const meanSquare = new Float64Array(image.data.length);
  const add = (map: Float32Array): void => {
    for (let i = 0; i < mean.length; i++) {
      const v = map[i]!;
      mean[i]! += v / samples;
      meanSquare[i]! += (v * v) / samples;
    }
  };
  let gradientEvaluations = 0;
  let forwardEvaluations = 1;
  // Integration error of the mean map from the inner maps' estimates (independent across copies,
  // so their absolute errors add in squares); the sampling noise is not in it.
  let squaredMapError: number | undefined = reduce === 'mean' ? 0 : undefined;
  let inner: Pick<Attribution, 'method' | 'baseline' | 'steps' | 'rule'> | undefined;
  const plainGradient = (method as unknown) === vanillaGradient || (method as unknown) === gradientTimesInput;
  if (plainGradient) {
    // One gradient per copy: batch the copies instead of calling the method once per copy.
    requireGradient(model, name);
    const timesInput = (method as unknown) === gradientTimesInput;
    inner = { method: timesInput ? 'gradient_x_input' : 'gradient' };
    const { gradients } = await gradientsAt(
      model,
      copies.map((c) => c.data),
      target.index,
      {
        batchSize: options.batchSize ?? defaultBatchSize(model.inputShape),
        stage: name,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    gradients.forEach((g, s) => {
      if (timesInput) {
        const x = copies[s]!.data;
        for (let i = 0; i < g.length; i++) g[i]! *= x[i]!;
      }
      add(g);
    });
    gradientEvaluations = samples;
  } else {
    for (let s = 0; s < copies.length; s++) {
      const methodOptions = {
        ...(options.methodOptions ?? {}),
        target: target.index,
        seed: seed + 1 + s,
        ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      } as O;
      const attribution = await method(model, copies[s]!, methodOptions);
      inner = attribution;
      if (squaredMapError !== undefined && attribution.mapErrorEstimate !== undefined) {
        let norm = 0;
        for (const v of attribution.data) norm += v * v;
        squaredMapError += attribution.mapErrorEstimate ** 2 * norm;
      } else {
        squaredMapError = undefined;
      }
      gradientEvaluations += attribution.gradientEvaluations;
      forwardEvaluations += attribution.forwardEvaluations;
      add(attribution.data);
      options.onProgress?.({ done: s + 1, total: samples, stage: name });
    }
  }
  const data = new Float32Array(mean.length);
  for (let i = 0; i < data.length; i++) {
    data[i] = reduce === 'mean' ? mean[i]! : reduce === 'square' ? meanSquare[i]! : meanSquare[i]! - mean[i]! * mean[i]!;
  }
  const innerMethod = inner?.method ?? 'unknown';
  let mapErrorEstimate: number | undefined;
  if (!plainGradient && squaredMapError !== undefined) {
    let norm = 0;
    for (const v of data) norm += v * v;
    mapErrorEstimate = norm > 0 ? Math.sqrt(squaredMapError / norm) / samples : squaredMapError === 0 ? 0 : Infinity;
  }
  return {
    data,
    ...mapSize(image),
    method: `${name}(${innerMethod})`,
    target,
    output: model.output,
    ...(inner?.baseline !== undefined ? { baseline: inner.baseline } : {}),
    ...(inner?.steps !== undefined ? { steps: inner.steps } : {}),
    ...(inner?.rule !== undefined ? { rule: inner.rule } : {}),
    gradientEvaluations,
    forwardEvaluations,
    ...(mapErrorEstimate !== undefined ? { mapErrorEstimate } : {}),
    details: { samples, stdevFraction: options.stdevFraction ?? 0.15, ...(name === 'smoothgrad' ? { magnitude: reduce === 'square' } : {}) },
  };
}

/**
 * SmoothGrad over any method: the mean of the method's maps on noisy copies of the input
 * (or the mean of their squares with `magnitude`).
 *
 * @example
 * const attr = await smoothGrad(integratedGradients, model, image, { samples: 20, stdevFraction: 0.1, methodOptions: { steps: 16 } });
 */
export function smoothGrad<O extends CommonOptions>(method: AttributionMethod<O>, model: ImageModel, image: ImageInput, options: SmoothGradOptions<O> = {}): Promise<Attribution> {
  return noiseStatistics('smoothgrad', method, model, image, options, options.magnitude ? 'square' : 'mean');
}

/**
 * VarGrad: the variance of a method's maps over noisy copies of the input.
 *
 * @example
 * const attr = await varGrad(vanillaGradient, model, image, { samples: 30 });
 */
export function varGrad<O extends CommonOptions>(method: AttributionMethod<O>, model: ImageModel, image: ImageInput, options: Omit<SmoothGradOptions<O>, 'magnitude'> = {}): Promise<Attribution> {
  return noiseStatistics('vargrad', method, model, image, options, 'variance');
}
