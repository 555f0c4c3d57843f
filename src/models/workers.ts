/**
 * Every core for gradients: a pool of worker threads, each with its own tfjs backend and copy of
 * the model, behind the ordinary ImageModel interface.
 *
 * tfjs-backend-wasm runs single-threaded in Node, so one process uses one core. The pool splits
 * each forward or gradient batch into contiguous shares, one per worker, and joins the results in
 * the main thread, so Integrated Gradients (whose path points arrive in batches) and every other
 * method run on all cores unchanged. A worker whose wasm heap overflows is replaced by a fresh
 * one with a smaller batch limit and the share is retried. With the native `tensorflow` backend
 * (tfjs-node / tfjs-node-gpu), which threads by itself, the model runs in the main thread.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../core/errors.js';
import { concatFloat32 } from '../tensor/index.js';
import { checkPixels, type GradientResult, type ImageModel } from '../core/model.js';
import { describeBackend, initBackend } from '../engines/tfjs/index.js';
import { withMemoryBudget, type BatchPlan } from '../engines/tfjs/memory.js';
import { startWorker } from '../engines/tfjs/worker-start.js';
import { absoluteDescription, loadModelDescription, type ModelFacts, type ModelDescription } from './describe.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

/** Things the pool reports while it works. */
export type PoolEvent =
  | { type: 'ready'; worker: number; backend: string }
  | { type: 'plan'; worker: number; plan: BatchPlan }
  | { type: 'restart'; worker: number; reason: string; maxBatch: number };

export interface ParallelModelOptions {
  /** Worker threads (default: the number of cores). */
  workers?: number;
  /** Backend inside each worker (default wasm). */
  backend?: 'wasm' | 'cpu';
  /** Fold batch norms of `layers` sources (default true: same function, faster gradients). */
  foldBatchNorm?: boolean;
  /** Peak tensor bytes per worker call (default: see memoryBudgetBytes). */
  budgetBytes?: number;
  /** Upper bound on images per backend call in a worker (default 64). */
  maxBatch?: number;
  onEvent?: (event: PoolEvent) => void;
}

/** An ImageModel served by worker threads (or in-process on the native backend). */
export interface ParallelImageModel extends ImageModel {
  /** Worker threads in use; 0 when the model runs in the main thread. */
  readonly workers: number;
  /** Backend description per worker, e.g. `wasm (SIMD, 1 thread)`. */
  readonly backends: readonly string[];
  /** Terminates the workers (dispose() does the same without waiting). */
  close(): Promise<void>;
}

const MAX_RESTARTS = 4;

interface Pending {
  resolve: (reply: WorkerReply & { type: 'result' }) => void;
  reject: (e: Error) => void;
}

/** A failure that replacing the worker can cure. */
class WorkerLost extends LensError {
  constructor(message: string) {
    super('BACKEND_FAILED', message);
  }
}

/** One worker thread and its bookkeeping; replaced on failure. */
class Slot {
  private worker: Worker | undefined;
  private ready: Promise<{ facts: ModelFacts; backend: string }> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private restarting: Promise<void> | undefined;
  /** Bumped on each replacement, so that concurrent failures restart the worker once. */
  generation = 0;
  restarts = 0;
  maxBatch: number | undefined;
  /** Images per backend call the worker planned for gradients (or forward passes). */
  plannedBatch: number | undefined;
  backend = '';

  constructor(
    readonly index: number,
    private readonly init: WorkerInit,
    private readonly onEvent: (e: PoolEvent) => void,
  ) {
    this.maxBatch = init.maxBatch;
  }

