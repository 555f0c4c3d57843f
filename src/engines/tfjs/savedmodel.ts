/**
 * Loading a SavedModel to run it: signatures are converted to TensorFlow.js graphs (on first
 * use, or at load for the default one) and run with tfjs-converter's GraphModel executor.
 *
 * @example
 * const model = await loadSavedModel('../shared/testdata/savedmodels/saved_model_half_plus_two_cpu/00000123');
 * const out = await model.predict({ x: { dtype: 'float32', shape: [3, 1], values: new Float32Array([1, 2, 5]) } });
 * out.y.values; // Float32Array [2.5, 3, 4.5]
 * model.dispose();
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModelSync, type GraphModel } from '@tensorflow/tfjs-converter';
import { initBackend } from './index.js';
import { assignedVariables, convertSignature, type ConvertedGraph, type GraphTensor } from '../../convert/graph/convert.js';
import { openVariables, signatureChoice, type LoadProgress } from '../../convert/savedmodel.js';
export type { LoadProgress } from '../../convert/savedmodel.js';
import { VariableStore } from '../../convert/graph/ops.js';
import { LensError, errorMessage } from '../../core/errors.js';
import { hostToTensor, tensorToHost, tfDtypeOf, type HostTensor } from '../../tensor/index.js';
import { IMAGE_OPS } from './image-op-names.js';
import { describeRunFailure, type RunNode } from './run-error.js';
import {
  SERVE_TAG,
  findSignature,
  opHistogram,
  readSavedModel,
  selectMetaGraph,
  type MetaGraphInfo,
  type SavedModelInfo,
  type SignatureInfo,
} from '../../savedmodel/savedmodel.js';

export interface LoadSavedModelOptions {
  /** MetaGraph tag set (default ["serve"]). */
  tags?: readonly string[];
  /** Default signature for predict() (default "serving_default", else the first one by name). */
  signature?: string;
  /** Inner tensors to feed instead of computing (see ConvertOptions.cutAt); applies to every signature. */
  cutAt?: string | readonly string[];
  /** Convert the default signature on first use instead of at load (servers: a model whose
   *  default signature cannot run still serves its other signatures). Default false. */
  lazy?: boolean;
  onProgress?(p: LoadProgress): void;
}

export interface PredictOptions {
  /** Signature key (default: the model's default signature). */
  signature?: string;
  /** Output aliases to compute (default all). */
  outputFilter?: readonly string[];
}

/** A signature converted and loaded into tfjs. */
export interface LoadedGraph {
  /** Conversion result (weights released after loading: `artifacts.weightData` is empty). */
  converted: ConvertedGraph;
  model: GraphModel<tf.io.IOHandlerSync>;
  /** Ids of the model's weight tensors (outputs that are weights are returned as clones). */
  weightIds: ReadonlySet<number>;
  /** Fed tensors: signature inputs, or cut points. */
  inputs: GraphTensor[];
  outputs: GraphTensor[];
}

/** Inputs by alias: host tensors (any dtype the signature declares) or tfjs tensors. */
export type PredictInputs = Record<string, HostTensor | tf.Tensor>;

export interface LoadedSavedModel {
  readonly dir: string;
  readonly info: SavedModelInfo;
  readonly metaGraph: MetaGraphInfo;
  /** All signatures of the MetaGraph, sorted by name. */
  readonly signatures: readonly SignatureInfo[];
  readonly defaultSignature: string;
  /** The converted graph of a signature (converted on first request, then cached). */
  graph(signature?: string): Promise<LoadedGraph>;
  /** Runs a signature; outputs keep their declared dtype (e.g. int64 as BigInt64Array). */
  predict(inputs: PredictInputs, options?: PredictOptions): Promise<Record<string, HostTensor>>;
  /** Runs a signature and returns tfjs tensors (the caller disposes them). */
  predictTensors(inputs: PredictInputs, options?: PredictOptions): Promise<Record<string, tf.Tensor>>;
  /** Current values of variables the graphs assign to (copies; the caller disposes them). */
  variables(): Record<string, tf.Tensor>;
  dispose(): void;
}

