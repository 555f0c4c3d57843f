/**
 * Every visualization mode against pixels computed by hand on the 2 x 3 fixture (see fixtures.ts
 * for the values; normalize.test.ts checks the normalised values these pixels come from).
 * With the gray colormap a position t is drawn as min(255, floor(256 t)).
 */
import { describe, expect, it } from 'vitest';
import { colorAt, isLensError, sharedScale, visualize, VISUALIZATION_METHODS } from '../../src/index.js';
import { TINY_ATTRIBUTION as A, TINY_IMAGE as IMG, channel, pixel, scaled } from './fixtures.js';

const gray = { colormap: 'gray' } as const;

describe('Captum heat_map', () => {
  it('sign all: position (n + 1) / 2 of n = sum / 8', () => {
    const v = visualize(A, { method: 'heat_map', sign: 'all', ...gray });
    // n = [0.125, 0.5, -0.25, 0, 1, -0.125] -> t = [0.5625, 0.75, 0.375, 0.5, 1, 0.4375]
    expect(channel(v, 0)).toEqual([144, 192, 96, 128, 255, 112]);
    expect(channel(v, 3)).toEqual([255, 255, 255, 255, 255, 255]);
    expect(v.colorbar).toEqual({ colormap: 'gray', from: -8, to: 8, label: 'attribution' });
    expect(v.scale).toBe(8);
  });

  it('signs positive, negative, absolute_value', () => {
    expect(channel(visualize(A, { sign: 'positive', ...gray }), 1)).toEqual([32, 128, 0, 0, 255, 0]);
    const negative = visualize(A, { sign: 'negative', ...gray }); // threshold 2: n = [0, 0, 1, 0, 0, 0.5]
    expect(channel(negative, 1)).toEqual([0, 0, 255, 0, 0, 128]);
    expect(negative.colorbar).toMatchObject({ from: 0, to: -2 });
    expect(channel(visualize(A, { sign: 'absolute_value', ...gray }), 2)).toEqual([32, 128, 64, 0, 255, 32]);
  });

  it("defaults to Captum's method, sign and colormaps", () => {
    const v = visualize(A); // heat_map, absolute_value, blues
    expect(v.method).toBe('heat_map');
    expect(pixel(v, 3)).toEqual([247, 251, 255, 255]); // n = 0: #f7fbff
    expect(pixel(v, 4)).toEqual([8, 48, 107, 255]); // n = 1: #08306b
    expect(visualize(A, { sign: 'positive' }).colorbar?.colormap).toBe('greens');
    expect(visualize(A, { sign: 'negative' }).colorbar?.colormap).toBe('reds');
    const all = visualize(A, { sign: 'all' });
    expect(pixel(all, 4)).toEqual([0, 128, 0, 255]); // +1: green
    expect(pixel(all, 3)).toEqual([...colorAt('rdwhgn', 0.5), 255]);
  });

  it('honours outlierPerc as a share of the mass', () => {
    // outlierPerc 50: threshold 4, n = [0.25, 1, 0.5, 0, 1, 0.25]
    expect(channel(visualize(A, { outlierPerc: 50, ...gray }), 0)).toEqual([64, 255, 128, 0, 255, 64]);
  });
});

describe('Captum modes with the image', () => {
  it('blended_heat_map: alpha * heat + (1 - alpha) * autoscaled grey', () => {
    // grey levels of the channel means scaled by 0..255: [20, 100, 83, 0, 255, 80]; heat [32, 128, 64, 0, 255, 32]
    const v = visualize(A, { method: 'blended_heat_map', image: IMG, ...gray });
    expect(channel(v, 0)).toEqual([26, 114, 74, 0, 255, 56]);
    const strong = visualize(A, { method: 'blended_heat_map', image: IMG, alpha: 1, ...gray });
    expect(channel(strong, 1)).toEqual([32, 128, 64, 0, 255, 32]);
  });

  it('masked_image: floor(image * n)', () => {
    const v = visualize(A, { method: 'masked_image', image: IMG });
    expect(pixel(v, 0)).toEqual([1, 2, 3, 255]);
    expect(pixel(v, 1)).toEqual([50, 50, 50, 255]);
    expect(pixel(v, 2)).toEqual([50, 12, 0, 255]);
    expect(pixel(v, 3)).toEqual([0, 0, 0, 255]);
    expect(pixel(v, 4)).toEqual([255, 255, 255, 255]);
    expect(pixel(v, 5)).toEqual([5, 10, 15, 255]);
  });

  it('alpha_scaling: the image with alpha floor(255 n)', () => {
    const v = visualize(A, { method: 'alpha_scaling', image: IMG });
    expect(channel(v, 3)).toEqual([31, 127, 63, 0, 255, 31]);
    expect(pixel(v, 2)).toEqual([200, 50, 0, 63]);
  });

  it('original_image: the image, opaque', () => {
    const v = visualize(A, { method: 'original_image', image: IMG });
    expect(Array.from(v.data)).toEqual([10, 20, 30, 255, 100, 100, 100, 255, 200, 50, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 40, 80, 120, 255]);
    expect(v.colorbar).toBeUndefined();
  });

  it('refuses sign all for masked_image and alpha_scaling, and a missing or mis-sized image', () => {
    expect(() => visualize(A, { method: 'masked_image', sign: 'all', image: IMG })).toThrow(/choose sign/);
    expect(() => visualize(A, { method: 'alpha_scaling', sign: 'all', image: IMG })).toThrow(/choose sign/);
    expect(() => visualize(A, { method: 'blended_heat_map' })).toThrow(/needs the original image/);
    const wide = { ...IMG, width: 2, data: IMG.data.subarray(0, 12) };
    try {
      visualize(A, { method: 'overlay', image: wide });
      expect.unreachable();
    } catch (e) {
      expect(isLensError(e, 'SHAPE_MISMATCH')).toBe(true);
    }
  });
});

