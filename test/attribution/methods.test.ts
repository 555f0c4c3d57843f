import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { blurIntegratedGradients } from '../../src/attribution/blur-ig.js';
import { gradCam } from '../../src/attribution/gradcam.js';
import { gradientTimesInput, smoothGrad, vanillaGradient, varGrad } from '../../src/attribution/gradients.js';
import { guidedIntegratedGradients } from '../../src/attribution/guided-ig.js';
import { integratedGradients } from '../../src/attribution/integrated-gradients.js';
import { occlusion } from '../../src/attribution/occlusion.js';
import { rise } from '../../src/attribution/rise.js';
import { parseMethod, runMethod } from '../../src/attribution/methods.js';
import { xrai } from '../../src/attribution/xrai.js';
import { attributeTargets } from '../../src/attribution/targets.js';
import { createTfModel } from '../../src/core/model.js';
import { isLensError } from '../../src/core/errors.js';
import { layersImageModel, linearModel, mlpModel, randomImage } from './helpers.js';

beforeAll(async () => {
  // Conv gradients run on the cpu backend in tests (wasm lacks some stock conv gradient kernels).
  await initBackend({ backend: 'cpu' });
});

describe('gradient methods', () => {
  it('vanilla gradient is w and gradient x input is w * x for a linear model', async () => {
    const { model, w } = linearModel([3, 3, 2], 3, 11);
    const image = randomImage(3, 3, 2, 12);
    const g = await vanillaGradient(model, image, { target: 1 });
    const gx = await gradientTimesInput(model, image, { target: 1 });
    for (let i = 0; i < image.data.length; i++) {
      expect(g.data[i]).toBeCloseTo(w[i * 3 + 1]!, 6);
      expect(gx.data[i]).toBeCloseTo(w[i * 3 + 1]! * image.data[i]!, 4);
    }
    expect(g.method).toBe('gradient');
    model.dispose();
  });

  it('SmoothGrad of a constant gradient is that gradient, its magnitude the square, VarGrad zero', async () => {
    const { model, w } = linearModel([2, 3, 3], 2, 13);
    const image = randomImage(2, 3, 3, 14);
    const sg = await smoothGrad(vanillaGradient, model, image, { samples: 6, target: 0, batchSize: 4 });
    const sq = await smoothGrad(vanillaGradient, model, image, { samples: 6, target: 0, magnitude: true });
    const vg = await varGrad(vanillaGradient, model, image, { samples: 6, target: 0 });
    for (let i = 0; i < image.data.length; i++) {
      const wi = w[i * 2]!;
      expect(sg.data[i]).toBeCloseTo(wi, 6);
      expect(sq.data[i]).toBeCloseTo(wi * wi, 8);
      expect(Math.abs(vg.data[i]!)).toBeLessThan(1e-9);
    }
    expect(sg.method).toBe('smoothgrad(gradient)');
    expect(sg.gradientEvaluations).toBe(6);
    model.dispose();
  });

  it('SmoothGrad over IG averages IG over noisy inputs, seeded', async () => {
    const { model, w } = linearModel([2, 2, 3], 2, 15);
    const image = randomImage(2, 2, 3, 16);
    const a = await runMethod(parseMethod('smoothgrad:ig'), model, image, { samples: 200, stdevFraction: 0.1, steps: 4, seed: 3, target: 1 });
    const b = await runMethod(parseMethod('smoothgrad:ig'), model, image, { samples: 200, stdevFraction: 0.1, steps: 4, seed: 3, target: 1 });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    // IG of a linear model from black is w * x; averaged over zero-mean noise it tends to w * x.
    const range = 255 * 0.1;
    for (let i = 0; i < image.data.length; i++) {
      expect(Math.abs(a.data[i]! - w[i * 2 + 1]! * image.data[i]!)).toBeLessThan(Math.abs(w[i * 2 + 1]!) * range * 0.3);
    }
    expect(a.method).toBe('smoothgrad(integrated_gradients)');
    model.dispose();
  });
});

