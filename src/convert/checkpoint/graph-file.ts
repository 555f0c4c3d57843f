/**
 * TensorFlow graphs that are not SavedModels, cut to an image classifier and converted to a
 * TensorFlow.js graph: a TF1 training checkpoint (its `.meta` MetaGraphDef, variables frozen from
 * the step's TensorBundle) or a frozen GraphDef (`.pb` from `freeze_graph`, weights inlined as
 * Const).
 *
 * The image input and the scores output are given (`NAME:0`) or inferred: the input is the one
 * float image placeholder (rank 4), else the one float rank-4 output of an input pipeline
 * (`IteratorGetNext`, queue dequeues); the output is the input of the last `Softmax` (the
 * logits), else a frozen graph's one result, else a node named like `output`/`logits`. The graph
 * is cut there by the SavedModel signature converter: what lies upstream of the input (input
 * pipelines, queues) and what the output does not need (optimizer, summaries, savers, losses) is
 * dropped, and ops TensorFlow.js cannot run are named with their node.
 *
 * @example
 * const g = await convertGraphFile('model_dir', { checkpoint: 12000 });
 * g.input.name; g.output.name;           // 'Input:0', 'Output:0'
 * const model = await tfconv.loadGraphModel(tf.io.fromMemory(g.converted.artifacts));
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LensError, errorMessage } from '../../core/errors.js';
import { decodeMessage } from '../../proto/index.js';
import { readTensorBundle } from '../../savedmodel/bundle.js';
import { tensorShapeOf, type GraphDefMessage, type MetaGraphDefMessage, type MetaGraphInfo, type NodeDefMessage, type SignatureTensor } from '../../savedmodel/savedmodel.js';
import { dataTypeName, dtypeOfDataType } from '../../tensor/index.js';
import { convertSignature, type ConvertedGraph } from '../graph/convert.js';
import { parseTensorRef } from '../graph/flatten.js';
import { variableKeys } from '../graph/variables.js';
import { graphFileKind, resolveCheckpoint, type ChosenCheckpoint, type GraphFileKind } from './checkpoint.js';

export interface GraphFileOptions {
  /** Checkpoint step (or prefix name) inside a model directory (default: the newest). */
  checkpoint?: number | string;
  /** Image input tensor (`NAME:0`); inferred when omitted. */
  inputTensor?: string;
  /** Scores output tensor (`NAME:0`); inferred when omitted. */
  outputTensor?: string;
}

/** A graph tensor the cut uses, with how it was chosen. */
export interface CutTensor {
  name: string;
  op: string;
  dataType: string;
  shape: number[] | null;
  /** 'option' when given, else what the inference found (e.g. 'the one float image placeholder'). */
  chosenBy: string;
  /** The Softmax node this tensor feeds, when the output was inferred as its input (the logits). */
  softmax?: string;
}

/** A TensorFlow graph file read and decoded (not yet converted). */
export interface GraphFile {
  kind: GraphFileKind;
  /** The file read (the `.meta` of a checkpoint, or the `.pb`). */
  path: string;
  graph: GraphDefMessage;
  /** The MetaGraphDef of a checkpoint (absent for frozen graphs). */
  metaGraph?: MetaGraphDefMessage;
  /** The checkpoint whose variables are used. */
  checkpoint?: ChosenCheckpoint;
}

/** A graph file cut to one image input and one scores output and converted to tfjs artifacts. */
export interface ConvertedGraphFile extends GraphFile {
  input: CutTensor;
  output: CutTensor;
  /** The converted graph: `converted.artifacts` load with tfjs-converter's GraphModel. */
  converted: ConvertedGraph;
}

/** Protocol buffers cannot exceed 2 GiB; larger files are refused before they are read. */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

async function readBytes(path: string, what: string): Promise<Buffer> {
  try {
    const size = statSync(path).size;
    if (size > MAX_PROTO_BYTES) throw new LensError('MODEL_UNSUPPORTED', `${what} ${path} has ${size} bytes, more than a protocol buffer can hold (2 GiB)`);
    const bytes = await readFile(path);
    if (bytes.length === 0) throw new LensError('MODEL_CORRUPT', `${what} ${path} is empty`);
    return bytes;
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('NOT_FOUND', `cannot read ${what} ${path}: ${errorMessage(e)}`);
  }
}

/**
 * Reads a checkpoint's MetaGraphDef or a frozen GraphDef (nothing converted yet).
 *
 * @example
 * const f = await readGraphFile('../shared/models-external/frozen-graph-customvision-fruits/fruits_model.pb');
 * f.graph.node?.length; // 216
 */
