/**
 * Speed of forward passes, input gradients and Integrated Gradients, against PyTorch.
 *
 * Workloads: ResNet50 at 224x224 (random weights: timing only), the MLPerf Tiny ResNet-8 at 32x32
 * (../shared/models-external) and the bundled shapes model (when models/shapes-resnet exists).
 * Engines: `onnxruntime` = the model compiled to ONNX forward and input-gradient graphs on
 * onnxruntime-node's native CPU kernels (src/engines/onnx; the default engine for Keras/tfjs models when
 * tfjs-node is absent); `main thread` = TensorFlow.js in this thread (batch norms folded,
 * attribution gradients, batches split to fit memory); `N workers` = parallelGradientModel with
 * one wasm worker per core (with tfjs-node-gpu installed the pool runs in-process on the GPU and
 * says so).
 * For ResNet50 an ablation shows what each optimisation gives, and the PyTorch peer
 * (bench/pytorch_peer.py, torchvision resnet50, same thread count) runs in the same process
 * tree when Debian's python3-torch is installed.
 *
 * `BENCH_QUICK=1` runs a smoke-sized version (small batches, 4 IG steps, no peer) and prints
 * instead of writing results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describeBackend, initBackend } from '../src/engines/tfjs/index.js';
import { setInputGradientMethod } from '../src/engines/tfjs/gradients/index.js';
import { withMemoryBudget, type BatchPlan } from '../src/engines/tfjs/memory.js';
import { describeLayersModel } from '../src/models/describe.js';
import { parallelGradientModel, type PoolEvent } from '../src/models/workers.js';
import { integratedGradients } from '../src/attribution/index.js';
import { importKerasModel } from '../src/convert/keras/index.js';
import { imageModelFromLayers } from '../src/models/keras.js';
import { readModelArtifacts } from '../src/models/load.js';
import type { ImageModel } from '../src/core/model.js';
import type { PreprocessingName } from '../src/core/preprocess.js';
import { foldBatchNorm } from '../src/models/optimize/index.js';
import { buildResNet50 } from '../src/models/zoo/resnet50.js';
import { loadOnnxRuntime, onnxImageModel, onnxThreads } from '../src/engines/onnx/index.js';
import { median, modelPass, timeRuns, withPeakRss, writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
const BATCHES = QUICK ? [1, 2] : [1, 8, 32];
const IG_STEPS = QUICK ? 4 : 50;
const IG_BATCH = 10;
const CORES = availableParallelism();
const RESNET8 = join(here, '../../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const SHAPES_MODEL = join(here, '../models/shapes-resnet/model.json');

interface Workload {
  name: string;
  layers: tfl.LayersModel;
  preprocessing: PreprocessingName;
  /** Repetitions per timed batch (fewer for big models and batches). */
  repeats: (batch: number) => number;
}

type Row = Record<string, Cell>;

const log = (msg: string) => process.stderr.write(`[ig-speed] ${msg}\n`);

function randomImages(n: number, shape: readonly number[], seed: number): tf.Tensor4D {
  return tf.randomUniform([n, shape[0]!, shape[1]!, shape[2]!], 0, 255, 'float32', seed) as tf.Tensor4D;
}

async function timeOp(model: ImageModel, op: 'forward' | 'gradient', batch: number, repeats: number, warmup = 1): Promise<number> {
  const x = randomImages(batch, model.inputShape, batch);
  const run = () => modelPass(model, op, x, 1);
  try {
    return median(await timeRuns(run, repeats, warmup)) / batch;
  } finally {
    x.dispose();
  }
}

async function timeIg(model: ImageModel): Promise<number> {
  const [h, w, c] = model.inputShape;
  const data = (await randomImages(1, model.inputShape, 7).data()) as Float32Array;
  const t0 = performance.now();
  await integratedGradients(model, { data, height: h, width: w, channels: c }, { steps: IG_STEPS, batchSize: IG_BATCH, baseline: 'black', target: 1 });
  return (performance.now() - t0) / 1000;
}

/** forward/gradient rows at every batch size, then IG; with peak RSS. */
async function measure(workload: Workload, engine: string, model: ImageModel): Promise<Row[]> {
  const rows: Row[] = [];
  const { peakRssMiB } = await withPeakRss(async () => {
    // Warm-up: every worker plans its batches and caches its transformed filters first.
    const warm = randomImages(Math.max(2, CORES), model.inputShape, 99);
    tf.dispose(await model.forward(warm));
    for (let i = 0; i < 2; i++) {
      const r = await model.gradient!(warm, 0);
      tf.dispose([r.gradients, r.values]);
    }
    warm.dispose();
    for (const op of ['forward', 'gradient'] as const) {
      for (const batch of BATCHES) {
        const ms = await timeOp(model, op, batch, workload.repeats(batch));
        log(`${workload.name} ${engine} ${op} b${batch}: ${ms.toFixed(1)} ms/image`);
        rows.push({ workload: workload.name, engine, op, batch, 'ms/image': ms, 'images/s': 1000 / ms });
      }
    }
    const s = await timeIg(model);
    log(`${workload.name} ${engine} IG-${IG_STEPS}: ${s.toFixed(2)} s/image`);
    rows.push({ workload: workload.name, engine, op: `IG-${IG_STEPS}`, batch: IG_BATCH, 'ms/image': s * 1000, 'images/s': 1 / s });
  });
  for (const r of rows) r['peak RSS MiB'] = Math.round(peakRssMiB);
  return rows;
}

