import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  attributionTitle,
  drawLineChart,
  ensureFont,
  gridSize,
  isLensError,
  renderGrid,
  rgbaFromImage,
  sharedScale,
  visualize,
  type GridOptions,
} from '../../src/index.js';
import { TINY_ATTRIBUTION as A, TINY_IMAGE as IMG, pixel, scaled } from './fixtures.js';

async function decode(png: Buffer) {
  const { format } = await sharp(png).metadata();
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number): number[] => Array.from(data.subarray((y * info.width + x) * 4, (y * info.width + x) * 4 + 4));
  return { info: { ...info, format }, at };
}

const meta = { target: { index: 1, label: 'circle', probability: 0.875 }, baseline: 'black', steps: 32, completeness: { delta: 0.001, relative: 0.0005 } };

describe('grids', () => {
  it('have the documented size, show each cell pixel for pixel, and render text', async () => {
    const maps = [A, scaled(A, 2)];
    const scale = sharedScale(maps, { sign: 'all' });
    const row = (image: typeof IMG) => [
      { image: rgbaFromImage(image), title: ['image'] },
      ...maps.map((m) => ({ image: visualize(m, { sign: 'all', scale }), title: attributionTitle(meta) })),
    ];
    const options: GridOptions = { title: 'baselines', columnTitles: ['input', 'x1', 'x2'], cells: [row(IMG), row(IMG)] };
    const png = await renderGrid(options);
    const { info, at } = await decode(png);
    // L = ceil(1.4 * 12) = 17; 3 title lines; shared bar with a label
    const width = 10 + 3 * 160 + 2 * 10 + 10;
    const height = 10 + 2 * 17 + (17 + 4) + 2 * (3 * 17 + 160) + 10 + (10 + 12 + 3 + 17 + 17) + 10;
    expect([info.format, info.width, info.height]).toEqual(['png', width, height]);
    expect(gridSize(options)).toEqual({ width, height });

    // Row 0, column 1: a 3 x 2 map drawn 160 x 107 (nearest neighbour), 26 px down in its box.
    const imageTop = 10 + 34 + 21 + 3 * 17;
    const left = 10 + 160 + 10;
    const cell = visualize(A, { sign: 'all', scale });
    for (let p = 0; p < 6; p++) {
      const [cx, cy] = [p % 3, Math.floor(p / 3)];
      expect(at(left + Math.floor((cx + 0.5) * (160 / 3)), imageTop + 26 + Math.floor((cy + 0.5) * 53.5))).toEqual(pixel(cell, p));
    }
    // Text: dark pixels in the title band, and none in the empty margin.
    const band = Array.from({ length: 34 * width }, (_, i) => at(i % width, 10 + Math.floor(i / width)));
    expect(band.some(([r, g, b]) => r! + g! + b! < 200)).toBe(true);
    expect(at(2, 2)).toEqual([255, 255, 255, 255]);
  });

  it('gives each cell its own colour bar when scales differ', async () => {
    const options: GridOptions = {
      cells: [[{ image: visualize(A) }, { image: visualize(A, { method: 'saliency_grayscale' }) }]],
      rowTitles: ['cat'],
      cellSize: 64,
    };
    const { info } = await decode(await renderGrid(options));
    // row titles 120 + 10; per-cell bar 6 + 8 + 3 + L + L (labelled)
    expect([info.width, info.height]).toEqual([10 + 130 + 2 * 64 + 10 + 10, 10 + 64 + (6 + 8 + 3 + 17 + 17) + 10]);
    expect(gridSize({ ...options, colorbar: 'none' }).height).toBe(10 + 64 + 10);
  });

  it('refuses an empty grid and mismatched row titles', async () => {
    await expect(renderGrid({ cells: [] })).rejects.toThrow(/no cells/);
    await expect(renderGrid({ cells: [[{ image: visualize(A) }]], rowTitles: ['a', 'b'] })).rejects.toThrow(/1 rows but 2 row titles/);
  });

  it('uses a registered font file', () => {
    expect(ensureFont()).toMatch(/\.(ttf|otf)$/i);
  });
});

