/**
 * Wilson score intervals for proportions (the pointing game) against known values, and their use
 * in the baseline comparison's summary and table in place of t-intervals that leave [0, 1].
 */
import { describe, expect, it } from 'vitest';
import { compareSummary, type CompareResult, type CompareRow } from '../../src/attribution/compare.js';
import { compareMarkdown } from '../../src/report/compare.js';
import { bootstrapInterval, meanInterval, normalCdf, normalQuantile, proportionInterval, wilsonInterval } from '../../src/attribution/stats.js';

describe('normal distribution', () => {
  it('CDF and quantiles match tabulated values', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 8);
    expect(normalQuantile(0.995)).toBeCloseTo(2.575829304, 8);
    expect(normalQuantile(0.05)).toBeCloseTo(-1.644853627, 8);
    expect(normalCdf(1)).toBeCloseTo(0.841344746, 9);
    expect(normalCdf(-3)).toBeCloseTo(0.001349898, 9);
    expect(normalCdf(0)).toBe(0.5);
    expect(() => normalQuantile(1)).toThrow('probability must be in (0, 1), got 1');
  });
});

describe('Wilson score interval', () => {
  it('matches known values at 95%', () => {
    const all = wilsonInterval(10, 10);
    expect(all).toMatchObject({ mean: 1, high: 1, successes: 10, n: 10, level: 0.95 });
    expect(all.low).toBeCloseTo(0.7225, 4);
    const half = wilsonInterval(5, 10);
    expect(half.mean).toBe(0.5);
    expect(half.low).toBeCloseTo(0.2366, 4);
    expect(half.high).toBeCloseTo(0.7634, 4);
    const none = wilsonInterval(0, 10);
    expect(none.low).toBe(0);
    expect(none.high).toBeCloseTo(0.2775, 4);
    const some = wilsonInterval(31, 100);
    expect(some.low).toBeCloseTo(0.2278, 4);
    expect(some.high).toBeCloseTo(0.4063, 4);
  });

  it('widens with the level and narrows with n', () => {
    const at99 = wilsonInterval(5, 10, 0.99);
    expect(at99.low).toBeCloseTo(0.1842, 4);
    expect(at99.high).toBeCloseTo(0.8158, 4);
    const many = wilsonInterval(500, 1000);
    expect(many.high - many.low).toBeLessThan(0.07);
  });

  it('stays inside [0, 1] where the t-interval of the same outcomes does not', () => {
    const outcomes = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    const t = meanInterval(outcomes);
    expect(t.high).toBeGreaterThan(1);
    const w = proportionInterval(outcomes);
    expect(w).toMatchObject({ mean: 0.9, successes: 9, n: 10 });
    expect(w.low).toBeCloseTo(0.5958, 4);
    expect(w.high).toBeCloseTo(0.9821, 4);
  });

  it('leaves NaN outcomes out and refuses anything but 0 and 1', () => {
    expect(proportionInterval([1, NaN, 0])).toMatchObject({ successes: 1, n: 2 });
    expect(proportionInterval([])).toMatchObject({ n: 0, mean: NaN, low: NaN, high: NaN });
    expect(() => proportionInterval([1, 0.5])).toThrow('a proportion counts outcomes of 0 or 1, got 0.5');
    expect(() => wilsonInterval(11, 10)).toThrow('a proportion needs whole numbers 0 <= successes <= n, got 11 of 10');
    expect(() => wilsonInterval(1, 10, 95)).toThrow('confidence level must be in (0, 1), got 95');
  });
});

describe('baseline comparison summary', () => {
  const row = (baseline: string, i: number, pointing: number): CompareRow => ({
    image: `img${i}`,
    baseline,
    target: 0,
    probability: 0.9,
    delta: 0.01 * i,
    relativeDelta: 0.001 * i,
    maskShare: 0.5 + 0.01 * i,
    pointing,
  });
  const rows = [...Array.from({ length: 10 }, (_, i) => row('black', i, 1)), ...Array.from({ length: 10 }, (_, i) => row('blur', i, i < 5 ? 1 : 0))];

  it('summarises the pointing game with Wilson intervals and the other metrics with bootstrap intervals', () => {
    const summary = compareSummary(rows, ['black', 'blur']);
    expect(summary.black!.pointing).toMatchObject({ mean: 1, high: 1, successes: 10, n: 10 });
    expect(summary.black!.pointing!.low).toBeCloseTo(0.7225, 4);
    expect(summary.blur!.pointing!.low).toBeCloseTo(0.2366, 4);
    const shares = rows.filter((r) => r.baseline === 'blur').map((r) => r.maskShare!);
    expect(summary.blur!.maskShare).toEqual(bootstrapInterval(shares));
    expect(summary.blur!.maskShare).toMatchObject({ mean: meanInterval(shares).mean, method: 'bootstrap-percentile' });
    // A share stays a share: the interval lies within the observed values, inside [0, 1].
    expect(summary.blur!.maskShare!.low).toBeGreaterThanOrEqual(Math.min(...shares));
    expect(summary.blur!.maskShare!.high).toBeLessThanOrEqual(Math.max(...shares));
    expect(summary.black!.maskShare).toHaveProperty('stdev');
  });

  it('says so in the markdown table', () => {
    const result: CompareResult = { baselines: ['black', 'blur'], rows, summary: compareSummary(rows, ['black', 'blur']), attributions: [], gradientEvaluations: 0 };
    const md = compareMarkdown(result);
    expect(md).toContain('10 images; each cell is the mean with its 95% confidence interval (percentile bootstrap, 4000 resamples; for the pointing game, the share of hits with its Wilson score interval).');
    // Probabilities and shares to 3 decimals everywhere.
    expect(md).toMatch(/\| black \| .* \| 1\.000 \[0\.722, 1\.000\] \|/);
    expect(md).toMatch(/\| blur \| .* \| 0\.500 \[0\.237, 0\.763\] \|/);
  });
});
