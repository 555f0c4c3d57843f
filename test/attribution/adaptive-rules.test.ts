import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { integratedGradients } from '../../src/attribution/integrated-gradients.js';
import { allocateByChange, nonUniformQuadrature, parseIntegrationRule } from '../../src/attribution/integration.js';
import { runMethod } from '../../src/attribution/methods.js';
import { isLensError } from '../../src/core/errors.js';
import { linearModel, pathProfileModel, PROFILE_FEATURES, PROFILE_WEIGHTS, profileZ, randomImage } from './helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

const FEATURES = PROFILE_FEATURES;
const WEIGHTS = PROFILE_WEIGHTS;
const RAMP_SLOPE = 20;
const RAMP_START = 0.3;

const zOf = profileZ;

/** F(z) = clip(20 (z - 0.3), 0, 1) + 0.2 z: flat, then a steep ramp over 0.05 in z, then flat. */
const rampOf = (z: number) => Math.min(1, Math.max(0, RAMP_SLOPE * (z - RAMP_START))) + 0.2 * z;

/**
 * A piecewise-linear model (as a ReLU network is along a path) whose class-0 score changes almost
 * entirely over a short stretch of the path; class 1 is its negative.
 */
function rampModel() {
  return pathProfileModel('ramp', (z) => tf.add(tf.clipByValue(tf.mul(tf.sub(z, RAMP_START), RAMP_SLOPE), 0, 1), tf.mul(z, 0.2)) as tf.Tensor2D);
}

/**
 * Exact IG of the ramp model's class 0 from `baseline`: F depends on x only through z, which is
 * linear, so IG_i = (x_i - x'_i) dz/dx_i (F(z) - F(z')) / (z - z').
 */
function exactRampIg(image: Float32Array, baseline: Float32Array): Float64Array {
  const z = zOf(image);
  const zb = zOf(baseline);
  const scale = (rampOf(z) - rampOf(zb)) / (z - zb);
  return Float64Array.from(image, (x, i) => ((x - baseline[i]!) * WEIGHTS[i]! * scale) / 255 / FEATURES);
}

