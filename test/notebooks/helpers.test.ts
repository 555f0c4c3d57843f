/**
 * The library helpers the notebooks and the demo call (src/notebook), on real files, real PNGs,
 * a real SavedModel export and a real loopback HTTP server.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integratedGradients } from '../../src/attribution/index.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { SHAPE_CLASSES } from '../../src/datasets/shapes.js';
import { exportSavedModel } from '../../src/export/index.js';
import { loadPixels, readImageBytes } from '../../src/image/index.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { buildShapesResNet, writeLayersModel } from '../../src/models/shapes-resnet.js';
import {
  attributionGridPng,
  constantImage,
  csvTable,
  imageRowPng,
  notebookModelSpec,
  notebookOutDir,
  pathGradientsChartPng,
  pathImages,
  pathPicturesPng,
  pathScoresChartPng,
  sampleImages,
  serveFiles,
  spreadIndices,
  topClasses,
  validateServable,
  writeShapeImages,
} from '../../src/notebook/index.js';

let tmp: string;
let model: LoadedImageModel;
let other: LoadedImageModel;

/** A small shapes ResNet (16 px) saved as a model folder with lens.json, loaded like any model. */
async function smallModel(dir: string, seed: number): Promise<LoadedImageModel> {
  await writeLayersModel(buildShapesResNet({ inputSize: 16, stemFilters: 4, stageFilters: [8], seed }), dir);
  writeFileSync(join(dir, 'lens.json'), JSON.stringify({ name: `small-${seed}`, inputShape: [16, 16, 3], classes: 5, labels: [...SHAPE_CLASSES], preprocessing: 'unit', output: 'logit', format: 'layers' }));
  return loadImageModel(dir);
}