/** Checks a fed value's dtype against what the graph expects and returns the tensor to feed (new or given). */
function feedTensor(value: HostTensor | tf.Tensor, t: GraphTensor, where: string): tf.Tensor {
  const what = `${where}: input "${t.alias}"`;
  // Shapes are not checked against the signature: like TensorFlow's session (and so TF Serving),
  // the graph takes what it can compute, and what it cannot fails as the node's error.
  if (value instanceof tf.Tensor) {
    if (value.dtype !== tfDtypeOf(t.dtype)) {
      throw new LensError('INVALID_ARGUMENT', `${what} expects ${t.dataType} (tfjs ${tfDtypeOf(t.dtype)}), got a ${value.dtype} tensor`);
    }
    return value;
  }
  if (value.dtype !== t.dtype) throw new LensError('INVALID_ARGUMENT', `${what} expects ${t.dataType} (${t.dtype}), got ${value.dtype}`);
  return hostToTensor(value, what);
}

/**
 * The artifacts with Placeholder shapes left out, for running: tfjs would check fed shapes against
 * them, which TensorFlow's session does not (TF Serving feeds [3] to half_plus_two's [-1,1]
 * input). The converted graph keeps them (web model exports, signatures).
 */
function withoutFeedShapes(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const topology = artifacts.modelTopology as { node: { op: string; attr?: Record<string, unknown> }[] };
  const node = topology.node.map((n) => {
    if (n.op !== 'Placeholder' || !n.attr?.shape) return n;
    const { shape: _shape, ...attr } = n.attr;
    return { ...n, attr };
  });
  return { ...artifacts, modelTopology: { ...topology, node } };
}

/**
 * Registers the image decoding kernels (image-ops.ts) when the MetaGraph decodes images: they load
 * the image codecs (sharp), which a graph without such ops (a server's half_plus_two) should not
 * pay for in start-up time and memory.
 */
async function registerKernelsFor(metaGraph: MetaGraphInfo): Promise<void> {
  const { graph, library } = opHistogram(metaGraph);
  if (!IMAGE_OPS.some((op) => op in graph || op in library)) return;
  (await import('./image-ops.js')).registerImageOps();
}

/**
 * Loads a SavedModel export directory for running in TensorFlow.js: reads saved_model.pb, picks
 * the MetaGraph by tags, opens the variables bundle and (unless `lazy`) converts the default
 * signature, so that errors such as an unsupported op show at load.
 *
 * @example
 * const m = await loadSavedModel(dir, { tags: ['serve'], signature: 'serving_default' });
 * m.signatures.map((s) => s.name);
 * const { y } = await m.predict({ x: hostFromNested([[1], [2]], 'float32') });
 */
