/**
 * SavedModel I/O: load + convert time and peak memory of the largest fixture, and TensorBundle
 * read throughput on a 100 MB bundle written by our own writer (goals: > 200 MB/s, peak memory
 * < 2x the tensor bytes). Run alone: `npm run bench -- savedmodel` (or `npx tsx bench/savedmodel.bench.ts`).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/engines/tfjs/index.js';
import { readTensorBundle, writeTensorBundle } from '../src/savedmodel/index.js';
import { convertSavedModel } from '../src/convert/savedmodel.js';
import { loadSavedModel } from '../src/engines/tfjs/savedmodel.js';
import type { HostTensor } from '../src/tensor/index.js';
import { median, timeRuns, withPeakRss, writeBenchResult, type Cell } from './lib.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const MiB = 2 ** 20;
const CNN = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../shared/testdata/savedmodels-cnn');

function dirBytes(dir: string): number {
  const files = ['saved_model.pb', 'variables/variables.index', 'variables/variables.data-00000-of-00001'];
  return files.reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

const rows: Record<string, Cell>[] = [];
const notes: string[] = [];
await initBackend();
const tmp = mkdtempSync(join(tmpdir(), 'lens-bench-sm-'));

try {
  // ---- load + convert, largest fixture first (its peak RSS is measured on a fresh process)
  const fixtures = ['dotnet-mnist-conv-tf1', 'mlcommons-tiny-kws-dscnn-tf2', 'dotnet-cifar-conv-tf1'].sort((a, b) => dirBytes(join(CNN, b)) - dirBytes(join(CNN, a)));
  for (const [i, name] of fixtures.entries()) {
    const dir = join(CNN, name);
    gc();
    const first = await withPeakRss(async () => {
      const t0 = performance.now();
      const m = await loadSavedModel(dir);
      const ms = performance.now() - t0;
      m.dispose();
      return ms;
    });
    const loads = await timeRuns(async () => (await loadSavedModel(dir)).dispose(), 5);
    const converts = await timeRuns(() => convertSavedModel(dir, join(tmp, name)), 5);
    const size = dirBytes(dir);
    rows.push({
      workload: `loadSavedModel ${name}`,
      MB: +(size / 1e6).toFixed(2),
      'first ms': +first.result.toFixed(1),
      'median ms': +median(loads).toFixed(1),
      'MB/s': null,
      'peak RSS MiB': i === 0 ? +first.peakRssMiB.toFixed(0) : null,
      'RSS growth MiB': i === 0 ? +(first.peakRssMiB - first.baseRssMiB).toFixed(0) : null,
    });
    rows.push({ workload: `lens convert ${name}`, MB: +(size / 1e6).toFixed(2), 'median ms': +median(converts).toFixed(1) });
  }

  // ---- 100 MB TensorBundle: write with our writer, then read it back
  const tensorBytes = 100 * 1e6;
  const count = 25;
  const each = tensorBytes / count / 4;
  const prefix = join(tmp, 'big/variables');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(tmp, 'big'), { recursive: true });
  {
    const tensors: Record<string, HostTensor> = {};
    for (let t = 0; t < count; t++) {
      const v = new Float32Array(each);
      for (let k = 0; k < v.length; k += 97) v[k] = t + k;
      tensors[`layer_${t}/kernel`] = { dtype: 'float32', shape: [each / 1000, 1000], values: v };
    }
    const t0 = performance.now();
    await writeTensorBundle(prefix, tensors, { maxShardBytes: 40e6 });
    const ms = performance.now() - t0;
    rows.push({ workload: 'writeTensorBundle 100 MB (3 shards)', MB: 100, 'first ms': +ms.toFixed(0), 'MB/s': +(tensorBytes / 1e6 / (ms / 1000)).toFixed(0) });
  }
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  let checksum = 0;
  const readOnce = async () => {
    const bundle = await readTensorBundle(prefix);
    const all = await bundle.readMany();
    for (const t of all.values()) checksum += (t.values as Float32Array)[0]!;
    return all.size;
  };
  const memory = await withPeakRss(async () => {
    const t0 = performance.now();
    await readOnce();
    return performance.now() - t0;
  }, 2);
  gc();
  const cpu0 = process.cpuUsage();
  const reads = await timeRuns(readOnce, 5, 0);
  const cpu = process.cpuUsage(cpu0);
  const readMs = median(reads);
  // Throughput per CPU-second of this process: what one idle core gives, whatever else runs.
  const perCpuSecond = (5 * tensorBytes) / 1e6 / ((cpu.user + cpu.system) / 1e6);
  const growth = memory.peakRssMiB - memory.baseRssMiB;
  rows.push({
    workload: 'readTensorBundle 100 MB (CRC-checked)',
    MB: 100,
    'first ms': +memory.result.toFixed(1),
    'median ms': +readMs.toFixed(1),
    'MB/s': +(tensorBytes / 1e6 / (readMs / 1000)).toFixed(0),
    'MB per CPU-s': +perCpuSecond.toFixed(0),
    'peak RSS MiB': +memory.peakRssMiB.toFixed(0),
    'RSS growth MiB': +growth.toFixed(0),
    'growth / tensor bytes': +((growth * MiB) / tensorBytes).toFixed(2),
  });
  const cpu1 = process.cpuUsage();
  const unchecked = median(await timeRuns(async () => (await (await readTensorBundle(prefix, { verify: false })).readMany()).size, 5, 0));
  const cpuUnchecked = process.cpuUsage(cpu1);
  rows.push({
    workload: 'readTensorBundle 100 MB (verify: false)',
    MB: 100,
    'median ms': +unchecked.toFixed(1),
    'MB/s': +(tensorBytes / 1e6 / (unchecked / 1000)).toFixed(0),
    'MB per CPU-s': +((5 * tensorBytes) / 1e6 / ((cpuUnchecked.user + cpuUnchecked.system) / 1e6)).toFixed(0),
  });
  notes.push(
    'Goals (issue 2): bundle read > 200 MB/s; memory while reading < 2x the tensor bytes. "growth / tensor bytes" is the RSS growth during the first read divided by the 100 MB of tensors.',
    '"MB per CPU-s" divides the bytes read by the CPU time this process spent (user + system): the rate one otherwise idle core sustains, independent of other load on the machine.',
    'Reads go straight from the file into one buffer per tensor (positioned reads) and the tensors are typed-array views of those buffers: no copies, so the growth is the tensors themselves.',
    `loadSavedModel = read saved_model.pb + bundle, convert the default signature, build the tfjs GraphModel ("first ms" includes warm-up); lens convert also writes model.json + shards. Peak RSS is measured for the largest fixture, first in a fresh process. Checksum ${checksum}.`,
  );
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

notes.push(`1-minute load average at the end of the run: ${loadavg()[0]!.toFixed(1)} (cores as listed above; other jobs shared the machine, and figures are wall-clock).`);
writeBenchResult('savedmodel', 'SavedModel load/convert and TensorBundle I/O', rows, notes);
