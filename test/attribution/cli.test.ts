/**
 * lens explain / compare / verify as a user runs them: real model files, real PNGs, a real
 * gRPC server on loopback for verify.
 */
import { mkdtemp, readFile, rm, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLens } from '../helpers/cli.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { MAP_TOLERANCE_MARGIN } from '../../src/attribution/map-tolerance.js';
import { readNpy, readPngText } from '../../src/render/index.js';
import { saveLayersModelDir, writeRandomPng } from './helpers.js';

let dir: string;
let modelDir: string;
let imagesDir: string;

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'lens-attr-cli-'));
  modelDir = join(dir, 'model');
  imagesDir = join(dir, 'images');
  await saveLayersModelDir(modelDir, { shape: [16, 16, 3], classes: 4, seed: 7, labels: ['red', 'green', 'blue', 'grey'] });
  await mkdir(imagesDir);
  await writeRandomPng(join(imagesDir, 'a.png'), 16, 1);
  await writeRandomPng(join(imagesDir, 'b.png'), 20, 2);
  await writeRandomPng(join(imagesDir, 'c.png'), 16, 3);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lens explain', () => {
  it('prints one JSON object per image and writes a .npy that sums to F(x) - F(x\')', async () => {
    const out = join(dir, 'explain');
    const r = await runLens(['explain', '--model', modelDir, join(imagesDir, 'a.png'), join(imagesDir, 'b.png'), '--steps', '64', '--out', out, '--json', '--backend', 'cpu']);
    expect(r.stderr).not.toMatch(/lens:/);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines).toHaveLength(2);
    const first = lines[0]!;
    expect(Object.keys(first)).toEqual(expect.arrayContaining(['image', 'target', 'method', 'baseline', 'steps', 'rule', 'completeness', 'files', 'output']));
    expect(first).toMatchObject({ method: 'integrated_gradients', baseline: 'black', steps: 64, rule: 'gausslegendre', output: 'logit' });
    expect(['red', 'green', 'blue', 'grey']).toContain(first.target.label);
    const npy = await readNpy(first.files.npy);
    expect(npy.shape).toEqual([16, 16, 3]);
    expect(npy.descr).toBe('<f4');
    const sum = Array.from(npy.data as Float32Array).reduce((a, b) => a + b, 0);
    const { inputScore, baselineScore, delta } = first.completeness;
    expect(Math.abs(sum - (inputScore - baselineScore))).toBeCloseTo(delta, 4);
    expect(first.completeness.relative).toBeLessThan(0.05);
    const png = await readFile(first.files.png);
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    const text = readPngText(png);
    expect(text).toMatchObject({ method: 'integrated_gradients', baseline: 'black', steps: '64', rule: 'gausslegendre', target: String(first.target.index) });
    expect(Number(text.delta)).toBeCloseTo(delta, 6);
    const summary = JSON.parse(await readFile(first.files.json, 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ method: 'integrated_gradients', shape: [16, 16, 3] });
  });

  it('takes Expected Gradients references one path per --references, so the images after it stay images', async () => {
    const out = join(dir, 'explain-eg');
    const r = await runLens(['explain', '--model', modelDir, '--method', 'eg', '--references', imagesDir, '--references', join(imagesDir, 'b.png'), join(imagesDir, 'a.png'), '--steps', '4', '--out', out, '--json', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.map((l) => [l.image, l.method])).toEqual([[join(imagesDir, 'a.png'), 'expected_gradients']]);
  });

  it('explains each of the top-k classes and refuses unknown methods', async () => {
    const out = join(dir, 'explain-top');
    const r = await runLens(['explain', '--model', modelDir, join(imagesDir, 'c.png'), '--method', 'smoothgrad', '--samples', '4', '--target', 'top2', '--out', out, '--json', '--backend', 'cpu']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.map((l) => l.method)).toEqual(['smoothgrad(gradient)', 'smoothgrad(gradient)']);
    expect(lines[0]!.target.index).not.toBe(lines[1]!.target.index);
    expect(lines[0]!.completeness).toBeNull();
    const bad = await runLens(['explain', '--model', modelDir, join(imagesDir, 'c.png'), '--method', 'lime']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown method "lime"/);
  });

  it('explains one image per baseline of a list, with the path view and the curves of all baselines', async () => {
    const out = join(dir, 'explain-views');
    const r = await runLens(['explain', '--model', modelDir, join(imagesDir, 'a.png'), '--baseline', 'black,gaussian:sigma=0.2,samples=2', '--steps', '8', '--path-view', '0.5', '--curves', '4', '--out', out, '--json', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.map((l) => l.baseline)).toEqual(['black', 'gaussian(sigma=0.2,samples=2)']);
    expect(lines.map((l) => l.files.path)).toEqual([join(out, 'a.ig.black.path.png'), join(out, 'a.ig.gaussian-sigma=0.2-samples=2.path.png')]);
    const curves = JSON.parse(await readFile(join(out, 'a.ig.curves.json'), 'utf8')) as { curves: { name: string }[]; fractions: number[] };
    expect(curves.curves.map((c) => c.name)).toEqual(['black', 'gaussian:sigma=0.2,samples=2']);
    expect(curves.fractions).toEqual([0, 0.25, 0.5, 0.75, 1]);
    const outOfRange = await runLens(['explain', '--model', modelDir, join(imagesDir, 'a.png'), '--path-view', '2', '--out', out]);
    expect(outOfRange.stderr.trim()).toBe('lens: --path-view takes alpha between 0 and 1, got 2');
    const notIg = await runLens(['explain', '--model', modelDir, join(imagesDir, 'a.png'), '--method', 'occlusion', '--path-view', '0.5', '--out', out]);
    expect(notIg.stderr.trim()).toBe('lens: --path-view draws the Integrated Gradients path: use --method ig, not occlusion');
  });

  it('takes the nonuniform and adaptive rules through --rule and records their cost', async () => {
    const out = join(dir, 'explain-rules');
    const image = join(imagesDir, 'a.png');
    const adaptive = await runLens(['explain', '--model', modelDir, image, '--rule', 'adaptive', '--steps', '64', '--out', out, '--json', '--backend', 'cpu']);
    expect(adaptive.stderr).not.toMatch(/lens:/);
    expect(adaptive.code).toBe(0);
    const a = JSON.parse(adaptive.stdout) as Record<string, any>;
    expect(a).toMatchObject({ rule: 'adaptive', steps: 64 });
    expect(a.gradientEvaluations).toBeLessThanOrEqual(64);
    const saved = JSON.parse(await readFile(a.files.json, 'utf8')) as Record<string, any>;
    expect(saved.details).toMatchObject({ converged: true, tolerance: 0.01 });
    expect(a.completeness.relative).toBeLessThan(0.01);
    expect(saved.forwardEvaluations).toBeGreaterThanOrEqual(2 + 3);
    const nonuniform = await runLens(['explain', '--model', modelDir, image, '--rule', 'non-uniform', '--steps', '16', '--out', out, '--json', '--backend', 'cpu']);
    expect(nonuniform.code).toBe(0);
    expect(JSON.parse(nonuniform.stdout)).toMatchObject({ rule: 'nonuniform', steps: 16, gradientEvaluations: 16 });
    const bad = await runLens(['explain', '--model', modelDir, image, '--rule', 'adaptive', '--steps', '4', '--out', out, '--backend', 'cpu']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/needs steps >= 8 per baseline, got 4/);
  });

  it('places the steps itself with --map-tolerance and reports the accuracy in the JSON and the PNG text', async () => {
    const out = join(dir, 'explain-map');
    const image = join(imagesDir, 'b.png');
    const r = await runLens(['explain', '--model', modelDir, image, '--map-tolerance', '0.02', '--out', out, '--json', '--backend', 'cpu']);
    expect(r.stderr).not.toMatch(/lens:/);
    expect(r.code).toBe(0);
    const a = JSON.parse(r.stdout) as Record<string, any>;
    expect(a.rule).toBe('map_adaptive');
    expect(a.mapErrorEstimate).toBeGreaterThan(0);
    expect(a.mapErrorEstimate).toBeLessThanOrEqual(0.02 / MAP_TOLERANCE_MARGIN);
    expect(a.forwardEvaluations).toBe(2);
    const saved = JSON.parse(await readFile(a.files.json, 'utf8')) as Record<string, any>;
    expect(saved.mapErrorEstimate).toBe(a.mapErrorEstimate);
    expect(saved.details).toMatchObject({ converged: true, tolerance: 0.02, budget: 1024 });
    const text = readPngText(await readFile(a.files.png));
    expect(Number(text.map_error_estimate)).toBe(a.mapErrorEstimate);
    expect(Number(text.gradient_evaluations)).toBe(a.gradientEvaluations);
    expect(Number(text.forward_evaluations)).toBe(2);
    // A fixed rule reports its estimate too, from its own points.
    const fixed = JSON.parse((await runLens(['explain', '--model', modelDir, image, '--steps', '8', '--out', out, '--json', '--backend', 'cpu'])).stdout) as Record<string, any>;
    expect(fixed.rule).toBe('gausslegendre');
    expect(fixed.mapErrorEstimate).toBeGreaterThan(0);
    // A named rule does not take a map tolerance.
    const clash = await runLens(['explain', '--model', modelDir, image, '--rule', 'riemann_trapezoid', '--map-tolerance', '0.02', '--out', out, '--backend', 'cpu']);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/does not go with rule 'riemann_trapezoid'/);
  });
});

