/**
 * What the engine boundary costs on the onnxruntime engine: Integrated Gradients with 50 points
 * (Gauss-Legendre, the default) through the ImageModel interface, where each gradient batch goes
 * Float32Array -> tf.tensor4d (attribution/engine.ts) -> .data() (engines/onnx/model.ts) ->
 * onnxruntime -> tf.tensor4d -> .data() again: IG's model calls (the completeness forward pass
 * and the 50 path images) timed through the interface and on the same compiled graphs straight
 * from host arrays; the difference is what typed arrays at the interface would save.
 * Workloads: the bundled shapes model and the MLPerf Tiny ResNet-8 (CIFAR-10, 32x32).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { describeBackend, initBackend } from '../src/engines/tfjs/index.js';
import { loadOnnxRuntime, onnxThreads } from '../src/engines/onnx/index.js';
import type { OrtSession, OrtTensor } from '../src/engines/onnx/runtime.js';
import { onnxImageModel, type OnnxImageModel } from '../src/engines/onnx/model.js';
import { importKerasModel } from '../src/convert/keras/index.js';
import { readModelArtifacts } from '../src/models/load.js';
import { foldBatchNorm } from '../src/models/optimize/index.js';
import type { PreprocessingName } from '../src/core/preprocess.js';
import { integratedGradients } from '../src/attribution/index.js';
import { defaultBatchSize } from '../src/attribution/engine.js';
import { quadrature } from '../src/attribution/integration.js';
import { median, writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const RESNET8 = join(here, '../../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const SHAPES_MODEL = join(here, '../models/shapes-resnet/model.json');
const STEPS = 50;
const REPEATS = 21;

const backend = await initBackend();
const runtime = await loadOnnxRuntime();
if (!runtime.available) throw new Error(runtime.reason);
const { ort } = runtime;

function pixels(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (Math.sin(i * 0.37) * 0.5 + 0.5) * 255);
}

/** IG-50's model calls (black baseline): the path images and the two images of the completeness check. */
function igInputs(image: Float32Array): { path: Float32Array; ends: Float32Array } {
  const per = image.length;
  const { alphas } = quadrature('gausslegendre', STEPS);
  const path = new Float32Array(STEPS * per);
  for (let j = 0; j < STEPS; j++) for (let i = 0; i < per; i++) path[j * per + i] = alphas[j]! * image[i]!;
  const ends = new Float32Array(2 * per);
  ends.set(image);
  return { path, ends };
}

/** Those calls through the ImageModel interface, as attribution/engine.ts makes them: tensors in, data out. */
async function viaInterface(model: OnnxImageModel, inputs: { path: Float32Array; ends: Float32Array }, target: number): Promise<Float32Array> {
  const [h, w, c] = model.inputShape;
  const ends = tf.tensor4d(inputs.ends, [2, h, w, c]);
  const scores = await model.forward(ends);
  await scores.data();
  tf.dispose([ends, scores]);
  const path = tf.tensor4d(inputs.path, [STEPS, h, w, c]);
  const r = await model.gradient(path, target);
  const g = (await r.gradients.data()) as Float32Array;
  await r.values.data();
  tf.dispose([path, r.gradients, r.values]);
  return g;
}

/** The same calls on the same compiled graphs straight from host arrays, split into the model's batch limits as it does. */
async function viaHost(model: OnnxImageModel, forward: OrtSession, gradient: OrtSession, inputs: { path: Float32Array; ends: Float32Array }, target: number): Promise<Float32Array> {
  const [h, w, c] = model.inputShape;
  const per = h * w * c;
  const classes = model.classes;
  await forward.run({ pixels: new ort.Tensor('float32', inputs.ends, [2, h, w, c]) as OrtTensor });
  const limit = model.engine.batchLimit!.gradient;
  const out = new Float32Array(STEPS * per);
  for (let k0 = 0; k0 < STEPS; k0 += limit) {
    const n = Math.min(limit, STEPS - k0);
    const seed = new Float32Array(n * classes);
    for (let j = 0; j < n; j++) seed[j * classes + target] = 1;
    const r = await gradient.run({
      pixels: new ort.Tensor('float32', inputs.path.subarray(k0 * per, (k0 + n) * per), [n, h, w, c]) as OrtTensor,
      seed: new ort.Tensor('float32', seed, [n, classes]) as OrtTensor,
    });
    out.set(r.gradients!.data as Float32Array, k0 * per);
  }
  return out;
}

/** Only the tfjs copies of those calls: the inputs into tensors and out again, the results likewise. */
async function copiesOnly(model: OnnxImageModel, inputs: { path: Float32Array; ends: Float32Array }, results: Float32Array): Promise<void> {
  const [h, w, c] = model.inputShape;
  for (const [data, n] of [[inputs.ends, 2], [inputs.path, STEPS], [results, STEPS]] as const) {
    const t = tf.tensor4d(data, [n, h, w, c]);
    await t.data();
    t.dispose();
  }
}