export async function readGraphFile(spec: string, options: Pick<GraphFileOptions, 'checkpoint'> = {}): Promise<GraphFile> {
  const kind = graphFileKind(spec);
  if (kind === 'frozen-graph') {
    const path = resolve(spec);
    const bytes = await readBytes(path, 'frozen GraphDef');
    let graph: GraphDefMessage;
    try {
      graph = decodeMessage<GraphDefMessage>('tensorflow.GraphDef', bytes, path);
    } catch (e) {
      throw new LensError('MODEL_CORRUPT', `${errorMessage(e)} (truncated, or not a frozen GraphDef?)`);
    }
    if ((graph.node ?? []).length === 0) throw new LensError('MODEL_CORRUPT', `${path} holds no graph nodes: not a frozen GraphDef`);
    if (options.checkpoint !== undefined) throw new LensError('INVALID_ARGUMENT', `--checkpoint applies to checkpoint directories; ${spec} is a frozen graph`);
    return { kind, path, graph };
  }
  if (kind !== 'checkpoint') throw new LensError('UNKNOWN_MODEL', `${spec} is neither a checkpoint (directory or model.ckpt-N prefix) nor a frozen GraphDef (.pb)`);
  const checkpoint = resolveCheckpoint(spec, options);
  const bytes = await readBytes(checkpoint.metaPath, 'MetaGraphDef');
  let metaGraph: MetaGraphDefMessage;
  try {
    metaGraph = decodeMessage<MetaGraphDefMessage>('tensorflow.MetaGraphDef', bytes, checkpoint.metaPath);
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `${errorMessage(e)} (truncated, or not a MetaGraphDef?)`);
  }
  const graph = metaGraph.graph_def ?? {};
  if ((graph.node ?? []).length === 0) throw new LensError('MODEL_CORRUPT', `${checkpoint.metaPath} holds no graph nodes`);
  return { kind, path: checkpoint.metaPath, graph, metaGraph, checkpoint };
}

const INPUT_PIPELINE_OPS = new Set(['IteratorGetNext', 'QueueDequeueV2', 'QueueDequeueManyV2', 'QueueDequeueUpToV2', 'QueueDequeue', 'QueueDequeueMany', 'QueueDequeueUpTo']);
const SCORE_NAMES = /^(output|outputs|logits|scores|predictions|probabilities|prediction|score)$/i;
/** Ops whose output no image model returns (training, saving, summaries, loops). */
const NOT_SCORES = /^(NoOp|Const|Assign.*|Apply.*|Save.*|Restore.*|.*Summary.*|Placeholder.*|Variable.*|VarHandleOp|Merge.*|Iterator.*|Queue.*)$/;

/** dtype and shape of output `k` of a node, from its attrs (placeholders and input pipelines record them). */
function outputFacts(n: NodeDefMessage, k: number): { dataType: number; shape: number[] | null } | undefined {
  const a = n.attr ?? {};
  if (n.op === 'Placeholder' || n.op === 'PlaceholderWithDefault') {
    return { dataType: a['dtype']?.type ?? 0, shape: tensorShapeOf(a['shape']?.shape) };
  }
  const types = a['output_types']?.list?.type ?? a['component_types']?.list?.type;
  if (types && k < types.length) {
    const shapes = a['output_shapes']?.list?.shape ?? a['shapes']?.list?.shape;
    return { dataType: types[k]!, shape: tensorShapeOf(shapes?.[k]) };
  }
  const recorded = a['_output_shapes']?.list?.shape?.[k];
  const t = a['T']?.type ?? a['dtype']?.type;
  if (t !== undefined) return { dataType: t, shape: tensorShapeOf(recorded) };
  return undefined;
}

const DT_FLOAT = 1;

