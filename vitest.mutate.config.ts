import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The fast unit tests that exercise the numeric modules `npm run mutate` mutates (stryker.config.json).
// Stryker runs each mutant only against the tests that cover it, so this list bounds its run time.
// (Built from the base config by hand: mergeConfig would append this list to the base's include.)
export default defineConfig({
  test: {
    ...base.test,
    include: [
      'test/tensor/codec.test.ts',
      'test/savedmodel/bundle.test.ts',
      'test/savedmodel/reference.test.ts',
      'test/savedmodel/variable-keys.test.ts',
      'test/attribution/building-blocks.test.ts',
      'test/attribution/baselines.test.ts',
      'test/attribution/adaptive-rules.test.ts',
      'test/attribution/integrated-gradients.test.ts',
      'test/attribution/map-error.test.ts',
      'test/attribution/metrics.test.ts',
      'test/attribution/proportion-intervals.test.ts',
    ],
  },
});
