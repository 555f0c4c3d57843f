/**
 * The comparison grid a user puts in a paper, on a real photo: with one colour scale shared by every
 * baseline (the default of `lens compare`), no panel may come out blank. A blur-baseline column once
 * rendered white at the shared scale; each panel is found with `gridPanels` and its pixels decoded.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareBaselines, parseBaseline, type BaselineSpec } from '../../src/attribution/index.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { loadPixels } from '../../src/image/index.js';
import { loadImageModel } from '../../src/models/load.js';
import { gridPanels, renderGrid, rgbaFromImage, sharedScale, visualize, type GridOptions } from '../../src/render/index.js';
import { SHARED } from '../helpers/cli.js';

const MODEL = join(SHARED, 'models-external/mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant.tflite');
const PHOTO = join(SHARED, 'images/parrot.jpg');

beforeAll(async () => {
  await initBackend();
});

describe('comparison grids on a photo', () => {
  for (const scaleMode of ['shared', 'panel'] as const) {
    it(`have no blank panel with ${scaleMode} colour scales (black, white, blur, uniform baselines)`, async () => {
      const model = await loadImageModel(MODEL);
      try {
        const [h, w] = model.inputShape;
        const image = await loadPixels(PHOTO, { size: [h, w], resize: 'pad' });
        const baselines = ['black', 'white', 'blur', 'uniform'].map((name) => ({ name, spec: parseBaseline(name) as BaselineSpec }));
        const result = await compareBaselines(model, [{ name: 'parrot', image }], baselines, { steps: 16, seed: 1, keep: 1 });
        const maps = result.attributions[0]!;
        const options = { method: 'overlay', sign: 'absolute_value' } as const;
        const scale = scaleMode === 'shared' ? sharedScale(maps, options) : undefined;
        const grid: GridOptions = {
          columnTitles: ['photo', ...result.baselines],
          cells: [[{ image: rgbaFromImage(await loadPixels(PHOTO)) }, ...maps.map((a) => ({ image: visualize(a, { ...options, image, ...(scale !== undefined ? { scale } : {}) }) }))]],
        };
        const { data, info } = await sharp(await renderGrid(grid)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        const panels = gridPanels(grid);
        expect(panels).toHaveLength(5);
        for (const p of panels) {
          let sum = 0;
          let sum2 = 0;
          let white = 0;
          const n = p.width * p.height;
          for (let y = p.top; y < p.top + p.height; y++) {
            for (let x = p.left; x < p.left + p.width; x++) {
              const i = (y * info.width + x) * 3;
              const luma = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
              sum += luma;
              sum2 += luma * luma;
              if (data[i]! > 245 && data[i + 1]! > 245 && data[i + 2]! > 245) white++;
            }
          }
          const std = Math.sqrt(Math.max(sum2 / n - (sum / n) ** 2, 0));
          const name = grid.columnTitles![p.column];
          // Structure (not one flat colour) and mostly not the page's white.
          expect(std, `${name}: luminance spread`).toBeGreaterThan(10);
          expect(white / n, `${name}: share of white pixels`).toBeLessThan(0.5);
        }
      } finally {
        model.dispose();
      }
    });
  }
});
