/**
 * Bugs planted on purpose by `npm run plants` (scripts/plant-bugs.ts). Each one slipped through the
 * suite once; `tests` are the files that must now fail with it.
 */
export interface Plant {
  name: string;
  /** What the bug does, in a few words. */
  what: string;
  file: string;
  /** Exact text in `file`, found exactly once. */
  find: string;
  replace: string;
  tests: string[];
}

export const PLANTS: Plant[] = [
  {
    name: 'batchnorm-scale-offset-swapped',
    what: 'TF2 SavedModel variables: gamma read from beta and beta from gamma',
    file: 'src/convert/graph/variables.ts',
    find: "return attrs.find((a) => a.name === 'VARIABLE_VALUE')?.checkpoint_key;",
    replace:
      "const key = attrs.find((a) => a.name === 'VARIABLE_VALUE')?.checkpoint_key;\n      return key?.includes('/gamma/') ? key.replace('/gamma/', '/beta/') : key?.includes('/beta/') ? key.replace('/beta/', '/gamma/') : key;",
    tests: ['test/savedmodel/reference.test.ts'],
  },
  {
    name: 'unknown-method-accepted',
    what: 'parseMethod accepts any method name',
    file: 'src/attribution/methods.ts',
    find: 'if ((METHOD_NAMES as readonly string[]).includes(name)) return name as MethodName;',
    replace: 'return name as MethodName;',
    tests: ['test/attribution/building-blocks.test.ts'],
  },
  {
    name: 'blur-ig-sigmas-halved',
    what: 'Blur IG integrates over half the blur it states',
    file: 'src/attribution/blur-ig.ts',
    find: 'const sigmas = Array.from({ length: steps + 1 }, (_, i) => (options.sqrt ? maxSigma * Math.sqrt(i / steps) : (maxSigma * i) / steps));',
    replace: 'const sigmas = Array.from({ length: steps + 1 }, (_, i) => (options.sqrt ? maxSigma * Math.sqrt(i / steps) : (maxSigma * i) / steps) / 2);',
    tests: ['test/attribution/methods.test.ts'],
  },
  {
    name: 'tflite-gradient-doubled',
    what: 'TFLite models (converted graphs run on tfjs) report input gradients twice too large (scores unchanged)',
    file: 'src/models/graph.ts',
    find: 'scores: (x) => tf.reshape(graph.execute(x, target) as tf.Tensor, [x.shape[0], -1]) as tf.Tensor2D,',
    replace:
      'scores: (x) => tf.customGrad((t: tf.Tensor) => ({ value: tf.clone(t), gradFunc: (dy: tf.Tensor) => tf.mul(dy, 2) }))(tf.reshape(graph.execute(x, target) as tf.Tensor, [x.shape[0], -1])) as tf.Tensor2D,',
    tests: ['test/import/tflite.test.ts'],
  },
  {
    name: 'served-pixels-sent-as-jpeg',
    what: 'the remote model sends synthetic pixels as lossy JPEG (quality 95) instead of PNG',
    file: 'src/models/remote.ts',
    find: 'pngs.push(await encodePng({ data: data.subarray(i * per, (i + 1) * per), height: h, width: w, channels: c }));',
    replace: "pngs.push(await (await import('../image/index.js')).encodeJpeg({ data: data.subarray(i * per, (i + 1) * per), height: h, width: w, channels: c }));",
    tests: ['test/export/serve.test.ts', 'test/serving/tools.test.ts'],
  },
  {
    name: 'insertion-curve-reversed',
    what: 'deletion and insertion curves take pixels from the least attributed first',
    file: 'src/attribution/metrics.ts',
    find: 'const order = Array.from({ length: h * w }, (_, i) => i).sort((a, b) => map[b]! - map[a]! || a - b);',
    replace: 'const order = Array.from({ length: h * w }, (_, i) => i).sort((a, b) => map[a]! - map[b]! || a - b);',
    tests: ['test/attribution/metrics.test.ts'],
  },
  {
    name: 'xrai-picks-the-worst-region',
    what: 'XRAI adds the segment of least attribution density first',
    file: 'src/attribution/xrai.ts',
    find: 'if (gain > bestGain) {',
    replace: 'if (-gain > bestGain) {',
    tests: ['test/attribution/methods.test.ts', 'test/attribution/building-blocks.test.ts'],
  },
];
