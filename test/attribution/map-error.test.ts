import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { blurIntegratedGradients } from '../../src/attribution/blur-ig.js';
import { guidedIntegratedGradients } from '../../src/attribution/guided-ig.js';
import { integratedGradients } from '../../src/attribution/integrated-gradients.js';
import { quadrature, relativeL2, splitDifferenceWeights, SPLIT_ERROR_FACTOR } from '../../src/attribution/integration.js';
import { MAP_TOLERANCE_MARGIN } from '../../src/attribution/map-tolerance.js';
import { parseMethod, runMethod } from '../../src/attribution/methods.js';
import { isLensError } from '../../src/core/errors.js';
import { createTfModel } from '../../src/core/model.js';
import { seededRandom } from '../../src/core/random.js';
import { linearModel, mlpModel, pathProfileModel, PROFILE_FEATURES, PROFILE_WEIGHTS, profileZ, randomImage } from './helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

const FEATURES = PROFILE_FEATURES;
const WEIGHTS = PROFILE_WEIGHTS;

/**
 * A piecewise-linear score, like a ReLU network's along a path: z = weighted mean brightness in
 * about [0, 1], F(z) = relu(z - 0.2) * 3 - relu(z - 0.45) * 2.5 + 0.1 z, with kinks where the path crosses
 * z = 0.2 and z = 0.45.
 */
const scoreOf = (z: number) => 3 * Math.max(0, z - 0.2) - 2.5 * Math.max(0, z - 0.45) + 0.1 * z;
const zOf = profileZ;

function kinkModel() {
  return pathProfileModel('kinks', (z) => tf.add(tf.sub(tf.mul(tf.relu(tf.sub(z, 0.2)), 3), tf.mul(tf.relu(tf.sub(z, 0.45)), 2.5)), tf.mul(z, 0.1)) as tf.Tensor2D);
}

/** Exact IG of the kink model from black: F depends on x only through the linear z. */
function exactIg(image: Float32Array): Float64Array {
  const z = zOf(image);
  const scale = (scoreOf(z) - scoreOf(0)) / z;
  return Float64Array.from(image, (x, i) => (x * WEIGHTS[i]! * scale) / 255 / FEATURES);
}

/** An image whose path from black crosses both kinks (z about 0.6). */
const brightImage = () => {
  const img = randomImage(4, 4, 3, 7);
  const z = zOf(img.data);
  img.data.forEach((v, i) => (img.data[i] = Math.min(255, (v * 0.6) / z)));
  return img;
};

/**
 * scores = relu(pixels / 255 . W1 + b1) . W2: along the straight path from black, unit j's input is
 * b1_j + alpha s_j, so it is on for a known stretch of alpha and IG has a closed form.
 */
function reluNet(h: number, w: number, c: number, hidden: number, seed: number) {
  const features = h * w * c;
  const rng = seededRandom(seed);
  const w1 = Float32Array.from({ length: features * hidden }, () => rng.normal() * (3 / Math.sqrt(features)));
  const b1 = Float32Array.from({ length: hidden }, () => rng.normal() * 0.8);
  const w2 = Float32Array.from({ length: hidden * 2 }, () => rng.normal());
  const t = [tf.tensor2d(w1, [features, hidden]), tf.tensor1d(b1), tf.tensor2d(w2, [hidden, 2])] as const;
  const model = createTfModel({
    name: 'relu-net',
    inputShape: [h, w, c],
    classes: 2,
    output: 'logit',
    preprocessing: 'unit',
    scores: (x) => tf.tidy(() => tf.matMul(tf.relu(tf.add(tf.matMul(tf.reshape(x, [x.shape[0], features]), t[0]), t[1])), t[2]) as tf.Tensor2D),
    dispose: () => tf.dispose([...t]),
  });
  /** Exact IG from black, in float64: each unit contributes over the part of [0, 1] where it is on. */
  const exactIg = (pixels: Float32Array, target: number): Float64Array => {
    const out = new Float64Array(features);
    for (let j = 0; j < hidden; j++) {
      let slope = 0;
      for (let i = 0; i < features; i++) slope += (pixels[i]! / 255) * w1[i * hidden + j]!;
      const b = b1[j]!;
      let on: number;
      if (slope === 0) on = b > 0 ? 1 : 0;
      else {
        const root = Math.min(1, Math.max(0, -b / slope));
        on = slope > 0 ? 1 - root : root;
      }
      for (let i = 0; i < features; i++) out[i] += (pixels[i]! / 255) * w1[i * hidden + j]! * w2[j * 2 + target]! * on;
    }
    return out;
  };
  return { model, exactIg };
}

const errorOf = (map: Float32Array, exact: Float64Array) =>
  relativeL2(
    Float64Array.from(map, (v, i) => v - exact[i]!),
    exact,
  );

