/**
 * Worker thread of the gradient pool (src/models/workers.ts): initialises its own tfjs backend,
 * loads the model from its serialisable source, and answers forward and gradient requests one at
 * a time, splitting them to fit its heap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { errorMessage, isLensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { describeBackend, initBackend } from '../engines/tfjs/index.js';
import { isHeapExhausted, withMemoryBudget, type BatchPlan } from '../engines/tfjs/memory.js';
import { factsOf, loadModelDescription } from './describe.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('worker-entry runs only as a worker thread (see parallelGradientModel)');
const init = workerData as WorkerInit;

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(reply, transfer);
}

/** A copy that may be transferred: some backends hand out their own storage from data(). */
async function readOwned(t: tf.Tensor): Promise<Float32Array> {
  return ((await t.data()) as Float32Array).slice();
}

function failure(e: unknown, id?: number): WorkerReply {
  return {
    type: 'error',
    ...(id !== undefined ? { id } : {}),
    code: isLensError(e) ? e.code : 'BACKEND_FAILED',
    message: errorMessage(e),
    heapExhausted: isHeapExhausted(e),
  };
}

let model: ImageModel | undefined;
let newPlans: BatchPlan[] = [];

async function start(): Promise<void> {
  const info = await initBackend({ backend: init.backend });
  const loaded = await loadModelDescription(init.source, { foldBatchNorm: init.foldBatchNorm });
  model = withMemoryBudget(loaded, {
    ...(init.budgetBytes !== undefined ? { budgetBytes: init.budgetBytes } : {}),
    ...(init.maxBatch !== undefined ? { maxBatch: init.maxBatch } : {}),
    onPlan: (plan) => newPlans.push(plan),
  });
  post({ type: 'ready', facts: factsOf(loaded), backend: describeBackend(info) });
}

async function handle(req: WorkerRequest): Promise<void> {
  const m = model;
  if (!m) return;
  const plans = () => {
    const p = newPlans;
    newPlans = [];
    return p.length ? { plans: p } : {};
  };
  const pixels = tf.tensor4d(req.pixels, req.shape);
  try {
    if (req.op === 'forward') {
      const scores = await m.forward(pixels);
      const data = await readOwned(scores);
      const classes = scores.shape[1];
      scores.dispose();
      post({ type: 'result', id: req.id, scores: data, classes, ...plans() }, [data.buffer as ArrayBuffer]);
      return;
    }
    if (!m.gradient) throw new Error(`model ${m.name} has no gradient`);
    const r = await m.gradient(pixels, req.target ?? 0);
    const gradients = await readOwned(r.gradients);
    const values = await readOwned(r.values);
    tf.dispose([r.gradients, r.values]);
    post({ type: 'result', id: req.id, gradients, values, ...plans() }, [gradients.buffer as ArrayBuffer, values.buffer as ArrayBuffer]);
  } catch (e) {
    post(failure(e, req.id));
  } finally {
    pixels.dispose();
  }
}

let queue: Promise<void> = start().catch((e: unknown) => post(failure(e)));
port.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => handle(req));
});