async function singleThread(workload: Workload, fold: boolean, plans: BatchPlan[]): Promise<ImageModel> {
  const layers = fold ? (await foldBatchNorm(workload.layers)).model : workload.layers;
  return withMemoryBudget(imageModelFromLayers(layers, { name: workload.name, preprocessing: workload.preprocessing }), { onPlan: (p) => plans.push(p) });
}

interface PeerResult {
  torch?: string;
  threads?: number;
  device?: string;
  rows?: { op: string; batch: number; ms_per_image: number }[];
  ig_s_per_image?: number;
  peak_rss_mib?: number;
  error?: string;
}

function runPeer(gpu: boolean): PeerResult {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) return { error: 'PyTorch not installed (apt-get install python3-torch python3-torchvision)' };
  log('PyTorch peer: torchvision resnet50 ...');
  const r = spawnSync(
    '/usr/bin/python3',
    [join(here, 'pytorch_peer.py'), '--threads', String(CORES), '--batches', BATCHES.join(','), '--repeats', '3', '--ig-steps', String(IG_STEPS), '--ig-batch', String(IG_BATCH), '--device', gpu ? 'cuda' : 'cpu'],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (r.status !== 0) return { error: `pytorch_peer.py failed: ${r.stderr.slice(-500)}` };
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerResult;
}

async function workloads(): Promise<Workload[]> {
  const list: Workload[] = [];
  const net = await buildResNet50();
  list.push({ name: 'resnet50-224', layers: net.logits, preprocessing: 'caffe', repeats: (b) => (QUICK ? 1 : b === 1 ? 3 : b <= 8 ? 2 : 1) });
  if (existsSync(RESNET8)) {
    list.push({ name: 'resnet8-32', layers: await importKerasModel(RESNET8), preprocessing: 'raw', repeats: (b) => (b <= 8 ? 5 : 3) });
  }
  if (existsSync(SHAPES_MODEL)) {
    const tfl = await import('@tensorflow/tfjs-layers');
    const layers = await tfl.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(SHAPES_MODEL)));
    list.push({ name: 'shapes-resnet', layers, preprocessing: 'unit', repeats: (b) => (b <= 8 ? 5 : 3) });
  }
  return list;
}