describe('lens compare', () => {
  it('writes a grid, a CSV and a markdown table with intervals per baseline', async () => {
    const out = join(dir, 'compare');
    // c.mask.png marks the top half of c.png as the object.
    await sharp(Buffer.from(Array.from({ length: 256 }, (_, p) => (p < 128 ? 255 : 0))), { raw: { width: 16, height: 16, channels: 1 } }).png().toFile(join(imagesDir, 'c.mask.png'));
    const r = await runLens(['compare', '--model', modelDir, '--images', imagesDir, '--baselines', 'black,blur:sigma=2,expected', '--steps', '16', '--curve-steps', '4', '--out', out, '--json', '--backend', 'cpu']);
    expect(r.stderr).not.toMatch(/lens:/);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { baselines: string[]; rows: Record<string, unknown>[]; summary: Record<string, Record<string, { mean: number; low: number; high: number }>> };
    expect(result.baselines).toEqual(['black', 'blur:sigma=2', 'expected']);
    expect(result.rows).toHaveLength(9);
    expect(result.rows.filter((row) => row.maskShare !== undefined)).toHaveLength(3);
    const black = result.summary.black!;
    // The summary is the mean of the rows, recomputed here; its bootstrap interval lies within the
    // rows' own range (a Student-t interval of 3 values would reach far outside it).
    for (const metric of ['deletionAuc', 'insertionAuc'] as const) {
      const values = result.rows.filter((row) => row.baseline === 'black').map((row) => row[metric] as number);
      expect(black[metric]!.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 12);
      expect(black[metric]!.low).toBeGreaterThanOrEqual(Math.min(...values));
      expect(black[metric]!.high).toBeLessThanOrEqual(Math.max(...values));
      expect(black[metric]!.high - black[metric]!.low).toBeGreaterThan(0);
    }
    const csv = (await readFile(join(out, 'compare.csv'), 'utf8')).trim().split('\n');
    expect(csv).toHaveLength(10);
    expect(csv[0]).toBe('image,baseline,target,label,probability,delta,relativeDelta,deletionAuc,insertionAuc,maskShare,pointing');
    const md = await readFile(join(out, 'compare.md'), 'utf8');
    expect(md).toMatch(/\| blur:sigma=2 \| [0-9.e-]+% \[/);
    const png = await readFile(join(out, 'compare.png'));
    expect((await sharp(png).metadata()).width).toBeGreaterThan(4 * 96);
    expect(readPngText(png)).toMatchObject({ baselines: 'black,blur:sigma=2,expected', steps: '16', scale: 'shared' });
    // The same grid as SVG for papers: same size, the pictures embedded.
    const svg = await readFile(join(out, 'compare.svg'), 'utf8');
    const pngMeta = await sharp(png).metadata();
    expect(svg).toContain(`width="${pngMeta.width}" height="${pngMeta.height}"`);
    expect(svg).toContain('data:image/png;base64,');
    // Per-panel scales: each coloured panel gets its own colour bar, so the grid grows taller.
    const panel = await runLens(['compare', '--model', modelDir, '--images', imagesDir, '--baselines', 'black,white', '--steps', '8', '--curve-steps', '0', '--scale', 'panel', '--out', join(dir, 'compare-panel'), '--backend', 'cpu']);
    expect(panel.code, panel.stderr).toBe(0);
    const panelPng = await readFile(join(dir, 'compare-panel', 'compare.png'));
    expect(readPngText(panelPng)).toMatchObject({ scale: 'panel' });
    const shared = await runLens(['compare', '--model', modelDir, '--images', imagesDir, '--baselines', 'black,white', '--steps', '8', '--curve-steps', '0', '--out', join(dir, 'compare-shared'), '--backend', 'cpu']);
    expect(shared.code, shared.stderr).toBe(0);
    const sharedPng = await readFile(join(dir, 'compare-shared', 'compare.png'));
    expect((await sharp(panelPng).metadata()).height).toBeGreaterThan((await sharp(sharedPng).metadata()).height!);
    const bad = await runLens(['compare', '--model', modelDir, '--images', imagesDir, '--scale', 'both', '--out', join(dir, 'x')]);
    expect(bad.stderr).toContain('--scale must be shared or panel');
  });
});

describe('lens verify', () => {
  it('accepts the served model and refuses a different local copy with MODEL_MISMATCH', async () => {
    const { startServer } = await import('../../src/serving/server.js');
    const { createServable } = await import('../../src/serving/servable.js');
    const { loadImageModel } = await import('../../src/models/load.js');
    const tf = await import('@tensorflow/tfjs-core');
    const base = join(dir, 'served');
    await cp(modelDir, join(base, '1'), { recursive: true });
    const other = join(dir, 'other');
    await saveLayersModelDir(other, { shape: [16, 16, 3], classes: 4, seed: 99 });
    // The server runs the same model files through the same loader (a stand-in for a SavedModel).
    const server = await startServer({
      port: 0,
      restApiPort: false,
      modelName: 'tiny',
      modelBasePath: base,
      fileSystemPollWaitSeconds: 0,
      loader: async (versionDir) => {
        const model = await loadImageModel(versionDir, { backend: 'cpu' });
        return createServable({
          signatures: {
            serving_default: {
              methodName: 'tensorflow/serving/predict',
              inputs: { images: { name: 'images:0', dtype: 'DT_FLOAT', shape: [-1, 16, 16, 3] } },
              outputs: { logits: { name: 'logits:0', dtype: 'DT_FLOAT', shape: [-1, 4] } },
            },
          },
          run: async (_sig, inputs) => {
            const x = inputs.images!;
            const t = tf.tensor4d(x.values as Float32Array, x.shape as [number, number, number, number]);
            const y = await model.forward(t);
            t.dispose();
            const values = (await y.data()) as Float32Array;
            const shape = y.shape;
            y.dispose();
            return { logits: { dtype: 'float32', shape, values } };
          },
          dispose: () => model.dispose(),
        });
      },
    });
    try {
      const target = `127.0.0.1:${server.grpcPort}`;
      const ok = await runLens(['verify', '--server', target, '--model', 'tiny', '--local', modelDir, imagesDir, '--json', '--backend', 'cpu']);
      expect(ok.stderr).not.toMatch(/lens:/);
      expect(ok.code).toBe(0);
      const report = JSON.parse(ok.stdout) as { ok: boolean; images: { maxProbabilityDifference: number }[] };
      expect(report.ok).toBe(true);
      expect(report.images).toHaveLength(3);
      const bad = await runLens(['verify', '--server', target, '--model', 'tiny', '--local', other, imagesDir, '--backend', 'cpu']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/does not answer like the served model tiny/);
      expect(bad.stdout).toMatch(/^DIFF /m);
      // A local copy with another number of classes (and labels of its own) is named as such.
      const three = join(dir, 'three-classes');
      await saveLayersModelDir(three, { shape: [16, 16, 3], classes: 3, seed: 5, labels: ['a', 'b', 'c'] });
      const other3 = await runLens(['verify', '--server', target, '--model', 'tiny', '--local', three, imagesDir, '--backend', 'cpu']);
      expect(other3.code).toBe(1);
      expect(other3.stderr).toMatch(/^lens: the local model \S+ has 3 classes but the served model tiny has 4: they are not the same model$/m);
      // explain against the served model runs the same check first and refuses.
      const refused = await runLens(['explain', '--model', other, '--server', target, '--served-model', 'tiny', join(imagesDir, 'a.png'), '--out', join(dir, 'x'), '--backend', 'cpu']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/does not answer like the served model/);
      // Forward-only methods run against the server alone.
      const remote = await runLens(['explain', '--server', target, '--served-model', 'tiny', '--method', 'occlusion', '--window', '4', join(imagesDir, 'a.png'), '--out', join(dir, 'remote'), '--json']);
      expect(remote.stderr).not.toMatch(/lens:/);
      expect(JSON.parse(remote.stdout)).toMatchObject({ method: 'occlusion', model: 'tiny' });
    } finally {
      await server.close();
    }
  });
});
