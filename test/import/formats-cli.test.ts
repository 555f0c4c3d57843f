/**
 * End to end for the three forms of issue #18, as the tutorial runs them: `lens export` of a
 * Keras 3 archive, of a TF1 checkpoint directory (`--checkpoint N --input-tensor --output-tensor`)
 * and of a frozen graph; `lens serve` (the local TF Serving) serves the exports; `lens predict`
 * queries them; `lens explain --server` checks the local model against the served one and
 * explains it. Served probabilities must equal the source model's on the same float pixels.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { loadPixels, pixelsToTensor } from '../../src/image/index.js';
import { loadImageModel, type LoadImageModelOptions } from '../../src/models/load.js';
import { startServer, type RunningServer } from '../../src/serving/index.js';
import { SHARED, runLens } from '../helpers/cli.js';

const EXT = join(SHARED, 'models-external');
const CIFAR = join(EXT, 'tf1-checkpoint-cifar-dotnet');
const FRUITS = join(EXT, 'frozen-graph-customvision-fruits');
const tmp = mkdtempSync(join(tmpdir(), 'lens-formats-cli-'));
const require = createRequire(import.meta.url);

interface Case {
  name: string;
  /** MODEL argument and the flags that choose what to load from it. */
  spec: string;
  flags: string[];
  options: LoadImageModelOptions;
  images: string[];
  /** explain --server's tolerance for local vs served probabilities (the check sends JPEG bytes at the model size). */
  tolerance: string;
}

const CKPT_DIR = join(tmp, 'cifar_model_dir');
const cases: Case[] = [
  {
    name: 'mnist',
    spec: join(EXT, 'keras3-mnist-cnn/mnist_cnn.keras'),
    flags: ['--preprocess', 'unit'],
    options: { preprocess: 'unit' },
    images: [0, 3, 7].map((d) => join(tmp, `digit${d}.png`)),
    tolerance: '0.001',
  },
  {
    name: 'cifar',
    spec: CKPT_DIR,
    flags: ['--checkpoint', '12000', '--input-tensor', 'Input:0', '--output-tensor', 'Output:0'],
    options: { checkpoint: 12000, inputTensor: 'Input:0', outputTensor: 'Output:0' },
    images: ['parrot.jpg', 'hot_dog.jpg'].map((f) => join(SHARED, 'images', f)),
    tolerance: '0.001',
  },
  {
    name: 'fruits',
    spec: join(FRUITS, 'apples_bananas_model.pb'),
    flags: ['--preprocess', 'bgr', '--labels', join(FRUITS, 'apples_bananas_labels.txt')],
    options: { preprocess: 'bgr', labels: join(FRUITS, 'apples_bananas_labels.txt') },
    images: ['apple1.jpg', 'banana1.jpg'].map((f) => join(FRUITS, 'test-photos', f)),
    tolerance: '0.001',
  },
];

