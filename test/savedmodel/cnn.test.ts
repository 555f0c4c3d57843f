import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { SHARED } from '../helpers/cli.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { convertSavedModel } from '../../src/convert/savedmodel.js';
import { loadSavedModel } from '../../src/engines/tfjs/savedmodel.js';
import { imageModelFromSavedModel } from '../../src/models/savedmodel.js';
import { loadGraphModelFromDir } from '../../src/convert/graph/index.js';

const CNN = resolve(SHARED, 'testdata/savedmodels-cnn');
const tmp = mkdtempSync(join(tmpdir(), 'lens-cnn-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  // Full gradients need the cpu backend (see src/engines/tfjs).
  await initBackend({ backend: 'cpu' });
});

const fixtures = [
  { dir: 'dotnet-mnist-conv-tf1', input: 'Features', output: 'Prediction', shape: [28, 28, 1], classes: 10, softmax: true },
  { dir: 'dotnet-cifar-conv-tf1', input: 'Input', output: 'Output', shape: [32, 32, 3], classes: 10, softmax: false },
  { dir: 'mlcommons-tiny-kws-dscnn-tf2', input: 'input_1', output: 'dense', shape: [49, 10, 1], classes: 12, softmax: true },
];

describe('CNN SavedModels', () => {
  for (const f of fixtures) {
    it(`${f.dir}: runs a batch, and the converted model on disk gives identical results`, async () => {
      const m = await loadSavedModel(join(CNN, f.dir));
      const g = await m.graph();
      expect(g.inputs.map((t) => [t.alias, t.shape])).toEqual([[f.input, [-1, ...f.shape]]]);
      const x = tf.randomUniform([4, ...f.shape], 0, 1, 'float32', 7);
      const out = await m.predictTensors({ [f.input]: x });
      const y = out[f.output]!;
      expect(y.shape).toEqual([4, f.classes]);
      const rows = Array.from(await tf.sum(y, 1).data());
      if (f.softmax) for (const r of rows) expect(r).toBeCloseTo(1, 5);
      else expect(rows.some((r) => Math.abs(r - 1) > 1e-3)).toBe(true);

      const outDir = join(tmp, f.dir);
      const written = await convertSavedModel(join(CNN, f.dir), outDir);
      expect(written.outputs[0]!.alias).toBe(f.output);
      const disk = await loadGraphModelFromDir(outDir);
      const yDisk = disk.execute({ [written.inputs[0]!.name]: x }, written.outputs[0]!.name) as tf.Tensor;
      expect(Array.from(await yDisk.data())).toEqual(Array.from(await y.data()));
      // The signature travels with model.json: aliases work too.
      const yAlias = disk.execute({ [f.input]: x }, f.output) as tf.Tensor;
      expect(Array.from(await yAlias.data())).toEqual(Array.from(await y.data()));
      tf.dispose([x, y, yDisk, yAlias]);
      disk.dispose();
      m.dispose();
    });
  }

  it('keeps only the inference path of TF1 graphs with training ops', async () => {
    const m = await loadSavedModel(join(CNN, 'dotnet-cifar-conv-tf1'));
    const ops = Object.keys((await m.graph()).converted.opCounts).sort();
    expect(ops).toEqual(['Add', 'Const', 'Conv2D', 'Identity', 'MatMul', 'Placeholder', 'Relu', 'Reshape']);
    m.dispose();
  });

  it('as an ImageModel: input gradients match finite differences through the converted graph', async () => {
    const model = await imageModelFromSavedModel(join(CNN, 'dotnet-cifar-conv-tf1'), { preprocessing: 'raw' });
    expect(model.inputShape).toEqual([32, 32, 3]);
    expect(model.classes).toBe(10);
    expect(model.output).toBe('logit');
    expect(model.name).toBe('dotnet-cifar-conv-tf1');
    const pixels = tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const target = 4;
    const { gradients, values } = await model.gradient!(pixels, target);
    expect(gradients.shape).toEqual([1, 32, 32, 3]);
    const grad = await gradients.data();
    const base = await pixels.data();
    const score = async (data: Float32Array) => {
      const x = tf.tensor4d(data, [1, 32, 32, 3]);
      const y = await model.forward(x);
      const v = (await y.data())[target]!;
      tf.dispose([x, y]);
      return v;
    };
    expect((await values.data())[0]).toBeCloseTo(await score(Float32Array.from(base)), 3);
    // Largest-gradient pixels plus a few others, by central differences.
    const order = Array.from(grad.keys()).sort((a, b) => Math.abs(grad[b]!) - Math.abs(grad[a]!));
    const largest = Math.abs(grad[order[0]!]!);
    expect(largest).toBeGreaterThan(1e-3);
    const eps = 1e-2;
    for (const i of [...order.slice(0, 4), 100, 1500, 3000]) {
      const plus = Float32Array.from(base);
      const minus = Float32Array.from(base);
      plus[i]! += eps;
      minus[i]! -= eps;
      const fd = ((await score(plus)) - (await score(minus))) / (2 * eps);
      expect(Math.abs(fd - grad[i]!), `pixel ${i}: finite difference ${fd}, gradient ${grad[i]}`).toBeLessThan(0.01 * largest + 0.05 * Math.abs(grad[i]!));
    }
    tf.dispose([pixels, gradients, values]);
    model.dispose();
  });

  it('as an ImageModel: softmax models report probabilities; TF2 graphs are differentiable too', async () => {
    const kws = await imageModelFromSavedModel(join(CNN, 'mlcommons-tiny-kws-dscnn-tf2'));
    expect(kws.output).toBe('probability');
    expect(kws.inputShape).toEqual([49, 10, 1]);
    const x = tf.randomUniform([2, 49, 10, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const { gradients, values } = await kws.gradient!(x, [1, 2]);
    expect(gradients.shape).toEqual([2, 49, 10, 1]);
    expect(values.shape).toEqual([2]);
    expect((await tf.max(tf.abs(gradients)).data())[0]).toBeGreaterThan(0);
    tf.dispose([x, gradients, values]);
    kws.dispose();
    const mnist = await imageModelFromSavedModel(join(CNN, 'dotnet-mnist-conv-tf1'));
    expect(mnist.output).toBe('probability');
    mnist.dispose();
  });
});