async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const rows: Record<string, Cell>[] = [];
/** The model compiled for onnxruntime as `lens explain` runs it (batch norms folded). */
async function onnxModel(name: string, load: () => Promise<LayersModel>, preprocessing: PreprocessingName): Promise<OnnxImageModel> {
  const folded = (await foldBatchNorm(await load())).model;
  const model = await onnxImageModel(folded, { name, preprocessing });
  folded.dispose();
  return model;
}

const tfl = await import('@tensorflow/tfjs-layers');
const workloads: [string, () => Promise<OnnxImageModel>][] = [
  ['shapes (bundled)', () => onnxModel('shapes', async () => tfl.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(SHAPES_MODEL))), 'unit')],
  ['resnet8-32', () => onnxModel('resnet8', () => importKerasModel(RESNET8), 'raw')],
];
for (const [name, make] of workloads) {
  const model = await make();
  const [h, w, c] = model.inputShape;
  const per = h * w * c;
  const image = pixels(per);
  const scores = await model.forward(tf.tensor4d(image, [1, h, w, c]));
  const row = (await scores.data()) as Float32Array;
  const target = row.indexOf(Math.max(...row));
  const batch = defaultBatchSize(model.inputShape);
  const options = { intraOpNumThreads: onnxThreads(), interOpNumThreads: 1, graphOptimizationLevel: 'all' as const, executionMode: 'sequential' as const, logSeverityLevel: 3 as const };
  const forward = await ort.InferenceSession.create(model.compiled.forward, options);
  const gradient = await ort.InferenceSession.create(model.compiled.gradient, options);
  const inputs = igInputs(image);
  const interfaceCalls = () => viaInterface(model, inputs, target);
  const hostCalls = () => viaHost(model, forward, gradient, inputs, target);
  const ig = () => integratedGradients(model, { data: image, height: h, width: w, channels: c }, { steps: STEPS, target, batchSize: batch });
  // Same gradients either way, so the two do the same work.
  const a = await interfaceCalls();
  const b = await hostCalls();
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  if (worst > 1e-5 * scale) throw new Error(`${name}: host gradients differ from the interface's by ${worst} (scale ${scale})`);
  const times: Record<'ig' | 'interface' | 'host' | 'difference' | 'copies', number[]> = { ig: [], interface: [], host: [], difference: [], copies: [] };
  for (let r = 0; r < REPEATS + 2; r++) {
    // Alternating which of the pair goes first, so that drift in the machine's load falls on both.
    const first = r % 2 === 0;
    const t1 = await timeOnce(first ? interfaceCalls : hostCalls);
    const t2 = await timeOnce(first ? hostCalls : interfaceCalls);
    const [ti, th] = first ? [t1, t2] : [t2, t1];
    const tig = await timeOnce(ig);
    const tc = await timeOnce(() => copiesOnly(model, inputs, a));
    if (r < 2) continue; // warm-up
    times.copies.push(tc);
    times.ig.push(tig);
    times.interface.push(ti);
    times.host.push(th);
    times.difference.push(ti - th);
  }
  const [mi, ma, mh, md, mc] = [median(times.ig), median(times.interface), median(times.host), median(times.difference), median(times.copies)];
  rows.push({
    model: name,
    input: `${h}x${w}x${c}`,
    'IG-50 (ms)': mi,
    'its model calls via ImageModel (ms)': ma,
    'same calls, host arrays (ms)': mh,
    'boundary (ms)': md,
    'boundary share of IG (%)': (100 * md) / mi,
    'tfjs copies alone (ms)': mc,
    'copies share of IG (%)': (100 * mc) / mi,
  });
  process.stdout.write(`${JSON.stringify(rows.at(-1))}\n`);
  await forward.release();
  await gradient.release();
  model.dispose();
}

writeBenchResult('engine-boundary', 'Engine boundary on onnxruntime: IG-50 through the ImageModel interface vs host arrays only', rows, [
  `Medians of ${REPEATS} runs after 2 warm-ups; the boundary is the median of paired differences (interface minus host, run back to back in alternating order); tfjs backend ${describeBackend(backend)}, onnxruntime ${runtime.version} with ${onnxThreads()} thread(s).`,
  'Model calls: the completeness forward pass (input and black baseline) and the 50 Gauss-Legendre path images in one gradient call, as IG makes them; via ImageModel they cross as tfjs tensors (tf.tensor4d, .data() in engines/onnx/model.ts, tf.tensor4d of the results, .data() in attribution/engine.ts).',
  'Host arrays: the same calls on the same compiled graphs and sessions settings, fed from Float32Arrays and split at the model\'s batch limit as it does; the gradients are equal to 1e-5.',
  'tfjs copies alone: the same inputs and gradients into tensors and back out with .data(), without the model: what typed arrays at the interface would save at most.',
]);