describe('PAIR saliency modes', () => {
  it('saliency_grayscale: floor(256 * sum|a| / 7.8)', () => {
    const v = visualize(A, { method: 'saliency_grayscale' });
    expect(channel(v, 0)).toEqual([32, 131, 65, 0, 255, 32]);
    expect(channel(v, 2)).toEqual([32, 131, 65, 0, 255, 32]);
    expect(v.colorbar).toMatchObject({ colormap: 'gray', from: 0 });
    expect(v.colorbar?.to).toBeCloseTo(7.8, 9);
  });

  it('saliency_diverging: 0.5 is zero, span 7.8', () => {
    const v = visualize(A, { method: 'saliency_diverging', ...gray });
    expect(channel(v, 0)).toEqual([144, 193, 95, 128, 255, 111]);
    const colored = visualize(A, { method: 'saliency_diverging' });
    expect(pixel(colored, 4)).toEqual([...colorAt('rdbu_r', 1), 255]);
    expect(colored.colorbar?.from).toBeCloseTo(-7.8, 9);
  });
});

describe('overlay and outline', () => {
  it('overlay: percentile-clipped |value|, weight 0.85 |t| of the colour over the dimmed grey photo', () => {
    // |channel sums| = [1, 4, 2, 0, 8, 1]; the 99th percentile of the non-zero ones [1, 1, 2, 4, 8]
    // is 4 + 0.96 * 4 = 7.84 (numpy's linear rule), so t = [1, 4, 2, 0, 8, 1] / 7.84 clipped to 1.
    // Grey levels [20, 100, 83, 0, 255, 80] dimmed to 40 + 130 g / 255; gray colour floor(256 t).
    const v = visualize(A, { method: 'overlay', image: IMG, ...gray });
    const t = [1, 4, 2, 0, 8, 1].map((x) => Math.min(1, x / 7.84));
    const grey = [20, 100, 83, 0, 255, 80];
    const expected = t.map((ti, p) => {
      const w = 0.85 * ti;
      const value = Math.round(w * Math.min(255, Math.floor(256 * ti)) + (1 - w) * (40 + (130 * grey[p]!) / 255));
      return [value, value, value, 255];
    });
    expect(expected.map((e) => e[0])).toEqual([48, 108, 79, 40, 242, 75]); // by hand, as a check on the formula above
    for (let p = 0; p < 6; p++) expect(pixel(v, p)).toEqual(expected[p]);
    expect(v.colorbar).toMatchObject({ from: 0, to: expect.closeTo(7.84, 6), label: '|attribution|', clipped: true });
  });

  it('outline: paints the edge of the top-mass region on the image', () => {
    const v = visualize(A, { method: 'outline', image: IMG, massFraction: 0.5, outlineColor: [1, 2, 3] });
    expect(pixel(v, 4)).toEqual([1, 2, 3, 255]); // the region is p4 alone
    expect(pixel(v, 1)).toEqual([100, 100, 100, 255]);
  });

  it('outline: only the ring of a block, not its inside', () => {
    // 5 x 5, one channel: a 3 x 3 block of ones in the middle.
    const data = new Float32Array(25);
    for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) data[y * 5 + x] = 1;
    const image = { data: new Float32Array(25).fill(100), height: 5, width: 5, channels: 1 };
    const v = visualize({ data, height: 5, width: 5, channels: 1 }, { method: 'outline', image, massFraction: 1 });
    const painted = Array.from({ length: 25 }, (_, p) => (v.data[p * 4 + 1] === 255 && v.data[p * 4] === 0 ? 1 : 0));
    expect(painted).toEqual([
      0, 0, 0, 0, 0,
      0, 1, 1, 1, 0,
      0, 1, 0, 1, 0,
      0, 1, 1, 1, 0,
      0, 0, 0, 0, 0,
    ]);
    expect(pixel(v, 12)).toEqual([100, 100, 100, 255]);
    const thick = visualize({ data, height: 5, width: 5, channels: 1 }, { method: 'outline', image, massFraction: 1, outlineWidth: 2 });
    expect(pixel(thick, 12)).toEqual([0, 255, 0, 255]);
  });
});

describe('shared scale', () => {
  it('makes equal colours mean equal attribution across maps', () => {
    const maps = [A, scaled(A, 2)];
    const own = maps.map((m) => visualize(m, gray));
    expect(channel(own[0]!, 0)).toEqual(channel(own[1]!, 0)); // each map scaled to itself
    const scale = sharedScale(maps);
    expect(scale).toBe(16);
    const [small, large] = maps.map((m) => visualize(m, { ...gray, scale }));
    expect(channel(small!, 0)).toEqual([16, 64, 32, 0, 128, 16]);
    expect(channel(large!, 0)).toEqual([32, 128, 64, 0, 255, 32]);
    expect(small!.colorbar).toEqual(large!.colorbar);
  });
});

it('every listed method renders an RGBA image of the attribution size', () => {
  for (const method of VISUALIZATION_METHODS) {
    const v = visualize(A, { method, image: IMG, sign: method === 'saliency_diverging' ? 'all' : 'positive' });
    expect([v.width, v.height, v.data.length]).toEqual([3, 2, 24]);
  }
  expect(() => visualize(A, { method: 'sparkles' as never })).toThrow(/unknown visualization "sparkles"/);
});
