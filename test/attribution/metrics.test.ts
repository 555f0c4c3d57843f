import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { integratedGradients } from '../../src/attribution/integrated-gradients.js';
import { vanillaGradient } from '../../src/attribution/gradients.js';
import { attributionCurve, cellShareCeiling, maskScores, modelRandomization, trapezoidArea } from '../../src/attribution/metrics.js';
import { meanInterval, ranks, spearman, studentTQuantile } from '../../src/attribution/stats.js';
import type { Attribution } from '../../src/attribution/types.js';
import { layersImageModel, linearModel, randomImage } from './helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

function fakeAttribution(values: number[], height: number, width: number, channels = 1): Attribution {
  return {
    data: Float32Array.from(values),
    height,
    width,
    channels,
    method: 'test',
    target: { index: 0, score: 0, probability: 1 },
    output: 'logit',
    gradientEvaluations: 0,
    forwardEvaluations: 0,
  };
}

describe('statistics', () => {
  it('t quantiles, intervals and rank correlation match known values', () => {
    expect(studentTQuantile(0.975, 4)).toBeCloseTo(2.776445, 5);
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    expect(studentTQuantile(0.975, 1000)).toBeCloseTo(1.962339, 5);
    const ci = meanInterval([1, 2, 3, 4, 5]);
    // mean 3, stdev sqrt(2.5), half-width t(0.975, 4) * stdev / sqrt(5).
    expect(ci.mean).toBe(3);
    expect(ci.high - ci.mean).toBeCloseTo((2.776445 * Math.sqrt(2.5)) / Math.sqrt(5), 5);
    expect(meanInterval([7])).toMatchObject({ mean: 7, low: 7, high: 7, n: 1 });
    expect(Array.from(ranks([10, 20, 20, 5]))).toEqual([2, 3.5, 3.5, 1]);
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 16])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // Hand-computed: ranks (1,2,3,4,5) vs (2,1,4,3,5): 1 - 6*4/(5*24) = 0.8.
    expect(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(0.8, 12);
  });
});

describe('ground truth scores', () => {
  it('share of positive attribution in the mask and the pointing game, by hand', () => {
    // 2x3 map, channels summed: [1, -2, 3 | 0.5, 4, -1]; mask covers the left two columns.
    const attr = fakeAttribution([0.5, 0.5, -1, -1, 1, 2, 0.5, 0, 2, 2, -1, 0], 2, 3, 2);
    const mask = Uint8Array.from([1, 1, 0, 1, 1, 0]);
    const s = maskScores(attr, mask);
    expect(s.positiveShareInMask).toBeCloseTo((1 + 0.5 + 4) / (1 + 3 + 0.5 + 4), 6);
    expect(s.pointingHit).toBe(true);
    expect(s.maskArea).toBeCloseTo(4 / 6, 6);
    const miss = maskScores(fakeAttribution([0, 0, 9, 0, 0, 0], 2, 3), mask);
    expect(miss.pointingHit).toBe(false);
    expect(maskScores(fakeAttribution([0, 0, 9, 0, 0, 0], 2, 3), mask, { tolerance: 1 }).pointingHit).toBe(true);
  });

  it('centres maps that are positive everywhere on their median, as RISE maps are', () => {
    // 2 x 3 with the object in the left column: background level 0.5 everywhere, 0.9 on the object.
    const mask = Uint8Array.from([1, 0, 0, 1, 0, 0]);
    const s = maskScores(fakeAttribution([0.9, 0.5, 0.5, 0.9, 0.5, 0.5], 2, 3), mask);
    expect(s.positiveShareInMask).toBeCloseTo(1.8 / 3.8, 6); // mostly the mask's area, not the map
    expect(s.centredShareInMask).toBe(1); // median 0.5: only the object is above it
    expect(Number.isNaN(maskScores(fakeAttribution([1, 1, 1, 1, 1, 1], 2, 3), mask).centredShareInMask)).toBe(true);
  });

  it('bounds what a map of coarse cells can reach inside a mask', () => {
    // 4 x 4, mask = the top-left 3 x 3: 2 x 2 cells cover it at most fully (top-left cell), so the ceiling is 1;
    // with 4 x 4 cells (one cell) it is 9/16.
    const mask = new Uint8Array(16);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) mask[y * 4 + x] = 1;
    expect(cellShareCeiling(mask, 4, 4, 2, 2)).toBe(1);
    expect(cellShareCeiling(mask, 4, 4, 4, 4)).toBe(9 / 16);
    const diagonal = Uint8Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(cellShareCeiling(diagonal, 4, 4, 2, 2)).toBe(0.5);
  });
});