describe('path methods beyond IG', () => {
  it('Guided IG equals IG on a linear model and is complete on a nonlinear one', async () => {
    const lin = linearModel([3, 3, 3], 2, 17);
    const image = randomImage(3, 3, 3, 18);
    const gig = await guidedIntegratedGradients(lin.model, image, { steps: 16, target: 0 });
    for (let i = 0; i < image.data.length; i++) expect(gig.data[i]).toBeCloseTo(lin.w[i * 2]! * image.data[i]!, 3);
    lin.model.dispose();
    const mlp = mlpModel([3, 3, 3], 8, 3, 19);
    const g = await guidedIntegratedGradients(mlp.model, image, { steps: 200, target: 2 });
    const expected = mlp.score(image.data, 2) - mlp.score(new Float32Array(27), 2);
    expect(Math.abs(g.completeness!.sum - expected)).toBeLessThan(0.02 * Math.abs(expected) + 1e-3);
    // The adaptive path differs from the straight line.
    const ig = await integratedGradients(mlp.model, image, { steps: 64, target: 2 });
    expect(Math.max(...Array.from(g.data).map((v, i) => Math.abs(v - ig.data[i]!)))).toBeGreaterThan(1e-4);
    mlp.model.dispose();
  });

  it('Blur IG sums to F(x) - F(blurred x)', async () => {
    const { model } = mlpModel([8, 8, 1], 6, 2, 20);
    const image = randomImage(8, 8, 1, 21);
    const attr = await blurIntegratedGradients(model, image, { maxSigma: 4, steps: 200, target: 0, returnPath: true });
    expect(attr.completeness!.relative).toBeLessThan(0.02);
    expect(attr.path!.scores.length).toBe(200);
    expect(attr.baseline).toBe('blur(sigma=4)');
    model.dispose();
  });
});

/**
 * Gaussian blur written out in 2-D, independently of src/attribution/image-ops.ts, with the same
 * conventions (scipy.ndimage.gaussian_filter's): kernel truncated at ceil(4 sigma), normalised,
 * edges mirrored as d c b a | a b c d.
 */
function blur2d(data: Float32Array, h: number, w: number, c: number, sigma: number): Float64Array {
  const r = Math.max(1, Math.ceil(4 * sigma));
  const mirror = (i: number, n: number) => {
    let m = ((i % (2 * n)) + 2 * n) % (2 * n);
    return m < n ? m : 2 * n - 1 - m;
  };
  let norm = 0;
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) norm += Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
  const out = new Float64Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            s += Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) * data[(mirror(y + dy, h) * w + mirror(x + dx, w)) * c + ch]!;
          }
        }
        out[(y * w + x) * c + ch] = s / norm;
      }
    }
  }
  return out;
}

