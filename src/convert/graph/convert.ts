/**
 * SavedModel signature -> TensorFlow.js graph model artifacts (in memory), to run with
 * @tensorflow/tfjs-converter's GraphModel executor.
 *
 * Steps: flatten the graph (inline function calls), find what the signature outputs need
 * (stopping at the fed tensors: signature inputs, or inner tensors the caller cuts at), replace
 * variable reads by constants holding the bundle values (or, for variables the graph assigns to,
 * by serving-lens's stateful variable ops), turn every constant into a weight, and check that
 * every remaining op has a TensorFlow.js kernel.
 *
 * @example
 * const graph = await convertSignature({ metaGraph, signature: 'serving_default', readVariable, variableKeys });
 * const model = loadGraphModelSync(graph.artifacts);
 */
import type * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../../core/errors.js';
import type { AttrValueMessage, MetaGraphInfo, SignatureInfo, TensorInfoMessage } from '../../savedmodel/savedmodel.js';
import { attrKind, findSignature, tensorShapeOf } from '../../savedmodel/savedmodel.js';
import {
  baseDataType,
  bytesOf,
  dataTypeName,
  decodeTensorProto,
  dtypeOfDataType,
  type HostDType,
  type HostTensor,
} from '../../tensor/index.js';
import { flattenGraph, parseTensorRef, type FlatGraph, type FlatNode } from './flatten.js';
import { ASSIGN_VARIABLE_OP, GATHER_STRINGS_OP, READ_VARIABLE_OP, needsAsyncExecution, supportsOp, type VariableStore } from './ops.js';
import { VARIABLE_OPS } from './variables.js';

/** A fed or fetched tensor of a converted graph. */
export interface GraphTensor {
  /** Signature key, or the tensor name itself for cut points. */
  alias: string;
  /** Tensor name in the original SavedModel graph ("x:0"). */
  originalName: string;
  /** Tensor name in the converted graph ("x:0"). */
  name: string;
  dtype: HostDType;
  /** "DT_FLOAT" etc. */
  dataType: string;
  /** Dimensions with -1 for unknown, or null when unknown. */
  shape: number[] | null;
}

export interface ConvertedGraph {
  /** The signature converted (original listing). */
  signature: SignatureInfo;
  /** In-memory artifacts for tfjs-converter (`loadGraphModelSync(artifacts)`). */
  artifacts: tf.io.ModelArtifacts;
  /** Weight bytes in `artifacts.weightData` order (views, for writing shards without a copy). */
  weightChunks: Uint8Array[];
  inputs: GraphTensor[];
  outputs: GraphTensor[];
  /** Names of variables held in the store because the graph assigns to them. */
  stateVariables: string[];
  nodeCount: number;
  weightBytes: number;
  /** Ops of the converted graph and how often they occur. */
  opCounts: Record<string, number>;
  /** The graph must run with GraphModel.executeAsync (control flow, dynamic shapes, custom kernels). */
  async: boolean;
}

export interface ConvertOptions {
  metaGraph: MetaGraphInfo;
  /** Signature key (default "serving_default"). */
  signature?: string;
  /** Bundle key of each variable node (see variableKeys()). */
  variableKeys: ReadonlyMap<string, string>;
  /** Reads a variable's value from the bundle by key. */
  readVariable(key: string): Promise<HostTensor>;
  /**
   * Inner tensors to feed instead of computing them ("node:k" in the original graph, or a flattened
   * name such as "StatefulPartitionedCall/model/conv/Relu:0"). Everything above them is dropped.
   */
  cutAt?: readonly string[];
  /** Store for variables the graph assigns to; without one such graphs are refused. */
  store?: VariableStore;
  /** Bundle keys of variables other signatures assign to (see assignedVariables): read from the store. */
  sharedState?: ReadonlySet<string>;
  /** Creates the initial tensor of a stateful variable (given its bundle value). */
  makeTensor?(value: HostTensor): tf.Tensor;
}

