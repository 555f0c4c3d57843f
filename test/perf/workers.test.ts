import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { describeLayersModel } from '../../src/models/describe.js';
import { parallelGradientModel, type ParallelImageModel, type PoolEvent } from '../../src/models/workers.js';
import { imageModelFromLayers } from '../../src/models/keras.js';
import { loadImageModel } from '../../src/models/load.js';
import { SHARED } from '../helpers/cli.js';
import { CLASSES, SHAPE, weight } from './fixtures/linear-model.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/linear-model.ts', import.meta.url));
const RESNET8 = `${SHARED}/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5`;

function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1e-6;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / scale;
}

function images(n: number, h: number, w: number, c: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([n, h, w, c], 0, 255, 'float32', seed) as tf.Tensor4D;
}

/** A small ResNet-like classifier with batch norms (which the workers fold). */
function smallNet(): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.randomNormal({ mean: 0, stddev: 0.05, seed: s });
  const ap = (l: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => l.apply(x) as tfl.SymbolicTensor;
  const inp = tfl.input({ shape: [12, 12, 3] });
  let x = ap(tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(1) }), inp);
  x = ap(tfl.layers.batchNormalization({ movingMeanInitializer: init(2), gammaInitializer: 'ones' }), x);
  x = ap(tfl.layers.activation({ activation: 'relu' }), x);
  const y = ap(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(3) }), x);
  x = ap(tfl.layers.globalAveragePooling2d({}), ap(tfl.layers.activation({ activation: 'relu' }), y));
  return tfl.model({ inputs: inp, outputs: ap(tfl.layers.dense({ units: 4, kernelInitializer: init(4), activation: 'softmax' }), x) });
}

describe('worker pool', () => {
  const pools: ParallelImageModel[] = [];
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  it('a LayersModel: gradients and scores equal the single-thread model (unfolded exactly, folded closely)', async () => {
    const net = smallNet();
    const single = imageModelFromLayers(net, { name: 'small', preprocessing: 'unit' });
    const source = await describeLayersModel(net, { name: 'small', preprocessing: 'unit' });
    const exact = await parallelGradientModel(source, { workers: 2, foldBatchNorm: false });
    const folded = await parallelGradientModel(source, { workers: 2 });
    pools.push(exact, folded);
    expect(exact.workers).toBe(2);
    expect(exact.backends).toEqual(['wasm (SIMD, 1 thread)', 'wasm (SIMD, 1 thread)']);
    expect(exact.output).toBe('logit'); // logits before the final softmax, like the single-thread adapter
    const x = images(5, 12, 12, 3, 1);
    const targets = [0, 1, 2, 3, 1];
    const want = await single.gradient!(x, targets);
    for (const [pool, tol] of [[exact, 1e-6], [folded, 1e-4]] as const) {
      const got = await pool.gradient!(x, targets);
      expect(got.gradients.shape).toEqual([5, 12, 12, 3]);
      expect(relMaxDiff(await got.gradients.data(), await want.gradients.data())).toBeLessThan(tol);
      expect(relMaxDiff(await got.values.data(), await want.values.data())).toBeLessThan(tol);
      const scores = await pool.forward(x);
      expect(relMaxDiff(await scores.data(), await (await single.forward(x)).data())).toBeLessThan(tol);
    }
  });

  it('a model spec (Keras h5 through loadImageModel) in workers equals the same model in the main thread', async () => {
    const pool = await parallelGradientModel({ kind: 'spec', spec: RESNET8 }, { workers: 2 });
    pools.push(pool);
    const local = await loadImageModel(RESNET8);
    const x = images(3, 32, 32, 3, 2);
    const got = await pool.gradient!(x, 4);
    const want = await local.gradient!(x, 4);
    expect(relMaxDiff(await got.gradients.data(), await want.gradients.data())).toBeLessThan(1e-4);
    local.dispose();
  });

  it('a module source; a worker whose heap overflows is replaced with a smaller batch and the share retried', async () => {
    const events: PoolEvent[] = [];
    const pool = await parallelGradientModel(
      { kind: 'module', module: FIXTURE, export: 'linearModel', args: [{ failAbove: 2 }] },
      { workers: 2, onEvent: (e) => events.push(e) },
    );
    pools.push(pool);
    const n = 16;
    const x = images(n, SHAPE[0], SHAPE[1], SHAPE[2], 3);
    const { gradients, values } = await pool.gradient!(x, 2);
    const g = await gradients.data();
    const per = SHAPE[0] * SHAPE[1] * SHAPE[2];
    for (let b = 0; b < n; b++) for (let i = 0; i < per; i++) expect(g[b * per + i]).toBeCloseTo(weight(i, 2), 5);
    expect(values.shape).toEqual([n]);
    const restarts = events.filter((e) => e.type === 'restart');
    expect(restarts.length).toBeGreaterThanOrEqual(2);
    expect(restarts.every((e) => e.type === 'restart' && /out of memory/.test(e.reason))).toBe(true);
    expect(CLASSES).toBe(pool.classes);
  });

  it('gives up with a clear error when even one image overflows', async () => {
    const pool = await parallelGradientModel({ kind: 'module', module: FIXTURE, export: 'linearModel', args: [{ failAbove: 0 }] }, { workers: 1 });
    pools.push(pool);
    await expect(pool.gradient!(images(2, SHAPE[0], SHAPE[1], SHAPE[2], 4), 0)).rejects.toThrow(/ran out of memory.*gave up after \d+ restarts.*does not fit/);
  });

  it('reports a model that cannot be loaded', async () => {
    await expect(parallelGradientModel({ kind: 'module', module: FIXTURE, export: 'noSuchExport' }, { workers: 1 })).rejects.toThrow(/no function export "noSuchExport"/);
  });
});