describe('Blur IG closed form', () => {
  it('on a linear model is w * (x - G_maxSigma(x)), with an independently computed blur', async () => {
    const [h, w, c] = [12, 12, 3];
    const { model, w: weights } = linearModel([h, w, c], 2, 61);
    const image = randomImage(h, w, c, 62);
    const maxSigma = 2;
    const attr = await blurIntegratedGradients(model, image, { maxSigma, steps: 256, target: 1 });
    const blurred = blur2d(image.data, h, w, c, maxSigma);
    const expected = Float64Array.from(image.data, (x, i) => weights[i * 2 + 1]! * (x - blurred[i]!));
    let num = 0;
    let den = 0;
    for (let i = 0; i < expected.length; i++) {
      num += (attr.data[i]! - expected[i]!) ** 2;
      den += expected[i]! ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThan(0.01);
    // Another end point is far from it: the test tells sigma 2 from sigma 1.
    const halfBlurred = blur2d(image.data, h, w, c, maxSigma / 2);
    let apart = 0;
    for (let i = 0; i < expected.length; i++) apart += (weights[i * 2 + 1]! * (image.data[i]! - halfBlurred[i]!) - expected[i]!) ** 2;
    expect(Math.sqrt(apart / den)).toBeGreaterThan(0.1);
    model.dispose();
  });
});

describe('forward-only methods', () => {
  it('occlusion with a 1-pixel window is the per-pixel drop of a linear model', async () => {
    const { model, w } = linearModel([3, 4, 2], 2, 22);
    const forwardOnly = { ...model, gradient: undefined };
    const image = randomImage(3, 4, 2, 23);
    const attr = await occlusion(forwardOnly, image, { window: 1, stride: 1, target: 1, batchSize: 5 });
    for (let p = 0; p < 12; p++) {
      const drop = w[(p * 2) * 2 + 1]! * image.data[p * 2]! + w[(p * 2 + 1) * 2 + 1]! * image.data[p * 2 + 1]!;
      expect(attr.data[p * 2]).toBeCloseTo(drop, 3);
      expect(attr.data[p * 2 + 1]).toBeCloseTo(drop, 3);
    }
    expect(attr.forwardEvaluations).toBe(13);
    model.dispose();
  });

  it('RISE finds the region a probability model looks at, and gradient methods refuse forward-only models', async () => {
    const size = 16;
    // p(class 0) rises with the brightness of the top-left quadrant only.
    const quadrant = tf.tensor4d(
      Float32Array.from({ length: size * size }, (_, p) => (Math.floor(p / size) < 8 && p % size < 8 ? 1 / 64 : 0)),
      [1, size, size, 1],
    );
    const model = createTfModel({
      name: 'quadrant',
      inputShape: [size, size, 1],
      classes: 2,
      output: 'probability',
      preprocessing: 'unit',
      scores: (x) => {
        const z = tf.sub(tf.mul(tf.sum(tf.mul(x, quadrant), [1, 2, 3]), 8), 4);
        return tf.softmax(tf.stack([z, tf.neg(z)], 1)) as tf.Tensor2D;
      },
    });
    const forwardOnly = { ...model, gradient: undefined };
    const image = { data: new Float32Array(size * size).fill(200), height: size, width: size, channels: 1 };
    const attr = await rise(forwardOnly, image, { masks: 400, cells: 4, seed: 1, target: 0 });
    let inside = 0;
    let outside = 0;
    for (let p = 0; p < size * size; p++) {
      if (Math.floor(p / size) < 8 && p % size < 8) inside += attr.data[p]! / 64;
      else outside += attr.data[p]! / 192;
    }
    expect(inside).toBeGreaterThan(outside * 1.2);
    await expect(integratedGradients(forwardOnly, image)).rejects.toSatisfy((e: unknown) => isLensError(e, 'UNSUPPORTED'));
    quadrant.dispose();
  });
});

describe('Grad-CAM and targets', () => {
  it('Grad-CAM equals relu(sum_k mean(dF/dA_k) A_k) computed by hand', async () => {
    const { layers, model } = await layersImageModel([6, 6, 3], 4, 30);
    const image = randomImage(6, 6, 3, 31);
    const cam = await gradCam(model, image, { target: 2 });
    expect(cam.details!.layer).toBe('conv_b');
    // With global average pooling then dense, dF/dA_k = W[k, target] / (h w) everywhere.
    const tfl = await import('@tensorflow/tfjs-layers');
    const head = tfl.model({ inputs: layers.inputs, outputs: layers.getLayer('conv_b').output as never });
    const a = (head.predict(tf.div(tf.tensor4d(image.data, [1, 6, 6, 3]), 255)) as tf.Tensor).dataSync();
    const dense = layers.getLayer('logits').getWeights()[0]!.dataSync();
    for (let p = 0; p < 36; p++) {
      let s = 0;
      for (let k = 0; k < 8; k++) s += (dense[k * 4 + 2]! / 36) * a[p * 8 + k]!;
      expect(cam.data[p * 3]).toBeCloseTo(Math.max(0, s), 5);
    }
    await expect(gradCam(linearModel([6, 6, 3], 2, 1).model, image)).rejects.toSatisfy((e: unknown) => isLensError(e, 'UNSUPPORTED'));
    model.dispose();
  });

  it('explains each of the top-k classes, and labels resolve', async () => {
    const { model } = linearModel([2, 2, 3], 5, 32);
    const image = randomImage(2, 2, 3, 33);
    const maps = await attributeTargets(integratedGradients, model, image, { topK: 3 }, { steps: 8 });
    expect(maps.map((m) => m.target.score)).toEqual([...maps.map((m) => m.target.score)].sort((x, y) => y - x));
    expect(new Set(maps.map((m) => m.target.index)).size).toBe(3);
    const byLabel = await integratedGradients(model, image, { target: 'CLASS3', steps: 4 });
    expect(byLabel.target).toMatchObject({ index: 3, label: 'class3' });
    await expect(integratedGradients(model, image, { target: 'nope' })).rejects.toSatisfy((e: unknown) => isLensError(e, 'INVALID_ARGUMENT'));
    model.dispose();
  });
});

describe('XRAI', () => {
  it('on a bright square over a dark background, with a model that sums brightness, the first region is the square', async () => {
    const size = 32;
    const inside = (y: number, x: number) => y >= 8 && y < 20 && x >= 10 && x < 22;
    const data = new Float32Array(size * size * 3);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data.fill(inside(y, x) ? 230 : 20, (y * size + x) * 3, (y * size + x) * 3 + 3);
    const image = { data, height: size, width: size, channels: 3 };
    // F = k * sum(x): IG from black and from white, averaged, is exactly k * (x - 127.5) per value,
    // positive on the square only, so the densest segment is the square.
    const k = 1e-3;
    const model = createTfModel({
      name: 'brightness',
      inputShape: [size, size, 3],
      classes: 2,
      output: 'logit',
      preprocessing: 'raw',
      scores: (x) => tf.tidy(() => {
        const total = tf.mul(tf.sum(tf.reshape(x, [x.shape[0], -1]), 1, true), k);
        return tf.concat([total, tf.neg(total)], 1) as tf.Tensor2D;
      }),
    });
    const attr = await xrai(model, image, { steps: 4, target: 0 });
    const regions = attr.details!.regions as { pixels: number; gain: number }[];
    // The first region lies in the square, at its density k * (230 - 127.5); the regions at that
    // density (segmentation may cut the square in parts) cover its 144 pixels, and nothing else.
    expect(regions[0]!.gain).toBeCloseTo(k * (230 - 127.5), 6);
    const leading = regions.slice(0, regions.findIndex((r) => Math.abs(r.gain - regions[0]!.gain) > 1e-9));
    expect(leading.reduce((t, r) => t + r.pixels, 0)).toBe(144);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = attr.data[(y * size + x) * 3]!;
        if (inside(y, x)) expect(v).toBeCloseTo(k * (230 - 127.5), 6);
        else expect(v).toBeLessThan(0);
      }
    }
    model.dispose();
  });

  it('ranks the segment holding the attribution first', async () => {
    const size = 24;
    // A bright square on a dark background; the given pixel attribution lives inside the square.
    const data = new Float32Array(size * size * 3).fill(30);
    const map = new Float32Array(size * size * 3);
    for (let y = 6; y < 14; y++) {
      for (let x = 8; x < 16; x++) {
        data.fill(220, (y * size + x) * 3, (y * size + x) * 3 + 3);
        map.fill(y === 9 && x === 10 ? 5 : 1, (y * size + x) * 3, (y * size + x) * 3 + 3);
      }
    }
    const image = { data, height: size, width: size, channels: 3 };
    const { model } = linearModel([size, size, 3], 2, 40);
    const base = await integratedGradients(model, image, { steps: 4 });
    const attr = await xrai(model, image, { attribution: { ...base, data: map } });
    const inside = attr.data[(10 * size + 12) * 3]!;
    const outside = attr.data[(20 * size + 2) * 3]!;
    expect(inside).toBeGreaterThan(outside);
    const regions = attr.details!.regions as { pixels: number; gain: number }[];
    expect(regions[0]!.gain).toBeGreaterThan(0.5);
    expect(regions.reduce((s, r) => s + r.pixels, 0)).toBe(size * size);
    // End to end with its own IG (black and white baselines averaged).
    const full = await xrai(model, image, { steps: 8 });
    expect(full.baseline).toBe('black+white');
    expect(full.data.every(Number.isFinite)).toBe(true);
    model.dispose();
  });
});

