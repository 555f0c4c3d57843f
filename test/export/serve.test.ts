/**
 * End to end: `lens export` writes ResNet-8 (Keras HDF5) and the bundled model (or, until it is
 * trained, a LayersModel folder of the same architecture), the local TF Serving server serves
 * both, and clients query them with JPEG files over gRPC and REST, directly and through
 * `lens predict`. Every top-1 must equal the source model's top-1 on the same pixels, and the full
 * probability vectors the server returns must equal the local SavedModel's on the same bytes
 * (gRPC and REST). `lens verify` and `lens explain --server` run against these real exports.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { encodeJpeg, loadPixels, pixelsToTensor } from '../../src/image/index.js';
import { DEFAULT_MODEL_DIR, loadImageModel, type LoadedImageModel } from '../../src/models/load.js';
import { buildShapesResNet, writeLayersModel } from '../../src/models/shapes-resnet.js';
import { loadSavedModel } from '../../src/engines/tfjs/savedmodel.js';
import { createClient, profile, startServer, type RunningServer } from '../../src/serving/index.js';
import { encodePng } from '../../src/image/index.js';
import { runLens, SHARED } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lens-export-serve-'));
const RESNET8 = join(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const BUNDLED = existsSync(join(DEFAULT_MODEL_DIR, 'model.json'));
const JPEGS = [join(SHARED, 'images/parrot.jpg'), join(SHARED, 'images/hot_dog.jpg'), join(tmp, 'cat.jpg')];

let server: RunningServer;
let resnet8: LoadedImageModel;
let shapes: LoadedImageModel;
let shapesSpec: string;

interface ExportJson {
  dir: string;
  signatures: string[];
  inputShape: number[];
  classes: number;
  topK: number;
}

beforeAll(async () => {
  await initBackend();
  // A JPEG file made from the BMP photo, so that three real photos go in as JPEG files.
  const cat = await loadPixels(join(SHARED, 'images/cat.bmp'));
  writeFileSync(JPEGS[2]!, await encodeJpeg(cat, 92));
  if (BUNDLED) {
    shapesSpec = 'default';
  } else {
    shapesSpec = join(tmp, 'shapes-layers');
    const model = buildShapesResNet({ seed: 4 });
    await writeLayersModel(model, shapesSpec);
    const sidecar = { name: 'shapes', inputShape: [64, 64, 3], classes: 5, labels: ['disc', 'square', 'triangle', 'star', 'cross'], preprocessing: 'unit', output: 'logit', format: 'layers' };
    writeFileSync(join(shapesSpec, 'lens.json'), JSON.stringify(sidecar));
    model.dispose();
  }
  const [r8, sh] = await Promise.all([
    runLens(['export', RESNET8, join(tmp, 'models/resnet8'), '--version', '1', '--top-k', '3', '--json']),
    runLens(['export', shapesSpec, join(tmp, 'models/shapes'), '--version', '7', '--name', 'shapes', '--json']),
  ]);
  expect(r8.code, r8.stderr).toBe(0);
  expect(sh.code, sh.stderr).toBe(0);
  const e8 = JSON.parse(r8.stdout) as ExportJson;
  expect(e8.dir).toBe(join(tmp, 'models/resnet8/1'));
  expect(e8.signatures).toEqual(['serving_default', 'predict', 'predict_pixels']);
  expect([e8.inputShape, e8.classes, e8.topK]).toEqual([[32, 32, 3], 10, 3]);
  expect((JSON.parse(sh.stdout) as ExportJson).dir).toBe(join(tmp, 'models/shapes/7'));
  resnet8 = await loadImageModel(RESNET8);
  shapes = await loadImageModel(shapesSpec);
  server = await startServer({
    port: 0,
    restApiPort: 0,
    models: [
      { name: 'resnet8', basePath: join(tmp, 'models/resnet8') },
      { name: 'shapes', basePath: join(tmp, 'models/shapes') },
    ],
    fileSystemPollWaitSeconds: 0,
  });
});

afterAll(async () => {
  await server?.close();
  resnet8?.dispose();
  shapes?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

/** Top-1 of the source model for pixels [N,H,W,C] (0..255). */
async function top1(model: LoadedImageModel, pixels: tf.Tensor4D): Promise<number[]> {
  const scores = await model.forward(pixels);
  const best = Array.from(await tf.argMax(scores, 1).data());
  scores.dispose();
  return best;
}

