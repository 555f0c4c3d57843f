import { defineConfig } from 'vitest/config';

// Two cores on CI: run test files in two forked processes. Model tests load real files and
// run real kernels, so per-test timeouts are generous; timings themselves live in `npm run bench`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The two forks already take both cores: single-threaded wasm (and onnxruntime) in the tests.
    // The threaded defaults are tested on purpose in test/backend.test.ts and test/perf/wasm-threads.test.ts.
    env: { LENS_WASM_THREADS: '1', LENS_ORT_THREADS: '1' },
  },
});