describe('F(x) once per explanation', () => {
  /** The model with a count of the images its forward passes saw. */
  function counting<M extends { forward(p: tf.Tensor4D): Promise<tf.Tensor2D> }>(model: M): { model: M; images: () => number } {
    let images = 0;
    const forward = model.forward.bind(model);
    model.forward = (p) => {
      images += p.shape[0];
      return forward(p);
    };
    return { model, images: () => images };
  }

  it('methods take the scores the caller resolved the target with instead of a forward pass of their own', async () => {
    const { model: mlp } = mlpModel([3, 3, 2], 4, 3, 31);
    const { model, images } = counting(mlp);
    const image = randomImage(3, 3, 2, 32);
    const [scores] = (await model.forward(tf.tensor4d(image.data, [1, 3, 3, 2])).then((t) => t.array())) as number[][];
    const inputScores = Float32Array.from(scores!);
    for (const method of ['ig', 'gradient', 'occlusion', 'blur_ig', 'guided_ig'] as const) {
      const before = images();
      const plain = await runMethod(method, model, image, { target: 2, steps: 4, window: 2, stride: 2 });
      const spentPlain = images() - before;
      const given = await runMethod(method, model, image, { target: 2, steps: 4, window: 2, stride: 2, inputScores });
      // One image fewer through forward: F(x) came with the call.
      expect(images() - before - spentPlain, method).toBe(spentPlain - 1);
      expect(Array.from(given.data), method).toEqual(Array.from(plain.data));
      expect(given.target).toEqual(plain.target);
      expect(given.forwardEvaluations).toBe(plain.forwardEvaluations);
    }
    model.dispose();
  });

  it('SmoothGrad keeps the input scores for the clean input only, not its noisy copies', async () => {
    const { model: mlp } = mlpModel([3, 3, 2], 4, 3, 33);
    const { model, images } = counting(mlp);
    const image = randomImage(3, 3, 2, 34);
    const [scores] = (await model.forward(tf.tensor4d(image.data, [1, 3, 3, 2])).then((t) => t.array())) as number[][];
    const settings = { target: 1, steps: 4, samples: 3 };
    const before = images();
    const plain = await runMethod(parseMethod('smoothgrad:ig'), model, image, settings);
    const spentPlain = images() - before;
    const given = await runMethod(parseMethod('smoothgrad:ig'), model, image, { ...settings, inputScores: Float32Array.from(scores!) });
    // Only the clean input's pass is saved; each noisy copy still gets its own F.
    expect(images() - before - spentPlain).toBe(spentPlain - 1);
    expect(Array.from(given.data)).toEqual(Array.from(plain.data));
    model.dispose();
  });
});
