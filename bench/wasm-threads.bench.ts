/**
 * tfjs-backend-wasm's threaded SIMD build (src/engines/tfjs/wasm-threads.ts) against the stock
 * single-threaded build, on ResNet50 224x224 with seeded random weights: forward and
 * input-gradient ms/image at batch 1 and 8, the CPU time per wall time (how many cores were
 * busy), peak RSS, and whether both builds compute the same logits and gradients.
 *
 * Each thread count runs in its own child process (one tfjs wasm module per process). The model
 * is the one attribution uses: batch norms folded, input gradients only, batches split to fit the
 * wasm heap (the "main thread" engine of bench/ig-speed.bench.ts).
 *
 * `BENCH_QUICK=1` runs one repeat of each and prints instead of writing results.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describeBackend, initBackend } from '../src/engines/tfjs/index.js';
import { withMemoryBudget } from '../src/engines/tfjs/memory.js';
import { enableWasmThreads, type WasmThreadsResult } from '../src/engines/tfjs/wasm-threads.js';
import { imageModelFromLayers } from '../src/models/keras.js';
import type { ImageModel } from '../src/core/model.js';
import { foldBatchNorm } from '../src/models/optimize/index.js';
import { buildResNet50 } from '../src/models/zoo/resnet50.js';
import { median, modelPass, timeRuns, withPeakRss, writeBenchResult, type Cell } from './lib.js';

const QUICK = process.env.BENCH_QUICK === '1';
const BATCHES = QUICK ? [1] : [1, 8];
const TARGET = 1;
const THREADS = [1, Math.max(2, Math.min(availableParallelism(), 8))];
const log = (msg: string) => process.stderr.write(`[wasm-threads] ${msg}\n`);

type Row = Record<string, Cell>;

interface ChildResult {
  threads: WasmThreadsResult | null;
  backend: string;
  rows: Row[];
  peakRssMiB: number;
}

/** Replaces every kernel with seeded Glorot-uniform values, so that every process builds the same network. */
function seedKernels(model: tfl.LayersModel): void {
  let seed = 1;
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (!weights.some((w) => w.rank >= 2)) continue;
    layer.setWeights(
      weights.map((w) => {
        if (w.rank < 2) return w;
        const receptive = w.shape.slice(0, -2).reduce((a, b) => a * b, 1);
        const limit = Math.sqrt(6 / (receptive * (w.shape[w.rank - 2]! + w.shape[w.rank - 1]!)));
        return tf.randomUniform(w.shape, -limit, limit, 'float32', seed++);
      }),
    );
  }
}

/** CPU seconds all processes on the host have been busy (Linux /proc/stat), or undefined elsewhere. */
function hostBusySeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    // USER_HZ is 100 on every Linux ABI Node supports.
    return (fields.reduce((a, b) => a + b, 0) - idle) / 100;
  } catch {
    return undefined;
  }
}

async function timeOp(model: ImageModel, op: 'forward' | 'gradient', batch: number): Promise<Row> {
  const x = tf.randomUniform([batch, 224, 224, 3], 0, 255, 'float32', 100 + batch) as tf.Tensor4D;
  const run = () => modelPass(model, op, x, TARGET);
  const repeats = QUICK ? 1 : batch === 1 ? 3 : 2;
  // Two warm-ups for gradients: transformed filters are cached from a weight's second use.
  const warmup = op === 'gradient' ? 2 : 1;
  for (let i = 0; i < warmup; i++) await run();
  const cpu0 = process.cpuUsage();
  const host0 = hostBusySeconds();
  const times = await timeRuns(run, repeats, 0);
  const cpu = process.cpuUsage(cpu0);
  const host1 = hostBusySeconds();
  x.dispose();
  const wall = times.reduce((a, b) => a + b, 0);
  const ownMs = (cpu.user + cpu.system) / 1000;
  // Cores other processes kept busy meanwhile: a threaded run competing for cores is not a fair figure.
  const others = host0 !== undefined && host1 !== undefined ? Math.max(0, ((host1 - host0) * 1000 - ownMs) / wall) : null;
  return { op, batch, 'ms/image': median(times) / batch, 'CPU/wall': ownMs / wall, 'other load': others };
}

