/**
 * A SavedModel as an ImageModel (the interface attribution, serving and the CLI use): pixels in,
 * class scores out, with input gradients flowing through the converted TensorFlow.js graph.
 *
 * @example
 * const model = await imageModelFromSavedModel('models/cnn/1', { preprocessing: 'unit' });
 * const scores = await model.forward(pixels);           // [N, classes]
 * const { gradients } = await model.gradient!(pixels, 3);
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../core/errors.js';
import { checkPixels, createTfModel, type ImageModel, type ScoreKind } from '../core/model.js';
import { parsePreprocessing, preprocess, type PreprocessingName } from '../core/preprocess.js';
import type { GraphTensor } from '../convert/graph/convert.js';
import { parseTensorRef } from '../convert/graph/flatten.js';
import { needsAsyncExecution } from '../convert/graph/ops.js';
import type { EngineInfo } from '../engines/onnx/model.js';
import { withEngine, type EngineChoice } from './engine.js';
import type { LensSidecar } from './formats/types.js';
import { loadSavedModel, type LoadedGraph } from '../engines/tfjs/savedmodel.js';

export interface ImageModelFromSavedModelOptions {
  /** MetaGraph tags (default ["serve"]). */
  tags?: readonly string[];
  /** Signature (default "serving_default", else the first). */
  signature?: string;
  /** Input alias of the signature that takes the image (needed when it has several inputs). */
  input?: string;
  /** Output alias with the class scores (needed when it has several outputs). */
  output?: string;
  /** Pixel preprocessing the model expects (default: lens.json's, else "raw"). */
  preprocessing?: PreprocessingName;
  /**
   * Feed this inner tensor instead of the signature input, e.g. the float image after a JPEG
   * decoding part of the graph ("Cast:0").
   */
  cutAt?: string;
  /** [H, W, C] when the graph does not record it (e.g. at a cut point without shape info). */
  inputShape?: readonly [number, number, number];
  labels?: readonly string[];
  /** Name for reports (default: lens.json's, else the directory name with its version). */
  name?: string;
  /**
   * Which engine runs forward and gradient (default LENS_ENGINE, else auto): the graph compiles to
   * onnxruntime when every op it needs has a rule (`engine.reason` says why not otherwise).
   */
  engine?: EngineChoice | string;
}

interface Sidecar extends LensSidecar {
  /** Signature and output alias to use by default (written by `lens export`: predict_pixels, probabilities). */
  signature?: string;
  outputKey?: string;
}

