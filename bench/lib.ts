/**
 * Shared benchmark plumbing: machine facts, peak memory, and writing results as JSON plus the
 * regenerated markdown table in bench/results/README.md. Each `bench/*.bench.ts` is run in its
 * own process by `npm run bench` (so peak RSS is its own) and ends with `writeBenchResult`.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend } from '../src/engines/tfjs/index.js';
import type { ImageModel } from '../src/core/model.js';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

export type Cell = string | number | boolean | null;

export interface BenchResult {
  /** File stem under bench/results/. */
  name: string;
  title: string;
  date: string;
  machine: MachineFacts;
  rows: Record<string, Cell>[];
  notes: string[];
}

export interface MachineFacts {
  cores: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  backend: string | null;
  simd: boolean | null;
  threads: boolean | null;
}

export function machineFacts(): MachineFacts {
  const b = currentBackend();
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    backend: b ? `${b.name}${b.gpu ? ' (GPU)' : ''}` : null,
    simd: b ? b.simd : null,
    threads: b ? b.threads : null,
  };
}

/** Samples RSS while `fn` runs and returns the peak in MiB alongside its result. */
export async function withPeakRss<T>(fn: () => Promise<T>, intervalMs = 5): Promise<{ result: T; peakRssMiB: number; baseRssMiB: number }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, intervalMs);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, peakRssMiB: peak / 2 ** 20, baseRssMiB: base / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/** One forward or input-gradient pass of `model` on `x`, waited for to the last value and disposed. */
export async function modelPass(model: ImageModel, op: 'forward' | 'gradient', x: tf.Tensor4D, target: number): Promise<void> {
  if (op === 'forward') {
    const y = await model.forward(x);
    await y.data();
    y.dispose();
  } else {
    const r = await model.gradient!(x, target);
    await r.gradients.data();
    tf.dispose([r.gradients, r.values]);
  }
}

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Times `fn` `repeat` times after `warmup` runs; returns milliseconds per run. */
export async function timeRuns(fn: () => Promise<unknown> | unknown, repeat: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function fmt(v: Cell): string {
  if (v === null) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v);
}

/** Regenerates bench/results/README.md from every JSON result. */
export function renderIndex(): void {
  const files = readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json')).sort();
  const parts = ['# Benchmark results', '', 'Written by `npm run bench`; one section per benchmark, newest run of each.', ''];
  for (const f of files) {
    const r = JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as BenchResult;
    const m = r.machine;
    parts.push(`## ${r.title}`, '', `${r.date} · ${m.cores} cores (${m.cpu}) · ${m.memoryGiB} GiB · Node ${m.node} · backend ${m.backend ?? 'n/a'}${m.simd ? ' (SIMD)' : ''}${m.threads ? ' threads' : ''}`, '');
    const cols = [...new Set(r.rows.flatMap((row) => Object.keys(row)))];
    if (cols.length) {
      parts.push(`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
      for (const row of r.rows) parts.push(`| ${cols.map((c) => fmt(row[c] ?? null)).join(' | ')} |`);
      parts.push('');
    }
    for (const n of r.notes) parts.push(`- ${n}`);
    parts.push('');
  }
  writeAtomic(join(RESULTS_DIR, 'README.md'), parts.join('\n'));
}

/** Writes one benchmark's result (bench/results/NAME.json) and regenerates the markdown table. */
export function writeBenchResult(name: string, title: string, rows: Record<string, Cell>[], notes: string[] = []): BenchResult {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const result: BenchResult = { name, title, date: new Date().toISOString(), machine: machineFacts(), rows, notes };
  writeAtomic(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  renderIndex();
  process.stdout.write(`bench ${name}: ${rows.length} rows -> bench/results/${name}.json\n`);
  return result;
}