/** The image input: the one float rank-4 placeholder (else one of unknown rank), else the one float rank-4 input-pipeline output. */
function inferInput(nodes: readonly NodeDefMessage[], consumed: ReadonlySet<string>, where: string): { ref: string; chosenBy: string } {
  const placeholders = nodes.filter((n) => n.op === 'Placeholder' && consumed.has(n.name) && outputFacts(n, 0)?.dataType === DT_FLOAT);
  const rank4 = placeholders.filter((n) => outputFacts(n, 0)?.shape?.length === 4);
  if (rank4.length === 1) return { ref: `${rank4[0]!.name}:0`, chosenBy: 'the one float image placeholder' };
  const unknownRank = placeholders.filter((n) => outputFacts(n, 0)?.shape === null);
  if (rank4.length === 0 && unknownRank.length === 1 && placeholders.length === 1) return { ref: `${unknownRank[0]!.name}:0`, chosenBy: 'the one float placeholder' };
  const pipeline: string[] = [];
  for (const n of nodes) {
    if (!INPUT_PIPELINE_OPS.has(n.op)) continue;
    const types = n.attr?.['output_types']?.list?.type ?? n.attr?.['component_types']?.list?.type ?? [];
    types.forEach((_, k) => {
      const f = outputFacts(n, k);
      if (f?.dataType === DT_FLOAT && (f.shape === null || f.shape.length === 4)) pipeline.push(`${n.name}:${k}`);
    });
  }
  if (rank4.length === 0 && pipeline.length === 1) return { ref: pipeline[0]!, chosenBy: `the float image output of the input pipeline (${parseTensorRef(pipeline[0]!)[0]})` };
  const candidates = [...rank4.map((n) => `${n.name}:0`), ...pipeline];
  throw new LensError(
    'INVALID_ARGUMENT',
    `${where}: cannot tell the image input (${candidates.length === 0 ? 'no float image placeholder or input pipeline output' : `candidates: ${candidates.join(', ')}`}); name it with --input-tensor NAME:0`,
  );
}

/** The scores output: the last Softmax's input (logits), else a frozen graph's one result, else a node named output/logits/... */
function inferOutput(file: GraphFile, nodes: readonly NodeDefMessage[], consumed: ReadonlySet<string>, where: string): { ref: string; chosenBy: string; softmax?: string } {
  // Gradient and loss scopes hold their own softmaxes; the model's is outside them.
  const softmaxes = nodes.filter((n) => n.op === 'Softmax' && !/(^|\/)(gradients|loss|losses)(_\d+)?\//.test(n.name));
  const last = softmaxes[softmaxes.length - 1];
  if (last) {
    const logits = (last.input ?? []).find((r) => !r.startsWith('^'));
    if (logits) return { ref: logits.includes(':') ? logits : `${logits}:0`, chosenBy: `the input of the last Softmax (${last.name}), the logits`, softmax: last.name };
  }
  const sinks = nodes.filter((n) => !consumed.has(n.name) && !NOT_SCORES.test(n.op));
  if (file.kind === 'frozen-graph' && sinks.length === 1) return { ref: `${sinks[0]!.name}:0`, chosenBy: 'the graph\'s one result' };
  const named = nodes.filter((n) => SCORE_NAMES.test(n.name.split('/').pop() ?? '') && !NOT_SCORES.test(n.op));
  if (named.length === 1) return { ref: `${named[0]!.name}:0`, chosenBy: `the node named ${named[0]!.name}` };
  const candidates = (named.length > 0 ? named : sinks).map((n) => `${n.name}:0 (${n.op})`);
  throw new LensError(
    'INVALID_ARGUMENT',
    `${where}: cannot tell the scores output (no Softmax; ${candidates.length === 0 ? 'no candidate' : `candidates: ${candidates.slice(0, 8).join(', ')}${candidates.length > 8 ? ', ...' : ''}`}); name it with --output-tensor NAME:0`,
  );
}

/** A named tensor, checked to exist (the error names the file and the tensor). */
function namedTensor(ref: string, byName: ReadonlyMap<string, NodeDefMessage>, file: GraphFile, flag: string): NodeDefMessage {
  const [node] = parseTensorRef(ref);
  const n = byName.get(node);
  if (!n) {
    const near = [...byName.keys()].filter((k) => k.toLowerCase().includes(node.toLowerCase().split('/').pop() ?? '')).slice(0, 5);
    throw new LensError('UNKNOWN_TENSOR', `${file.path} has no tensor "${ref}" (${flag})${near.length ? `; similar nodes: ${near.join(', ')}` : ''}`);
  }
  return n;
}

/**
 * Chooses the image input and scores output of a graph file (given or inferred, see the module
 * comment), without converting anything.
 *
 * @example
 * const { input, output } = cutTensors(await readGraphFile('frozen.pb'));
 */
export function cutTensors(file: GraphFile, options: Pick<GraphFileOptions, 'inputTensor' | 'outputTensor'> = {}): { input: CutTensor; output: CutTensor } {
  const nodes = file.graph.node ?? [];
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map((r) => parseTensorRef(r.replace(/^\^/, ''))[0])));
  const where = file.path;
  const pickedIn = options.inputTensor !== undefined ? { ref: options.inputTensor, chosenBy: 'option' } : inferInput(nodes, consumed, where);
  const pickedOut = options.outputTensor !== undefined ? { ref: options.outputTensor, chosenBy: 'option' } : inferOutput(file, nodes, consumed, where);
  const describe = (picked: { ref: string; chosenBy: string; softmax?: string }, flag: string, role: string): CutTensor => {
    const ref = picked.ref.includes(':') ? picked.ref : `${picked.ref}:0`;
    const n = namedTensor(ref, byName, file, flag);
    const facts = outputFacts(n, parseTensorRef(ref)[1]);
    if (role === 'input' && facts && facts.dataType !== DT_FLOAT) {
      throw new LensError('MODEL_UNSUPPORTED', `${where}: input tensor ${ref} (${n.op}) is ${dataTypeName(facts.dataType)}, not float pixels; name the float image tensor with --input-tensor`);
    }
    return { name: ref, op: n.op, dataType: dataTypeName(facts?.dataType ?? DT_FLOAT), shape: facts?.shape ?? null, chosenBy: picked.chosenBy, ...(picked.softmax ? { softmax: picked.softmax } : {}) };
  };
  return { input: describe(pickedIn, '--input-tensor', 'input'), output: describe(pickedOut, '--output-tensor', 'output') };
}

