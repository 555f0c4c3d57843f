/**
 * Re-exporting graphs: a tfjs graph model (model.json of the TensorFlow.js converter) or a
 * SavedModel signature (converted by src/convert/graph) written back as a TF1 graph with
 * variables. Nodes keep their op and attrs (checked against the op table), are renamed under a
 * `model/` scope, float weights become variables and integer constants Consts. The converter's
 * fused ops (`_FusedConv2D`, `FusedDepthwiseConv2dNative`, `_FusedMatMul`) are split back into
 * Conv2D / DepthwiseConv2dNative / MatMul + BiasAdd + activation, and IdentityN stand-ins are
 * looked through. Graphs with control flow, or with ops outside the table, are refused naming them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { parseTensorRef } from '../convert/graph/flatten.js';
import { convertSavedModelSignature } from '../convert/savedmodel.js';
import { LensError } from '../core/errors.js';
import type { AttrInput } from './attrs.js';
import type { ModelBody, ModelStructure } from './body.js';
import type { GraphBuilder } from './builder.js';
import { opDefs, type AttrType } from './op-defs.js';

interface JsonNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, JsonAttr>;
}

interface JsonAttr {
  type?: string | number;
  i?: string | number;
  f?: number;
  b?: boolean;
  s?: string;
  shape?: { dim?: { size?: string | number }[]; unknownRank?: boolean; unknown_rank?: boolean };
  list?: { i?: (string | number)[]; f?: number[]; s?: string[]; type?: (string | number)[]; b?: boolean[]; shape?: unknown[] };
  func?: unknown;
  tensor?: unknown;
}

/** A graph to re-export: its nodes, its weights, which node is fed and which tensor is read. */
interface GraphParts {
  nodes: JsonNode[];
  weights: tf.NamedTensorMap;
  input: string;
  output: string;
  inputShape: [number, number, number];
}

const F = 'DT_FLOAT';
const ALIAS_OPS = new Set(['Identity', 'Snapshot', 'StopGradient']);
const FUSED_ACTIVATIONS: Record<string, string> = { Relu: 'Relu', Relu6: 'Relu6', Elu: 'Elu', Sigmoid: 'Sigmoid', Tanh: 'Tanh', LeakyRelu: 'LeakyRelu' };

const fromB64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/** A tfjs model.json attr as the exporter's plain value for an attr of declared `type`. */
function attrInput(a: JsonAttr, type: AttrType, where: string): AttrInput {
  switch (type) {
    case 'type':
      return typeof a.type === 'number' ? a.type : String(a.type);
    case 'list(type)':
      return (a.list?.type ?? []).map((t) => String(t));
    case 'int':
      return Number(a.i ?? 0);
    case 'list(int)':
      return (a.list?.i ?? []).map(Number);
    case 'float':
      return Number(a.f ?? 0);
    case 'bool':
      return Boolean(a.b);
    case 'string':
      return fromB64(a.s ?? '');
    case 'shape': {
      const s = a.shape ?? {};
      return s.unknownRank || s.unknown_rank ? null : (s.dim ?? []).map((d) => Number(d.size ?? 0));
    }
    default:
      throw new LensError('MODEL_UNSUPPORTED', `${where}: ${type} attrs cannot be re-exported`);
  }
}

/** The nodes and weights of a tfjs graph model, with its single input and the output to export. */
async function partsOfArtifacts(artifacts: tf.io.ModelArtifacts, name: string, inputShape: readonly number[] | undefined): Promise<GraphParts> {
  const topology = artifacts.modelTopology as { node?: JsonNode[] } | undefined;
  const nodes = topology?.node ?? [];
  if (nodes.length === 0) throw new LensError('MODEL_CORRUPT', `graph model ${name} has no nodes`);
  const placeholders = nodes.filter((n) => n.op === 'Placeholder');
  if (placeholders.length !== 1) {
    throw new LensError('MODEL_UNSUPPORTED', `graph model ${name} has ${placeholders.length} inputs (${placeholders.map((n) => n.name).join(', ')}); an image model has one`);
  }
  const input = placeholders[0]!;
  const sigOutputs = Object.values((artifacts.signature as { outputs?: Record<string, { name: string }> } | undefined)?.outputs ?? {});
  let output: string;
  if (sigOutputs.length > 0) {
    if (sigOutputs.length !== 1) throw new LensError('MODEL_UNSUPPORTED', `graph model ${name} has ${sigOutputs.length} outputs; an image model has one`);
    output = sigOutputs[0]!.name;
  } else {
    const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map((r) => parseTensorRef(r.replace(/^\^/, ''))[0])));
    const sinks = nodes.filter((n) => !consumed.has(n.name) && n.op !== 'NoOp' && n.op !== 'Const' && n.op !== 'Placeholder');
    if (sinks.length !== 1) throw new LensError('MODEL_UNSUPPORTED', `graph model ${name} ends in ${sinks.length} tensors (${sinks.map((n) => n.name).join(', ')}); an image model has one output`);
    output = sinks[0]!.name;
  }
  const dims = (input.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size ?? -1));
  const shape = inputShape ?? (dims.length === 4 && dims.slice(1).every((d) => d > 0) ? dims.slice(1) : undefined);
  if (!shape || shape.length !== 3) throw new LensError('MODEL_UNSUPPORTED', `graph model ${name}: input ${input.name} has shape [${dims.join(',')}]; give inputShape [H,W,C] (lens.json)`);
  const weights = artifacts.weightData && artifacts.weightSpecs ? tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs) : {};
  return { nodes, weights, input: input.name, output, inputShape: [shape[0]!, shape[1]!, shape[2]!] };
}