  start(): Promise<{ facts: ModelFacts; backend: string }> {
    if (this.ready) return this.ready;
    const init: WorkerInit = { ...this.init, ...(this.maxBatch !== undefined ? { maxBatch: this.maxBatch } : {}) };
    const worker = startWorker(import.meta.url, './worker-entry', init);
    this.worker = worker;
    this.ready = new Promise((resolve, reject) => {
      const lost = (message: string) => {
        const e = new WorkerLost(`worker ${this.index}: ${message}`);
        reject(e);
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        if (this.worker === worker) {
          this.worker = undefined;
          this.ready = undefined;
        }
      };
      worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          this.backend = reply.backend;
          this.onEvent({ type: 'ready', worker: this.index, backend: reply.backend });
          worker.unref();
          resolve({ facts: reply.facts, backend: reply.backend });
          return;
        }
        if (reply.type === 'error' && reply.id === undefined) {
          // The model could not be loaded: not curable by a restart.
          reject(new LensError(reply.code, `worker ${this.index}: ${reply.message}`));
          void worker.terminate();
          return;
        }
        const p = this.pending.get(reply.id!);
        if (!p) return;
        this.pending.delete(reply.id!);
        if (this.pending.size === 0) worker.unref();
        if (reply.type === 'result') {
          for (const plan of reply.plans ?? []) {
            this.plannedBatch = Math.min(this.plannedBatch ?? plan.batch, plan.batch);
            this.onEvent({ type: 'plan', worker: this.index, plan });
          }
          p.resolve(reply);
        } else if (reply.heapExhausted) {
          p.reject(new WorkerLost(`worker ${this.index} ran out of memory: ${reply.message}`));
        } else {
          p.reject(new LensError(reply.code, reply.message));
        }
      });
      worker.on('error', (e) => lost(`crashed: ${e.message}`));
      worker.on('exit', (code) => lost(`exited with code ${code}`));
    });
    // Callers see the rejection; this keeps an unobserved one from crashing the process.
    this.ready.catch(() => undefined);
    return this.ready;
  }

  async call(req: Omit<WorkerRequest, 'id'>): Promise<WorkerReply & { type: 'result' }> {
    await this.start();
    const worker = this.worker;
    if (!worker) throw new WorkerLost(`worker ${this.index} is gone`);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...req, id }, [req.pixels.buffer as ArrayBuffer]);
    });
  }

  /** Replaces the worker (generation `seen`) with one allowed half the batch that failed. */
  restart(seen: number, reason: string, failedBatch: number): Promise<void> {
    if (seen !== this.generation) return this.restarting ?? Promise.resolve();
    this.generation++;
    this.restarts++;
    this.maxBatch = Math.max(1, Math.floor(failedBatch / 2));
    this.plannedBatch = undefined;
    this.onEvent({ type: 'restart', worker: this.index, reason, maxBatch: this.maxBatch });
    this.restarting = (async () => {
      await this.stop();
      await this.start();
    })();
    return this.restarting;
  }

  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w) await w.terminate();
  }
}

