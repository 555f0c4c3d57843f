/**
 * Large requests run in a worker thread that ends once they stop coming, so that `lens serve`
 * gives their memory back. The wasm backend computes in one WebAssembly.Memory per thread, which
 * grows to hold the largest tensors a graph ever computed and can never shrink: a 64 MiB request
 * to half_plus_two would keep the main thread's memory 120 MiB larger for the server's lifetime.
 * A worker's memory goes with the worker. Requests whose inputs reach {@link LARGE_REQUEST_BYTES}
 * go to the worker (which loads the same SavedModel on the first one); the worker ends after
 * {@link LARGE_WORKER_IDLE_MS} without them. Small requests, and every request to a graph that
 * assigns variables (its state lives in the main thread), run in the main thread as before.
 *
 * @example
 * const large = new LargeRequestWorker('/models/half/123', ['serve']);
 * const { y } = await large.run('serving_default', { x }, ['y']);
 * await large.close();
 */
import type { Worker } from 'node:worker_threads';
import { LensError, type LensErrorCode } from '../core/errors.js';
import { startWorker } from '../engines/tfjs/worker-start.js';
import type { HostTensor } from '../tensor/index.js';
import { LARGE_REQUEST_BYTES } from './memory.js';

/** How long the worker stays after its last large request (then its memory is given back). */
export const LARGE_WORKER_IDLE_MS = 2000;

/** The worker's `workerData`. */
export interface LargeRequestInit {
  dir: string;
  tags: readonly string[];
}

/** A request to the worker: run `signature` on `inputs`, return `outputs`. */
export interface LargeRequest {
  id: number;
  signature: string;
  inputs: Record<string, HostTensor>;
  outputs: readonly string[];
}

/** The worker's answer: the outputs, or the LensError the run threw. */
export type LargeReply = { id: number; outputs: Record<string, HostTensor> } | { id: number; code: LensErrorCode; message: string };

/** Bytes of a request's input tensors (strings by their lengths). */
export function inputBytes(inputs: Readonly<Record<string, HostTensor>>): number {
  let bytes = 0;
  for (const t of Object.values(inputs)) {
    bytes += t.dtype === 'string' ? t.values.reduce((n, s) => n + s.length, 0) : t.values.byteLength;
  }
  return bytes;
}

/** True when a request is large enough to run in the worker. */
export function isLargeRequest(inputs: Readonly<Record<string, HostTensor>>): boolean {
  return inputBytes(inputs) >= LARGE_REQUEST_BYTES;
}

interface Pending {
  resolve(outputs: Record<string, HostTensor>): void;
  reject(e: Error): void;
}

/** One SavedModel version's worker for large requests, started on demand and ended when idle. */
export class LargeRequestWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private idle: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly tags: readonly string[],
    private readonly idleMs = LARGE_WORKER_IDLE_MS,
  ) {}

  /** True while a worker thread exists (between the first large request and the idle end). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Runs a signature in the worker; rejects with the run's LensError as the main thread would. */
  run(signature: string, inputs: Record<string, HostTensor>, outputs: readonly string[]): Promise<Record<string, HostTensor>> {
    if (this.closed) return Promise.reject(new LensError('INVALID_ARGUMENT', `SavedModel ${this.dir} was disposed`));
    clearTimeout(this.idle);
    const worker = this.started();
    worker.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, signature, inputs, outputs } satisfies LargeRequest);
    });
  }

  /** Ends the worker now (pending requests fail). */
  async close(): Promise<void> {
    this.closed = true;
    await this.stop();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker(import.meta.url, './large-request-worker', { dir: this.dir, tags: this.tags } satisfies LargeRequestInit);
    this.worker = worker;
    worker.on('message', (reply: LargeReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if ('outputs' in reply) p.resolve(reply.outputs);
      else p.reject(new LensError(reply.code, reply.message));
      if (this.pending.size === 0) this.whenIdle();
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      clearTimeout(this.idle);
      const e = new LensError('BACKEND_FAILED', `the worker running large requests on ${this.dir} stopped: ${why}`);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', (e) => lost(e.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    return worker;
  }

  /** Lets the process exit while the worker waits, and ends the worker after the idle time. */
  private whenIdle(): void {
    this.worker?.unref();
    clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.stop(), this.idleMs);
    this.idle.unref();
  }

  private async stop(): Promise<void> {
    clearTimeout(this.idle);
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new LensError('INVALID_ARGUMENT', `SavedModel ${this.dir} was disposed`));
    this.pending.clear();
    await worker.terminate();
  }
}