/** The scores output of a converted SavedModel signature: its only output, else probabilities/scores/logits. */
function pickOutput(aliases: readonly { alias: string; name: string }[], where: string): string {
  if (aliases.length === 1) return aliases[0]!.name;
  for (const a of ['probabilities', 'scores', 'predictions', 'logits']) {
    const hit = aliases.find((t) => t.alias === a);
    if (hit) return hit.name;
  }
  throw new LensError('MODEL_UNSUPPORTED', `${where} has outputs ${aliases.map((t) => t.alias).join(', ')}; none is the class scores (probabilities, scores, predictions, logits)`);
}

/** The signature a lens.json beside the SavedModel names (exports name their float one). */
function declaredSignature(dir: string): string | undefined {
  for (const path of [join(dir, 'lens.json'), join(dirname(dir), 'lens.json')]) {
    if (!existsSync(path)) continue;
    try {
      const s = (JSON.parse(readFileSync(path, 'utf8')) as { signature?: unknown }).signature;
      return typeof s === 'string' ? s : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

async function partsOfSavedModel(dir: string, wanted: string | undefined, name: string): Promise<{ artifacts: tf.io.ModelArtifacts; parts: GraphParts }> {
  const signature = wanted ?? declaredSignature(dir);
  let converted;
  try {
    converted = await convertSavedModelSignature(dir, signature !== undefined ? { signature } : {});
  } catch (e) {
    if (e instanceof LensError && e.code === 'UNSUPPORTED_OP') {
      throw new LensError('MODEL_UNSUPPORTED', `${dir}: ${e.message}. A signature taking encoded images cannot be re-exported; pick its float one (e.g. --signature predict_pixels)`, { cause: e });
    }
    throw e;
  }
  const where = `signature "${converted.signature.name}" of ${dir}`;
  if (converted.inputs.length !== 1 || converted.inputs[0]!.dtype !== 'float32') {
    throw new LensError('MODEL_UNSUPPORTED', `${where} takes ${converted.inputs.map((t) => `${t.alias} (${t.dataType})`).join(', ')}; re-export needs one float image input (pick another --signature)`);
  }
  const input = converted.inputs[0]!;
  const shape = input.shape && input.shape.length === 4 && input.shape.slice(1).every((d) => d > 0) ? input.shape.slice(1) : undefined;
  const output = pickOutput(converted.outputs, where);
  const artifacts = { ...converted.artifacts, signature: { ...converted.artifacts.signature, outputs: { scores: { name: output } } } };
  return { artifacts, parts: await partsOfArtifacts(artifacts, name, shape) };
}

/** Emits the nodes the output needs, in dependency order, mapping the input to `input`. */
function emitGraph(g: GraphBuilder, vars: import('./variables.js').VariableSet, parts: GraphParts, input: string, progress: (f: number) => void): Promise<string> {
  const byName = new Map(parts.nodes.map((n) => [n.name, n]));
  const defs = opDefs();
  const mapped = new Map<string, string>(); // source tensor "node:k" -> emitted ref
  const state = new Map<string, 'visiting' | 'done'>();
  const order: JsonNode[] = [];
  const visit = (nodeName: string): void => {
    const s = state.get(nodeName);
    if (s === 'done') return;
    if (s === 'visiting') throw new LensError('MODEL_UNSUPPORTED', `graph node "${nodeName}" is part of a cycle (control flow), which cannot be re-exported`);
    const n = byName.get(nodeName);
    if (!n) throw new LensError('MODEL_CORRUPT', `graph refers to node "${nodeName}", which does not exist`);
    state.set(nodeName, 'visiting');
    if (nodeName !== parts.input) for (const r of n.input ?? []) if (!r.startsWith('^')) visit(parseTensorRef(r)[0]);
    state.set(nodeName, 'done');
    order.push(n);
  };
  visit(parseTensorRef(parts.output)[0]);

  const ref = (r: string): string => {
    const [node, k] = parseTensorRef(r);
    const m = mapped.get(`${node}:${k}`);
    if (m === undefined) throw new LensError('MODEL_UNSUPPORTED', `graph tensor "${r}" is not available (output ${k} of a node that was not exported)`);
    return m;
  };

  return g.scopeAsync('model', async () => {
    let done = 0;
    for (const n of order) {
      const where = `graph node "${n.name}" (${n.op})`;
      const inputs = (n.input ?? []).filter((r) => !r.startsWith('^'));
      if (n.name === parts.input) {
        mapped.set(`${n.name}:0`, input);
      } else if (n.op === 'Const') {
        const w = parts.weights[n.name];
        if (!w) throw new LensError('MODEL_CORRUPT', `${where}: no weight data`);
        const values = await w.data();
        if (w.dtype === 'float32' && w.size > 1) {
          mapped.set(`${n.name}:0`, vars.add(g, n.name, { dtype: 'float32', shape: [...w.shape], values: Float32Array.from(values as Float32Array) }));
        } else if (w.dtype === 'float32') {
          mapped.set(`${n.name}:0`, g.constant(n.name, { dtype: 'float32', shape: [...w.shape], values: Float32Array.from(values as Float32Array) }));
        } else if (w.dtype === 'int32') {
          mapped.set(`${n.name}:0`, g.constant(n.name, { dtype: 'int32', shape: [...w.shape], values: Int32Array.from(values as Int32Array) }));
        } else {
          throw new LensError('MODEL_UNSUPPORTED', `${where}: ${w.dtype} constants cannot be re-exported`);
        }
      } else if (ALIAS_OPS.has(n.op)) {
        mapped.set(`${n.name}:0`, ref(inputs[0]!));
      } else if (n.op === 'IdentityN') {
        inputs.forEach((r, k) => mapped.set(`${n.name}:${k}`, ref(r)));
      } else if (n.op === '_FusedConv2D' || n.op === 'FusedDepthwiseConv2dNative' || n.op === '_FusedMatMul') {
        mapped.set(`${n.name}:0`, emitFused(g, n, inputs.map(ref), where));
      } else {
        const def = defs.get(n.op);
        if (!def) throw new LensError('MODEL_UNSUPPORTED', `${where}: op ${n.op} cannot be re-exported (it is not among the TensorFlow ops the exporter writes)`);
        const attrs: Record<string, AttrInput> = {};
        for (const [key, value] of Object.entries(n.attr ?? {})) {
          if (key.startsWith('_')) continue;
          const fact = def.attrs.find((a) => a.name === key);
          if (!fact) throw new LensError('MODEL_UNSUPPORTED', `${where}: attr "${key}" is not part of TensorFlow's ${n.op}`);
          attrs[key] = attrInput(value, fact.type, where);
        }
        const name = g.op(n.op, inputs.map(ref), attrs, { name: n.name });
        const outputs = def.outputs.length;
        for (let k = 0; k < Math.max(1, outputs); k++) mapped.set(`${n.name}:${k}`, k === 0 ? name : `${name}:${k}`);
      }
      progress(++done / order.length);
    }
    return ref(parts.output);
  });
}

/** Splits a tfjs fused op into its TensorFlow ops. */
function emitFused(g: GraphBuilder, n: JsonNode, inputs: string[], where: string): string {
  const attr = n.attr ?? {};
  const fused = (attr.fused_ops?.list?.s ?? []).map(fromB64);
  const numArgs = Number(attr.num_args?.i ?? 0);
  const [x, w, ...args] = inputs;
  let y: string;
  if (n.op === '_FusedMatMul') {
    y = g.op('MatMul', [x!, w!], { T: F, transpose_a: Boolean(attr.transpose_a?.b), transpose_b: Boolean(attr.transpose_b?.b) }, { name: n.name });
  } else {
    const base = n.op === '_FusedConv2D' ? 'Conv2D' : 'DepthwiseConv2dNative';
    const padding = fromB64(attr.padding?.s ?? '');
    const explicit = (attr.explicit_paddings?.list?.i ?? []).map(Number);
    y = g.op(base, [x!, w!], {
      T: F,
      strides: (attr.strides?.list?.i ?? [1, 1, 1, 1]).map(Number),
      padding,
      ...(explicit.length ? { explicit_paddings: explicit } : {}),
      dilations: (attr.dilations?.list?.i ?? [1, 1, 1, 1]).map(Number),
    }, { name: n.name });
  }
  if (args.length !== numArgs) throw new LensError('MODEL_CORRUPT', `${where}: num_args is ${numArgs} but ${args.length} extra inputs are given`);
  for (const f of fused) {
    if (f === 'BiasAdd') y = g.op('BiasAdd', [y, args[0]!], { T: F }, { name: `${n.name}/BiasAdd` });
    else if (f === 'Prelu') {
      const neg = g.op('Mul', [args[1]!, g.op('Relu', [g.op('Neg', [y], { T: F })], { T: F })], { T: F });
      y = g.op('Sub', [g.op('Relu', [y], { T: F }), neg], { T: F }, { name: `${n.name}/Prelu` });
    } else if (FUSED_ACTIVATIONS[f]) {
      const extra: Record<string, AttrInput> = f === 'LeakyRelu' ? { alpha: Number(attr.leakyrelu_alpha?.f ?? 0.2) } : {};
      y = g.op(FUSED_ACTIVATIONS[f]!, [y], { T: F, ...extra }, { name: `${n.name}/${f}` });
    } else {
      throw new LensError('MODEL_UNSUPPORTED', `${where}: fused op "${f}" cannot be re-exported`);
    }
  }
  return y;
}

/** True when the exported output already is probabilities: a Softmax, or a Sigmoid per label (looking through alias ops). */
function endsInProbabilities(parts: GraphParts): boolean {
  const byName = new Map(parts.nodes.map((n) => [n.name, n]));
  let n = byName.get(parseTensorRef(parts.output)[0]);
  for (let hops = 0; n && (ALIAS_OPS.has(n.op) || n.op === 'IdentityN' || n.op === 'Reshape') && hops < 100; hops++) {
    const k = n.op === 'IdentityN' ? parseTensorRef(parts.output)[1] : 0;
    n = byName.get(parseTensorRef((n.input ?? [])[k] ?? '')[0]);
  }
  return n?.op === 'Softmax' || n?.op === 'Sigmoid';
}

/** The number of classes: given by the caller, else found by running the graph once on zeros. */
async function classesOf(parts: GraphParts, artifacts: tf.io.ModelArtifacts): Promise<number> {
  const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
  const model = await loadGraphModel(tf.io.fromMemory(artifacts));
  try {
    const x = tf.zeros([1, ...parts.inputShape]);
    let y: tf.Tensor;
    try {
      y = model.execute({ [parts.input]: x }, parts.output) as tf.Tensor;
    } catch {
      // Graphs with dynamic shapes or custom kernels only run asynchronously.
      y = (await model.executeAsync({ [parts.input]: x }, parts.output)) as tf.Tensor;
    }
    const classes = y.size;
    tf.dispose([x, y]);
    return classes;
  } finally {
    model.dispose();
  }
}

/**
 * The body of a converted graph (tfjs graph model artifacts or a SavedModel signature).
 *
 * @example
 * const body = await exportConvertedGraph({ kind: 'savedmodel', dir: 'export/1', signature: 'predict_pixels' }, 'm');
 */
export async function exportConvertedGraph(
  s: Extract<ModelStructure, { kind: 'graph' | 'savedmodel' }>,
  name: string,
  known: { inputShape?: readonly number[]; classes?: number } = {},
): Promise<ModelBody> {
  let artifacts: tf.io.ModelArtifacts;
  let parts: GraphParts;
  if (s.kind === 'graph') {
    artifacts = s.artifacts;
    parts = await partsOfArtifacts(artifacts, name, known.inputShape);
  } else {
    ({ artifacts, parts } = await partsOfSavedModel(s.dir, s.signature, name));
  }
  const classes = known.classes ?? (await classesOf(parts, artifacts));
  const probabilities = endsInProbabilities(parts);
  return {
    inputShape: parts.inputShape,
    async emit(g, vars, input, progress) {
      try {
        const out = await emitGraph(g, vars, parts, input, progress);
        const scores = g.op('Reshape', [out, g.int32('scores/shape', [-1, classes])], { T: F, Tshape: 'DT_INT32' }, { name: 'scores' });
        return { scores, probabilities, classes };
      } finally {
        tf.dispose(Object.values(parts.weights));
      }
    },
  };
}
