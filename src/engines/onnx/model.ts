/**
 * ImageModels whose forward and gradient passes run on onnxruntime's native CPU kernels, compiled
 * from a TensorFlow graph (graph-compile.ts): converted, or lowered from a tfjs LayersModel
 * (layers.ts). Tensors still enter and leave as tfjs tensors, so attribution methods see the same
 * `ImageModel` as anywhere else. Which engine runs a model is chosen in src/models/engine.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { freemem } from 'node:os';
import { LensError, errorMessage } from '../../core/errors.js';
import { checkPixels, type GradientResult, type ImageModel } from '../../core/model.js';
import type { PreprocessingName } from '../../core/preprocess.js';
import { concatFloat32 } from '../../tensor/index.js';
import type { CompiledModel } from './compile.js';
import { compileLayersModel } from './layers.js';
import { loadOnnxRuntime, onnxThreads, type OrtSession, type OrtTensor } from './runtime.js';

/** Which engine computes a model's forward and gradient passes, and why. */
export interface EngineInfo {
  name: 'onnxruntime' | 'tfjs';
  /** e.g. `onnxruntime-node 1.30.0 (CPU, 2 threads)` or `tfjs wasm`. */
  detail: string;
  /** Why onnxruntime was not used (tfjs engine only). */
  reason?: string;
  /** Layer classes (TensorFlow graph ops for SavedModels and graph models) compiled, with counts (onnxruntime engine only). */
  layers?: Record<string, number>;
  /** Images per onnxruntime call that fit the memory budget; larger batches are split (onnxruntime engine only). */
  batchLimit?: { forward: number; gradient: number };
}

export interface OnnxModelOptions {
  name: string;
  preprocessing: PreprocessingName;
  labels?: readonly string[];
  /** Keep a final softmax (default: scores are the logits before it). */
  probabilities?: boolean;
  /** Intra-op threads (default LENS_ORT_THREADS, else one per core). */
  threads?: number;
  /** Bytes one call may use for activations; larger batches are split (default {@link onnxMemoryBudget}). */
  memoryBudgetBytes?: number;
}

/**
 * The working memory one onnxruntime call may use: LENS_ORT_MEMORY_MB when set, else half of the
 * memory free now (the rest is left to the process and the machine).
 *
 * @example
 * onnxMemoryBudget({ LENS_ORT_MEMORY_MB: '2048' }); // 2 GiB
 */
export function onnxMemoryBudget(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LENS_ORT_MEMORY_MB;
  if (raw !== undefined && raw !== '') {
    const mb = Number(raw);
    if (!Number.isFinite(mb) || mb <= 0) throw new LensError('INVALID_ARGUMENT', `LENS_ORT_MEMORY_MB must be a positive number of MiB, got "${raw}"`);
    return mb * 2 ** 20;
  }
  return freemem() / 2;
}

/**
 * Compiles `layers` and returns an ImageModel that runs on onnxruntime. Throws MODEL_UNSUPPORTED
 * (with the layer at fault) when a layer has no rule, BACKEND_UNAVAILABLE when onnxruntime-node
 * cannot load. Batch norms after a convolution or Dense layer fold into its weights.
 *
 * @example
 * const model = await onnxImageModel((await buildResNet50()).logits, { name: 'resnet50', preprocessing: 'caffe' });
 * const { gradients } = await model.gradient(pixels, 207);
 */
export async function onnxImageModel(layers: tfl.LayersModel, options: OnnxModelOptions): Promise<OnnxImageModel> {
  const runtime = await loadOnnxRuntime();
  if (!runtime.available) throw new LensError('BACKEND_UNAVAILABLE', runtime.reason);
  return onnxImageModelFromCompiled(await compileLayersModel(layers, { name: options.name, preprocessing: options.preprocessing, ...(options.probabilities ? { probabilities: true } : {}) }), options);
}

/** An ImageModel run by onnxruntime, with its compiled graphs. */
export type OnnxImageModel = ImageModel & { gradient: NonNullable<ImageModel['gradient']>; engine: EngineInfo; compiled: CompiledModel };

/**
 * An ImageModel over already compiled forward and gradient graphs (from `compileLayersModel` or
 * `compileTfGraph`). Throws BACKEND_UNAVAILABLE when onnxruntime-node cannot load.
 *
 * @example
 * const model = await onnxImageModelFromCompiled(compileTfGraph(source, { name: 'cnn', preprocessing: 'unit' }), { name: 'cnn', preprocessing: 'unit' });
 */
