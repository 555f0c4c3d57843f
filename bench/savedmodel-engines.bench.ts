/**
 * SavedModels on both engines: forward and input-gradient milliseconds per image at batch 8, for
 * TensorFlow.js (the converted graph) and onnxruntime (the graph compiled by src/engines/onnx/graph-compile.ts).
 * Fixtures: the shared TF1 CIFAR CNN, the TF2 keyword-spotting DS-CNN, and a `lens export` of the
 * bundled ResNet-style architecture. Run alone: `npx tsx bench/savedmodel-engines.bench.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engines/tfjs/index.js';
import { exportSavedModel } from '../src/export/export.js';
import { loadImageModel } from '../src/models/load.js';
import { buildShapesResNet } from '../src/models/shapes-resnet.js';
import { median, modelPass, timeRuns, writeBenchResult, type Cell } from './lib.js';

const BATCH = 8;
const CNN = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../shared/testdata/savedmodels-cnn');
const backend = await initBackend();
const tmp = mkdtempSync(join(tmpdir(), 'lens-bench-sm-engines-'));
const rows: Record<string, Cell>[] = [];

try {
  const shapes = buildShapesResNet({ seed: 1 });
  const exported = await exportSavedModel({ name: 'shapes', structure: { kind: 'layers', model: shapes }, preprocessing: 'unit' }, join(tmp, 'shapes'), { version: 1 });
  shapes.dispose();
  const models: [string, string, string | undefined][] = [
    ['dotnet-cifar-conv-tf1 (32x32x3)', join(CNN, 'dotnet-cifar-conv-tf1'), 'unit'],
    ['mlcommons-tiny-kws-dscnn-tf2 (49x10x1)', join(CNN, 'mlcommons-tiny-kws-dscnn-tf2'), 'unit'],
    ['lens export of shapes-resnet (64x64x3)', exported.dir, undefined],
  ];
  for (const [label, dir, preprocess] of models) {
    for (const engine of ['tfjs', 'onnxruntime']) {
      const model = await loadImageModel(dir, { engine, ...(preprocess ? { preprocess } : {}) });
      const x = tf.randomUniform([BATCH, ...model.inputShape], 0, 255, 'float32', 1) as tf.Tensor4D;
      const forward = median(await timeRuns(() => modelPass(model, 'forward', x, 0), 7, 2)) / BATCH;
      const gradient = median(await timeRuns(() => modelPass(model, 'gradient', x, 0), 7, 2)) / BATCH;
      rows.push({ model: label, engine: model.engine.name, detail: model.engine.detail, forwardMsPerImage: forward, gradientMsPerImage: gradient });
      console.error(`${label} ${model.engine.detail}: forward ${forward.toFixed(3)} ms/image, gradient ${gradient.toFixed(3)} ms/image`);
      x.dispose();
      model.dispose();
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

writeBenchResult('savedmodel-engines', 'SavedModels: TensorFlow.js vs onnxruntime (batch 8)', rows, [
  `Batch ${BATCH}, median of 7 runs after 2 warm-up runs, milliseconds per image; tfjs backend ${backend.name}.`,
  'The onnxruntime engine runs graphs compiled from the converted TensorFlow graph (src/engines/onnx/graph-compile.ts).',
]);