describe('map-error estimate from the rule\'s own points', () => {
  it('splits a trapezoid into the coarse trapezoid minus the midpoint rule, scaled by 1/sqrt(12)', () => {
    const q = quadrature('riemann_trapezoid', 5);
    const w = splitDifferenceWeights(q.alphas, q.weights)!;
    const expected = [0.25, -0.5, 0.5, -0.5, 0.25].map((v) => v / Math.sqrt(12));
    expected.forEach((v, i) => expect(w[i]).toBeCloseTo(v, 15));
    expect(SPLIT_ERROR_FACTOR).toBeCloseTo(1 / Math.sqrt(12), 15);
    expect(splitDifferenceWeights([0.5], [1])).toBeUndefined();
  });

  it('is the true error on average for an integrand with independent increments, as a ReLU network gradient has', () => {
    // A piecewise-constant random walk in 1000 dimensions over 2048 cells (a unit switching in
    // every cell, as on the bench's models); its exact integral is the mean of the cells.
    const rng = seededRandom(5);
    const cells = 2048;
    const dims = 1000;
    const walk: Float64Array[] = [Float64Array.from({ length: dims }, () => rng.normal())];
    for (let c = 1; c < cells; c++) {
      const next = new Float64Array(dims);
      for (let i = 0; i < dims; i++) next[i] = walk[c - 1]![i]! + rng.normal() / Math.sqrt(cells);
      walk.push(next);
    }
    const exact = new Float64Array(dims);
    for (const cell of walk) for (let i = 0; i < dims; i++) exact[i]! += cell[i]! / cells;
    for (const steps of [17, 65]) {
      const q = quadrature('riemann_trapezoid', steps);
      const w = splitDifferenceWeights(q.alphas, q.weights)!;
      const map = new Float64Array(dims);
      const estimate = new Float64Array(dims);
      q.alphas.forEach((a, k) => {
        const cell = walk[Math.min(cells - 1, Math.floor(a * cells))]!;
        for (let i = 0; i < dims; i++) {
          map[i]! += q.weights[k]! * cell[i]!;
          estimate[i]! += w[k]! * cell[i]!;
        }
      });
      const actual = relativeL2(
        map.map((v, i) => v - exact[i]!),
        exact,
      );
      const ratio = relativeL2(estimate, exact) / actual;
      // 1/6 (smooth) or 1/2 (noise) instead of 1/sqrt(12) would give 0.58 or 1.73.
      expect(ratio, `${steps} steps`).toBeGreaterThan(0.9);
      expect(ratio, `${steps} steps`).toBeLessThan(1.1);
    }
  });

  it("riemann_left's halves are a left rule and a midpoint rule of twice the step, so its bias shows", () => {
    // integrand f(a) = a: left rule of 8 points misses 1/16; the halves are 1/2 - 1/8 and 1/2 apart by 1/8.
    const q = quadrature('riemann_left', 8);
    const w = splitDifferenceWeights(q.alphas, q.weights)!;
    const estimate = Array.from(q.alphas).reduce((s, a, i) => s + w[i]! * a, 0);
    expect(estimate).toBeCloseTo((-1 / 8) * SPLIT_ERROR_FACTOR, 14);
    // Points in any order: the weights follow the points.
    const shuffled = splitDifferenceWeights([0.5, 0, 0.75, 0.25], [0.25, 0.25, 0.25, 0.25])!;
    expect(Array.from(shuffled).map((v) => v / SPLIT_ERROR_FACTOR)).toEqual([0.5, 0.5, -0.5, -0.5]);
  });

  it('every fixed rule reports an estimate, 0 where the gradient is constant along the path', async () => {
    const { model } = linearModel([4, 4, 3], 3, 11);
    const image = randomImage(4, 4, 3, 12);
    for (const rule of ['riemann_left', 'riemann_right', 'riemann_middle', 'riemann_trapezoid', 'gausslegendre'] as const) {
      const attr = await integratedGradients(model, image, { rule, steps: 9 });
      expect(attr.mapErrorEstimate).toBeGreaterThanOrEqual(0);
      expect(attr.mapErrorEstimate).toBeLessThan(1e-6);
    }
    model.dispose();
  });

  it('on a ReLU network with many kinks along the path, every estimate is within a factor of 2 of the exact error', async () => {
    const net = reluNet(4, 4, 3, 64, 41);
    const image = randomImage(4, 4, 3, 42);
    const exact = net.exactIg(image.data, 0);
    for (const [rule, steps] of [
      ['gausslegendre', 50],
      ['gausslegendre', 16],
      ['riemann_trapezoid', 33],
      ['riemann_left', 40],
      ['riemann_middle', 24],
      ['nonuniform', 24],
      ['adaptive', 32],
    ] as const) {
      const attr = await integratedGradients(net.model, image, { rule, steps, target: 0 });
      const actual = errorOf(attr.data, exact);
      expect(attr.mapErrorEstimate!, `${rule} ${steps}`).toBeGreaterThan(actual / 2);
      expect(attr.mapErrorEstimate!, `${rule} ${steps}`).toBeLessThan(actual * 2);
    }
    for (const mapTolerance of [0.03, 0.005]) {
      const attr = await integratedGradients(net.model, image, { mapTolerance, target: 0 });
      const actual = errorOf(attr.data, exact);
      expect(actual).toBeLessThanOrEqual(mapTolerance);
      expect(attr.mapErrorEstimate!).toBeGreaterThan(actual / 2);
      expect(attr.mapErrorEstimate!).toBeLessThan(actual * 2);
    }
    net.model.dispose();
  });
});

