/**
 * Fitting model calls into the backend's memory.
 *
 * The wasm backend keeps every tensor in one 32-bit WebAssembly heap (at most 4 GiB). A ResNet50
 * input gradient at 224x224 keeps several hundred MB of activations per image alive until the
 * backward pass ends, so a large batch overflows the heap; wasm then fails with "memory access
 * out of bounds" and the module stays broken until the process (or worker) restarts. Splitting
 * batches to a measured per-image cost avoids that, and on a GPU the same planning picks batch
 * sizes that fit the card's free memory.
 */
import { execFileSync } from 'node:child_process';
import { freemem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { LensError, errorMessage, isLensError } from '../../core/errors.js';
import type { GradientResult, ImageModel } from '../../core/model.js';
import { currentBackend, type BackendInfo } from './index.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** True when an error means the wasm heap overflowed (the module is unusable afterwards). */
export function isHeapExhausted(e: unknown): boolean {
  if (isLensError(e, 'BACKEND_FAILED') && (e as LensError & { heapExhausted?: boolean }).heapExhausted) return true;
  const m = errorMessage(e);
  return /memory access out of bounds|out of memory|Aborted\(OOM\)|Cannot enlarge memory|WebAssembly\.Memory|Array buffer allocation failed/i.test(m);
}

/** A LensError for a backend that failed for lack of memory, marked so that pools can restart. */
export function heapExhaustedError(message: string, cause: unknown): LensError {
  const e = new LensError('BACKEND_FAILED', message, { cause }) as LensError & { heapExhausted: boolean };
  e.heapExhausted = true;
  return e;
}

/** Free GPU memory in bytes from `nvidia-smi`, when there is one. */
export function gpuFreeBytes(): number | undefined {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.free', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 5000 });
    const mib = Math.min(...out.trim().split('\n').map((l) => Number(l.trim())));
    return Number.isFinite(mib) && mib > 0 ? mib * MiB : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Bytes of tensors a batch may hold at its peak on a backend. `LENS_MEMORY_BUDGET_MB` overrides.
 * - wasm: 2 GiB. The heap tops out at 4 GiB, grows in 20% steps and fragments, and it also
 *   holds the model weights.
 * - tensorflow on a GPU: 60% of the free GPU memory (`nvidia-smi`; `LENS_GPU_MEMORY_MB` when it
 *   is not on the PATH; 4 GiB when neither is known).
 * - tensorflow on the CPU and the cpu backend: a quarter of the free RAM, at most 8 GiB.
 *
 * @example
 * memoryBudgetBytes(); // 2147483648 on wasm
 */
export function memoryBudgetBytes(info: BackendInfo | undefined = currentBackend()): number {
  const override = Number(process.env.LENS_MEMORY_BUDGET_MB);
  if (Number.isFinite(override) && override > 0) return override * MiB;
  const name = info?.name ?? tf.getBackend();
  if (name === 'wasm') return 2 * GiB;
  if (name === 'tensorflow' && info?.gpu) {
    const envMiB = Number(process.env.LENS_GPU_MEMORY_MB);
    const free = gpuFreeBytes() ?? (Number.isFinite(envMiB) && envMiB > 0 ? envMiB * MiB : 4 * GiB);
    return 0.6 * free;
  }
  return Math.min(8 * GiB, freemem() / 4);
}

/** What {@link withMemoryBudget} decided, for logs and benchmarks. */
export interface BatchPlan {
  op: 'forward' | 'gradient';
  /** Peak bytes one image adds, measured on the first call. */
  bytesPerImage: number;
  budgetBytes: number;
  /** Images per backend call. */
  batch: number;
}

export interface MemoryBudgetOptions {
  /** Peak tensor bytes per call (default {@link memoryBudgetBytes}). */
  budgetBytes?: number;
  /** Upper bound on images per call, e.g. after a failure (default 64). */
  maxBatch?: number;
  /** Called once per op when the batch size is decided. */
  onPlan?: (plan: BatchPlan) => void;
}

/** An ImageModel whose calls are split to fit memory, with the plans it made. */
export interface BudgetedModel extends ImageModel {
  readonly plans: { forward?: BatchPlan; gradient?: BatchPlan };
}

/**
 * Wraps a model so that forward and gradient calls of any batch size run in sub-batches that fit
 * the backend's memory. The first call of each kind measures the peak bytes of one image (that
 * image's result is kept, nothing runs twice); later calls use `budget / bytesPerImage` images per
 * backend call. A heap overflow becomes a `BACKEND_FAILED` LensError that says what to do.
 *
 * @example
 * const safe = withMemoryBudget(model);
 * const { gradients } = await safe.gradient!(pixels32, target); // 32 images, split as needed
 */
export function withMemoryBudget(model: ImageModel, options: MemoryBudgetOptions = {}): BudgetedModel {
  const plans: BudgetedModel['plans'] = {};
  const maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 64));

  async function measured<T extends tf.TensorContainer>(op: 'forward' | 'gradient', run: () => Promise<T>): Promise<T> {
    const before = tf.memory().numBytes;
    const info = await tf.profile(run);
    const bytesPerImage = Math.max(1, info.peakBytes - before);
    const budgetBytes = options.budgetBytes ?? memoryBudgetBytes();
    const plan: BatchPlan = { op, bytesPerImage, budgetBytes, batch: Math.max(1, Math.min(maxBatch, Math.floor(budgetBytes / bytesPerImage))) };
    plans[op] = plan;
    options.onPlan?.(plan);
    return info.result as T;
  }

  async function split<T>(op: 'forward' | 'gradient', pixels: tf.Tensor4D, call: (x: tf.Tensor4D, start: number, end: number) => Promise<T>, merge: (parts: T[]) => T): Promise<T> {
    const n = pixels.shape[0];
    const parts: T[] = [];
    let start = 0;
    try {
      while (start < n) {
        const plan = plans[op];
        const size = plan ? Math.min(plan.batch, n - start) : 1;
        const end = start + size;
        const chunk = start === 0 && end === n ? pixels : (tf.slice(pixels, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D);
        try {
          parts.push(plan ? await call(chunk, start, end) : await measured(op, () => call(chunk, start, end) as Promise<T & tf.TensorContainer>));
        } finally {
          if (chunk !== pixels) chunk.dispose();
        }
        start = end;
      }
    } catch (e) {
      for (const p of parts) tf.dispose(p as tf.TensorContainer);
      if (isHeapExhausted(e)) {
        throw heapExhaustedError(
          `${tf.getBackend()} ran out of memory in a ${op} pass of model ${model.name} (${plans[op]?.batch ?? 1} images per call): ` +
            'the backend cannot be used again in this process. Restart with a smaller budget (LENS_MEMORY_BUDGET_MB), ' +
            'or use parallelGradientModel(), whose workers restart by themselves',
          e,
        );
      }
      throw e;
    }
    return parts.length === 1 ? parts[0]! : merge(parts);
  }

  const budgeted: BudgetedModel = {
    name: model.name,
    inputShape: model.inputShape,
    classes: model.classes,
    ...(model.labels ? { labels: model.labels } : {}),
    output: model.output,
    preprocessing: model.preprocessing,
    plans,
    forward: (pixels) =>
      split('forward', pixels, (x) => model.forward(x), (parts) => {
        const out = tf.concat(parts, 0) as tf.Tensor2D;
        tf.dispose(parts);
        return out;
      }),
    dispose: () => model.dispose(),
  };
  const gradient = model.gradient?.bind(model);
  if (gradient) {
    budgeted.gradient = (pixels, target) =>
      split<GradientResult>('gradient', pixels, (x, start, end) => gradient(x, typeof target === 'number' ? target : target.slice(start, end)), (parts) => {
        const out: GradientResult = {
          gradients: tf.concat(parts.map((p) => p.gradients), 0) as tf.Tensor4D,
          values: tf.concat(parts.map((p) => p.values), 0) as tf.Tensor1D,
        };
        for (const p of parts) tf.dispose([p.gradients, p.values]);
        return out;
      });
  }
  return budgeted;
}