export async function loadSavedModel(dir: string, options: LoadSavedModelOptions = {}): Promise<LoadedSavedModel> {
  // Forward passes only (serving, lens run); models that are explained initialised gradients first.
  await initBackend({ gradients: false });
  const progress = options.onProgress ?? (() => undefined);
  progress({ phase: 'read', fraction: 0 });
  const info = await readSavedModel(dir);
  const metaGraph = selectMetaGraph(info, options.tags ?? [SERVE_TAG]);
  // Signatures that take encoded images (DecodeJpeg & co.) need kernels tfjs lacks.
  await registerKernelsFor(metaGraph);
  const defaultSignature = signatureChoice(metaGraph, options.signature, 'run');
  const variables = await openVariables(info, metaGraph);
  const keys = variables.keys;
  const cutAt = typeof options.cutAt === 'string' ? [options.cutAt] : [...(options.cutAt ?? [])];
  const sharedState = assignedVariables(metaGraph, keys);
  const store = new VariableStore();
  const graphs = new Map<string, Promise<LoadedGraph>>();
  let disposed = false;

  const build = async (name: string): Promise<LoadedGraph> => {
    progress({ phase: 'convert', signature: name, fraction: 0.2 });
    const converted = await convertSignature({
      metaGraph,
      signature: name,
      variableKeys: keys,
      readVariable: variables.read,
      cutAt,
      store,
      sharedState,
      makeTensor: (v) => hostToTensor(v),
    });
    progress({ phase: 'load', signature: name, fraction: 0.7 });
    let model: GraphModel<tf.io.IOHandlerSync>;
    try {
      model = loadGraphModelSync(withoutFeedShapes(converted.artifacts));
    } catch (e) {
      throw new LensError('UNSUPPORTED_OP', `signature "${name}" of ${info.dir} could not be loaded into TensorFlow.js: ${errorMessage(e)}`, { cause: e });
    }
    // The weights now live in tensors; drop the byte copies.
    converted.artifacts.weightData = [];
    converted.weightChunks = [];
    progress({ phase: 'load', signature: name, fraction: 1 });
    const weightIds = new Set(Object.values(model.weights).flatMap((ts) => ts.map((t) => t.id)));
    return { converted, model, weightIds, inputs: converted.inputs, outputs: converted.outputs };
  };

  const graph = (signature?: string): Promise<LoadedGraph> => {
    if (disposed) return Promise.reject(new LensError('INVALID_ARGUMENT', `SavedModel ${info.dir} was disposed`));
    const name = signature === undefined ? defaultSignature : findSignature(metaGraph, signature).name;
    let g = graphs.get(name);
    if (!g) {
      g = build(name);
      graphs.set(name, g);
      // A failed conversion is not cached: a kernel registered later may make it work.
      g.catch(() => graphs.delete(name));
    }
    return g;
  };

  const predictTensors = async (inputs: PredictInputs, opts: PredictOptions = {}): Promise<Record<string, tf.Tensor>> => {
    const g = await graph(opts.signature);
    const where = `signature "${g.converted.signature.name}"`;
    const expected = new Set(g.inputs.map((t) => t.alias));
    const given = Object.keys(inputs);
    const missing = [...expected].filter((a) => !given.includes(a));
    const extra = given.filter((a) => !expected.has(a));
    if (missing.length || extra.length) {
      throw new LensError(
        'INVALID_ARGUMENT',
        `${where} takes inputs {${[...expected].join(', ')}}${missing.length ? `; missing: {${missing.join(', ')}}` : ''}${extra.length ? `; unknown: {${extra.join(', ')}}` : ''}`,
      );
    }
    let outputs = g.outputs;
    if (opts.outputFilter) {
      const unknown = opts.outputFilter.filter((a) => !g.outputs.some((t) => t.alias === a));
      if (unknown.length) throw new LensError('INVALID_ARGUMENT', `${where} has no output(s) ${unknown.join(', ')} (outputs: ${g.outputs.map((t) => t.alias).join(', ')})`);
      outputs = g.outputs.filter((t) => opts.outputFilter!.includes(t.alias));
    }
    const feeds: Record<string, tf.Tensor> = {};
    const created: tf.Tensor[] = [];
    try {
      for (const t of g.inputs) {
        const value = inputs[t.alias]!;
        const tensor = feedTensor(value, t, where);
        if (tensor !== value) created.push(tensor);
        feeds[t.name] = tensor;
      }
      const names = outputs.map((t) => t.name);
      let result: tf.Tensor | tf.Tensor[];
      const run = async (fetch: string[]) => (g.converted.async ? await g.model.executeAsync(feeds, fetch) : g.model.execute(feeds, fetch));
      try {
        result = await run(names);
      } catch (e) {
        if (e instanceof LensError) throw e;
        // A rerun to find the failing node would change the state of graphs that assign variables,
        // and inner nodes of control-flow frames cannot be fetched on their own.
        const replay = g.converted.stateVariables.length || g.converted.async
          ? undefined
          : { nodes: g.converted.artifacts.modelTopology ? (g.converted.artifacts.modelTopology as { node: RunNode[] }).node : [], run, owned: new Set([...g.weightIds, ...Object.values(feeds).map((t) => t.id)]) };
        throw new LensError('INVALID_ARGUMENT', await describeRunFailure(e, replay), { cause: e });
      }
      const list = Array.isArray(result) ? result : [result];
      // Outputs that are weights or fed tensors come back as themselves: hand out clones instead.
      const fed = new Set(Object.values(feeds).map((t) => t.id));
      return Object.fromEntries(outputs.map((t, i) => {
        const out = list[i]!;
        return [t.alias, g.weightIds.has(out.id) || fed.has(out.id) ? out.clone() : out];
      }));
    } finally {
      tf.dispose(created);
    }
  };

  const predict = async (inputs: PredictInputs, opts: PredictOptions = {}): Promise<Record<string, HostTensor>> => {
    const g = await graph(opts.signature);
    const tensors = await predictTensors(inputs, opts);
    try {
      const out: Record<string, HostTensor> = {};
      for (const t of g.outputs) {
        const tensor = tensors[t.alias];
        if (tensor) out[t.alias] = await tensorToHost(tensor, t.dtype, `output "${t.alias}"`);
      }
      return out;
    } finally {
      tf.dispose(Object.values(tensors));
    }
  };

  if (!options.lazy) await graph(defaultSignature);
  progress({ phase: 'load', fraction: 1 });

  return {
    dir: info.dir,
    info,
    metaGraph,
    signatures: metaGraph.signatures,
    defaultSignature,
    graph,
    predict,
    predictTensors,
    variables: () => store.snapshot(),
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const g of graphs.values()) g.then((x) => x.model.dispose(), () => undefined);
      graphs.clear();
      store.dispose();
    },
  };
}