describe('map_adaptive: IG to a requested map error', () => {
  it('reaches the tolerance against the exact map, stopping with the estimate under tolerance / margin', async () => {
    const model = kinkModel();
    const image = brightImage();
    const exact = exactIg(image.data);
    for (const mapTolerance of [0.05, 0.01, 0.002]) {
      const attr = await integratedGradients(model, image, { mapTolerance, target: 0 });
      expect(attr.rule).toBe('map_adaptive');
      expect(attr.details?.converged).toBe(true);
      expect(attr.mapErrorEstimate!).toBeLessThanOrEqual(mapTolerance / MAP_TOLERANCE_MARGIN);
      expect(errorOf(attr.data, exact)).toBeLessThanOrEqual(mapTolerance);
      // Only F(x) and F(x'): the rule places its points from the gradients.
      expect(attr.forwardEvaluations).toBe(2);
      // The gradient is constant between the kinks, so every point past the first 9 lies in one of
      // the 4 initial segments that hold a kink.
      const path = (await integratedGradients(model, image, { mapTolerance, target: 0, returnPath: true })).path!;
      const kinks = [0.2, 0.45].map((k) => k / zOf(image.data));
      const grid = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8].map((j) => j / 8));
      const added = Array.from(path.alphas).filter((a) => !grid.has(a));
      expect(added.length).toBeGreaterThan(0);
      for (const a of added) expect(kinks.some((k) => Math.floor(4 * k) === Math.floor(4 * a))).toBe(true);
    }
    model.dispose();
  });

  it('averages several baselines, keeps every point, and returns its path with weights summing to 1', async () => {
    const { model } = mlpModel([3, 3, 3], 6, 3, 21);
    const image = randomImage(3, 3, 3, 22);
    const attr = await integratedGradients(model, image, { mapTolerance: 0.01, baseline: { kind: 'average', of: ['black', 'white'] }, returnPath: true });
    const path = attr.path!;
    expect(path.alphas.length).toBe(attr.gradientEvaluations);
    expect(path.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(attr.completeness!.relative).toBeLessThan(0.01);
    model.dispose();
  });

  it('stops at the budget and says so; rejects bad tolerances and rules that cannot take one', async () => {
    const model = kinkModel();
    const image = brightImage();
    const attr = await integratedGradients(model, image, { mapTolerance: 1e-6, steps: 15, target: 0 });
    expect(attr.gradientEvaluations).toBeLessThanOrEqual(15);
    expect(attr.details?.converged).toBe(false);
    const invalid = async (options: Parameters<typeof integratedGradients>[2], pattern: RegExp) => {
      const error = await integratedGradients(model, image, options).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isLensError(error, 'INVALID_ARGUMENT')).toBe(true);
      expect((error as Error).message).toMatch(pattern);
    };
    for (const mapTolerance of [0, 1, -0.1, Number.NaN]) await invalid({ mapTolerance }, /map tolerance is a relative L2 map error in \(0, 1\)/);
    await invalid({ mapTolerance: 0.01, rule: 'gausslegendre' }, /does not go with rule 'gausslegendre'/);
    await invalid({ mapTolerance: 0.01, steps: 8 }, /needs steps >= 9 per baseline, got 8/);
    model.dispose();
  });

  it('runs through runMethod with the mapTolerance setting', async () => {
    const model = kinkModel();
    const attr = await runMethod('ig', model, brightImage(), { mapTolerance: 0.02, target: 0 });
    expect(attr.rule).toBe('map_adaptive');
    expect(attr.mapErrorEstimate!).toBeLessThanOrEqual(0.02);
    model.dispose();
  });
});

describe('path methods report what their steps achieve', () => {
  it('Blur IG, Guided IG and SmoothGrad:IG carry a map-error estimate that falls with more steps', async () => {
    const { model } = mlpModel([6, 6, 3], 8, 3, 31);
    const image = randomImage(6, 6, 3, 32);
    const blurFew = await blurIntegratedGradients(model, image, { maxSigma: 3, steps: 8 });
    const blurMany = await blurIntegratedGradients(model, image, { maxSigma: 3, steps: 64 });
    expect(blurMany.mapErrorEstimate!).toBeLessThan(blurFew.mapErrorEstimate! / 2);
    const guidedFew = await guidedIntegratedGradients(model, image, { steps: 8 });
    const guidedMany = await guidedIntegratedGradients(model, image, { steps: 64 });
    expect(guidedFew.mapErrorEstimate!).toBeGreaterThan(0);
    expect(guidedMany.mapErrorEstimate!).toBeLessThan(guidedFew.mapErrorEstimate!);
    const smooth = await runMethod(parseMethod('smoothgrad:ig'), model, image, { samples: 4, steps: 8 });
    expect(smooth.mapErrorEstimate!).toBeGreaterThan(0);
    // SmoothGrad of plain gradients integrates nothing: no estimate.
    expect((await runMethod('smoothgrad', model, image, { samples: 4 })).mapErrorEstimate).toBeUndefined();
    model.dispose();
  });
});