const ASSIGN_MODES: Record<string, number> = {
  Assign: 0,
  AssignAdd: 1,
  AssignSub: 2,
  AssignVariableOp: 0,
  AssignAddVariableOp: 1,
  AssignSubVariableOp: 2,
};
const READ_OPS = new Set(['ReadVariableOp', 'ResourceGather']);
const PASS_THROUGH = new Set(['Identity', 'Snapshot']);

/** DataType name of each tfjs weight dtype. */
const WEIGHT_DATA_TYPES = { float32: 'DT_FLOAT', int32: 'DT_INT32', bool: 'DT_BOOL', string: 'DT_STRING', complex64: 'DT_COMPLEX64' } as const;

/** tfjs weight dtype and bytes of a host tensor (narrowing types tfjs lacks; ints saturate to int32). */
function weightOf(host: HostTensor): { dtype: keyof typeof WEIGHT_DATA_TYPES; chunks: Uint8Array[] } {
  switch (host.dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return { dtype: 'float32', chunks: [bytesOf(host.values)] };
    case 'float64':
      return { dtype: 'float32', chunks: [bytesOf(Float32Array.from(host.values))] };
    case 'int32':
      return { dtype: 'int32', chunks: [bytesOf(host.values)] };
    case 'bool':
      return { dtype: 'bool', chunks: [bytesOf(host.values)] };
    case 'complex64':
      return { dtype: 'complex64', chunks: [bytesOf(host.values)] };
    case 'complex128':
      return { dtype: 'complex64', chunks: [bytesOf(Float32Array.from(host.values))] };
    case 'string': {
      // tfjs's layout: uint32 length, then the bytes, per element; one chunk per weight.
      const parts: Uint8Array[] = [];
      for (const v of host.values) {
        const len = new Uint8Array(4);
        new DataView(len.buffer).setUint32(0, v.length, true);
        parts.push(len, v);
      }
      return { dtype: 'string', chunks: [Buffer.concat(parts)] };
    }
    default: {
      // int64 constants often hold "infinity" bounds (e.g. strided-slice ends): saturate them.
      const src = host.values as ArrayLike<number | bigint>;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Math.max(-2147483648, Math.min(2147483647, Number(src[i])));
      return { dtype: 'int32', chunks: [bytesOf(out)] };
    }
  }
}

function shapeJson(shape: TensorInfoMessage['tensor_shape']): Record<string, unknown> {
  if (shape?.unknown_rank) return { unknownRank: true };
  return { dim: (shape?.dim ?? []).map((d) => ({ size: String(d.size ?? 0) })) };
}

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** An AttrValue in the JSON form tfjs-converter reads (model.json `modelTopology`). */
export function attrJson(a: AttrValueMessage, where: string): Record<string, unknown> {
  switch (attrKind(a)) {
    case 's':
      return { s: b64(a.s!) };
    case 'i':
      return { i: String(a.i) };
    case 'f':
      return { f: a.f };
    case 'b':
      return { b: a.b };
    case 'type':
      return { type: dataTypeName(baseDataType(a.type ?? 0)) };
    case 'shape':
      return { shape: shapeJson(a.shape) };
    case 'func':
      return { func: { name: a.func?.name ?? '' } };
    case 'tensor':
      return { tensor: { dtype: dataTypeName(a.tensor?.dtype ?? 0), tensorShape: shapeJson(a.tensor?.tensor_shape) } };
    case 'list': {
      const l = a.list!;
      const out: Record<string, unknown> = {};
      if (l.s?.length) out.s = l.s.map(b64);
      if (l.i?.length) out.i = l.i.map(String);
      if (l.f?.length) out.f = [...l.f];
      if (l.b?.length) out.b = [...l.b];
      if (l.type?.length) out.type = l.type.map((t) => dataTypeName(baseDataType(t)));
      if (l.shape?.length) out.shape = l.shape.map(shapeJson);
      if (l.func?.length) out.func = l.func.map((f) => ({ name: f.name ?? '' }));
      return { list: out };
    }
    case 'placeholder':
      throw new LensError('SAVEDMODEL_UNSUPPORTED', `${where}: attr placeholder "${a.placeholder}" was never bound`);
    default:
      return {};
  }
}

