/**
 * Blur IG (Xu et al., "Attribution in Scale and Space", CVPR 2020): integrate along the path of
 * ever less blurred images, from the input blurred with `maxSigma` to the input itself, so no
 * baseline image is needed. The path derivative d blur(x, sigma) / d sigma is taken by a forward
 * difference of width `gradStep`, as PAIR's saliency library does. The map-error estimate treats
 * the steps in sigma as any path rule's points (integration.ts splitDifferenceWeights); it covers
 * the integration in sigma, not the finite difference.
 */
import type { ImageModel } from '../core/model.js';
import { checkAborted, checkImage, defaultBatchSize, gradientsAt, mapSize, requireGradient } from './engine.js';
import { gaussianBlur } from './image-ops.js';
import { completenessOf } from './integrated-gradients.js';
import { relativeL2, splitDifferenceWeights } from './integration.js';
import { scoreInput } from './targets.js';
import type { Attribution, CommonOptions, ImageInput, PathTrace } from './types.js';
import { LensError } from '../core/errors.js';

export interface BlurIgOptions extends CommonOptions {
  /** Blur of the path's start, in pixels. Default 50 (PAIR's default for 224x224 images). */
  maxSigma?: number;
  /** Points on the path. Default 100. */
  steps?: number;
  /** Width of the finite difference in sigma. Default 0.01. */
  gradStep?: number;
  /** Space sigmas as maxSigma * sqrt(i / steps), denser at small blur. Default false (linear). */
  sqrt?: boolean;
  returnPath?: boolean;
}

/**
 * Blur Integrated Gradients of one target class.
 *
 * @example
 * const attr = await blurIntegratedGradients(model, image, { maxSigma: 8, steps: 64 });
 */
export async function blurIntegratedGradients(model: ImageModel, image: ImageInput, options: BlurIgOptions = {}): Promise<Attribution> {
  requireGradient(model, 'blur_ig');
  checkImage(model, image);
  const maxSigma = options.maxSigma ?? 50;
  const steps = options.steps ?? 100;
  const gradStep = options.gradStep ?? 0.01;
  if (!(maxSigma > 0)) throw new LensError('INVALID_ARGUMENT', `maxSigma must be > 0, got ${maxSigma}`);
  if (!Number.isInteger(steps) || steps < 1) throw new LensError('INVALID_ARGUMENT', `steps must be a positive integer, got ${steps}`);
  if (!(gradStep > 0)) throw new LensError('INVALID_ARGUMENT', `gradStep must be > 0, got ${gradStep}`);
  const batchSize = options.batchSize ?? defaultBatchSize(model.inputShape);
  const sigmas = Array.from({ length: steps + 1 }, (_, i) => (options.sqrt ? maxSigma * Math.sqrt(i / steps) : (maxSigma * i) / steps));
  const start = gaussianBlur(image, maxSigma);
  const { target, rows } = await scoreInput(model, image, options, [start.data], 2);
  const attribution = new Float64Array(image.data.length);
  const error = new Float64Array(image.data.length);
  // Points at sigma_0..sigma_{steps-1} (left ends) with their widths, as a rule on [0, 1] (the sigma range scaled).
  const errorWeights = splitDifferenceWeights(
    sigmas.slice(0, steps).map((s) => s / maxSigma),
    sigmas.slice(1).map((s, i) => (s - sigmas[i]!) / maxSigma),
  );
  const scores = new Float32Array(steps);
  for (let i0 = 0; i0 < steps; i0 += batchSize) {
    checkAborted(options.signal);
    const indices = Array.from({ length: Math.min(batchSize, steps - i0) }, (_, k) => i0 + k);
    const points = indices.map((i) => gaussianBlur(image, sigmas[i]!).data);
    const result = await gradientsAt(model, points, target.index, {
      batchSize,
      stage: 'blur ig',
      progressOffset: i0,
      progressTotal: steps,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    indices.forEach((i, k) => {
      const x = points[k]!;
      const ahead = gaussianBlur(image, sigmas[i]! + gradStep).data;
      const g = result.gradients[k]!;
      const width = sigmas[i + 1]! - sigmas[i]!;
      const errorWidth = errorWeights ? errorWeights[i]! * maxSigma : 0;
      // The path runs from large to small sigma, hence the minus sign.
      for (let p = 0; p < attribution.length; p++) {
        const integrand = ((ahead[p]! - x[p]!) / gradStep) * g[p]!;
        attribution[p]! -= width * integrand;
        error[p]! -= errorWidth * integrand;
      }
      scores[i] = result.scores[k]!;
    });
  }
  const data = Float32Array.from(attribution);
  const path: PathTrace | undefined = options.returnPath
    ? { alphas: Float32Array.from(sigmas.slice(0, steps)), weights: Float32Array.from(sigmas.slice(1).map((s, i) => s - sigmas[i]!)), scores }
    : undefined;
  return {
    data,
    ...mapSize(image),
    method: 'blur_ig',
    target,
    output: model.output,
    baseline: `blur(sigma=${maxSigma})`,
    steps,
    completeness: completenessOf(data, target.score, rows[1]![target.index]!),
    gradientEvaluations: steps,
    forwardEvaluations: 2,
    ...(errorWeights ? { mapErrorEstimate: relativeL2(error, data) } : {}),
    ...(path ? { path } : {}),
    details: { maxSigma, gradStep, sqrt: options.sqrt ?? false },
  };
}