/** Balanced contiguous shares of n items over k workers. */
function shares(n: number, k: number): [number, number][] {
  const parts = Math.min(n, k);
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

async function inProcess(source: ModelDescription, options: ParallelModelOptions, backend: string): Promise<ParallelImageModel> {
  const loaded = await loadModelDescription(source, { foldBatchNorm: options.foldBatchNorm ?? true });
  const model = withMemoryBudget(loaded, {
    ...(options.budgetBytes !== undefined ? { budgetBytes: options.budgetBytes } : {}),
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    onPlan: (plan) => options.onEvent?.({ type: 'plan', worker: 0, plan }),
  });
  return Object.assign(model, { workers: 0, backends: [backend], close: async () => model.dispose() });
}

/**
 * An ImageModel whose forward and gradient calls are spread over worker threads, one tfjs
 * backend (wasm by default) and one copy of the model per worker. Results equal a single-thread
 * model's. When the main thread runs the native `tensorflow` backend (tfjs-node or
 * tfjs-node-gpu installed), no workers are started: libtensorflow uses every core and the GPU by
 * itself, and batches are sized for the GPU's free memory.
 *
 * @example
 * const source = await describeLayersModel(layersModel, { name: 'resnet50', preprocessing: 'caffe' });
 * const model = await parallelGradientModel(source, { workers: 2 });
 * const attr = await integratedGradients(model, image, { steps: 50 }); // both cores
 * await model.close();
 */
export async function parallelGradientModel(source: ModelDescription, options: ParallelModelOptions = {}): Promise<ParallelImageModel> {
  const main = await initBackend();
  const abs = absoluteDescription(source);
  if (main.name === 'tensorflow') return inProcess(abs, options, describeBackend(main));
  const count = Math.max(1, Math.floor(options.workers ?? availableParallelism()));
  const init: WorkerInit = {
    source: abs,
    backend: options.backend ?? 'wasm',
    foldBatchNorm: options.foldBatchNorm ?? true,
    ...(options.budgetBytes !== undefined ? { budgetBytes: options.budgetBytes } : {}),
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
  };
  const onEvent = options.onEvent ?? (() => undefined);
  const slots = Array.from({ length: count }, (_, i) => new Slot(i, init, onEvent));
  let facts: ModelFacts;
  try {
    facts = (await Promise.all(slots.map((s) => s.start())))[0]!.facts;
  } catch (e) {
    await Promise.all(slots.map((s) => s.stop()));
    throw e;
  }

  /** Runs one share on one slot, replacing the worker after a memory failure or crash. */
  async function run(slot: Slot, req: Omit<WorkerRequest, 'id'>): Promise<WorkerReply & { type: 'result' }> {
    for (;;) {
      const generation = slot.generation;
      try {
        return await slot.call({ ...req, pixels: req.pixels.slice() });
      } catch (e) {
        if (!(e instanceof WorkerLost)) throw e;
        const batch = Math.min(req.shape[0], slot.plannedBatch ?? Infinity, slot.maxBatch ?? Infinity);
        if (generation === slot.generation && (slot.restarts >= MAX_RESTARTS || batch <= 1)) {
          throw new LensError(
            'BACKEND_FAILED',
            `${e.message}; gave up after ${slot.restarts} restarts of worker ${slot.index} (the last failure with ${batch} image(s) per call): ` +
              `model ${facts.name} does not fit the ${init.backend} backend's memory`,
          );
        }
        await slot.restart(generation, e.message, batch);
      }
    }
  }

  async function dispatch(op: 'forward' | 'gradient', pixels: tf.Tensor4D, target?: number | readonly number[]) {
    checkPixels(facts, pixels);
    const [n, h, w, c] = pixels.shape;
    const data = (await pixels.data()) as Float32Array;
    const per = h * w * c;
    const parts = shares(n, slots.length);
    return Promise.all(
      parts.map(([s, e], i) =>
        run(slots[i]!, {
          op,
          pixels: data.subarray(s * per, e * per),
          shape: [e - s, h, w, c],
          ...(target === undefined ? {} : { target: typeof target === 'number' ? target : target.slice(s, e) }),
        }),
      ),
    );
  }

  const close = async () => {
    await Promise.all(slots.map((s) => s.stop()));
  };

  const { gradient: hasGradient, ...shown } = facts;
  const model: ParallelImageModel = {
    ...shown,
    workers: count,
    get backends() {
      return slots.map((s) => s.backend);
    },
    async forward(pixels) {
      const replies = await dispatch('forward', pixels);
      return tf.tensor2d(concatFloat32(replies.map((r) => r.scores!)), [pixels.shape[0], facts.classes]);
    },
    close,
    dispose() {
      void close();
    },
  };
  if (hasGradient) {
    model.gradient = async (pixels, target): Promise<GradientResult> => {
      if (typeof target !== 'number' && target.length !== pixels.shape[0]) {
        throw new LensError('INVALID_ARGUMENT', `got ${target.length} targets for a batch of ${pixels.shape[0]}`);
      }
      const replies = await dispatch('gradient', pixels, target);
      return {
        gradients: tf.tensor4d(concatFloat32(replies.map((r) => r.gradients!)), pixels.shape),
        values: tf.tensor1d(concatFloat32(replies.map((r) => r.values!))),
      };
    };
  }
  return model;
}