/** Child: measures one thread count and writes its rows, plus logits and gradients for the agreement check, to `dir`. */
async function child(threads: number, dir: string): Promise<void> {
  const answer = threads > 1 ? await enableWasmThreads(threads) : null;
  const info = await initBackend({ backend: 'wasm' });
  const backend = describeBackend(info);
  log(`${threads} thread(s): ${backend}${answer?.reason ? ` (${answer.reason})` : ''}`);
  const net = await buildResNet50();
  seedKernels(net.logits);
  const folded = (await foldBatchNorm(net.logits)).model;
  const model = withMemoryBudget(imageModelFromLayers(folded, { name: 'resnet50-224', preprocessing: 'caffe' }));
  const rows: Row[] = [];
  const { peakRssMiB } = await withPeakRss(async () => {
    for (const op of ['forward', 'gradient'] as const) {
      for (const batch of BATCHES) {
        const row = await timeOp(model, op, batch);
        log(`${threads} thread(s) ${op} b${batch}: ${(row['ms/image'] as number).toFixed(0)} ms/image, CPU/wall ${(row['CPU/wall'] as number).toFixed(2)}, other load ${String(row['other load'])}`);
        rows.push(row);
      }
    }
  });
  const x = tf.randomUniform([2, 224, 224, 3], 0, 255, 'float32', 7) as tf.Tensor4D;
  const logits = await model.forward(x);
  const { gradients } = await model.gradient!(x, TARGET);
  writeFileSync(join(dir, `logits-${threads}.f32`), await logits.data());
  writeFileSync(join(dir, `gradients-${threads}.f32`), await gradients.data());
  const result: ChildResult = { threads: answer, backend, rows, peakRssMiB };
  writeFileSync(join(dir, `result-${threads}.json`), JSON.stringify(result));
}

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

function parent(): void {
  const dir = mkdtempSync(join(tmpdir(), 'lens-wasm-threads-'));
  try {
    const results = new Map<number, ChildResult>();
    for (const threads of THREADS) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(threads), dir], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) throw new Error(`the ${threads}-thread run failed (exit ${r.status})`);
      results.set(threads, JSON.parse(readFileSync(join(dir, `result-${threads}.json`), 'utf8')) as ChildResult);
    }
    const base = results.get(1)!;
    const rows: Row[] = [];
    const notes: string[] = [];
    for (const [threads, r] of results) {
      if (r.threads && !r.threads.enabled) notes.push(`${threads} threads asked for, not enabled: ${r.threads.reason}`);
      for (const row of r.rows) {
        const ref = base.rows.find((b) => b.op === row.op && b.batch === row.batch);
        rows.push({ workload: 'resnet50-224', engine: r.backend, threads: r.threads?.threads ?? 1, ...row, 'speed-up': ref ? (ref['ms/image'] as number) / (row['ms/image'] as number) : null, 'peak RSS MiB': Math.round(r.peakRssMiB) });
      }
    }
    for (const threads of THREADS.slice(1)) {
      const logits = maxRelDiff(readF32(join(dir, `logits-${threads}.f32`)), readF32(join(dir, 'logits-1.f32')));
      const gradients = maxRelDiff(readF32(join(dir, `gradients-${threads}.f32`)), readF32(join(dir, 'gradients-1.f32')));
      notes.push(`Agreement with the single-threaded build (2 images, seeded weights): logits max relative difference ${logits.toExponential(2)}, input gradients ${gradients.toExponential(2)} (relative to the largest magnitude).`);
    }
    notes.push(
      'ms/image = median wall time of a call / batch; CPU/wall = this process\'s CPU time / wall time over the timed calls (about the number of cores it kept busy); other load = cores other processes kept busy meanwhile (from /proc/stat).',
      'Model: ResNet50 224, seeded Glorot-uniform kernels, batch norms folded, input gradients only, calls split to fit the wasm heap (as in ig-speed "main thread").',
      `Threaded build: tfjs-backend-wasm's tfjs-backend-wasm-threaded-simd.wasm started by src/engines/tfjs/wasm-threads.ts (enableWasmThreads), ${availableParallelism()} cores on this machine.`,
    );
    if (QUICK) {
      for (const row of rows) log(JSON.stringify(row));
      for (const n of notes) log(n);
      return;
    }
    writeBenchResult('wasm-threads', 'tfjs wasm: threaded SIMD build vs single-threaded (ResNet50 224)', rows, notes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(Number(process.argv[at + 1]), process.argv[at + 2]!);
else parent();
