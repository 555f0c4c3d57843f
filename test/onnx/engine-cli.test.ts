/**
 * The engine as users choose it: `--engine` on the CLI, LENS_ORT_THREADS, and what `lens doctor`
 * reports.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxThreads } from '../../src/engines/onnx/index.js';
import { SHARED, runLens } from '../helpers/cli.js';

const IMAGE = join(SHARED, 'images/parrot.jpg');

describe('choosing the engine', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lens-engine-cli-'));
  });
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('lens explain runs the bundled model on onnxruntime by default and on tfjs with --engine tfjs, and says so', async () => {
    const runs = await Promise.all(
      [[], ['--engine', 'tfjs']].map((extra) =>
        runLens(['explain', IMAGE, '--model', 'default', '--resize', 'squash', '--steps', '8', '--out', out, '--json', ...extra]),
      ),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const [auto, tfjs] = runs.map((r) => JSON.parse(r.stdout.trim().split('\n')[0]!) as { engine: string; target: { index: number }; completeness: { sum: number } });
    expect(auto!.engine).toMatch(/^onnxruntime-node \d+\.\d+\.\d+ \(CPU, \d+ threads?\)$/);
    expect(tfjs!.engine).toMatch(/^tfjs wasm$/);
    // Same model, same explanation, whichever engine ran it.
    expect(auto!.target.index).toBe(tfjs!.target.index);
    expect(auto!.completeness.sum).toBeCloseTo(tfjs!.completeness.sum, 3);
  });

  it('rejects an unknown --engine, naming the choices', async () => {
    const r = await runLens(['explain', IMAGE, '--model', 'default', '--engine', 'gpu', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown engine "gpu" \(from LENS_ENGINE or --engine\): expected one of auto, onnxruntime, tfjs/);
  });

  it('lens doctor reports the engine and onnxruntime', async () => {
    const r = await runLens(['doctor', '--json'], { env: { LENS_ENGINE: 'auto' } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { engineChoice: string; engine: string; onnxruntime: { available: boolean; version?: string } };
    expect(report.engineChoice).toBe('auto');
    expect(report.onnxruntime.available).toBe(true);
    expect(report.engine).toContain(`onnxruntime-node ${report.onnxruntime.version}`);
  });

  it('LENS_ORT_THREADS sets the threads and rejects nonsense', async () => {
    expect(onnxThreads({ LENS_ORT_THREADS: '3' })).toBe(3);
    expect(onnxThreads({})).toBeGreaterThan(0);
    expect(() => onnxThreads({ LENS_ORT_THREADS: 'many' })).toThrow(/LENS_ORT_THREADS must be a whole number of at least 1, got "many"/);
    expect(() => onnxThreads({ LENS_ORT_THREADS: '0' })).toThrow(/got "0"/);
    // An error, not a quiet fall back to tfjs.
    for (const args of [['doctor'], ['explain', IMAGE, '--model', 'default', '--resize', 'squash', '--steps', '8', '--out', out]]) {
      const r = await runLens(args, { env: { LENS_ORT_THREADS: 'many' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/LENS_ORT_THREADS must be a whole number of at least 1, got "many"/);
    }
  });
});
