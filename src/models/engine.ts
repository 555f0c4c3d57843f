/**
 * Engine selection, in one function every loader calls: which engine computes a model's forward
 * and gradient passes (LENS_ENGINE, or the `engine` option):
 * - `auto` (default): onnxruntime when the tfjs backend is not native TensorFlow (tfjs-node or
 *   tfjs-node-gpu take precedence when installed), onnxruntime-node loads, and every layer or op
 *   compiles; otherwise TensorFlow.js, with the reason kept in `engine.reason`;
 * - `onnxruntime`: required; failing to load or compile is an error;
 * - `tfjs`: never use onnxruntime.
 *
 * The onnxruntime engine (src/engines/onnx) is imported only when it is tried.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { currentBackend } from '../engines/tfjs/index.js';
import type { CompiledModel } from '../engines/onnx/compile.js';
import type { EngineInfo, OnnxImageModel, OnnxModelOptions } from '../engines/onnx/model.js';

export const ENGINE_CHOICES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/**
 * An engine choice from a flag or LENS_ENGINE (undefined: auto). Throws INVALID_ARGUMENT otherwise.
 *
 * @example
 * parseEngineChoice(' ONNXRuntime '); // 'onnxruntime'
 */
export function parseEngineChoice(value: string | undefined): EngineChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  if ((ENGINE_CHOICES as readonly string[]).includes(v)) return v as EngineChoice;
  throw new LensError('INVALID_ARGUMENT', `unknown engine "${value}" (from LENS_ENGINE or --engine): expected one of ${ENGINE_CHOICES.join(', ')}`);
}

/**
 * The engine choice (option, else LENS_ENGINE, else auto), and why a model stays on tfjs before
 * onnxruntime is even tried: tfjs chosen, or native TensorFlow present under auto.
 *
 * @example
 * preferredEngine('auto').tfjsReason; // undefined on wasm; 'native TensorFlow (...) runs it' with tfjs-node
 */
export function preferredEngine(engine?: EngineChoice | string): { choice: EngineChoice; tfjsReason?: string } {
  const choice = parseEngineChoice(engine ?? process.env.LENS_ENGINE);
  const backend = currentBackend();
  if (choice === 'tfjs') return { choice, tfjsReason: 'engine tfjs was chosen' };
  if (choice === 'auto' && backend?.name === 'tensorflow') return { choice, tfjsReason: `native TensorFlow (${backend.package}) runs it` };
  return { choice };
}

/**
 * What onnxruntime would run: a LayersModel (lowered to TensorFlow ops and compiled), a function
 * compiling a TensorFlow graph (`compileTfGraph`, throwing MODEL_UNSUPPORTED naming what has no
 * rule), or the reason the graph is known not to compile (control flow).
 */
export type EngineSource = tfl.LayersModel | (() => CompiledModel | Promise<CompiledModel>) | { unsupported: string };

const isLayersModel = (s: EngineSource): s is tfl.LayersModel => typeof s === 'object' && 'layers' in s && 'inputs' in s;

/**
 * Moves an ImageModel onto onnxruntime when the engine choice allows it: forward and gradient are
 * replaced, everything else (labels, layer access for Grad-CAM, info) is kept. Returns the model
 * with `engine.reason` when it stays on tfjs (a compile failure under `auto` is that reason; under
 * `onnxruntime` it is thrown).
 *
 * @example
 * const model = await withEngine(imageModelFromLayers(layers, opts), layers, opts);
 * const graphModel = await withEngine(tfjsModel, () => compileTfGraph(source, opts), { ...opts, engine: 'auto' });
 * console.log(model.engine.detail);
 */
export async function withEngine<M extends ImageModel>(model: M, source: EngineSource, options: OnnxModelOptions & { engine?: EngineChoice | string }): Promise<M & { engine: EngineInfo }> {
  const { choice, tfjsReason } = preferredEngine(options.engine);
  const stay = (reason: string): M & { engine: EngineInfo } => Object.assign(model, { engine: { name: 'tfjs' as const, detail: `tfjs ${currentBackend()?.name ?? 'backend'}`, reason } });
  if (tfjsReason !== undefined) return stay(tfjsReason);
  const [onnx, { loadOnnxRuntime, onnxThreads }] = await Promise.all([import('../engines/onnx/model.js'), import('../engines/onnx/runtime.js')]);
  // A bad LENS_ORT_THREADS or LENS_ORT_MEMORY_MB is the user's error, not a reason to fall back.
  if (options.threads === undefined) onnxThreads();
  if (options.memoryBudgetBytes === undefined) onnx.onnxMemoryBudget();
  let fast: OnnxImageModel;
  try {
    if ('unsupported' in source) throw new LensError('MODEL_UNSUPPORTED', `cannot compile ${options.name} for onnxruntime: ${source.unsupported}`);
    const runtime = await loadOnnxRuntime();
    if (!runtime.available) throw new LensError('BACKEND_UNAVAILABLE', runtime.reason);
    const compile = isLayersModel(source)
      ? async () => (await import('../engines/onnx/layers.js')).compileLayersModel(source, { name: options.name, preprocessing: options.preprocessing, ...(options.probabilities ? { probabilities: true } : {}) })
      : source;
    fast = await onnx.onnxImageModelFromCompiled(await compile(), options);
  } catch (e) {
    if (choice === 'onnxruntime') throw e;
    return stay(errorMessage(e));
  }
  const tfjs = { forward: model.forward.bind(model), gradient: model.gradient?.bind(model), dispose: model.dispose.bind(model) };
  // The compiled graphs hold a copy of the weights. While layer access has re-initialised some
  // (the randomisation sanity check), passes go back to the tfjs layers that hold the new weights.
  let randomized = 0;
  const access = (model as { layerAccess?: { randomizeWeights?: (layers: readonly string[], seed: number) => () => void } }).layerAccess;
  if (isLayersModel(source) && access?.randomizeWeights) {
    const randomize = access.randomizeWeights.bind(access);
    access.randomizeWeights = (names, seed) => {
      const restore = randomize(names, seed);
      randomized++;
      let restored = false;
      return () => {
        restore();
        if (!restored) randomized--;
        restored = true;
      };
    };
  }
  return Object.assign(model, {
    forward: (pixels: tf.Tensor4D) => (randomized > 0 ? tfjs.forward(pixels) : fast.forward(pixels)),
    gradient: (pixels: tf.Tensor4D, target: number | readonly number[]) => (randomized > 0 && tfjs.gradient ? tfjs.gradient(pixels, target) : fast.gradient(pixels, target)),
    engine: fast.engine,
    dispose() {
      fast.dispose();
      tfjs.dispose();
    },
  });
}

/**
 * {@link withEngine} with a TensorFlow-graph compile function (or the reason it cannot compile).
 *
 * @example
 * const model = await withCompiledEngine(tfjsModel, () => compileTfGraph(source, opts), { ...opts, engine: 'auto' });
 */
export const withCompiledEngine: <M extends ImageModel>(
  model: M,
  compile: Exclude<EngineSource, tfl.LayersModel>,
  options: OnnxModelOptions & { engine?: EngineChoice | string },
) => Promise<M & { engine: EngineInfo }> = withEngine;
