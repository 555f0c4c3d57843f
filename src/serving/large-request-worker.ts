/**
 * The worker thread of large-requests.ts: loads one SavedModel version (signatures converted on
 * first use) and runs the requests it is sent one at a time, so that its memory peaks at one
 * request's tensors. Its WebAssembly memory is given back when the thread ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage, isLensError } from '../core/errors.js';
import { loadSavedModel } from '../engines/tfjs/savedmodel.js';
import { registerExampleOps } from './example-ops.js';
import type { LargeReply, LargeRequest, LargeRequestInit } from './large-requests.js';

const port = parentPort;
if (!port) throw new Error('large-request-worker runs only as a worker thread (see LargeRequestWorker)');
const init = workerData as LargeRequestInit;

registerExampleOps();
const model = loadSavedModel(init.dir, { tags: init.tags, lazy: true });
// A load failure is each request's answer, not an unhandled rejection.
model.catch(() => undefined);

async function handle(req: LargeRequest): Promise<void> {
  let reply: LargeReply;
  try {
    const outputs = await (await model).predict(req.inputs, { signature: req.signature, outputFilter: req.outputs });
    reply = { id: req.id, outputs };
  } catch (e) {
    reply = { id: req.id, code: isLensError(e) ? e.code : 'INTERNAL', message: errorMessage(e) };
  }
  port!.postMessage(reply);
}

let queue = Promise.resolve();
port.on('message', (req: LargeRequest) => {
  queue = queue.then(() => handle(req));
});