function readSidecar(dir: string): Sidecar {
  for (const candidate of [join(dir, 'lens.json'), join(dirname(dir), 'lens.json')]) {
    if (!existsSync(candidate)) continue;
    try {
      return JSON.parse(readFileSync(candidate, 'utf8')) as Sidecar;
    } catch (e) {
      throw new LensError('MODEL_CORRUPT', `${candidate} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return {};
}

function sidecarLabels(dir: string, sidecar: Sidecar): string[] | undefined {
  if (sidecar.labels) return sidecar.labels;
  if (!sidecar.labelsFile) return undefined;
  const path = resolve(dir, sidecar.labelsFile);
  if (!existsSync(path)) throw new LensError('NOT_FOUND', `labels file ${path} (from lens.json) does not exist`);
  return readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
}

function pick(list: readonly GraphTensor[], alias: string | undefined, role: string, where: string): GraphTensor {
  if (alias !== undefined) {
    const t = list.find((x) => x.alias === alias);
    if (!t) throw new LensError('INVALID_ARGUMENT', `${where} has no ${role} "${alias}" (it has: ${list.map((x) => x.alias).join(', ')})`);
    return t;
  }
  if (list.length !== 1) {
    throw new LensError('INVALID_ARGUMENT', `${where} has ${list.length} ${role}s (${list.map((x) => x.alias).join(', ')}): choose one with the ${role} option`);
  }
  return list[0]!;
}

/** Whether an output tensor is computed by a Softmax (through Identity-like nodes). */
function endsInSoftmax(graph: LoadedGraph, output: GraphTensor): boolean {
  const nodes = new Map(((graph.converted.artifacts.modelTopology as { node: { name: string; op: string; input: string[] }[] }).node).map((n) => [n.name, n]));
  let [nodeName, k] = parseTensorRef(output.name);
  let n = nodes.get(nodeName);
  for (let hops = 0; n && ['Identity', 'IdentityN', 'Snapshot'].includes(n.op) && hops < 100; hops++) {
    [nodeName, k] = parseTensorRef(n.input[n.op === 'IdentityN' ? k : 0] ?? '');
    n = nodes.get(nodeName);
  }
  return n?.op === 'Softmax';
}

function defaultName(dir: string): string {
  const base = basename(dir);
  return /^\d+$/.test(base) ? `${basename(dirname(dir))}/${base}` : base;
}

/**
 * Loads a SavedModel as an ImageModel. The image input must be float NHWC with a known
 * [H, W, C] (from the signature, the graph at a cut point, or `inputShape`), and the scores output
 * [N, classes]. Scores are probabilities when the graph ends in Softmax, else logits. `gradient`
 * differentiates through the converted graph (graphs with control flow or custom async kernels
 * get no gradient). Forward and gradient run on onnxruntime when the engine choice allows and
 * the graph compiles (`compileTfGraph`); `engine` says which engine runs them, and why.
 *
 * @example
 * const m = await imageModelFromSavedModel('../shared/testdata/savedmodels-cnn/dotnet-mnist-conv-tf1');
 * m.inputShape; // [28, 28, 1]
 * m.engine.name; // 'onnxruntime' (or 'tfjs', with m.engine.reason)
 */
export async function imageModelFromSavedModel(dir: string, options: ImageModelFromSavedModelOptions = {}): Promise<ImageModel & { engine: EngineInfo }> {
  const declared = options.signature === undefined && options.cutAt === undefined ? readSidecar(dir).signature : undefined;
  const signature = options.signature ?? declared;
  const loaded = await loadSavedModel(dir, { tags: options.tags, signature, cutAt: options.cutAt });
  try {
    const graph = await loaded.graph();
    const where = `signature "${graph.converted.signature.name}" of ${loaded.dir}`;
    const input = pick(graph.inputs, options.cutAt ?? options.input, 'input', where);
    const outputKey = readSidecar(loaded.dir).outputKey;
    const output = pick(graph.outputs, options.output ?? (graph.outputs.some((t) => t.alias === outputKey) ? outputKey : undefined), 'output', where);
    if (input.dtype !== 'float32') {
      throw new LensError('MODEL_UNSUPPORTED', `${where}: input "${input.alias}" is ${input.dataType}, not float pixels; cut the graph at the float image tensor (cutAt)`);
    }
    const sidecar = readSidecar(loaded.dir);
    const shape = options.inputShape ?? (input.shape?.length === 4 && input.shape.slice(1).every((d) => d > 0) ? input.shape.slice(1) : sidecar.inputShape);
    if (!shape || shape.length !== 3) {
      throw new LensError('MODEL_UNSUPPORTED', `${where}: input "${input.alias}" has shape [${input.shape?.join(',') ?? '?'}]; pass inputShape [H, W, C]`);
    }
    const inputShape = [shape[0]!, shape[1]!, shape[2]!] as const;
    const preprocessing = options.preprocessing ?? (sidecar.preprocessing ? parsePreprocessing(sidecar.preprocessing) : 'raw');
    const labels = options.labels ?? sidecarLabels(loaded.dir, sidecar);
    const name = options.name ?? sidecar.name ?? defaultName(loaded.dir);
    const outputKind: ScoreKind = sidecar.output ?? (endsInSoftmax(graph, output) ? 'probability' : 'logit');
    const others = graph.inputs.filter((t) => t !== input);
    if (others.length > 0) {
      throw new LensError('MODEL_UNSUPPORTED', `${where} also needs inputs ${others.map((t) => t.alias).join(', ')}; an image model feeds only the image`);
    }
    const run = (x: tf.Tensor4D): tf.Tensor2D => {
      const y = graph.model.execute({ [input.name]: x }, output.name) as tf.Tensor;
      if (y.rank !== 2) throw new LensError('MODEL_UNSUPPORTED', `${where}: output "${output.alias}" has shape [${y.shape.join(',')}], not [N, classes]`);
      return y as tf.Tensor2D;
    };
    let classes = output.shape?.length === 2 && output.shape[1]! > 0 ? output.shape[1]! : 0;
    if (classes === 0 && !graph.converted.async) {
      classes = tf.tidy(() => run(tf.zeros([1, ...inputShape]) as tf.Tensor4D).shape[1]);
    }
    const spec = {
      name,
      inputShape,
      classes,
      ...(labels ? { labels } : {}),
      output: outputKind,
      preprocessing,
      dispose: () => loaded.dispose(),
    };
      const engineOptions = { name, preprocessing, ...(labels ? { labels } : {}), ...(options.engine !== undefined ? { engine: options.engine } : {}) };
    if (!graph.converted.async) {
      const [{ compileTfGraph }, { tfGraphSourceOf }] = await Promise.all([import('../engines/onnx/graph-compile.js'), import('../engines/onnx/graph-source.js')]);
      const source = () => tfGraphSourceOf(graph.converted.artifacts, graph.model.weights, input.name, output.name, inputShape);
      return await withEngine(createTfModel({ ...spec, scores: run }), () => compileTfGraph(source(), { name, preprocessing }), engineOptions);
    }
    // Control flow or async kernels: forward through executeAsync, no gradient.
    const asyncOps = Object.keys(graph.converted.opCounts).filter((op) => needsAsyncExecution([op]));
    const asyncModel: ImageModel = {
      ...spec,
      async forward(pixels: tf.Tensor4D): Promise<tf.Tensor2D> {
        checkPixels(spec, pixels);
        const x = preprocess(pixels, preprocessing);
        try {
          return (await graph.model.executeAsync({ [input.name]: x }, output.name)) as tf.Tensor2D;
        } finally {
          x.dispose();
        }
      },
    };
    return await withEngine(asyncModel, { unsupported: `the graph needs asynchronous execution (ops ${asyncOps.join(', ')}); it runs on TensorFlow.js` }, engineOptions);
  } catch (e) {
    loaded.dispose();
    throw e;
  }
}
