import { describe, expect, it } from 'vitest';
import { gaussLegendre, parseIntegrationRule, quadrature } from '../../src/attribution/integration.js';
import { makeBaselines, modelZeroPixel, parseBaseline, resolveBaseline } from '../../src/attribution/baselines.js';
import { gaussianBlur, resizeBilinear } from '../../src/attribution/image-ops.js';
import { seededRandom } from '../../src/core/random.js';
import { felzenszwalb } from '../../src/attribution/segmentation.js';
import { xraiFromMap } from '../../src/attribution/xrai.js';
import { parseMethod } from '../../src/attribution/methods.js';
import { parseTarget } from '../../src/attribution/targets.js';
import { isLensError } from '../../src/core/errors.js';
import { attributionSummary } from '../../src/report/save.js';

describe('integration rules', () => {
  it('uses Captum alphas and weights', () => {
    const left = quadrature('riemann_left', 4);
    expect(Array.from(left.alphas)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(Array.from(quadrature('riemann_right', 4).alphas)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(Array.from(quadrature('riemann_middle', 4).alphas)).toEqual([0.125, 0.375, 0.625, 0.875]);
    const trap = quadrature('riemann_trapezoid', 5);
    expect(Array.from(trap.alphas)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(trap.weights)).toEqual([0.125, 0.25, 0.25, 0.25, 0.125]);
    expect(parseIntegrationRule('gauss-legendre')).toBe('gausslegendre');
    expect(() => parseIntegrationRule('simpson')).toThrow(/unknown integration rule/);
  });

  it("riemann_trapezoid has Captum's points and Captum's weights times n / (n - 1), as documented", () => {
    // Captum (captum/attr/_utils/approximation_methods.py), written out here on its own terms:
    // alphas = linspace(0, 1, n); step sizes = [1/n] * n with the first and last halved.
    const captum = (n: number) => {
      const alphas = Array.from({ length: n }, (_, i) => (i === n - 1 ? 1 : i * (1 / (n - 1))));
      const steps = Array.from({ length: n }, (_, i) => (i === 0 || i === n - 1 ? 1 / n / 2 : 1 / n));
      return { alphas, steps };
    };
    for (const n of [2, 3, 5, 50, 513]) {
      const ours = quadrature('riemann_trapezoid', n);
      const theirs = captum(n);
      for (let i = 0; i < n; i++) {
        expect(ours.alphas[i]).toBeCloseTo(theirs.alphas[i]!, 14);
        expect(ours.weights[i]).toBeCloseTo((theirs.steps[i]! * n) / (n - 1), 14);
      }
      // Captum's weights sum to (n - 1) / n, ours to 1.
      expect(theirs.steps.reduce((a, b) => a + b, 0)).toBeCloseTo((n - 1) / n, 12);
      expect(ours.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    // The other Riemann rules are Captum's exactly: linspace(0, 1 - 1/n), linspace(1/n, 1), linspace(1/(2n), 1 - 1/(2n)), steps 1/n.
    const n = 7;
    const linspace = (a: number, b: number) => Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
    const expected = { riemann_left: linspace(0, 1 - 1 / n), riemann_right: linspace(1 / n, 1), riemann_middle: linspace(1 / (2 * n), 1 - 1 / (2 * n)) };
    for (const [rule, alphas] of Object.entries(expected)) {
      const q = quadrature(rule as keyof typeof expected, n);
      alphas.forEach((a, i) => expect(q.alphas[i]).toBeCloseTo(a, 14));
      expect(Array.from(q.weights).every((w) => Math.abs(w - 1 / n) < 1e-15)).toBe(true);
    }
  });

  it('gauss-legendre is exact to degree 2n-1 and matches tabulated nodes', () => {
    const { nodes, weights } = gaussLegendre(3);
    expect(nodes[0]).toBeCloseTo(-Math.sqrt(3 / 5), 14);
    expect(nodes[1]).toBeCloseTo(0, 14);
    expect(weights[1]).toBeCloseTo(8 / 9, 14);
    for (const n of [1, 2, 5, 16, 64, 300]) {
      const q = quadrature('gausslegendre', n);
      const integral = (deg: number) => q.alphas.reduce((s, a, i) => s + q.weights[i]! * a ** deg, 0);
      expect(integral(0)).toBeCloseTo(1, 12);
      expect(integral(2 * n - 1)).toBeCloseTo(1 / (2 * n), 10);
      expect(Array.from(q.alphas).every((a, i) => i === 0 || a > q.alphas[i - 1]!)).toBe(true);
    }
  });
});

describe('baselines', () => {
  const image = { data: Float32Array.from([0, 100, 200, 255, 10, 130]), height: 1, width: 2, channels: 3 };
  const rgb = { inputShape: [1, 2, 3] as const };
  it('derives the model-space zero from the preprocessing', () => {
    expect(modelZeroPixel({ ...rgb, preprocessing: 'raw' })).toEqual([0, 0, 0]);
    expect(modelZeroPixel({ ...rgb, preprocessing: 'symmetric' })).toEqual([127.5, 127.5, 127.5]);
    const caffe = modelZeroPixel({ ...rgb, preprocessing: 'caffe' });
    expect(caffe[0]).toBeCloseTo(123.68, 4);
    expect(caffe[2]).toBeCloseTo(103.939, 4);
    const torch = modelZeroPixel({ ...rgb, preprocessing: 'torch' });
    expect(torch[1]).toBeCloseTo(0.456 * 255, 3);
  });

  it('builds each kind', () => {
    const rng = seededRandom(1);
    const model = { ...rgb, preprocessing: 'symmetric' as const };
    expect(Array.from(makeBaselines(model, image, 'maxdist', rng).images[0]!)).toEqual([255, 255, 0, 0, 255, 0]);
    expect(Array.from(makeBaselines(model, image, 'zero', rng).images[0]!)).toEqual(new Array(6).fill(127.5));
    const noisy = makeBaselines(model, image, { kind: 'gaussian', sigma: 0.01, samples: 3 }, rng);
    expect(noisy.images.length).toBe(3);
    expect(noisy.images[0]!.every((v, i) => Math.abs(v - image.data[i]!) < 20 && v >= 0 && v <= 255)).toBe(true);
    const avg = makeBaselines(model, image, { kind: 'average', of: ['black', 'white'] }, rng);
    expect(avg.images.length).toBe(2);
    expect(avg.description).toBe('black+white');
    const u1 = makeBaselines(model, image, 'uniform', seededRandom(5)).images[0]!;
    const u2 = makeBaselines(model, image, 'uniform', seededRandom(5)).images[0]!;
    expect(Array.from(u1)).toEqual(Array.from(u2));
  });

  it('parses CLI baselines', async () => {
    expect(parseBaseline('black')).toBe('black');
    expect(parseBaseline('gaussian:sigma=0.2,samples=4')).toEqual({ kind: 'gaussian', sigma: 0.2, samples: 4 });
    expect(parseBaseline('black+white')).toEqual({ kind: 'average', of: ['black', 'white'] });
    expect(parseBaseline('image:grey.png')).toEqual({ kind: 'file', path: 'grey.png' });
    expect(() => parseBaseline('blur:radius=3')).toThrow(/takes no parameter "radius"/);
    expect(() => parseBaseline('purple')).toThrow(/unknown baseline/);
    const spec = await resolveBaseline(parseBaseline('white+ref.png'), async () => image);
    expect(spec).toMatchObject({ kind: 'average', of: ['white', { kind: 'image', name: 'ref.png' }] });
  });
});

describe('image operations', () => {
  it('blur keeps constants and mass; resize keeps constants', () => {
    const flat = { data: new Float32Array(5 * 7 * 2).fill(42), height: 5, width: 7, channels: 2 };
    expect(gaussianBlur(flat, 3).data.every((v) => Math.abs(v - 42) < 1e-4)).toBe(true);
    const spike = { data: new Float32Array(21 * 21), height: 21, width: 21, channels: 1 };
    spike.data[10 * 21 + 10] = 1;
    const blurred = gaussianBlur(spike, 1.5).data;
    expect(blurred.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // A separable Gaussian: value at (0, 1) over (0, 0) is exp(-1 / (2 sigma^2)).
    expect(blurred[10 * 21 + 11]! / blurred[10 * 21 + 10]!).toBeCloseTo(Math.exp(-1 / (2 * 1.5 * 1.5)), 3);
    expect(Array.from(resizeBilinear(Float32Array.from([2, 2, 2, 2]), 2, 2, 5, 3))).toEqual(new Array(15).fill(2));
  });
});

describe('segmentation and XRAI ordering', () => {
  it('segments two flat regions into two segments', () => {
    const h = 12;
    const w = 12;
    const data = new Float32Array(h * w * 3);
    for (let p = 0; p < h * w; p++) data.fill(p % w < 5 ? -1 : 1, p * 3, p * 3 + 3);
    const seg = felzenszwalb({ data, height: h, width: w, channels: 3 }, { scale: 10, sigma: 0, minSize: 4 });
    expect(seg.count).toBe(2);
    expect(seg.labels[0]).not.toBe(seg.labels[11]);
    expect(seg.labels[4]).toBe(seg.labels[0]);
    expect(seg.labels[5]).toBe(seg.labels[11]);
  });

  it('adds segments greedily by attribution density', () => {
    // 1x6 map; segments {0,1}, {2,3,4}, {4,5}: densities 1, 5, 2.5 -> order {2,3,4}, {0,1}, then {5}.
    const map = Float32Array.from([1, 1, 5, 5, 5, 0]);
    const masks = [Uint8Array.from([1, 1, 0, 0, 0, 0]), Uint8Array.from([0, 0, 1, 1, 1, 0]), Uint8Array.from([0, 0, 0, 0, 1, 1])];
    const { output, regions } = xraiFromMap(map, masks, 1);
    expect(regions.map((r) => r.gain)).toEqual([5, 1, 0]);
    expect(Array.from(output)).toEqual([1, 1, 5, 5, 5, 0]);
  });
});

describe('parsing', () => {
  it('reads targets and methods', () => {
    expect(parseTarget('top1')).toBe('top1');
    expect(parseTarget('top5')).toEqual({ topK: 5 });
    expect(parseTarget('12')).toBe(12);
    expect(parseTarget('tabby cat')).toBe('tabby cat');
    expect(parseMethod('integrated-gradients')).toEqual({ name: 'ig' });
    expect(parseMethod('smoothgrad')).toEqual({ name: 'smoothgrad', inner: 'gradient' });
    expect(() => parseMethod('ig:gradient')).toThrow(/does not wrap/);
    for (const unknown of ['lime', 'smoothgrad:lime', 'deeplift']) {
      let thrown: unknown;
      try {
        parseMethod(unknown);
      } catch (e) {
        thrown = e;
      }
      // Fails when an unknown name is accepted (nothing thrown) as well as when the error is of another kind.
      expect(isLensError(thrown, 'INVALID_ARGUMENT')).toBe(true);
      expect((thrown as Error).message).toMatch(/unknown method "(lime|deeplift)"/);
    }
  });
});

describe('JSON summary', () => {
  it('leaves out pixel data and gives the path as rows', () => {
    const summary = attributionSummary(
      {
        data: new Float32Array(12),
        height: 2,
        width: 2,
        channels: 3,
        method: 'integrated_gradients',
        target: { index: 1, score: 2, probability: 0.5 },
        output: 'logit',
        gradientEvaluations: 2,
        forwardEvaluations: 2,
        path: {
          alphas: Float32Array.from([0.25, 0.75]),
          weights: Float32Array.from([0.5, 0.5]),
          scores: Float32Array.from([1, 2]),
          classScores: Float32Array.from([0, 1, 2, 3, 4, 5]),
          gradients: [new Float32Array(12).fill(1), new Float32Array(12).fill(3)],
        },
      },
      'x.png',
    );
    expect(summary).not.toHaveProperty('data');
    expect(summary).toMatchObject({ image: 'x.png', shape: [2, 2, 3], path: { classScores: [[0, 1, 2], [3, 4, 5]], meanGradient: [1, 3] } });
  });
});