/** JPEG files at the model size, and the pixels the server decodes from them. */
async function jpegsAtModelSize(size: readonly [number, number, number]): Promise<{ jpegs: Uint8Array[]; decoded: tf.Tensor4D }> {
  const jpegs: Uint8Array[] = [];
  const raw: Buffer[] = [];
  for (const f of JPEGS) {
    const p = await loadPixels(f, { size: [size[0], size[1]], resize: 'pad' });
    const jpeg = await encodeJpeg(p, 95);
    jpegs.push(jpeg);
    raw.push(await sharp(jpeg).removeAlpha().raw().toBuffer());
  }
  return { jpegs, decoded: tf.tensor4d(Float32Array.from(Buffer.concat(raw)), [jpegs.length, size[0], size[1], size[2]]) };
}

describe('exported models served by lens serve', () => {
  it('report their signatures in metadata (gRPC)', async () => {
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    try {
      const meta = await client.getModelMetadata({ model: 'resnet8' });
      expect(Object.keys(meta.signatures).sort()).toEqual(['predict', 'predict_pixels', 'serving_default']);
      expect(Object.keys(meta.signatures.serving_default!.inputs)).toEqual(['image_bytes']);
      expect(Object.keys(meta.signatures.serving_default!.outputs).sort()).toEqual(['class_ids', 'classes', 'probabilities']);
      expect(meta.signatures.serving_default!.outputs.classes!.dtype).toBe('DT_STRING');
    } finally {
      client.close();
    }
  });

  for (const transport of ['grpc', 'rest'] as const) {
    it(`answer JPEG bytes over ${transport} with the source model's top-1 (ResNet-8 and the shapes model)`, async () => {
      const port = transport === 'grpc' ? server.grpcPort : server.restPort!;
      const client = createClient({ target: `127.0.0.1:${port}`, transport });
      try {
        for (const [name, model] of [['resnet8', resnet8], ['shapes', shapes]] as const) {
          const { jpegs, decoded } = await jpegsAtModelSize(model.inputShape);
          const { outputs } = await client.predict({ model: name, inputs: { image_bytes: { dtype: 'string', shape: [jpegs.length], values: jpegs } } });
          const classes = Array.from(outputs.class_ids!.values as ArrayLike<number | bigint>, Number);
          const k = outputs.class_ids!.shape[1]!;
          const served = classes.filter((_, i) => i % k === 0);
          expect(served, name).toEqual(await top1(model, decoded));
          // Names come with the indices, from the table inside the graph.
          const names = (outputs.classes!.values as Uint8Array[]).map((b) => new TextDecoder().decode(b));
          expect(names, name).toEqual(classes.map((c) => model.labels?.[c] ?? String(c)));
          const probs = outputs.probabilities!;
          expect(probs.shape).toEqual([jpegs.length, model.classes]);
          // The whole probability vector equals the local SavedModel's on the same bytes.
          const local = await loadSavedModel(join(tmp, `models/${name}`, name === 'resnet8' ? '1' : '7'));
          const expected = await local.predict({ image_bytes: { dtype: 'string', shape: [jpegs.length], values: jpegs } });
          local.dispose();
          const want = expected.probabilities!.values as Float32Array;
          const got = probs.values as Float32Array;
          expect(got.length).toBe(want.length);
          expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!))), name).toBeLessThanOrEqual(1e-4);
          decoded.dispose();
        }
      } finally {
        client.close();
      }
    });
  }
});

describe('bad input', () => {
  it('bytes that are no image fail that request with INVALID_ARGUMENT; the server keeps serving', async () => {
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    try {
      const junk = new TextEncoder().encode('not a jpeg');
      const e = await client.predict({ model: 'resnet8', inputs: { image_bytes: { dtype: 'string', shape: [2], values: [junk, junk] } } }).catch((err: unknown) => err);
      expect((e as { status?: string }).status).toBe('INVALID_ARGUMENT');
      expect((e as Error).message).toMatch(/unknown image file format/);
      const { jpegs, decoded } = await jpegsAtModelSize(resnet8.inputShape);
      const { outputs } = await client.predict({ model: 'resnet8', inputs: { image_bytes: { dtype: 'string', shape: [1], values: [jpegs[0]!] } } });
      expect(outputs.probabilities!.shape).toEqual([1, 10]);
      decoded.dispose();
    } finally {
      client.close();
    }
  });
});