async function main(): Promise<void> {
  const info = await initBackend();
  const notes: string[] = [];
  const peer = QUICK ? { error: 'skipped (BENCH_QUICK)' } : runPeer(info.gpu);
  const rows: Row[] = [];
  const plans: string[] = [];
  const runtime = await loadOnnxRuntime();
  if (!runtime.available) notes.push(`onnxruntime: not measured (${runtime.reason})`);
  for (const workload of await workloads()) {
    if (runtime.available) {
      const model = await onnxImageModel(workload.layers, { name: workload.name, preprocessing: workload.preprocessing });
      rows.push(...(await measure(workload, `onnxruntime ${runtime.version} (${onnxThreads()} threads)`, model)));
      model.dispose();
    }
    const single: BatchPlan[] = [];
    rows.push(...(await measure(workload, 'main thread', await singleThread(workload, true, single))));
    for (const p of single) plans.push(`${workload.name} main thread ${p.op}: ${(p.bytesPerImage / 2 ** 20).toFixed(0)} MiB/image -> batch ${p.batch}`);
    if (workload.name.startsWith('resnet50')) {
      // What each step gives: stock backprop kernels and batch norms, then each optimisation alone.
      for (const [label, method, fold] of [
        ['stock kernels, BN kept', 'backprop', false],
        ['forward-conv, BN kept', 'forward-conv', false],
        ['stock kernels, BN folded', 'backprop', true],
      ] as const) {
        setInputGradientMethod(method);
        const model = await singleThread(workload, fold, []);
        // Two warm-up calls: transformed filters are cached from a weight's second use.
        const ms = await timeOp(model, 'gradient', 1, QUICK ? 1 : 2, 2);
        log(`${workload.name} ablation ${label}: ${ms.toFixed(0)} ms/image`);
        rows.push({ workload: workload.name, engine: `main thread, ${label}`, op: 'gradient', batch: 1, 'ms/image': ms, 'images/s': 1000 / ms });
      }
      setInputGradientMethod('auto');
    }
    const events: PoolEvent[] = [];
    const source = await describeLayersModel(workload.layers, { name: workload.name, preprocessing: workload.preprocessing });
    const pool = await parallelGradientModel(source, { workers: CORES, onEvent: (e) => events.push(e) });
    rows.push(...(await measure(workload, pool.workers ? `${pool.workers} workers` : `in-process ${pool.backends[0]}`, pool)));
    for (const e of events) {
      if (e.type === 'plan' && e.worker === 0) plans.push(`${workload.name} worker ${e.plan.op}: ${(e.plan.bytesPerImage / 2 ** 20).toFixed(0)} MiB/image -> batch ${e.plan.batch}`);
      if (e.type === 'restart') notes.push(`${workload.name}: worker ${e.worker} restarted (${e.reason})`);
    }
    await pool.close();
    workload.layers.dispose();
  }
  if (peer.rows) {
    for (const r of rows) {
      if (!String(r.workload).startsWith('resnet50')) continue;
      const op = String(r.op);
      const ref = op.startsWith('IG') ? (peer.ig_s_per_image ?? NaN) * 1000 : peer.rows.find((p) => p.op === op && p.batch === r.batch)?.ms_per_image;
      if (ref === undefined || !Number.isFinite(ref)) continue;
      r['PyTorch ms/image'] = ref;
      r['x PyTorch time'] = (r['ms/image'] as number) / ref;
    }
    const igOf = (prefix: string) => rows.find((r) => String(r.workload).startsWith('resnet50') && String(r.engine).startsWith(prefix) && String(r.op).startsWith('IG'));
    for (const prefix of ['onnxruntime', 'main thread', `${CORES} workers`]) {
      const r = igOf(prefix);
      const ratio = r?.['x PyTorch time'];
      if (typeof ratio !== 'number') continue;
      notes.push(`Goal (IG-${IG_STEPS}, ResNet50 224, within 2x of PyTorch): ${r!.engine} takes ${ratio.toFixed(2)}x PyTorch's time -> ${ratio <= 1 ? 'parity met' : ratio <= 2 ? 'within 2x met' : 'not met'}.`);
    }
    for (const p of peer.rows) rows.push({ workload: 'resnet50-224', engine: `PyTorch ${peer.torch} (${peer.device === 'cuda' ? 'GPU' : `${peer.threads} threads`})`, op: p.op, batch: p.batch, 'ms/image': p.ms_per_image, 'images/s': 1000 / p.ms_per_image, 'peak RSS MiB': Math.round(peer.peak_rss_mib ?? 0) });
    rows.push({ workload: 'resnet50-224', engine: `PyTorch ${peer.torch} (${peer.device === 'cuda' ? 'GPU' : `${peer.threads} threads`})`, op: `IG-${IG_STEPS}`, batch: IG_BATCH, 'ms/image': (peer.ig_s_per_image ?? NaN) * 1000, 'images/s': 1 / (peer.ig_s_per_image ?? NaN) });
    notes.push(`PyTorch peer: torch ${peer.torch}, torchvision resnet50(weights=None), ${peer.threads} threads, eval mode, parameters frozen; measured in this run.`);
  } else {
    notes.push(`PyTorch peer: ${peer.error}`);
  }
  notes.push(
    `Backend in this thread: ${describeBackend(info)}; workers: ${CORES} x wasm, single-threaded each (wasm threads are for the main thread: the pool already takes every core).`,
    'onnxruntime rows: the same LayersModel lowered to TensorFlow ops (src/graph/keras.ts), batch norms folded into the convolutions (src/engines/onnx/fold.ts) and compiled by src/engines/onnx (forward graph, and a gradient graph with hand-written backward rules: convolutions with flipped filters, ReLU masks, max-pool scatter); intra-op threads = cores; no filter gradients.',
    'peak RSS MiB is the process high-water mark while that engine ran; engines run one after another in one process, so later rows include earlier peaks.',
    'ms/image = median wall time of a call / batch. IG = integratedGradients(steps, gausslegendre, black baseline), batch 10 per call, one image; its ms/image is the whole attribution.',
    'Engines fold inference batch norms into the convolutions and compute input gradients only (src/engines/tfjs/gradients/); calls are split to fit the wasm heap (src/engines/tfjs/memory.ts).',
    ...plans.map((p) => `Batch plan: ${p}`),
  );
  if (QUICK) {
    // A smoke run checks that everything runs; its figures are not results.
    process.stdout.write(`${JSON.stringify({ rows, notes }, null, 1)}\n`);
    return;
  }
  writeBenchResult('ig-speed', 'Integrated Gradients speed: onnxruntime and tfjs (wasm) engines vs PyTorch', rows, notes);
}

await main();