/** Largest |a - b| relative to the largest |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return worst / scale;
}

const geometricMean = (values: number[]) => Math.exp(values.reduce((s, v) => s + Math.log(v), 0) / values.length);

async function invalid(run: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLensError(error, 'INVALID_ARGUMENT')).toBe(true);
  expect((error as Error).message).toMatch(pattern);
}

describe('nonuniform and adaptive point placement (pure parts)', () => {
  it('allocates one point per segment and the rest by |change of F|, adding up exactly', () => {
    expect(Array.from(allocateByChange([0, 3, 1, 0], 12))).toEqual([1, 7, 3, 1]);
    expect(Array.from(allocateByChange([0, -3, 1, 0], 12))).toEqual([1, 7, 3, 1]);
    // No change at all: even spread; ties go to earlier segments.
    expect(Array.from(allocateByChange([0, 0, 0], 8))).toEqual([3, 3, 2]);
    expect(Array.from(allocateByChange([0.1, 2, 0.1, 0], 12))).toEqual([2, 8, 1, 1]);
    expect(() => allocateByChange([1, 2, 3], 2)).toThrow(/cannot give each of 3 segments one/);
    expect(() => allocateByChange([1, Number.NaN], 4)).toThrow(/not finite/);
  });

  it('places Gauss-Legendre nodes inside the segments where F changes, with weights summing to 1', () => {
    const q = nonUniformQuadrature([0, 0, 0.9, 1, 1], 12);
    expect(Array.from(q.counts)).toEqual([1, 8, 2, 1]);
    expect(q.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (let i = 1; i < q.alphas.length; i++) expect(q.alphas[i]!).toBeGreaterThan(q.alphas[i - 1]!);
    expect(Array.from(q.alphas).filter((a) => a > 0.25 && a < 0.5).length).toBe(8);
    // 8 Gauss-Legendre points on [0.25, 0.5] integrate a degree-15 polynomial exactly there.
    const inSegment = Array.from(q.alphas).map((a, i) => (a > 0.25 && a < 0.5 ? q.weights[i]! * (a - 0.25) ** 15 : 0));
    expect(inSegment.reduce((a, b) => a + b, 0)).toBeCloseTo(0.25 ** 16 / 16, 14);
  });

  it('parses the new rule names and lists every rule when a name is unknown', () => {
    expect(parseIntegrationRule('non-uniform')).toBe('nonuniform');
    expect(parseIntegrationRule('Adaptive')).toBe('adaptive');
    expect(() => parseIntegrationRule('simpson')).toThrow(/gausslegendre, nonuniform, adaptive/);
  });
});

describe('integrated gradients with nonuniform and adaptive rules', () => {
  it('is exact on a linear model and counts forward passes and gradient evaluations', async () => {
    const { model, w } = linearModel([3, 4, 3], 3, 21);
    const image = randomImage(3, 4, 3, 22);
    const nonuniform = await integratedGradients(model, image, { rule: 'nonuniform', steps: 7, target: 1 });
    const adaptive = await integratedGradients(model, image, { rule: 'adaptive', steps: 40, target: 1 });
    for (const attr of [nonuniform, adaptive]) {
      for (let i = 0; i < image.data.length; i++) expect(attr.data[i]).toBeCloseTo(w[i * 3 + 1]! * image.data[i]!, 4);
      expect(attr.completeness!.relative).toBeLessThan(1e-4);
    }
    // nonuniform: 3 sweep segments (2 interior forward passes) besides F(x) and F(x').
    expect(nonuniform).toMatchObject({ rule: 'nonuniform', steps: 7, gradientEvaluations: 7, forwardEvaluations: 4 });
    expect(nonuniform.details).toMatchObject({ segments: 3 });
    // adaptive: the 4 initial segments are already exact, so no segment is halved.
    expect(adaptive).toMatchObject({ rule: 'adaptive', steps: 40, gradientEvaluations: 8, forwardEvaluations: 5 });
    expect(adaptive.details).toMatchObject({ converged: true, rounds: 0, segments: 4, tolerance: 0.01 });
    model.dispose();
  });

  it('adaptive meets its tolerance on a model whose score changes over a short part of the path', async () => {
    const model = rampModel();
    for (const [seed, tolerance] of [
      [31, 0.01],
      [32, 0.001],
      [33, 1e-4],
    ] as const) {
      const image = randomImage(4, 4, 3, seed);
      const attr = await integratedGradients(model, image, { rule: 'adaptive', tolerance, steps: 256, target: 0 });
      expect(attr.details).toMatchObject({ converged: true, tolerance });
      expect(attr.completeness!.relative).toBeLessThan(tolerance);
      expect(attr.gradientEvaluations).toBeLessThanOrEqual(256);
      // F depends on x through a linear z only, so completeness within the tolerance puts the whole map there.
      expect(relativeError(attr.data, exactRampIg(image.data, new Float32Array(FEATURES)))).toBeLessThan(1.05 * tolerance + 1e-5);
    }
    model.dispose();
  });

  it('both beat riemann_trapezoid at equal gradient evaluations on that model', async () => {
    const model = rampModel();
    const images = Array.from({ length: 6 }, (_, i) => randomImage(4, 4, 3, 100 + i));
    for (const image of images) {
      const adaptive = await integratedGradients(model, image, { rule: 'adaptive', tolerance: 0.01, steps: 256, target: 0 });
      const trapezoid = await integratedGradients(model, image, { rule: 'riemann_trapezoid', steps: adaptive.gradientEvaluations, target: 0 });
      expect(adaptive.completeness!.relative).toBeLessThan(trapezoid.completeness!.relative / 2);
    }
    for (const steps of [24, 48]) {
      const nonuniform: number[] = [];
      const trapezoid: number[] = [];
      for (const image of images) {
        const n = await integratedGradients(model, image, { rule: 'nonuniform', steps, target: 0 });
        expect(n.gradientEvaluations).toBe(steps);
        nonuniform.push(n.completeness!.relative);
        trapezoid.push((await integratedGradients(model, image, { rule: 'riemann_trapezoid', steps, target: 0 })).completeness!.relative);
      }
      expect(geometricMean(nonuniform)).toBeLessThan(geometricMean(trapezoid) / 2);
    }
    model.dispose();
  });

  it('nonuniform puts most gradient points where the score ramps', async () => {
    const model = rampModel();
    const image = randomImage(4, 4, 3, 41);
    const attr = await integratedGradients(model, image, { rule: 'nonuniform', steps: 32, segments: 8, target: 0, returnPath: true });
    const z = zOf(image.data);
    // The ramp runs for alpha in [0.3 / z, 0.35 / z] on the black path.
    const [from, to] = [RAMP_START / z, (RAMP_START + 1 / RAMP_SLOPE) / z];
    const inRamp = Array.from(attr.path!.alphas).filter((a) => a >= Math.floor(from * 8) / 8 && a <= Math.ceil(to * 8) / 8).length;
    expect(inRamp).toBeGreaterThanOrEqual(20);
    expect((attr.details!.pointsPerSegment as number[][])[0]!.reduce((a, b) => a + b, 0)).toBe(32);
    expect(attr.forwardEvaluations).toBe(2 + 7);
    model.dispose();
  });

  it('averages several baselines within their total budget and stays complete', async () => {
    const model = rampModel();
    const image = randomImage(4, 4, 3, 51);
    const attr = await integratedGradients(model, image, { rule: 'adaptive', baseline: { kind: 'average', of: ['black', 'white'] }, tolerance: 0.001, steps: 128, target: 0 });
    expect(attr.details).toMatchObject({ converged: true });
    expect(attr.completeness!.relative).toBeLessThan(0.001);
    expect(attr.gradientEvaluations).toBeLessThanOrEqual(256);
    const black = exactRampIg(image.data, new Float32Array(FEATURES));
    const white = exactRampIg(image.data, new Float32Array(FEATURES).fill(255));
    expect(relativeError(attr.data, black.map((v, i) => (v + white[i]!) / 2))).toBeLessThan(0.01);
    const nonuniform = await integratedGradients(model, image, { rule: 'nonuniform', baseline: { kind: 'average', of: ['black', 'white'] }, steps: 20, target: 0 });
    expect(nonuniform.gradientEvaluations).toBe(40);
    expect((nonuniform.details!.pointsPerSegment as number[][]).length).toBe(2);
    model.dispose();
  });

  it('stops at its budget when the tolerance cannot be met, and reports it', async () => {
    const model = rampModel();
    const image = randomImage(4, 4, 3, 61);
    const attr = await integratedGradients(model, image, { rule: 'adaptive', tolerance: 1e-9, steps: 18, target: 0 });
    expect(attr.details).toMatchObject({ converged: false });
    expect(attr.gradientEvaluations).toBeLessThanOrEqual(18);
    expect(attr.gradientEvaluations).toBeGreaterThan(18 - 4);
    model.dispose();
  });

  it('gives the same map whatever the batch size, reports progress, and returns the path', async () => {
    const model = rampModel();
    const image = randomImage(4, 4, 3, 71);
    const progress: { done: number; total: number }[] = [];
    const a = await integratedGradients(model, image, {
      rule: 'adaptive',
      tolerance: 0.001,
      steps: 128,
      batchSize: 3,
      target: 0,
      returnPath: 'gradients',
      onProgress: (p) => progress.push(p),
    });
    const b = await integratedGradients(model, image, { rule: 'adaptive', tolerance: 0.001, steps: 128, batchSize: 64, target: 0 });
    expect(b.gradientEvaluations).toBe(a.gradientEvaluations);
    expect(relativeError(a.data, b.data)).toBeLessThan(1e-5);
    expect(progress.at(-1)).toEqual({ done: a.gradientEvaluations, total: a.gradientEvaluations, stage: expect.any(String) as unknown as string });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.done).toBeGreaterThanOrEqual(progress[i - 1]!.done);
    const path = a.path!;
    // The path holds the points of the segments kept: 2 each (points of halved segments are dropped).
    expect(path.alphas.length).toBe(2 * (a.details!.segments as number));
    expect(path.alphas.length).toBeLessThan(a.gradientEvaluations);
    expect(path.weights.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    for (let i = 1; i < path.alphas.length; i++) expect(path.alphas[i]!).toBeGreaterThan(path.alphas[i - 1]!);
    expect(path.gradients!.length).toBe(path.alphas.length);
    // Scores along the path are F at those points: class 0 of the class scores, and the JS twin.
    for (let i = 0; i < path.alphas.length; i++) {
      expect(path.classScores![2 * i]).toBeCloseTo(path.scores[i]!, 5);
      expect(path.scores[i]).toBeCloseTo(rampOf(path.alphas[i]! * zOf(image.data)), 4);
    }
    // The extra forward passes for the class scores are counted.
    expect(a.forwardEvaluations).toBe(b.forwardEvaluations + path.alphas.length);
    const nonuniformProgress: { done: number; total: number }[] = [];
    await integratedGradients(model, image, { rule: 'nonuniform', steps: 12, batchSize: 4, target: 0, onProgress: (p) => nonuniformProgress.push(p) });
    // 6 sweep segments: 5 forward passes, then 12 gradient evaluations.
    expect(nonuniformProgress.at(-1)).toMatchObject({ done: 17, total: 17 });
    model.dispose();
  });

  it('runs through runMethod with tolerance and segments settings', async () => {
    const model = rampModel();
    const image = randomImage(4, 4, 3, 81);
    const attr = await runMethod('ig', model, image, { rule: 'adaptive', tolerance: 0.002, segments: 2, steps: 64, target: 0 });
    expect(attr.details).toMatchObject({ converged: true, initialSegments: 2, tolerance: 0.002 });
    expect(attr.completeness!.relative).toBeLessThan(0.002);
    model.dispose();
  });

  it('rejects bad tolerances, budgets below the minimum, and options of other rules', async () => {
    const { model } = linearModel([2, 2, 3], 2, 91);
    const image = randomImage(2, 2, 3, 92);
    for (const tolerance of [0, -0.01, 1, 2, Number.NaN, Number.POSITIVE_INFINITY]) {
      await invalid(() => integratedGradients(model, image, { rule: 'adaptive', tolerance }), /tolerance is a relative completeness delta in \(0, 1\)/);
    }
    await invalid(() => integratedGradients(model, image, { rule: 'adaptive', steps: 7 }), /needs steps >= 8 per baseline, got 7/);
    await invalid(() => integratedGradients(model, image, { rule: 'adaptive', steps: 10, segments: 6 }), /needs steps >= 12 per baseline, got 10/);
    await invalid(() => integratedGradients(model, image, { rule: 'nonuniform', steps: 4, segments: 5 }), /needs steps >= 5, got 4/);
    await invalid(() => integratedGradients(model, image, { rule: 'nonuniform', segments: 0 }), /segments must be a positive integer/);
    await invalid(() => integratedGradients(model, image, { rule: 'gausslegendre', tolerance: 0.01 }), /tolerance applies to rule 'adaptive' only/);
    await invalid(() => integratedGradients(model, image, { rule: 'nonuniform', tolerance: 0.01 }), /tolerance applies to rule 'adaptive' only/);
    await invalid(() => integratedGradients(model, image, { rule: 'riemann_left', segments: 4 }), /segments applies to rules 'nonuniform', 'adaptive' and 'map_adaptive' only/);
    await invalid(() => integratedGradients(model, image, { rule: 'simpson' as 'adaptive' }), /unknown integration rule "simpson"/);
    model.dispose();
  });
});
