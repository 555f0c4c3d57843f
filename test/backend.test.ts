import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { describeBackend, initBackend } from '../src/engines/tfjs/index.js';
import { runLens } from './helpers/cli.js';
import type { EngineInitReport } from './perf/fixtures/engine-init-child.js';

describe('backend selection', () => {
  it('falls back to wasm with SIMD, threaded on every core, when the native packages are absent', async () => {
    // The default, not the single thread vitest.config.ts sets for the other test files.
    delete process.env.LENS_WASM_THREADS;
    const info = await initBackend();
    expect(info.name).toBe('wasm');
    expect(info.simd).toBe(true);
    expect(info.skipped.map((s) => s.choice)).toEqual(['tensorflow-gpu', 'tensorflow']);
    expect(tf.getBackend()).toBe('wasm');
    const cores = Math.min(availableParallelism(), 8);
    expect(info.threadCount).toBe(cores);
    expect(describeBackend(info)).toBe(cores > 1 ? `wasm (SIMD, ${cores} threads)` : 'wasm (SIMD, 1 thread)');
  });

  it('honours an explicit choice and rejects unknown names', async () => {
    const cpu = await initBackend({ backend: 'cpu' });
    expect(cpu.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await expect(initBackend({ backend: 'tpu' })).rejects.toThrow(/unknown backend "tpu"/);
    await expect(initBackend({ backend: 'tensorflow-gpu' })).rejects.toThrow(/tfjs-node-gpu is not installed/);
  });

  it('lens doctor reports the backend and the GPU install command', async () => {
    const r = await runLens(['doctor', '--json'], { env: { LENS_BACKEND: 'wasm' } });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { backend: { name: string }; gpuInstall: string };
    expect(report.backend.name).toBe('wasm');
    expect(report.gpuInstall).toBe('npm install @tensorflow/tfjs-node-gpu@4.22.0');
  });

  it('registers nothing on import; initBackend loads the backend it picks, and tfjs-layers only with gradients', async () => {
    // A fresh process: this file's own imports have loaded tfjs-layers already.
    const halfPlusTwo = resolve('../shared/testdata/savedmodels/saved_model_half_plus_two_tf2_cpu/00000123');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/perf/fixtures/engine-init-child.ts', halfPlusTwo], { timeout: 120_000 });
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as EngineInitReport;
    expect(report.imported).toEqual({ backends: [], layers: false });
    // initBackend({ gradients: false }) and a SavedModel served forward, as lens serve does.
    expect(report.forwardOnly).toEqual({ backends: ['cpu'], layers: false, avgPoolGradient: 'none', prediction: [2.5, 3.5] });
    // initBackend() installs the stock gradients (from tfjs-layers) and then the replacements over them.
    expect(report.withGradients).toEqual({ layers: true, avgPoolGradient: 'lens' });
  });
});