describe('lens predict against the served exports', () => {
  interface PredictJson {
    image: string;
    top_k: { index: number; probability: number }[];
  }

  it('JPEG files through the JPEG signature (gRPC): the files themselves are sent, names come from the export', async () => {
    const r = await runLens(['predict', ...JPEGS, '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'shapes', '--top_k', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as (PredictJson & { top_k: { label: string | null }[] })[];
    // The server decodes and resizes the files as the local SavedModel does on the same bytes.
    const local = await loadSavedModel(join(tmp, 'models/shapes/7'));
    const bytes = JPEGS.map((f) => new Uint8Array(readFileSync(f)));
    const out = await local.predict({ image_bytes: { dtype: 'string', shape: [bytes.length], values: bytes } });
    local.dispose();
    const ids = Array.from(out.class_ids!.values as BigInt64Array, Number);
    const k = out.class_ids!.shape[1]!;
    expect(result.map((x) => x.top_k[0]!.index)).toEqual(ids.filter((_, i) => i % k === 0));
    expect(result.every((x) => x.top_k.length === 2 && x.top_k[0]!.probability >= x.top_k[1]!.probability)).toBe(true);
    // No label file on the client: the names are the export's.
    expect(result.map((x) => x.top_k[0]!.label)).toEqual(ids.filter((_, i) => i % k === 0).map((c) => shapes.labels![c]));
  });

  it('the same files as float pixels through predict_pixels over REST: top-1 = source model', async () => {
    const r = await runLens(['predict', ...JPEGS, '--server', `127.0.0.1:${server.restPort}`, '--rest', '--model', 'shapes', '--signature', 'predict_pixels', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as PredictJson[];
    const pixels = pixelsToTensor(await Promise.all(JPEGS.map((f) => loadPixels(f, { size: [64, 64], resize: 'pad' }))));
    expect(result.map((x) => x.top_k[0]!.index)).toEqual(await top1(shapes, pixels));
    pixels.dispose();
  });
});

describe('lens export CLI', () => {
  it('refuses an existing version without --force and names the flag', async () => {
    const r = await runLens(['export', RESNET8, join(tmp, 'models/resnet8'), '--version', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/resnet8\/1 already exists.*--force/);
  });

  it('checks its flags', async () => {
    const r = await runLens(['export', RESNET8, join(tmp, 'x'), '--version', 'one']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--version must be a whole number/);
    expect(existsSync(join(tmp, 'x'))).toBe(false);
  });

  it('wrote a lens.json that describes the float signature', () => {
    const meta = JSON.parse(readFileSync(join(tmp, 'models/resnet8/1/lens.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toMatchObject({ inputShape: [32, 32, 3], classes: 10, preprocessing: 'raw', output: 'probability', signature: 'predict_pixels' });
  });
});

describe('explaining what is served (real exports, lens serve)', () => {
  it('PNG bytes through the exported JPEG graph give exactly the float signature on the same pixels', async () => {
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    try {
      const pixels = await loadPixels(JPEGS[0]!, { size: [64, 64], resize: 'pad' });
      const png = await encodePng(pixels);
      const viaPng = await client.predict({ model: 'shapes', inputs: { image_bytes: { dtype: 'string', shape: [1], values: [png] } } });
      const viaFloat = await client.predict({ model: 'shapes', signature: 'predict_pixels', inputs: { images: { dtype: 'float32', shape: [1, 64, 64, 3], values: pixels.data } } });
      const a = viaPng.outputs.probabilities!.values as Float32Array;
      const b = viaFloat.outputs.probabilities!.values as Float32Array;
      expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)))).toBeLessThanOrEqual(1e-6);
    } finally {
      client.close();
    }
  });

  for (const transport of ['grpc', 'rest'] as const) {
    it(`lens verify over ${transport}: the same bytes through the served and the local JPEG signature, and the pixel model vs the full graph`, async () => {
      const port = transport === 'grpc' ? server.grpcPort : server.restPort!;
      const r = await runLens(['verify', ...JPEGS, '--server', `127.0.0.1:${port}`, '--transport', transport, '--model', 'resnet8', '--local', join(tmp, 'models/resnet8'), '--tolerance', '1e-4', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { serving: { ok: boolean; images: { maxProbabilityDifference: number }[] }; attribution: { ok: boolean; images: { maxProbabilityDifference: number }[] } };
      expect(report.serving.ok && report.attribution.ok).toBe(true);
      expect(report.serving.images).toHaveLength(JPEGS.length);
      for (const i of [...report.serving.images, ...report.attribution.images]) expect(i.maxProbabilityDifference).toBeLessThanOrEqual(1e-4);
    });
  }

  it('lens verify fails with MODEL_MISMATCH when the local copy is another model', async () => {
    const r = await runLens(['verify', JPEGS[0]!, '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'shapes', '--local', join(tmp, 'models/resnet8')]);
    expect(r.code).toBe(1);
    // Through the JPEG signature as through pixels: the class counts differ, so they are not the same model.
    expect(r.stderr).toMatch(/^lens: the local model .* has 10 classes but the served model shapes has 5: they are not the same model$/m);
  });

  it('lens explain --server checks the local export against the served one, then explains it', async () => {
    const out = join(tmp, 'explained');
    const r = await runLens(['explain', JPEGS[0]!, '--model', join(tmp, 'models/shapes'), '--server', `127.0.0.1:${server.grpcPort}`, '--served-model', 'shapes', '--steps', '8', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/verified: .* answers like served model shapes/);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { files: { png: string } };
    expect(existsSync(summary.files.png)).toBe(true);
  });

  it('lens profile of the 64x64 export sends 64x64 images (the size the served model says)', async () => {
    const result = await profile({ target: `127.0.0.1:${server.grpcPort}`, model: 'shapes', batchSizes: [1], trials: 1, warmup: 0 });
    expect(result.inputShape).toEqual([64, 64, 3]);
    expect(result.inputKind).toBe('jpeg');
    expect(shapes.labels).toContain(result.predictedClass);
  });

  it('lens profile --image sends the file itself and names the class the export gives it', async () => {
    const withFile = await profile({ target: `127.0.0.1:${server.grpcPort}`, model: 'shapes', batchSizes: [1], trials: 1, warmup: 0, image: JPEGS[0]! });
    // The request carries the file's bytes (plus a few bytes of framing), not a re-encoded 64x64 image.
    expect(withFile.rows[0]!.requestBytes).toBeGreaterThanOrEqual(readFileSync(JPEGS[0]!).length);
    const local = await loadSavedModel(join(tmp, 'models/shapes/7'));
    const out = await local.predict({ image_bytes: { dtype: 'string', shape: [1], values: [new Uint8Array(readFileSync(JPEGS[0]!))] } });
    local.dispose();
    expect(withFile.predictedClass).toBe(new TextDecoder().decode((out.classes!.values as Uint8Array[])[0]));
  });
});

describe('the exported MobileNetV2 served and verified on real photos', () => {
  it('lens verify through the JPEG signature (max |dp| <= 1e-3) and through predict_pixels (<= 1e-5)', async () => {
    const tflite = join(SHARED, 'models-external/mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite');
    const exported = await runLens(['export', tflite, join(tmp, 'models/mnv2'), '--version', '1', '--json']);
    expect(exported.code, exported.stderr).toBe(0);
    // Real photos as files, and flipped crops of the BMP photos saved as JPEG.
    const photos = [join(SHARED, 'images/parrot.jpg'), join(SHARED, 'images/hot_dog.jpg')];
    for (const name of ['grace_hopper', 'bird']) {
      const p = await loadPixels(join(SHARED, `images/${name}.bmp`));
      const crop = await sharp(Buffer.from(Uint8Array.from(p.data)), { raw: { width: p.width, height: p.height, channels: 3 } })
        .flop()
        .extract({ left: Math.floor(p.width / 8), top: Math.floor(p.height / 8), width: Math.floor((p.width * 3) / 4), height: Math.floor((p.height * 3) / 4) })
        .jpeg({ quality: 90 })
        .toBuffer();
      const file = join(tmp, `${name}-flipped-crop.jpg`);
      writeFileSync(file, crop);
      photos.push(file);
    }
    const mnv2 = await startServer({ port: 0, restApiPort: 0, models: [{ name: 'mnv2', basePath: join(tmp, 'models/mnv2') }], fileSystemPollWaitSeconds: 0 });
    try {
      const jpeg = await runLens(['verify', ...photos, '--server', `127.0.0.1:${mnv2.grpcPort}`, '--model', 'mnv2', '--local', join(tmp, 'models/mnv2'), '--json']);
      expect(jpeg.code, jpeg.stderr).toBe(0);
      const report = JSON.parse(jpeg.stdout) as { serving: { ok: boolean; images: { maxProbabilityDifference: number; served: { index: number }[] }[] } };
      expect(report.serving.ok).toBe(true);
      for (const i of report.serving.images) expect(i.maxProbabilityDifference).toBeLessThanOrEqual(1e-3);
      // parrot.jpg is a macaw (1001-class index 89), hot_dog.jpg a hot dog (935): ../shared/images/SOURCES.md.
      expect(report.serving.images.slice(0, 2).map((i) => i.served[0]!.index)).toEqual([89, 935]);
      const pixels = await runLens(['verify', ...photos, '--server', `127.0.0.1:${mnv2.restPort}`, '--transport', 'rest', '--model', 'mnv2', '--signature', 'predict_pixels', '--local', join(tmp, 'models/mnv2'), '--tolerance', '1e-5', '--json']);
      expect(pixels.code, pixels.stderr).toBe(0);
      for (const i of (JSON.parse(pixels.stdout) as { images: { maxProbabilityDifference: number }[] }).images) expect(i.maxProbabilityDifference).toBeLessThanOrEqual(1e-5);
    } finally {
      await mnv2.close();
    }
  }, 240_000);
});
