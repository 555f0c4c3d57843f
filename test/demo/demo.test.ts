/**
 * `npm run demo` (the README's main-job command) on the bundled model, writing into a temporary
 * folder: every promised file is there and is what it says; failures name their step and never
 * leave the local server running.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, type DemoResult } from '../../src/demo/index.js';
import { readPngText } from '../../src/render/index.js';
import { REPO_ROOT, runLens, type CliResult } from '../helpers/cli.js';
import { ensureDist } from '../helpers/dist.js';

function npmRunDemo(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'demo', '--', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Resolves true when something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lens-demo-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm run demo', () => {
  let run: CliResult;
  let out: string;
  beforeAll(async () => {
    await ensureDist();
    out = join(tmp, 'out', 'demo');
    run = await npmRunDemo(['--out', out]);
  }, 240_000);

  it('exits 0, reports progress on stderr and prints where the files are', () => {
    expect(run.code, run.stderr).toBe(0);
    for (let step = 1; step <= 7; step++) expect(run.stderr).toContain(`[${step}/7]`);
    for (const file of ['grid.png', 'report.md', 'summary.json']) expect(run.stdout).toContain(join(out, file));
    expect(run.stdout).toContain(join(out, 'servable', '1'));
  });

  it('writes a grid PNG that decodes and carries its metadata in text chunks', async () => {
    const png = readFileSync(join(out, 'grid.png'));
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(400);
    expect(meta.height).toBeGreaterThan(600);
    const text = readPngText(png);
    expect(text).toMatchObject({ method: 'integrated_gradients', baselines: 'black,blur,uniform', steps: '64', Software: 'serving-lens', scale: 'shared' });
    expect(text.images?.split(',')).toHaveLength(6);
    // The same grid as SVG, same size.
    const svg = readFileSync(join(out, 'grid.svg'), 'utf8');
    expect(svg).toContain(`width="${meta.width}" height="${meta.height}"`);
  });

  it('draws one colour scale per panel with --scale panel', async () => {
    const panelOut = join(tmp, 'out', 'demo-panel');
    const panel = await npmRunDemo(['--out', panelOut, '--images', '2', '--steps', '8', '--scale', 'panel']);
    expect(panel.code, panel.stderr).toBe(0);
    const png = readFileSync(join(panelOut, 'grid.png'));
    expect(readPngText(png)).toMatchObject({ scale: 'panel' });
    const bad = await npmRunDemo(['--out', panelOut, '--scale', 'both']);
    expect(bad.stderr).toContain('--scale must be shared or panel');
  }, 240_000);

  it('exports a servable SavedModel and the images it served', () => {
    const version = join(out, 'servable', '1');
    expect(existsSync(join(version, 'saved_model.pb'))).toBe(true);
    expect(existsSync(join(version, 'variables', 'variables.index'))).toBe(true);
    const images = readdirSync(join(out, 'images'));
    expect(images.filter((f) => f.endsWith('.jpg'))).toHaveLength(6);
    expect(images.filter((f) => f.endsWith('.mask.png'))).toHaveLength(6);
  });

  it('reports predictions over gRPC and REST, completeness and in-mask shares', () => {
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as DemoResult;
    expect(summary.validation.ok).toBe(true);
    expect(summary.predictions).toHaveLength(6);
    for (const p of summary.predictions) {
      expect(p.rest.index).toBe(p.grpc.index);
      expect(Math.abs(p.rest.probability - p.grpc.probability)).toBeLessThan(1e-6);
    }
    // The bundled model is trained to 95%+ on these shapes: the served answers are mostly right.
    const correct = summary.predictions.filter((p) => p.grpc.label === p.truth).length;
    expect(correct).toBeGreaterThanOrEqual(5);
    expect(summary.agreement.maxProbabilityDifference).toBeLessThan(1e-3);
    expect(summary.baselines.map((b) => b.baseline)).toEqual(['black', 'blur', 'uniform']);
    for (const b of summary.baselines) {
      expect(b.meanRelativeDelta).toBeLessThan(0.05);
      expect(b.maskShare).toBeGreaterThan(0);
    }
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toContain('## Predictions');
    for (const p of summary.predictions) expect(report).toContain(p.image);
    expect(report).toContain('| black |');
    expect(report).toContain('](grid.png)');
  });
});

describe('lens demo failures', () => {
  it('names the step that failed and exits 1', async () => {
    const r = await runLens(['demo', '--out', join(tmp, 'bad'), '--model', join(tmp, 'no-such-model')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('demo step "model" failed');
    expect(r.stderr).toContain('no-such-model');
  });

  it('rejects bad flags before doing any work', async () => {
    const r = await runLens(['demo', '--out', join(tmp, 'bad-flags'), '--steps', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--steps must be a whole number >= 2');
    expect(existsSync(join(tmp, 'bad-flags'))).toBe(false);
  });

  it('closes the local server when a later step fails', async () => {
    let grpcPort = 0;
    await expect(
      runDemo({
        out: join(tmp, 'interrupted'),
        images: 2,
        steps: 4,
        onProgress(p) {
          if (p.stage !== 'predict') return;
          grpcPort = Number(/gRPC \(127\.0\.0\.1:(\d+)\)/.exec(p.message)?.[1]);
          expect(grpcPort).toBeGreaterThan(0);
          throw new Error('stopped by the test');
        },
      }),
    ).rejects.toThrow('stopped by the test');
    expect(grpcPort).toBeGreaterThan(0);
    expect(await listening(grpcPort)).toBe(false);
  });
});
