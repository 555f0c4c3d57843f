/** Messages between the gradient pool (workers.ts) and its worker threads (worker-entry.ts). */
import type { LensErrorCode } from '../core/errors.js';
import type { BatchPlan } from '../engines/tfjs/memory.js';
import type { ModelFacts, ModelDescription } from './describe.js';

/** What a worker is started with (its `workerData`). */
export interface WorkerInit {
  source: ModelDescription;
  backend: 'wasm' | 'cpu';
  foldBatchNorm: boolean;
  budgetBytes?: number;
  maxBatch?: number;
}

/** A request to a worker; pixels [N,H,W,C] in 0..255. */
export interface WorkerRequest {
  id: number;
  op: 'forward' | 'gradient';
  pixels: Float32Array;
  shape: [number, number, number, number];
  target?: number | number[];
}

/** A worker's answer. */
export type WorkerReply =
  | { type: 'ready'; facts: ModelFacts; backend: string }
  | { type: 'result'; id: number; scores?: Float32Array; classes?: number; gradients?: Float32Array; values?: Float32Array; plans?: BatchPlan[] }
  | { type: 'error'; id?: number; code: LensErrorCode; message: string; heapExhausted: boolean };
