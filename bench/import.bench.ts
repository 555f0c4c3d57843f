/**
 * Model import cost: for each real model file (Keras 2 .h5, Keras 3 .keras, TFLite, a TF1
 * checkpoint directory, frozen GraphDefs; and a ResNet50 weights file in the official Keras
 * layout, with random weights, as the zoo loads it), the time `loadImageModel` takes cold and warm,
 * the first forward pass, and the process's peak RSS. Each file is measured in its own child
 * process so that peak memory is that file's alone.
 *
 * Run: npx tsx bench/import.bench.ts   (or npm run bench -- import)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engines/tfjs/index.js';
import { median, timeRuns, withPeakRss, writeBenchResult, type Cell } from './lib.js';

const SHARED = fileURLToPath(new URL('../../shared/models-external/', import.meta.url));
const FILES = [
  'mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite',
  'mlcommons-vww-96/vww_96.h5',
  'mlcommons-vww-96/vww_96_float.tflite',
  'mlcommons-resnet8-cifar10/pretrainedResnet.h5',
  'mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant.tflite',
  'keras3-mnist-cnn/mnist_cnn.keras',
  'keras3-mnist-cnn-bn/mnist_cnn.keras',
  'tf1-checkpoint-cifar-dotnet',
  'tf1-checkpoint-cifar-dotnet/frozen_model.pb',
  'frozen-graph-customvision-fruits/fruits_model.pb',
].map((f) => join(SHARED, f));

/** Bytes of a file, or of the files in a folder (a checkpoint directory). */
function bytesOf(path: string): number {
  const st = statSync(path);
  return st.isDirectory() ? readdirSync(path).reduce((n, f) => n + statSync(join(path, f)).size, 0) : st.size;
}

/** The row name: the file, with its folder when the name alone is ambiguous (two mnist_cnn.keras). */
function rowName(path: string): string {
  if (statSync(path).isDirectory()) return `${basename(path)}/`;
  return basename(path) === 'mnist_cnn.keras' ? `${basename(dirname(path))}/${basename(path)}` : basename(path);
}

interface ChildResult {
  coldLoadMs: number;
  warmLoadMs: number;
  firstForwardMs: number;
  peakRssMiB: number;
  baseRssMiB: number;
  format: string;
  backend: string;
}

/** In the child: load one file, measure, print JSON on stdout. */
async function child(path: string): Promise<void> {
  const backend = await initBackend();
  const { loadImageModel } = await import('../src/models/load.js');
  const { result, peakRssMiB, baseRssMiB } = await withPeakRss(async () => {
    const t0 = performance.now();
    const model = await loadImageModel(path);
    const coldLoadMs = performance.now() - t0;
    const x = tf.randomUniform([1, ...model.inputShape], 0, 255) as tf.Tensor4D;
    const t1 = performance.now();
    const y = await model.forward(x);
    await y.data();
    const firstForwardMs = performance.now() - t1;
    tf.dispose([x, y]);
    const format = model.info.format;
    model.dispose();
    const warm = await timeRuns(async () => (await loadImageModel(path)).dispose(), 3, 0);
    return { coldLoadMs, warmLoadMs: median(warm), firstForwardMs, format };
  });
  const out: ChildResult = { ...result, peakRssMiB, baseRssMiB, backend: backend.name };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'lens-import-bench-'));
  try {
    // The zoo's ResNet50 file layout (weights-only, Keras names), written from random weights.
    await initBackend();
    const { buildResNet50 } = await import('../src/models/zoo/resnet50.js');
    const { writeKerasH5 } = await import('../src/convert/keras/weights.js');
    const net = await buildResNet50();
    const resnet50 = join(tmp, 'resnet50_weights_tf_dim_ordering_tf_kernels.h5');
    await writeKerasH5(net.model, resnet50);
    net.model.dispose();
    const rows: Record<string, Cell>[] = [];
    for (const path of [...FILES, resnet50]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', path], { encoding: 'utf8' });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (r.status !== 0 || !line.startsWith('{')) throw new Error(`child for ${path} failed: ${r.stderr.slice(-2000)}`);
      const c = JSON.parse(line) as ChildResult;
      rows.push({
        file: path === resnet50 ? 'resnet50 weights (official layout, random values)' : rowName(path),
        format: c.format,
        MiB: +(bytesOf(path) / 2 ** 20).toFixed(2),
        coldLoadMs: Math.round(c.coldLoadMs),
        warmLoadMs: Math.round(c.warmLoadMs),
        firstForwardMs: Math.round(c.firstForwardMs),
        peakRssMiB: Math.round(c.peakRssMiB),
        rssGrowthMiB: Math.round(c.peakRssMiB - c.baseRssMiB),
        backend: c.backend,
      });
      process.stderr.write(`${rows.at(-1)!.file}: ${JSON.stringify(rows.at(-1))}\n`);
    }
    writeBenchResult('import', 'Model import: load time and peak memory per file', rows, [
      'coldLoadMs: first loadImageModel in a fresh process (backend already initialised; includes loading the importer modules); warmLoadMs: median of 3 further loads.',
      'peakRssMiB: peak resident memory of the child process over the whole run; rssGrowthMiB: above the RSS after backend start-up.',
      'The checkpoint row loads a whole training directory (graph with Adam state, 344 nodes) and cuts it to the inference graph; its MiB is the folder. .keras rows unzip the archive and read model.weights.h5 through h5wasm.',
      'The largest real file is mobilenet_v2_1.0_224_quant.tflite (3.4 MiB); the ResNet50 row is the size and layout of the zoo download (Keras weights-only HDF5) with random values.',
      'HDF5 rows include loading h5wasm (a 4 MB module with the wasm inlined): through tsx, as here, its source transform alone costs about 550 MiB RSS; plain node loading the compiled package costs about 40 MiB for it.',
    ]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(process.argv[at + 1]!);
else await main();