export async function onnxImageModelFromCompiled(compiled: CompiledModel, options: OnnxModelOptions): Promise<OnnxImageModel> {
  const runtime = await loadOnnxRuntime();
  if (!runtime.available) throw new LensError('BACKEND_UNAVAILABLE', runtime.reason);
  if (options.labels && options.labels.length !== compiled.classes) {
    throw new LensError('SHAPE_MISMATCH', `model ${options.name} has ${compiled.classes} classes but ${options.labels.length} labels were given`);
  }
  const { ort } = runtime;
  const threads = options.threads ?? onnxThreads();
  // logSeverityLevel 3: errors only (they become LensErrors); onnxruntime's warnings are about its own graph rewrites.
  const sessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const, executionMode: 'sequential' as const, logSeverityLevel: 3 as const };
  const sessions: { forward?: Promise<OrtSession>; gradient?: Promise<OrtSession> } = {};
  const session = (kind: 'forward' | 'gradient'): Promise<OrtSession> =>
    (sessions[kind] ??= ort.InferenceSession.create(compiled[kind], sessionOptions).catch((e: unknown) => {
      delete sessions[kind];
      throw new LensError('BACKEND_FAILED', `onnxruntime rejected the ${kind} graph of ${options.name}: ${errorMessage(e)}`);
    }));
  const [h, w, c] = compiled.inputShape;
  const per = h * w * c;
  const spec = { name: options.name, inputShape: compiled.inputShape };
  const budget = options.memoryBudgetBytes ?? onnxMemoryBudget();
  const batchLimit = {
    forward: Math.max(1, Math.floor(budget / compiled.bytesPerImage.forward)),
    gradient: Math.max(1, Math.floor(budget / compiled.bytesPerImage.gradient)),
  };
  const run = async (kind: 'forward' | 'gradient', feeds: Record<string, OrtTensor>, images: number) => {
    const s = await session(kind);
    try {
      return await s.run(feeds);
    } catch (e) {
      const hint = /alloc|memory/i.test(errorMessage(e))
        ? ` (${images} images need about ${Math.round((images * compiled.bytesPerImage[kind]) / 2 ** 20)} MiB; set LENS_ORT_MEMORY_MB lower to split batches further)`
        : '';
      throw new LensError('BACKEND_FAILED', `onnxruntime failed running the ${kind} pass of ${options.name} on ${images} images: ${errorMessage(e)}${hint}`);
    }
  };
  /** Runs `kind` over the batch in chunks that fit the budget; returns the named outputs, concatenated. */
  const runSplit = async (kind: 'forward' | 'gradient', pixels: Float32Array, n: number, seed?: Float32Array): Promise<Record<string, Float32Array>> => {
    const limit = batchLimit[kind];
    const parts: Record<string, Float32Array>[] = [];
    for (let start = 0; start < n; start += limit) {
      const m = Math.min(limit, n - start);
      const feeds: Record<string, OrtTensor> = { pixels: new ort.Tensor('float32', pixels.subarray(start * per, (start + m) * per), [m, h, w, c]) };
      if (seed) feeds.seed = new ort.Tensor('float32', seed.subarray(start * compiled.classes, (start + m) * compiled.classes), [m, compiled.classes]);
      const out = await run(kind, feeds, m);
      parts.push(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array])));
    }
    if (parts.length === 1) return parts[0]!;
    return Object.fromEntries(Object.keys(parts[0]!).map((key) => [key, concatFloat32(parts.map((p) => p[key]!))]));
  };
  const engine: EngineInfo = { name: 'onnxruntime', detail: `onnxruntime-node ${runtime.version} (CPU, ${threads} thread${threads === 1 ? '' : 's'})`, layers: compiled.layers, batchLimit };
  let disposed = false;
  return {
    name: options.name,
    inputShape: compiled.inputShape,
    classes: compiled.classes,
    ...(options.labels ? { labels: options.labels } : {}),
    output: compiled.logits || !compiled.finalSoftmax ? 'logit' : 'probability',
    preprocessing: options.preprocessing,
    engine,
    compiled,
    async forward(pixels) {
      checkPixels(spec, pixels);
      const out = await runSplit('forward', (await pixels.data()) as Float32Array, pixels.shape[0]);
      return tf.tensor2d(out.scores!, [pixels.shape[0], compiled.classes]);
    },
    async gradient(pixels, target): Promise<GradientResult> {
      checkPixels(spec, pixels);
      const n = pixels.shape[0];
      const targets = typeof target === 'number' ? new Array<number>(n).fill(target) : Array.from(target);
      if (targets.length !== n) throw new LensError('INVALID_ARGUMENT', `got ${targets.length} targets for a batch of ${n}`);
      const seed = new Float32Array(n * compiled.classes);
      targets.forEach((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t >= compiled.classes) throw new LensError('INVALID_ARGUMENT', `target class ${t} is outside 0..${compiled.classes - 1}`);
        seed[i * compiled.classes + t] = 1;
      });
      const out = await runSplit('gradient', (await pixels.data()) as Float32Array, n, seed);
      const scores = out.scores!;
      const values = Float32Array.from(targets, (t, i) => scores[i * compiled.classes + t]!);
      return { gradients: tf.tensor4d(out.gradients!, [n, h, w, c]), values: tf.tensor1d(values) };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const s of [sessions.forward, sessions.gradient]) void s?.then((x) => x.release()).catch(() => undefined);
    },
  };
}