describe('deletion and insertion', () => {
  it('deleting the most important pixels of a linear model lowers the score fastest', async () => {
    const { model } = linearModel([4, 4, 1], 2, 40);
    const image = randomImage(4, 4, 1, 41);
    const ig = await integratedGradients(model, image, { steps: 8, target: 0 });
    const good = await attributionCurve(model, image, ig, 'deletion', { steps: 16, score: 'output' });
    const reversed = { ...ig, data: ig.data.map((v) => -v) };
    const bad = await attributionCurve(model, image, reversed, 'deletion', { steps: 16, score: 'output' });
    expect(good.auc).toBeLessThan(bad.auc);
    // With 1-pixel steps and a black fill each step removes exactly that pixel's IG (w x) from the logit.
    const order = Array.from(ig.data.keys()).sort((a, b) => ig.data[b]! - ig.data[a]!);
    let expected = good.scores[0]!;
    for (let k = 0; k < 16; k++) {
      expected -= ig.data[order[k]!]!;
      expect(good.scores[k + 1]).toBeCloseTo(expected, 3);
    }
    // Insertion into black on a linear model, closed form: the logit after inserting the first k
    // pixels (by IG, largest first) is b + sum of their w x, i.e. F(black) + the IG of those pixels.
    const ins = await attributionCurve(model, image, ig, 'insertion', { steps: 4, fill: { kind: 'baseline', baseline: 'black' }, score: 'output' });
    expect(Array.from(ins.fractions)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    const pixels = image.height * image.width;
    const c = image.channels;
    const pixelIg = Array.from({ length: pixels }, (_, p) => ig.data.slice(p * c, (p + 1) * c).reduce((a, b) => a + b, 0));
    const byPixel = Array.from(pixelIg.keys()).sort((a, b) => pixelIg[b]! - pixelIg[a]! || a - b);
    ins.fractions.forEach((f, i) => {
      const k = Math.round(f * pixels);
      const inserted = byPixel.slice(0, k).reduce((s, p) => s + pixelIg[p]!, 0);
      expect(ins.scores[i]).toBeCloseTo(ig.completeness!.baselineScore + inserted, 3);
    });
    expect(trapezoidArea([0, 0.5, 1], [0, 1, 1])).toBeCloseTo(0.75, 12);
    model.dispose();
  });
});

describe('model randomisation', () => {
  it('cascading randomisation changes the maps and restores the weights', async () => {
    const { model } = await layersImageModel([8, 8, 3], 3, 50);
    const image = randomImage(8, 8, 3, 51);
    const before = await model.forward(tf.tensor4d(image.data, [1, 8, 8, 3]));
    const { original, steps } = await modelRandomization(vanillaGradient, model, image, { seed: 1 });
    expect(steps.map((s) => s.layer)).toEqual(['logits', 'conv_b', 'conv_a']);
    expect(steps.at(-1)!.spearmanAbs).toBeLessThan(0.9);
    const after = await model.forward(tf.tensor4d(image.data, [1, 8, 8, 3]));
    expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
    const again = await vanillaGradient(model, image, { target: original.target.index });
    expect(Array.from(again.data)).toEqual(Array.from(original.data));
    model.dispose();
  });
});