function signatureTensor(alias: string, t: CutTensor): SignatureTensor {
  return { alias, name: t.name, dataType: t.dataType, dtype: dtypeOfDataType(t.dataType, `tensor ${t.name}`), shape: t.shape, encoding: 'dense' };
}

/**
 * Reads a checkpoint or frozen graph, cuts it between the image input and the scores output,
 * freezes the checkpoint's variables into it, and converts it to tfjs graph-model artifacts.
 *
 * @example
 * const g = await convertGraphFile('../shared/models-external/tf1-checkpoint-cifar-dotnet');
 * g.converted.opCounts; // { Placeholder: 1, Const: 3, Conv2D: 1, ... } (no ApplyAdam, no SaveV2)
 */
export async function convertGraphFile(spec: string, options: GraphFileOptions = {}): Promise<ConvertedGraphFile> {
  const file = await readGraphFile(spec, options);
  const { input, output } = cutTensors(file, options);
  const def: MetaGraphDefMessage = file.metaGraph ?? { graph_def: file.graph };
  const metaGraph: MetaGraphInfo = {
    tags: [],
    tensorflowVersion: def.meta_info_def?.tensorflow_version ?? '',
    tensorflowGitVersion: def.meta_info_def?.tensorflow_git_version ?? '',
    strippedDefaultAttrs: def.meta_info_def?.stripped_default_attrs ?? false,
    signatures: [{ name: 'image', methodName: 'tensorflow/serving/predict', inputs: [signatureTensor('image', input)], outputs: [signatureTensor('scores', output)] }],
    def,
  };
  let bundle: Awaited<ReturnType<typeof readTensorBundle>> | undefined;
  if (file.checkpoint) {
    try {
      bundle = await readTensorBundle(file.checkpoint.prefix);
    } catch (e) {
      if (e instanceof LensError && e.code === 'SAVEDMODEL_UNSUPPORTED' && /V1 checkpoint/.test(e.message)) {
        throw new LensError('MODEL_UNSUPPORTED', `${file.checkpoint.prefix}.index is a V1 checkpoint (tensor-slice table); only V2 checkpoints are read: re-save it with tf.train.Saver (V2 is the default since TF 1.x)`);
      }
      throw e;
    }
  }
  const keys = variableKeys(def, bundle?.names ?? []);
  const converted = await convertSignature({
    metaGraph,
    signature: 'image',
    variableKeys: keys,
    readVariable: (key) => {
      if (!bundle) throw new LensError('MODEL_UNSUPPORTED', `${file.path} reads variable "${key}"; a frozen graph must hold its weights as Const nodes`);
      if (!bundle.entries.has(key)) throw new LensError('MODEL_CORRUPT', `checkpoint ${file.checkpoint!.prefix} has no value for variable "${key}"`);
      return bundle.read(key);
    },
  }).catch((e: unknown) => {
    // Name the file: the converter speaks of the signature it was handed.
    if (e instanceof LensError) {
      const reason = e.message.replace(/^signature "image":? ?/, '');
      const hint = /placeholder\(s\)/.test(reason) ? `; the cut from ${input.name} to ${output.name} needs them: choose other --input-tensor/--output-tensor` : '';
      throw new LensError(e.code, `${file.path}: ${reason.replace(/, which the signature does not feed$/, '')}${hint}`, { cause: e });
    }
    throw e;
  });
  return { ...file, input, output, converted };
}
