/**
 * Large requests run in a worker thread that ends when they stop (src/serving/large-requests.ts),
 * so that `lens serve` gives their memory back: answers and errors are the main thread's, and the
 * worker goes away after its idle time.
 */
import { resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { LensError } from '../../src/core/errors.js';
import { loadSavedModel } from '../../src/engines/tfjs/savedmodel.js';
import { LARGE_REQUEST_BYTES } from '../../src/serving/memory.js';
import { createClient, startServer } from '../../src/serving/index.js';
import { LargeRequestWorker, isLargeRequest } from '../../src/serving/large-requests.js';
import type { HostTensor } from '../../src/tensor/index.js';
import { SHARED } from '../helpers/cli.js';

const BASE = resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu');
const VERSION = resolve(BASE, '00000123');

/** A column of `n` distinct values, fed as half_plus_two's x. */
function column(n: number): HostTensor {
  return { dtype: 'float32', shape: [n, 1], values: Float32Array.from({ length: n }, (_, i) => (i % 1000) - 500) };
}
/** y = x / 2 + 2, computed here, not by a model. */
const halfPlusTwo = (x: HostTensor) => Array.from(x.values as Float32Array, (v) => v / 2 + 2);

const rows = LARGE_REQUEST_BYTES / 4 + 1;

describe('large requests', () => {
  const large = new LargeRequestWorker(VERSION, ['serve'], 200);
  afterAll(() => large.close());

  it('are told from small ones by the bytes of their inputs', () => {
    expect(isLargeRequest({ x: column(rows) })).toBe(true);
    expect(isLargeRequest({ x: column(rows - 2) })).toBe(false);
    expect(isLargeRequest({ s: { dtype: 'string', shape: [2], values: [new Uint8Array(LARGE_REQUEST_BYTES / 2), new Uint8Array(LARGE_REQUEST_BYTES / 2)] } })).toBe(true);
  });

  it('answer in a worker as the model does, and the worker ends when idle', async () => {
    const x = column(rows);
    const { y } = await large.run('serving_default', { x }, ['y']);
    expect(large.running).toBe(true);
    expect(y!.shape).toEqual([rows, 1]);
    expect(Array.from(y!.values as Float32Array)).toEqual(halfPlusTwo(x));
    await vi.waitFor(() => expect(large.running).toBe(false), { timeout: 10_000 });
    // A new large request starts a new worker.
    const again = await large.run('serving_default', { x: column(3) }, ['y']);
    expect(Array.from(again.y!.values as Float32Array)).toEqual([-248, -247.5, -247]);
  }, 60_000);

  it('fail with the error the main thread gives', async () => {
    const model = await loadSavedModel(VERSION, { lazy: true });
    const wrong: HostTensor = { dtype: 'int32', shape: [2, 1], values: new Int32Array([1, 2]) };
    const inMain = await model.predict({ x: wrong }).catch((e: unknown) => e);
    model.dispose();
    const inWorker = await large.run('serving_default', { x: wrong }, ['y']).catch((e: unknown) => e);
    expect(inMain).toBeInstanceOf(LensError);
    expect(inWorker).toBeInstanceOf(LensError);
    expect([(inWorker as LensError).code, (inWorker as LensError).message]).toEqual([(inMain as LensError).code, (inMain as LensError).message]);
  }, 60_000);

  it('are served by lens serve over gRPC like small ones', async () => {
    const server = await startServer({ port: 0, restApiPort: false, models: [{ name: 'half', basePath: BASE }], fileSystemPollWaitSeconds: 0 });
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    try {
      const x = column(rows);
      const reply = await client.predict({ model: 'half', inputs: { x } });
      expect(Array.from(reply.outputs.y!.values as Float32Array)).toEqual(halfPlusTwo(x));
      const small = await client.predict({ model: 'half', inputs: { x: column(2) } });
      expect(Array.from(small.outputs.y!.values as Float32Array)).toEqual([-248, -247.5]);
    } finally {
      client.close();
      await server.close();
    }
  }, 60_000);
});