let server: RunningServer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  // A training directory holding step 12000 of the real checkpoint.
  mkdirSync(CKPT_DIR);
  for (const ext of ['meta', 'index', 'data-00000-of-00001']) copyFileSync(join(CIFAR, `model.ckpt.${ext}`), join(CKPT_DIR, `model.ckpt-12000.${ext}`));
  writeFileSync(join(CKPT_DIR, 'checkpoint'), 'model_checkpoint_path: "model.ckpt-12000"\nall_model_checkpoint_paths: "model.ckpt-12000"\n');
  for (const d of [0, 3, 7]) {
    const row = (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data.slice(0, 784);
    await sharp(Buffer.from(row.map((v) => Math.round(v * 255))), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(tmp, `digit${d}.png`));
  }
  const exports = await Promise.all(cases.map((c) => runLens(['export', c.spec, join(tmp, 'models', c.name), '--version', '1', ...c.flags, '--json'])));
  exports.forEach((r, i) => {
    expect(r.code, `${cases[i]!.name}: ${r.stderr}`).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dir: join(tmp, 'models', cases[i]!.name, '1'), signatures: ['serving_default', 'predict', 'predict_pixels'] });
  });
  server = await startServer({ port: 0, restApiPort: 0, models: cases.map((c) => ({ name: c.name, basePath: join(tmp, 'models', c.name) })), fileSystemPollWaitSeconds: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface PredictJson {
  image: string;
  top_k: { index: number; label: string | null; probability: number }[];
}

describe('exports of a .keras archive, a TF1 checkpoint and a frozen graph, served by lens serve', () => {
  for (const c of cases) {
    it(`${c.name}: lens predict (float pixels over gRPC, JPEG over REST) answers with the source model's probabilities`, async () => {
      const model = await loadImageModel(c.spec, { ...c.options, engine: 'tfjs' });
      try {
        const [h, w, ch] = model.inputShape;
        const pixels = pixelsToTensor(await Promise.all(c.images.map((f) => loadPixels(f, { size: [h, w], resize: 'pad', channels: ch === 1 ? 1 : 3 }))));
        const scores = await model.forward(pixels);
        const probs = (await (model.output === 'logit' ? tf.softmax(scores) : scores).array()) as number[][];
        tf.dispose([pixels, scores]);
        const floats = await runLens(['predict', ...c.images, '--server', `127.0.0.1:${server.grpcPort}`, '--model', c.name, '--signature', 'predict_pixels', '--top_k', '2', '--json']);
        expect(floats.code, floats.stderr).toBe(0);
        (JSON.parse(floats.stdout) as PredictJson[]).forEach((r, i) => {
          const best = probs[i]!.indexOf(Math.max(...probs[i]!));
          expect(r.top_k[0]!.index, r.image).toBe(best);
          expect(r.top_k[0]!.probability).toBeCloseTo(probs[i]![best]!, 4);
        });
        // JPEG over REST: the served graph decodes and resizes the files itself (TensorFlow's bilinear
        // resize, which at 32x32 sees other pixels than the loader's), so its answer is checked against
        // the same export's graph run locally on the same bytes, as lens verify does.
        const jpeg = await runLens(['predict', ...c.images, '--server', `127.0.0.1:${server.restPort}`, '--rest', '--model', c.name, '--json']);
        expect(jpeg.code, jpeg.stderr).toBe(0);
        expect((JSON.parse(jpeg.stdout) as PredictJson[]).map((r) => r.image)).toEqual(c.images);
        const verify = await runLens(['verify', ...c.images, '--server', `127.0.0.1:${server.restPort}`, '--transport', 'rest', '--model', c.name, '--local', join(tmp, 'models', c.name, '1'), '--tolerance', '1e-4', '--json']);
        expect(verify.code, verify.stderr).toBe(0);
        expect((JSON.parse(verify.stdout) as { serving: { ok: boolean } }).serving.ok).toBe(true);
      } finally {
        model.dispose();
      }
    });

    it(`${c.name}: lens explain --server checks the local model against the served one, then explains it`, async () => {
      const out = join(tmp, `explain-${c.name}`);
      const r = await runLens(['explain', '--model', c.spec, ...c.flags, '--server', `127.0.0.1:${server.grpcPort}`, '--served-model', c.name, '--tolerance', c.tolerance, c.images[0]!, '--steps', '16', '--out', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`answers like served model ${c.name}`));
      const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { method: string; completeness: { sum: number; inputScore: number; baselineScore: number }; files: { png: string } };
      expect(summary.method).toBe('integrated_gradients');
      expect(Math.abs(summary.completeness.sum)).toBeGreaterThan(0);
      expect((await sharp(summary.files.png).metadata()).format).toBe('png');
    });
  }

  it('lens batch explains a list with the model loaded from a checkpoint step', async () => {
    const list = join(tmp, 'list.txt');
    writeFileSync(list, `${cases[1]!.images.join('\n')}\n`);
    const r = await runLens(['batch', '--list', list, '--model', CKPT_DIR, ...cases[1]!.flags, '--out', join(tmp, 'batch'), '--steps', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ shard: 0, images: 2, ok: 2 });
    expect(r.stderr).toMatch(/cifar_model_dir/);
  });
});