interface EmittedNode {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, unknown>;
}

const refName = (node: string, k: number): string => (k === 0 ? node : `${node}:${k}`);

/**
 * Converts one signature of a MetaGraph into tfjs GraphModel artifacts (see the module comment).
 * Throws UNKNOWN_SIGNATURE, UNKNOWN_TENSOR (bad cut point), UNSUPPORTED_OP (naming each op and a
 * node that uses it) or SAVEDMODEL_UNSUPPORTED (e.g. sparse signature tensors).
 *
 * @example
 * const g = await convertSignature({ metaGraph: mg, variableKeys: keys, readVariable: (k) => bundle.read(k) });
 * g.outputs[0].name; // 'y:0'
 */
export async function convertSignature(options: ConvertOptions): Promise<ConvertedGraph> {
  const { metaGraph } = options;
  const signature = findSignature(metaGraph, options.signature);
  const what = `signature "${signature.name}"`;
  for (const t of [...signature.inputs, ...signature.outputs]) {
    if (t.encoding !== 'dense') {
      throw new LensError('SAVEDMODEL_UNSUPPORTED', `${what}: ${t.alias} is a ${t.encoding} tensor; only dense tensors are supported`);
    }
  }
  const graphDef = metaGraph.def.graph_def ?? {};
  const roots = [...signature.outputs, ...signature.inputs].map((t) => parseTensorRef(t.name)[0]);
  const flat = flattenGraph(graphDef, metaGraph.def.meta_info_def?.stripped_op_list?.op ?? [], roots);
  const nodeOf = (ref: string, role: string): FlatNode => {
    const n = flat.nodes.get(parseTensorRef(ref)[0]);
    if (!n) throw new LensError('UNKNOWN_TENSOR', `${what}: ${role} tensor "${ref}" is not in the graph`);
    return n;
  };

  // ---- feeds: signature inputs and cut points
  const feeds = new Map<string, GraphTensor>(); // resolved ref -> fed tensor
  for (const t of signature.inputs) {
    const ref = flat.resolve(t.name);
    const node = nodeOf(ref, `input "${t.alias}"`);
    // The graph's own dtype wins over the TensorInfo's, as in TensorFlow's session: TF 1.0 exports
    // such as half_plus_three declare DT_FLOAT for a DT_STRING tf.Example placeholder.
    const graphType = flat.registry.outputType(node, parseTensorRef(ref)[1]);
    const dataType = graphType !== undefined && baseDataType(graphType) !== baseDataType(t.dataType) ? dataTypeName(baseDataType(graphType)) : t.dataType;
    const dtype = dataType === t.dataType ? t.dtype : dtypeOfDataType(dataType, `input "${t.alias}"`);
    if (!dtype) throw new LensError('DTYPE_UNSUPPORTED', `${what}: input "${t.alias}" has dtype ${t.dataType}`);
    feeds.set(ref, { alias: t.alias, originalName: t.name, name: '', dtype, dataType: dataTypeName(baseDataType(dataType)), shape: t.shape });
  }
  for (const cut of options.cutAt ?? []) {
    const ref = flat.resolve(cut);
    const node = nodeOf(ref, 'cut');
    const k = parseTensorRef(ref)[1];
    const dataType = flat.registry.outputType(node, k);
    if (dataType === undefined) throw new LensError('UNKNOWN_TENSOR', `${what}: cannot tell the dtype of cut tensor "${cut}" (op ${node.op})`);
    const shapes = node.attr['_output_shapes']?.list?.shape;
    feeds.set(ref, {
      alias: cut,
      originalName: cut,
      name: '',
      dtype: dtypeOfDataType(dataType, `cut tensor "${cut}"`),
      dataType: dataTypeName(baseDataType(dataType)),
      shape: tensorShapeOf(shapes?.[k]),
    });
  }

  // ---- what the outputs need
  const outputRefs = signature.outputs.map((t) => flat.resolve(t.name));
  const { needed, usedFeeds } = neededNodes(flat, outputRefs, new Set(feeds.keys()), what);

  // ---- variables: which node holds which bundle value, and which ones live in the store
  const variableOf = (ref: string): FlatNode => variableNode(flat, ref, what);
  const keyOf = (v: FlatNode): string => {
    const key = options.variableKeys.get(v.name);
    if (!key) throw new LensError('SAVEDMODEL_CORRUPT', `${what}: no value in the variables bundle for variable "${v.name}" (op ${v.op})`);
    return key;
  };
  const stateful = new Set<string>();
  for (const name of needed) {
    const n = flat.nodes.get(name)!;
    if (ASSIGN_MODES[n.op] !== undefined) stateful.add(variableOf(n.inputs[0] ?? '').name);
    if (VARIABLE_OPS.has(n.op) && options.sharedState?.has(options.variableKeys.get(n.name) ?? '')) stateful.add(n.name);
  }
  const unfed = [...needed].filter((n) => flat.nodes.get(n)!.op === 'Placeholder');
  if (unfed.length > 0) {
    throw new LensError('SAVEDMODEL_UNSUPPORTED', `${what}: its outputs need placeholder(s) ${unfed.map((n) => `"${n}"`).join(', ')}, which the signature does not feed`);
  }
  if (stateful.size > 0 && !options.store) {
    throw new LensError('SAVEDMODEL_UNSUPPORTED', `${what} assigns to variables (${[...stateful].join(', ')}); a stateless TensorFlow.js graph cannot hold them`);
  }

  // ---- emit nodes and weights
  const emitted: EmittedNode[] = [];
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const weightChunks: Uint8Array[] = [];
  let weightBytes = 0;
  const emitConst = (name: string, host: HostTensor): void => {
    const w = weightOf(host);
    weightSpecs.push({ name, shape: [...host.shape], dtype: w.dtype });
    for (const c of w.chunks) {
      weightChunks.push(c);
      weightBytes += c.length;
    }
    // The Const node's DataType is the tfjs weight's type.
    emitted.push({ name, op: 'Const', input: [], attr: { dtype: { type: WEIGHT_DATA_TYPES[w.dtype] } } });
  };
  const values = new Map<string, HostTensor>();
  const valueOf = async (v: FlatNode): Promise<HostTensor> => {
    const key = keyOf(v);
    let t = values.get(key);
    if (!t) {
      t = await options.readVariable(key);
      values.set(key, t);
    }
    return t;
  };
  const stateIndex = async (v: FlatNode): Promise<number> => {
    const store = options.store!;
    const key = keyOf(v);
    const value = await valueOf(v);
    if (!options.makeTensor) throw new LensError('INTERNAL', 'stateful variables need makeTensor');
    const make = options.makeTensor;
    return store.ensure(key, () => make(value));
  };
  const stateAttrs = (index: number, mode?: number): Record<string, unknown> => ({
    lens_store: { i: String(options.store!.id) },
    lens_var: { i: String(index) },
    ...(mode === undefined ? {} : { lens_mode: { i: String(mode) } }),
  });
  const copyAttrs = (n: FlatNode): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n.attr)) {
      // "_"-prefixed attrs are TF runtime annotations (_output_shapes, _class, ...), unused by kernels.
      if (!k.startsWith('_')) out[k] = attrJson(v, `node "${n.name}"`);
    }
    return out;
  };

  const taken = new Set([...needed]);
  const fedName = new Map<string, string>(); // resolved ref -> placeholder node name
  for (const ref of usedFeeds) {
    const [node, k] = parseTensorRef(ref);
    let name = k === 0 && !needed.has(node) ? node : `${node}_lens_feed_${k}`;
    while (taken.has(name)) name += '_';
    taken.add(name);
    fedName.set(ref, name);
    const feed = feeds.get(ref)!;
    feed.name = `${name}:0`;
    const attr: Record<string, unknown> = { dtype: { type: feed.dataType } };
    if (feed.shape) attr.shape = { shape: { dim: feed.shape.map((s) => ({ size: String(s) })) } };
    emitted.push({ name, op: 'Placeholder', input: [], attr });
  }
  const mapRef = (ref: string): string => {
    const fed = fedName.get(ref);
    if (fed) return fed;
    const [node, k] = parseTensorRef(ref);
    return refName(node, k);
  };

  for (const name of needed) {
    const n = flat.nodes.get(name)!;
    const inputs = n.inputs.map(mapRef);
    const controls = n.controlInputs
      .filter((c) => needed.has(c) && ASSIGN_MODES[flat.nodes.get(c)!.op] !== undefined)
      .map((c) => `^${c}`);
    if (VARIABLE_OPS.has(n.op)) {
      if (stateful.has(n.name)) emitted.push({ name, op: READ_VARIABLE_OP, input: [], attr: stateAttrs(await stateIndex(n)) });
      else if (n.op !== 'VarHandleOp') emitConst(name, await valueOf(n));
      // Other handles are only read through ReadVariableOp/ResourceGather, which become constants.
      continue;
    }
    if (READ_OPS.has(n.op)) {
      const v = variableOf(n.inputs[0] ?? '');
      if (n.op === 'ReadVariableOp') {
        if (stateful.has(v.name)) emitted.push({ name, op: READ_VARIABLE_OP, input: controls, attr: stateAttrs(await stateIndex(v)) });
        else emitConst(name, await valueOf(v));
      } else {
        // ResourceGather(handle, indices) == GatherV2(value, indices, axis 0).
        const params = `${name}/lens_params`;
        const axis = `${name}/lens_axis`;
        emitConst(params, await valueOf(v));
        emitConst(axis, { dtype: 'int32', shape: [], values: new Int32Array([0]) });
        emitted.push({
          name,
          op: 'GatherV2',
          input: [params, inputs[1]!, axis, ...controls],
          attr: { batch_dims: { i: String(n.attr['batch_dims']?.i ?? 0) } },
        });
      }
      continue;
    }
    const mode = ASSIGN_MODES[n.op];
    if (mode !== undefined) {
      const v = variableOf(n.inputs[0] ?? '');
      emitted.push({ name, op: ASSIGN_VARIABLE_OP, input: [v.name, inputs[1]!, ...controls], attr: stateAttrs(await stateIndex(v), mode) });
      continue;
    }
    if (n.op === 'Const') {
      const tensor = n.attr['value']?.tensor;
      if (!tensor) throw new LensError('SAVEDMODEL_CORRUPT', `Const node "${name}" has no value`);
      emitConst(name, decodeTensorProto(tensor, `Const node "${name}"`));
      continue;
    }
    const stringGather = n.op === 'GatherV2' && dataTypeName(baseDataType(n.attr['Tparams']?.type ?? 0)) === 'DT_STRING';
    emitted.push({ name, op: stringGather ? GATHER_STRINGS_OP : n.op, input: [...inputs, ...controls], attr: copyAttrs(n) });
  }

  // Outputs keep their original tensor names: an IdentityN stands in for each former call node.
  const outputs: GraphTensor[] = [];
  const standIns = new Map<string, Map<number, string>>();
  for (const t of signature.outputs) {
    const [origNode, k] = parseTensorRef(t.name);
    const ref = flat.resolve(t.name);
    if (!t.dtype) throw new LensError('DTYPE_UNSUPPORTED', `${what}: output "${t.alias}" has dtype ${t.dataType}`);
    let name: string;
    if (fedName.has(ref)) name = `${fedName.get(ref)}:0`;
    else if (flat.nodes.has(origNode)) name = `${origNode}:${k}`;
    else {
      standIns.set(origNode, (standIns.get(origNode) ?? new Map<number, string>()).set(k, mapRef(ref)));
      name = `${origNode}:${k}`;
    }
    outputs.push({ alias: t.alias, originalName: t.name, name, dtype: t.dtype, dataType: dataTypeName(baseDataType(t.dataType)), shape: t.shape });
  }
  for (const [node, byIndex] of standIns) {
    // Output k of IdentityN is its input k; positions no output uses repeat a used tensor as filler.
    const filler = byIndex.values().next().value!;
    const input = Array.from({ length: Math.max(...byIndex.keys()) + 1 }, (_, i) => byIndex.get(i) ?? filler);
    emitted.push({ name: node, op: 'IdentityN', input, attr: {} });
  }

  // ---- every op must have a kernel
  const unsupported = new Map<string, string>();
  for (const n of emitted) if (!supportsOp(n.op) && !unsupported.has(n.op)) unsupported.set(n.op, n.name);
  if (unsupported.size > 0) {
    const list = [...unsupported].map(([op, node]) => `${op} (node "${node}")`).join(', ');
    throw new LensError(
      'UNSUPPORTED_OP',
      `${what} needs ops TensorFlow.js cannot run: ${list}. Register a kernel with registerGraphOp(), or cut the graph below them (cutAt / --cut)`,
    );
  }
  for (const n of emitted) {
    for (const [k, v] of Object.entries(n.attr)) {
      if ((v as { func?: unknown }).func || (v as { list?: { func?: unknown } }).list?.func) {
        throw new LensError('UNSUPPORTED_OP', `${what}: node "${n.name}" (op ${n.op}) runs function "${k}"; control-flow function bodies are not converted`);
      }
    }
  }

  const ordered = topologicalOrder(emitted);
  const inputs = [...usedFeeds].map((r) => feeds.get(r)!).sort((a, b) => a.alias.localeCompare(b.alias));
  const opCounts: Record<string, number> = {};
  for (const n of ordered) opCounts[n.op] = (opCounts[n.op] ?? 0) + 1;
  // One ArrayBuffer per chunk (tfjs accepts a list): buffers read from the bundle are used as they
  // are, so loading does not hold a second, concatenated copy of all weights.
  const weightData = weightChunks.filter((c) => c.byteLength > 0).map((c) =>
    c.byteOffset === 0 && c.byteLength === c.buffer.byteLength && c.buffer instanceof ArrayBuffer ? c.buffer : new Uint8Array(c).buffer,
  );
  const tensorSig = (t: GraphTensor) => ({
    name: t.name,
    dtype: t.dataType,
    tensorShape: t.shape ? { dim: t.shape.map((s) => ({ size: String(s) })) } : { unknownRank: true },
  });
  const versions = graphDef.versions ?? {};
  const artifacts: tf.io.ModelArtifacts = {
    format: 'graph-model',
    generatedBy: metaGraph.tensorflowVersion ? `TensorFlow ${metaGraph.tensorflowVersion}` : 'TensorFlow',
    convertedBy: 'serving-lens',
    modelTopology: {
      node: ordered,
      library: {},
      versions: { producer: versions.producer ?? 0, minConsumer: versions.min_consumer ?? 0 },
    },
    weightSpecs,
    weightData,
    signature: {
      inputs: Object.fromEntries(inputs.map((t) => [t.alias, tensorSig(t)])),
      outputs: Object.fromEntries(outputs.map((t) => [t.alias, tensorSig(t)])),
      methodName: signature.methodName,
    },
  };
  return {
    signature,
    artifacts,
    weightChunks,
    inputs,
    outputs,
    stateVariables: [...stateful],
    nodeCount: emitted.length,
    weightBytes,
    opCounts,
    async: needsAsyncExecution(Object.keys(opCounts)),
  };
}

