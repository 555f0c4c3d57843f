import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isHeapExhausted, memoryBudgetBytes, withMemoryBudget, type BatchPlan } from '../../src/engines/tfjs/memory.js';
import { isLensError } from '../../src/core/errors.js';
import { SHAPE, linearModel } from './fixtures/linear-model.js';

describe('batches split to fit memory', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('measures the first image, splits the rest by the budget, and returns what one call would', async () => {
    const plain = linearModel();
    const plans: BatchPlan[] = [];
    // Measure one image's cost with a throwaway wrapper, then allow about 2.5 images per call.
    const probe = withMemoryBudget(linearModel());
    tf.dispose(Object.values(await probe.gradient!(tf.ones([1, ...SHAPE]), 0)));
    const perImage = probe.plans.gradient!.bytesPerImage;
    const split = withMemoryBudget(plain, { budgetBytes: 2.5 * perImage, onPlan: (p) => plans.push(p) });
    const x = tf.randomUniform([7, ...SHAPE], 0, 255, 'float32', 1) as tf.Tensor4D;
    const targets = [0, 1, 2, 0, 1, 2, 0];
    const got = await split.gradient!(x, targets);
    const want = await linearModel().gradient!(x, targets);
    expect(plans).toEqual([{ op: 'gradient', bytesPerImage: perImage, budgetBytes: 2.5 * perImage, batch: 2 }]);
    expect(Array.from(await got.gradients.data())).toEqual(Array.from(await want.gradients.data()));
    expect(Array.from(await got.values.data())).toEqual(Array.from(await want.values.data()));
    const scores = await split.forward(x);
    expect(scores.shape).toEqual([7, 3]);
    expect(split.plans.forward?.batch).toBeGreaterThanOrEqual(1);
  });

  it('turns a heap overflow into a BACKEND_FAILED error that says what to do', async () => {
    const failing = withMemoryBudget(linearModel({ failAbove: 0 }));
    const e = await failing.gradient!(tf.ones([2, ...SHAPE]), 0).catch((err: unknown) => err);
    expect(isLensError(e, 'BACKEND_FAILED')).toBe(true);
    expect(isHeapExhausted(e)).toBe(true);
    expect(String((e as Error).message)).toMatch(/ran out of memory in a gradient pass of model linear.*parallelGradientModel/);
  });

  it('budgets 2 GiB on wasm unless LENS_MEMORY_BUDGET_MB says otherwise', () => {
    expect(memoryBudgetBytes()).toBe(2 ** 31);
    process.env.LENS_MEMORY_BUDGET_MB = '100';
    try {
      expect(memoryBudgetBytes()).toBe(100 * 2 ** 20);
    } finally {
      delete process.env.LENS_MEMORY_BUDGET_MB;
    }
  });
});