beforeAll(async () => {
  await initBackend();
  tmp = mkdtempSync(join(tmpdir(), 'lens-notebook-helpers-'));
  model = await smallModel(join(tmp, 'model-a'), 1);
  other = await smallModel(join(tmp, 'model-b'), 2);
});
afterAll(() => {
  model?.dispose();
  other?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('tables and paths', () => {
  it('writes CSV with RFC 4180 quoting and the union of columns', () => {
    expect(csvTable([{ a: 1, b: 'x,y' }, { a: 0.5, c: 'say "hi"' }, { b: null }])).toBe('a,b,c\n1,"x,y",\n0.5,,"say ""hi"""\n,,\n');
  });

  it('spreads path indices evenly with both ends', () => {
    expect(spreadIndices(64, 5)).toEqual([0, 16, 32, 47, 63]);
    expect(spreadIndices(3, 8)).toEqual([0, 1, 2]);
    expect(spreadIndices(10, 1)).toEqual([0]);
  });

  it('interpolates path images between baseline and image', () => {
    const image = { data: Float32Array.from([200, 100]), height: 1, width: 2, channels: 1 };
    const [start, mid, end] = pathImages(image, { ...image, data: Float32Array.from([0, 20]) }, [0, 0.5, 1]);
    expect(Array.from(start!.data)).toEqual([0, 20]);
    expect(Array.from(mid!.data)).toEqual([100, 60]);
    expect(Array.from(end!.data)).toEqual([200, 100]);
  });

  it('takes the model and the output folder from the environment, with offline defaults', () => {
    expect(notebookModelSpec({ env: {} })).toBe('default');
    expect(notebookModelSpec({ env: { LENS_MODEL: '/models/x.h5' } })).toBe('/models/x.h5');
    // A zoo model is used only when it is already cached.
    expect(notebookModelSpec({ env: {}, prefer: 'resnet50', cacheDir: join(tmp, 'empty-cache') })).toBe('default');
    expect(notebookOutDir('01', { LENS_OUT: '/tmp/x' })).toBe('/tmp/x/01');
  });
});

describe('images', () => {
  it('writes shapes as JPEG files with masks beside them, and reads LENS_DATA folders with their masks', async () => {
    const dir = join(tmp, 'shapes');
    const written = await writeShapeImages(dir, { count: 3, size: 16, seed: 4 });
    expect(written.map((s) => s.path)).toEqual(written.map((s) => join(dir, `${s.name}.jpg`)));
    const meta = await sharp(readFileSync(written[0]!.path)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 16, 16]);
    const fromData = await sampleImages({ dir: join(tmp, 'unused'), env: { LENS_DATA: dir }, size: 16, count: 2 });
    expect(fromData.map((s) => s.name)).toEqual(written.slice(0, 2).map((s) => `${s.name}.jpg`));
    expect(Array.from(fromData[0]!.mask!)).toEqual(Array.from(written[0]!.mask!));
  });

  it('serves a folder over loopback HTTP, and nothing outside it', async () => {
    const [sample] = await writeShapeImages(join(tmp, 'served'), { count: 1, size: 16 });
    const files = await serveFiles(join(tmp, 'served'));
    try {
      const url = files.url(`${sample!.name}.jpg`);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
      expect((await readImageBytes(url)).equals(readFileSync(sample!.path))).toBe(true);
      expect((await loadPixels(url, { size: [16, 16] })).width).toBe(16);
      expect((await fetch(`${files.baseUrl}/..%2f..%2fetc/passwd`)).status).toBe(404);
      expect((await fetch(`${files.baseUrl}/missing.jpg`)).status).toBe(404);
      expect(() => files.url('../outside.jpg')).toThrow(/outside the served folder/);
    } finally {
      await files.close();
    }
  });
});

describe('pictures and charts', () => {
  it('draws rows, grids, path pictures and path charts as PNGs', async () => {
    const [sample] = await writeShapeImages(join(tmp, 'pics'), { count: 1, size: 16, seed: 9 });
    const image = await loadPixels(sample!.path, { size: [16, 16] });
    const grey = constantImage([16, 16, 3], 127.5);
    const ig = await integratedGradients(model, image, { baseline: { kind: 'image', image: grey, name: 'grey' }, steps: 6, rule: 'riemann_trapezoid', returnPath: 'gradients' });
    const black = await integratedGradients(model, image, { baseline: 'black', steps: 6 });
    const pngs = [
      await imageRowPng([image, grey], { titles: ['image', 'grey'] }),
      await attributionGridPng([{ image, title: 'x', attributions: [ig, black] }], { columnTitles: ['grey', 'black'] }),
      await attributionGridPng([{ image, attributions: [ig, black] }], { scale: 'per-map', showImage: false }),
      await pathPicturesPng(ig, image, grey, { count: 4 }),
      await pathScoresChartPng(ig, { labels: model.labels! }),
      await pathGradientsChartPng(ig, image, grey),
    ];
    for (const png of pngs) expect((await sharp(png).metadata()).format).toBe('png');
    // Four path points in two rows, after the row titles: wider than tall.
    const path = await sharp(pngs[3]!).metadata();
    expect(path.width!).toBeGreaterThan(path.height!);
    await expect(pathPicturesPng(black, image, grey)).rejects.toThrow(/no path/);
  });
});

describe('validateServable', () => {
  let servable: string;
  let images: string[];
  beforeAll(async () => {
    servable = (await exportSavedModel(model, join(tmp, 'servable'), { version: 1, topK: 3 })).dir;
    images = (await writeShapeImages(join(tmp, 'validate'), { count: 3, size: 16, seed: 2 })).map((s) => s.path);
  });

  it('passes every check on an export of the model, and answers like the model', async () => {
    const v = await validateServable(servable, { images, reference: model });
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.checks.length).toBeGreaterThanOrEqual(9);
    expect(v.signatures.map((s) => s.name)).toEqual(['predict', 'predict_pixels', 'serving_default']);
    const local = await topClasses(model, await Promise.all(images.map((p) => loadPixels(p, { size: [16, 16] }))), 3);
    expect(v.predictions.map((p) => p.top.map((t) => t.index))).toEqual(local.map((t) => t.map((c) => c.index)));
  });

  it('fails the agreement checks against a different model', async () => {
    const v = await validateServable(servable, { images, reference: other });
    expect(v.ok).toBe(false);
    const failed = v.checks.filter((c) => !c.ok).map((c) => c.check);
    expect(failed).toContain(`agrees with ${other.name} on the decoded images`);
    expect(failed).toContain(`predict_pixels (float pixels) agrees with ${other.name}`);
  });

  it('reports a folder that is not a SavedModel as its only, failed, check', async () => {
    const v = await validateServable(join(tmp, 'validate'), { images });
    expect(v.ok).toBe(false);
    expect(v.checks).toHaveLength(1);
    expect(v.checks[0]!.check).toBe('SavedModel loads (tag serve)');
  });
});
