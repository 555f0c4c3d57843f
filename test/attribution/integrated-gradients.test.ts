import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { integratedGradients, expectedGradients } from '../../src/attribution/integrated-gradients.js';
import { INTEGRATION_RULES } from '../../src/attribution/integration.js';
import { linearModel, mlpModel, randomImage } from './helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('integrated gradients', () => {
  it('equals w * (x - x\') for a linear model, with every rule and baseline', async () => {
    const { model, w } = linearModel([4, 5, 3], 4, 1);
    const image = randomImage(4, 5, 3, 2);
    for (const rule of INTEGRATION_RULES) {
      for (const baseline of ['black', 'white', 'maxdist'] as const) {
        const attr = await integratedGradients(model, image, { target: 2, steps: 7, rule, baseline, batchSize: 3 });
        const base = baseline === 'black' ? 0 : baseline === 'white' ? 255 : undefined;
        for (let i = 0; i < image.data.length; i++) {
          const x = image.data[i]!;
          const xb = base ?? (x < 127.5 ? 255 : 0);
          expect(attr.data[i]).toBeCloseTo(w[i * 4 + 2]! * (x - xb), 4);
        }
        expect(attr.completeness!.relative).toBeLessThan(1e-4);
        expect(attr.target.index).toBe(2);
        expect(attr.gradientEvaluations).toBe(7);
      }
    }
    model.dispose();
  });

  it('matches an independent finite-difference path integral on a nonlinear model at 512 steps', async () => {
    const { model, score, features } = mlpModel([4, 4, 3], 8, 3, 5);
    const image = randomImage(4, 4, 3, 6);
    const target = 1;
    const attr = await integratedGradients(model, image, { target, steps: 512, rule: 'riemann_trapezoid', baseline: 'black', batchSize: 64 });
    // Reference: midpoint rule over 400 path points, central differences on a float64 copy of the model.
    const m = 400;
    const h = 1e-3;
    const reference = new Float64Array(features);
    const point = new Float64Array(features);
    for (let j = 0; j < m; j++) {
      const alpha = (j + 0.5) / m;
      for (let i = 0; i < features; i++) point[i] = alpha * image.data[i]!;
      for (let i = 0; i < features; i++) {
        const keep = point[i]!;
        point[i] = keep + h;
        const up = score(point, target);
        point[i] = keep - h;
        const down = score(point, target);
        point[i] = keep;
        reference[i]! += ((up - down) / (2 * h) / m) * image.data[i]!;
      }
    }
    let worst = 0;
    for (let i = 0; i < features; i++) worst = Math.max(worst, Math.abs(attr.data[i]! - reference[i]!));
    expect(worst).toBeLessThan(1e-3);
    // And the attributions sum to F(x) - F(black).
    const expected = score(image.data, target) - score(new Float64Array(features), target);
    expect(Math.abs(attr.completeness!.sum - expected)).toBeLessThan(1e-3);
    model.dispose();
  });

  it('returns the path, reports progress, and is deterministic with a seed', async () => {
    const { model } = mlpModel([3, 3, 3], 6, 4, 9);
    const image = randomImage(3, 3, 3, 10);
    const progress: number[] = [];
    const a = await integratedGradients(model, image, {
      baseline: { kind: 'uniform', samples: 2 },
      steps: 10,
      seed: 42,
      batchSize: 4,
      returnPath: 'gradients',
      onProgress: (p) => progress.push(p.done),
    });
    expect(progress.at(-1)).toBe(20);
    expect(progress.length).toBe(5);
    expect(a.path!.scores.length).toBe(20);
    expect(a.path!.gradients!.length).toBe(20);
    expect(a.path!.classScores!.length).toBe(20 * 4);
    // The target score along the path is the class score at that point.
    expect(a.path!.classScores![4 * 3 + a.target.index]).toBeCloseTo(a.path!.scores[3]!, 5);
    const b = await integratedGradients(model, image, { baseline: { kind: 'uniform', samples: 2 }, steps: 10, seed: 42, batchSize: 7 });
    const c = await integratedGradients(model, image, { baseline: { kind: 'uniform', samples: 2 }, steps: 10, seed: 43 });
    expect(Array.from(b.data)).toEqual(Array.from(a.data).map((v, i) => expect.closeTo(v, 5) as unknown as number));
    expect(Math.max(...Array.from(c.data).map((v, i) => Math.abs(v - a.data[i]!)))).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('expected gradients are linear-model exact in expectation and complete', async () => {
    const { model, w } = linearModel([2, 2, 3], 2, 3);
    const image = randomImage(2, 2, 3, 4);
    const references = [randomImage(2, 2, 3, 5), randomImage(2, 2, 3, 6)];
    const attr = await expectedGradients(model, image, { references, samples: 40, seed: 1, target: 0 });
    // For a linear model each sample gives w * (x - ref); the estimate is a mix of the two.
    expect(attr.completeness!.relative).toBeLessThan(1e-4);
    expect(attr.method).toBe('expected_gradients');
    const one = await expectedGradients(model, image, { references: [references[0]!], samples: 5, target: 0 });
    for (let i = 0; i < image.data.length; i++) expect(one.data[i]).toBeCloseTo(w[i * 2]! * (image.data[i]! - references[0]!.data[i]!), 4);
    model.dispose();
  });
});

describe('integration rules on a smooth model', () => {
  it('gauss-legendre reaches a 1e-4 relative delta with fewer gradient evaluations than riemann_trapezoid', async () => {
    const { model } = mlpModel([4, 4, 3], 8, 3, 12);
    const image = randomImage(4, 4, 3, 13);
    const needed = async (rule: 'gausslegendre' | 'riemann_trapezoid') => {
      for (const steps of [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]) {
        const a = await integratedGradients(model, image, { steps, rule, target: 0, batchSize: 64 });
        if (a.completeness!.relative < 1e-4) return a.gradientEvaluations;
      }
      return Infinity;
    };
    const gl = await needed('gausslegendre');
    const trapezoid = await needed('riemann_trapezoid');
    expect(gl).toBeLessThan(trapezoid);
    expect(gl).toBeLessThanOrEqual(16);
    model.dispose();
  });
});
