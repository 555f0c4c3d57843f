/**
 * `lens convert`: a SavedModel signature written as a TensorFlow.js graph model on disk.
 *
 * @example
 * const r = await convertSavedModel('export/1', 'web_model/');
 * // web_model/model.json + group1-shard1of1.bin; tf.loadGraphModel('file://web_model/model.json')
 */
import { convertSignature, type ConvertedGraph, type GraphTensor } from './graph/convert.js';
import { writeGraphModel } from './graph/io.js';
import { OBJECT_GRAPH_KEY, variableKeys } from './graph/variables.js';
import { LensError } from '../core/errors.js';
import { readTensorBundle, type TensorBundle } from '../savedmodel/bundle.js';
import { DEFAULT_SIGNATURE, SERVE_TAG, findSignature, readSavedModel, selectMetaGraph, type MetaGraphInfo, type SavedModelInfo } from '../savedmodel/savedmodel.js';
import type { HostTensor } from '../tensor/index.js';

/** Progress of loading: reading files, converting a signature, building its weights. */
export interface LoadProgress {
  phase: 'read' | 'convert' | 'load';
  signature?: string;
  /** 0..1 over the whole load. */
  fraction: number;
}

export interface ConvertSavedModelOptions {
  tags?: readonly string[];
  /** Signature to convert (default "serving_default", else the first by name). */
  signature?: string;
  /** Inner tensors that become inputs of the converted model. */
  cutAt?: readonly string[];
  onProgress?(p: LoadProgress): void;
}

export interface ConvertSavedModelResult {
  modelJson: string;
  shards: string[];
  weightBytes: number;
  nodes: number;
  signature: string;
  inputs: GraphTensor[];
  outputs: GraphTensor[];
  opCounts: Record<string, number>;
}

/**
 * The variables of a SavedModel's MetaGraph: each variable node's bundle key, and a reader of
 * bundle values by key (which fails for exports without a variables/ bundle).
 *
 * @example
 * const { keys, read } = await openVariables(info, metaGraph);
 * await read(keys.get('dense/kernel')!);
 */
export async function openVariables(info: SavedModelInfo, metaGraph: MetaGraphInfo): Promise<{ keys: Map<string, string>; read(key: string): Promise<HostTensor> }> {
  let bundle: TensorBundle | undefined;
  let objectGraph: Uint8Array | undefined;
  if (info.hasVariables) {
    bundle = await readTensorBundle(info.dir);
    if (bundle.entries.has(OBJECT_GRAPH_KEY)) {
      const t = await bundle.read(OBJECT_GRAPH_KEY);
      if (t.dtype === 'string') objectGraph = t.values[0];
    }
  }
  return {
    keys: variableKeys(metaGraph.def, bundle?.names ?? [], objectGraph),
    read: (key) => {
      if (!bundle) throw new LensError('SAVEDMODEL_CORRUPT', `${info.dir} has no variables/ bundle but the graph reads variable "${key}"`);
      return bundle.read(key);
    },
  };
}

/**
 * The signature to `use`: `wanted` (which must exist), else serving_default, else the first with
 * outputs that is not internal ("__"-prefixed).
 *
 * @example
 * signatureChoice(metaGraph, undefined, 'run'); // 'serving_default'
 */
export function signatureChoice(metaGraph: MetaGraphInfo, wanted: string | undefined, use: 'convert' | 'run'): string {
  if (wanted !== undefined) return findSignature(metaGraph, wanted).name;
  if (metaGraph.signatures.some((s) => s.name === DEFAULT_SIGNATURE)) return DEFAULT_SIGNATURE;
  const first = metaGraph.signatures.find((s) => s.outputs.length > 0 && !s.name.startsWith('__'));
  if (!first) throw new LensError('UNKNOWN_SIGNATURE', `the MetaGraph {${metaGraph.tags.join(', ')}} has no signature to ${use}`);
  return first.name;
}

/**
 * Converts one signature in memory (no TensorFlow.js backend needed): the graph and weights that
 * {@link convertSavedModel} writes, for callers that ship them elsewhere.
 *
 * @example
 * const g = await convertSavedModelSignature('export/1', { signature: 'serving_default' });
 * g.artifacts.weightSpecs.length;
 */
export async function convertSavedModelSignature(dir: string, options: Omit<ConvertSavedModelOptions, 'onProgress'> = {}): Promise<ConvertedGraph> {
  const info = await readSavedModel(dir);
  const mg = selectMetaGraph(info, options.tags ?? [SERVE_TAG]);
  const variables = await openVariables(info, mg);
  return convertSignature({
    metaGraph: mg,
    signature: signatureChoice(mg, options.signature, 'convert'),
    variableKeys: variables.keys,
    readVariable: variables.read,
    ...(options.cutAt ? { cutAt: options.cutAt } : {}),
  });
}

/**
 * Converts a SavedModel signature and writes it to `outDir` as model.json + weight shards.
 * Signatures that assign to variables (stateful counters) cannot be written: a tfjs graph model
 * holds no state.
 *
 * @example
 * await convertSavedModel('../shared/testdata/savedmodels-cnn/dotnet-mnist-conv-tf1', '/tmp/mnist_web');
 */
export async function convertSavedModel(dir: string, outDir: string, options: ConvertSavedModelOptions = {}): Promise<ConvertSavedModelResult> {
  const progress = options.onProgress ?? (() => undefined);
  progress({ phase: 'read', fraction: 0 });
  const graph = await convertSavedModelSignature(dir, options);
  progress({ phase: 'convert', signature: graph.signature.name, fraction: 0.5 });
  const written = await writeGraphModel(outDir, graph, {
    onProgress: (done, total) => progress({ phase: 'load', signature: graph.signature.name, fraction: 0.5 + (0.5 * done) / total }),
  });
  return {
    modelJson: written.modelJson,
    shards: written.shards,
    weightBytes: written.weightBytes,
    nodes: graph.nodeCount,
    signature: graph.signature.name,
    inputs: graph.inputs,
    outputs: graph.outputs,
    opCounts: graph.opCounts,
  };
}