describe('line charts', () => {
  it('decode at the asked size', async () => {
    const png = await drawLineChart({
      title: 'latency',
      xLabel: 'batch size',
      yLabel: 'ms',
      y2Label: 'images/s',
      xScale: 'log2',
      width: 640,
      height: 360,
      series: [
        { name: 'p50', x: [1, 2, 4, 8], y: [3, 4, 6, 11] },
        { name: 'throughput', x: [1, 2, 4, 8], y: [300, 500, 650, 720], axis: 'right' },
      ],
    });
    const { info } = await decode(png);
    expect([info.format, info.width, info.height]).toEqual(['png', 640, 360]);
  });

  it('place points on a log2 axis by their exponent', async () => {
    const red = '#ff0000';
    const blue = '#0000ff';
    const png = await drawLineChart({
      xScale: 'log2',
      legend: 'none',
      series: [
        { name: 'ends', x: [1, 256], y: [1, 1], color: red },
        { name: 'middle', x: [16], y: [2], color: blue },
      ],
    });
    const { info, at } = await decode(png);
    const columns = (match: (p: number[]) => boolean) => {
      const xs: number[] = [];
      for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) if (match(at(x, y))) xs.push(x);
      return xs;
    };
    const reds = columns(([r, g, b]) => r! > 200 && g! < 60 && b! < 60);
    const blues = columns(([r, g, b]) => b! > 200 && r! < 60 && g! < 60);
    expect(reds.length).toBeGreaterThan(100);
    expect(blues.length).toBeGreaterThan(10);
    const redMid = (Math.min(...reds) + Math.max(...reds)) / 2;
    const blueMid = (Math.min(...blues) + Math.max(...blues)) / 2;
    expect(Math.abs(blueMid - redMid)).toBeLessThanOrEqual(1); // log2(16) = 4 is halfway between 0 and 8
  });

  describe('legend', () => {
    const fractions = Array.from({ length: 17 }, (_, i) => i / 16);
    // Deletion and insertion curves as `lens explain --curves` draws them: the score falls from
    // near 1 as pixels go, and rises back as they return.
    const deletion = { name: 'black deletion (AUC 0.210)', x: fractions, y: fractions.map((f) => 0.95 * Math.exp(-5 * f) + 0.02) };
    const insertion = { name: 'black insertion (AUC 0.650)', x: fractions, y: fractions.map((f) => 0.05 + 0.9 * (1 - Math.exp(-8 * f))), dashed: true };
    const chart = { title: 'cat.jpg: deletion (solid) and insertion (dashed)', xLabel: 'share of pixels', yLabel: 'probability', width: 960, height: 540 };

    /** The legend box: the rows holding a long run of its #bbbbbb frame are its top and bottom edges. */
    const legendFrame = (info: { width: number; height: number }, at: (x: number, y: number) => number[]) => {
      const frame = { left: Infinity, right: -Infinity, top: Infinity, bottom: -Infinity };
      for (let y = 0; y < info.height; y++) {
        const xs: number[] = [];
        for (let x = 0; x < info.width; x++) if (at(x, y).slice(0, 3).every((c) => c === 0xbb)) xs.push(x);
        if (xs.length < 40) continue;
        Object.assign(frame, { left: Math.min(frame.left, xs[0]!), right: Math.max(frame.right, xs[xs.length - 1]!), top: Math.min(frame.top, y), bottom: Math.max(frame.bottom, y) });
      }
      expect(frame.bottom - frame.top, 'a legend frame is drawn').toBeGreaterThan(20);
      return frame;
    };
    const coloured = ([r, g, b]: number[]) => Math.max(r!, g!, b!) - Math.min(r!, g!, b!) > 2;

    it('goes to a corner no line passes through, covering nothing the chart without it shows', async () => {
      const options = { ...chart, series: [deletion] };
      const withLegend = await decode(await drawLineChart(options));
      const without = await decode(await drawLineChart({ ...options, legend: 'none' }));
      const box = legendFrame(withLegend.info, withLegend.at);
      // The falling curve fills the top-left and bottom-right corners: the legend takes the top-right.
      expect(box.left).toBeGreaterThan(960 / 2);
      expect(box.bottom).toBeLessThan(540 / 2);
      let changedOutside = 0;
      let dataUnderBox = 0;
      for (let y = 0; y < 540; y++) {
        for (let x = 0; x < 960; x++) {
          const inBox = x >= box.left && x <= box.right && y >= box.top && y <= box.bottom;
          if (inBox && coloured(without.at(x, y))) dataUnderBox++;
          if (!inBox && withLegend.at(x, y).join() !== without.at(x, y).join()) changedOutside++;
        }
      }
      // Same plot with and without the legend, and where the legend is, the plot has no line pixel.
      expect(changedOutside).toBe(0);
      expect(dataUnderBox).toBe(0);
    });

    it('goes right of the plot when lines pass through every corner and both edge middles', async () => {
      const { info, at } = await decode(await drawLineChart({ ...chart, series: [deletion, insertion] }));
      const box = legendFrame(info, at);
      // The x axis is the longest black row; every coloured pixel (the lines) lies left of the legend.
      let axis = { y: 0, right: 0, count: 0 };
      let dataRight = 0;
      for (let y = 0; y < info.height; y++) {
        let count = 0;
        let right = 0;
        for (let x = 0; x < info.width; x++) {
          const p = at(x, y);
          if (p.slice(0, 3).every((c) => c === 0)) [count, right] = [count + 1, x];
          const inBox = x >= box.left && x <= box.right && y >= box.top && y <= box.bottom;
          if (!inBox && coloured(p)) dataRight = Math.max(dataRight, x);
        }
        if (count > axis.count) axis = { y, right, count };
      }
      expect(box.left).toBeGreaterThan(axis.right + 10);
      expect(dataRight).toBeLessThan(box.left);
      expect(box.right).toBeLessThan(info.width);
    });

    it('stays where it is told to: a corner whatever it covers, or outside with room to spare', async () => {
      const cornered = await decode(await drawLineChart({ ...chart, series: [deletion, insertion], legend: 'top-left' }));
      const corner = legendFrame(cornered.info, cornered.at);
      expect(corner.right).toBeLessThan(960 / 2);
      expect(corner.top).toBeLessThan(540 / 4);
      // The falling curve alone leaves the top-right free, but `outside` puts the legend right of the plot.
      const outside = await decode(await drawLineChart({ ...chart, series: [deletion], legend: 'outside' }));
      const column = legendFrame(outside.info, outside.at);
      expect(column.right).toBe(960 - 12 - 1);
      expect(column.top).toBeLessThan(540 / 4);
    });
  });

  it('refuses unusable series', async () => {
    await expect(drawLineChart({ series: [] })).rejects.toThrow(/no series/);
    await expect(drawLineChart({ series: [{ name: 's', x: [1, 2], y: [1] }] })).rejects.toThrow(/"s" has 2 x values and 1 y values/);
    await expect(drawLineChart({ xScale: 'log2', series: [{ name: 's', x: [0, 2], y: [1, 2] }] })).rejects.toSatisfy((e) => isLensError(e, 'INVALID_ARGUMENT'));
  });
});