/** Nodes with every node after its inputs (readable model.json and listings; tfjs does not need it). */
function topologicalOrder(nodes: readonly EmittedNode[]): EmittedNode[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const done = new Set<string>();
  const out: EmittedNode[] = [];
  for (const root of nodes) {
    // Iterative depth-first walk: deep graphs would overflow a recursive one.
    const stack: [EmittedNode, number][] = [[root, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [node, next] = top;
      if (done.has(node.name)) {
        stack.pop();
        continue;
      }
      if (next < node.input.length) {
        top[1]++;
        const dep = byName.get(parseTensorRef(node.input[next]!.replace(/^\^/, ''))[0]);
        if (dep && !done.has(dep.name) && !stack.some(([n]) => n === dep)) stack.push([dep, 0]);
        continue;
      }
      done.add(node.name);
      out.push(node);
      stack.pop();
    }
  }
  return out;
}

/** Nodes the outputs need, following data edges and control edges to variable assignments; stops at feeds. */
function neededNodes(flat: FlatGraph, outputRefs: readonly string[], feeds: ReadonlySet<string>, what: string): { needed: Set<string>; usedFeeds: Set<string> } {
  const needed = new Set<string>();
  const usedFeeds = new Set<string>();
  const stack = [...outputRefs];
  while (stack.length > 0) {
    const ref = stack.pop()!;
    if (feeds.has(ref)) {
      usedFeeds.add(ref);
      continue;
    }
    const node = flat.nodes.get(parseTensorRef(ref)[0]);
    if (!node) throw new LensError('UNKNOWN_TENSOR', `${what}: tensor "${ref}" is not in the graph`);
    if (needed.has(node.name)) continue;
    needed.add(node.name);
    stack.push(...node.inputs);
    for (const c of node.controlInputs) {
      const cn = flat.nodes.get(c);
      if (cn && ASSIGN_MODES[cn.op] !== undefined) stack.push(`${c}:0`);
    }
  }
  return { needed, usedFeeds };
}

/** The variable node a reference reads (through Identity nodes). */
function variableNode(flat: FlatGraph, ref: string, what: string): FlatNode {
  let n = flat.nodes.get(parseTensorRef(ref)[0]);
  for (let hops = 0; n && PASS_THROUGH.has(n.op) && hops < 100; hops++) n = flat.nodes.get(parseTensorRef(n.inputs[0] ?? '')[0]);
  if (!n || !VARIABLE_OPS.has(n.op)) throw new LensError('SAVEDMODEL_UNSUPPORTED', `${what}: cannot tell which variable "${ref}" refers to`);
  return n;
}

/**
 * Bundle keys of the variables some signature of the MetaGraph assigns to. A model's signatures
 * share these (e.g. a counter's get/increment signatures), so all of them must read them from
 * the same store. Signatures that cannot be traversed are skipped.
 *
 * @example
 * assignedVariables(mg, keys); // Set { 'counter' }
 */
export function assignedVariables(metaGraph: MetaGraphInfo, variableKeys: ReadonlyMap<string, string>): Set<string> {
  const out = new Set<string>();
  for (const sig of metaGraph.signatures) {
    try {
      const roots = sig.outputs.map((t) => parseTensorRef(t.name)[0]);
      const flat = flattenGraph(metaGraph.def.graph_def ?? {}, metaGraph.def.meta_info_def?.stripped_op_list?.op ?? [], roots);
      const feeds = new Set(sig.inputs.map((t) => flat.resolve(t.name)));
      const { needed } = neededNodes(flat, sig.outputs.map((t) => flat.resolve(t.name)), feeds, sig.name);
      for (const name of needed) {
        const n = flat.nodes.get(name)!;
        if (ASSIGN_MODES[n.op] === undefined) continue;
        const key = variableKeys.get(variableNode(flat, n.inputs[0] ?? '', sig.name).name);
        if (key) out.add(key);
      }
    } catch {
      // A signature that cannot be traversed reports its error when it is converted.
    }
  }
  return out;
}
