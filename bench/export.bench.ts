/**
 * SavedModel export cost and size: for ResNet-8 (Keras HDF5), the bundled shapes model (or its
 * architecture with random weights until it is trained), MobileNet V2 (quantized TFLite, the
 * largest real file) and ResNet50 (random weights, the zoo architecture), the time
 * `exportSavedModel` takes (median of 3, model already loaded), saved_model.pb and variables/
 * sizes, graph nodes, peak RSS during an export, and what reading the export back costs
 * (`loadSavedModel`, first JPEG request of one image).
 *
 * Run: npx tsx bench/export.bench.ts   (or npm run bench -- export)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/engines/tfjs/index.js';
import { exportSavedModel, type ExportResult, type ExportSource } from '../src/export/index.js';
import { loadImageModel, DEFAULT_MODEL_DIR } from '../src/models/load.js';
import { buildResNet50 } from '../src/models/zoo/resnet50.js';
import { buildShapesResNet } from '../src/models/shapes-resnet.js';
import { loadSavedModel } from '../src/engines/tfjs/savedmodel.js';
import { median, timeRuns, withPeakRss, writeBenchResult, type Cell } from './lib.js';

const SHARED = fileURLToPath(new URL('../../shared/', import.meta.url));
const PHOTO = join(SHARED, 'images/hot_dog.jpg');

interface Case {
  name: string;
  load(): Promise<{ source: tfl.LayersModel | ExportSource | Awaited<ReturnType<typeof loadImageModel>>; dispose(): void }>;
}

const CASES: Case[] = [
  {
    name: 'ResNet-8 (Keras .h5)',
    async load() {
      const m = await loadImageModel(join(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5'));
      return { source: m, dispose: () => m.dispose() };
    },
  },
  {
    name: existsSync(join(DEFAULT_MODEL_DIR, 'model.json')) ? 'bundled shapes model' : 'shapes ResNet (bundled architecture, random weights)',
    async load() {
      if (existsSync(join(DEFAULT_MODEL_DIR, 'model.json'))) {
        const m = await loadImageModel('default');
        return { source: m, dispose: () => m.dispose() };
      }
      const model = buildShapesResNet({ seed: 1 });
      return { source: { name: 'shapes', structure: { kind: 'layers', model }, preprocessing: 'unit' }, dispose: () => model.dispose() };
    },
  },
  {
    name: 'MobileNet V2 1.0 224 (uint8 .tflite)',
    async load() {
      const m = await loadImageModel(join(SHARED, 'models-external/mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite'));
      return { source: m, dispose: () => m.dispose() };
    },
  },
  {
    name: 'ResNet50 (zoo architecture, random weights)',
    async load() {
      const net = await buildResNet50();
      return {
        source: { name: 'resnet50', structure: { kind: 'layers', model: net.model }, preprocessing: net.preprocessing },
        // net.logits shares its layers with net.model.
        dispose: () => net.model.dispose(),
      };
    },
  },
];

async function main(): Promise<void> {
  const backend = await initBackend();
  const tmp = mkdtempSync(join(tmpdir(), 'lens-export-bench-'));
  const rows: Record<string, Cell>[] = [];
  const jpeg = readFileSync(PHOTO);
  try {
    for (const c of CASES) {
      const { source, dispose } = await c.load();
      const base = join(tmp, String(rows.length));
      let version = 0;
      const once = () => exportSavedModel(source, base, { version: ++version });
      const { result: first, peakRssMiB, baseRssMiB } = await withPeakRss(once);
      const times = await timeRuns(once, 3, 0);
      const r: ExportResult = first;
      const t0 = performance.now();
      const loaded = await loadSavedModel(r.dir);
      const loadMs = performance.now() - t0;
      const t1 = performance.now();
      await loaded.predict({ image_bytes: { dtype: 'string', shape: [1], values: [jpeg] } });
      const firstJpegMs = performance.now() - t1;
      loaded.dispose();
      dispose();
      rows.push({
        model: c.name,
        'export ms (median of 3)': Math.round(median(times)),
        'saved_model.pb KiB': Math.round(r.savedModelBytes / 1024),
        'variables MiB': Number((r.variablesBytes / 2 ** 20).toFixed(2)),
        nodes: r.nodes,
        variables: r.variables,
        'peak RSS MiB (+ over start)': `${Math.round(peakRssMiB)} (+${Math.round(peakRssMiB - baseRssMiB)})`,
        'loadSavedModel ms': Math.round(loadMs),
        'first JPEG request ms': Math.round(firstJpegMs),
      });
      process.stderr.write(`${c.name}: ${JSON.stringify(rows.at(-1))}\n`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  writeBenchResult('export', 'SavedModel export: time and size', rows, [
    `backend ${backend.name}${backend.simd ? ' (SIMD)' : ''}; all signatures (serving_default/predict JPEG, predict_pixels float), top-5`,
    'export time: model already in memory; graph building, op-definition check, saved_model.pb encoding and the variables TensorBundle write',
    'the JPEG request decodes hot_dog.jpg in the exported graph (DecodeJpeg through sharp) and resizes it in-graph',
  ]);
}

await main();
