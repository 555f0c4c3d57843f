import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { enableWasmThreads } from '../../src/engines/tfjs/wasm-threads.js';
import { REPO_ROOT } from '../helpers/cli.js';
import type { ChildReport } from './fixtures/wasm-threads-child.js';

const CHILD = resolve(REPO_ROOT, 'test/perf/fixtures/wasm-threads-child.ts');
const CHILD_TIMEOUT_MS = 120_000;

/**
 * Runs the fixture in its own process: one tfjs wasm module per process (tfjs kernels bind to
 * the module that initialised last), and the child must also exit by itself, which it cannot if
 * a pthread keeps its event loop alive.
 */
function runChild(threads: number): Promise<ChildReport> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(threads)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`the ${threads}-thread child did not exit within ${CHILD_TIMEOUT_MS / 1000} s (a pthread holding the event loop?); stdout: ${stdout.slice(0, 200)}`));
    }, CHILD_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) fail(new Error(`the ${threads}-thread child exited with ${code}: ${stderr.slice(-1500)}`));
      else done(JSON.parse(line) as ChildReport);
    });
  });
}

function maxRelDiff(a: readonly number[], b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

describe('wasm threads', () => {
  it('the threaded build gives the logits and input gradients of the single-threaded one', async (ctx) => {
    const [single, threaded] = await Promise.all([runChild(1), runChild(2)]);
    expect(single.backend).toBe('wasm (SIMD, 1 thread)');
    expect(single.gradients.length).toBe(3 * 32 * 32 * 3);
    expect(single.gradients.some((g) => g !== 0)).toBe(true);
    // Skip only for the documented platform reason (a JavaScript engine without shared WebAssembly
    // memory, where enableWasmThreads falls back by design), and never on CI; a build that fails to
    // start or any other reason is a failure.
    const reason = threaded.threads?.reason ?? 'no answer';
    if (!threaded.threads?.enabled) {
      if (!process.env.CI && /no shared WebAssembly memory/.test(reason)) ctx.skip(`wasm threads are not available here: ${reason}`);
      expect.fail(`wasm threads did not start: ${reason}`);
    }
    expect(threaded.threads).toEqual({ enabled: true, threads: 2 });
    expect(threaded.backend).toBe('wasm (SIMD, 2 threads)');
    // XNNPACK splits outputs between threads without reordering any sum: equal up to rounding.
    expect(maxRelDiff(threaded.logits, single.logits)).toBeLessThan(1e-6);
    expect(maxRelDiff(threaded.values, single.values)).toBeLessThan(1e-6);
    expect(maxRelDiff(threaded.gradients, single.gradients)).toBeLessThan(1e-6);
  });

  it('rejects a bad thread count, and changes nothing once the wasm backend is initialised', async () => {
    await expect(enableWasmThreads(0)).rejects.toThrow(/threads 0 is not a whole number of at least 1/);
    await expect(enableWasmThreads(1.5)).rejects.toThrow(/threads 1.5/);
    const saved = process.env.LENS_WASM_THREADS;
    process.env.LENS_WASM_THREADS = 'two';
    try {
      await expect(enableWasmThreads()).rejects.toThrow(/LENS_WASM_THREADS="two" is not a whole number/);
    } finally {
      if (saved === undefined) delete process.env.LENS_WASM_THREADS;
      else process.env.LENS_WASM_THREADS = saved;
    }
    expect(await enableWasmThreads(1)).toEqual({ enabled: false, threads: 1, reason: 'one thread requested (threads 1)' });
    const info = await initBackend({ backend: 'wasm' });
    expect(info.threads).toBe(false);
    const late = await enableWasmThreads(2);
    expect(late.enabled).toBe(false);
    expect(late.threads).toBe(1);
    expect(late.reason).toMatch(/already initialised.*before initBackend\(\)/);
  });
});
