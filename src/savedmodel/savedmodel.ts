/**
 * Reading `saved_model.pb`: MetaGraphs, tags and signatures, without TensorFlow.
 *
 * @example
 * const sm = await readSavedModel('../shared/testdata/savedmodels/saved_model_half_plus_two_cpu/00000123');
 * const mg = selectMetaGraph(sm, ['serve']);
 * mg.signatures.map((s) => s.name); // ['classify_x_to_y', 'regress_x2_to_y3', ..., 'serving_default']
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LensError } from '../core/errors.js';
import { decodeMessage } from '../proto/index.js';
import { dataTypeName, dtypeOfDataType, type HostDType, type TensorProtoMessage } from '../tensor/index.js';

// ---------------------------------------------------------------------------------------------
// Decoded message shapes (protobufjs objects with snake_case fields; only what this library reads).

export interface AttrValueMessage {
  list?: {
    s?: Uint8Array[];
    i?: number[];
    f?: number[];
    b?: boolean[];
    type?: number[];
    shape?: TensorProtoMessage['tensor_shape'][];
    tensor?: TensorProtoMessage[];
    func?: NameAttrListMessage[];
  };
  s?: Uint8Array;
  i?: number;
  f?: number;
  b?: boolean;
  type?: number;
  shape?: TensorProtoMessage['tensor_shape'];
  tensor?: TensorProtoMessage;
  placeholder?: string;
  func?: NameAttrListMessage;
  /** Which oneof member is set (protobufjs virtual field). */
  value?: string;
}

/** The oneof member an AttrValue sets ("list", "s", "i", ...), looking at protobufjs's virtual field first. */
export function attrKind(a: AttrValueMessage): string | undefined {
  if (a.value) return a.value;
  for (const k of ['list', 's', 'i', 'f', 'b', 'type', 'shape', 'tensor', 'placeholder', 'func'] as const) {
    if (Object.prototype.hasOwnProperty.call(a, k) && a[k] !== undefined && a[k] !== null) return k;
  }
  return undefined;
}

export interface NameAttrListMessage {
  name?: string;
  attr?: Record<string, AttrValueMessage>;
}

export interface NodeDefMessage {
  name: string;
  op: string;
  input?: string[];
  device?: string;
  attr?: Record<string, AttrValueMessage>;
}

export interface ArgDefMessage {
  name: string;
  type?: number;
  type_attr?: string;
  number_attr?: string;
  type_list_attr?: string;
  is_ref?: boolean;
}

export interface OpDefMessage {
  name: string;
  input_arg?: ArgDefMessage[];
  output_arg?: ArgDefMessage[];
  attr?: { name: string; type?: string; default_value?: AttrValueMessage }[];
  is_stateful?: boolean;
}

export interface FunctionDefMessage {
  signature: OpDefMessage;
  attr?: Record<string, AttrValueMessage>;
  node_def?: NodeDefMessage[];
  ret?: Record<string, string>;
  control_ret?: Record<string, string>;
}

export interface GraphDefMessage {
  node?: NodeDefMessage[];
  library?: { function?: FunctionDefMessage[] };
  versions?: { producer?: number; min_consumer?: number };
}

export interface TensorInfoMessage {
  name?: string;
  coo_sparse?: { values_tensor_name?: string; indices_tensor_name?: string; dense_shape_tensor_name?: string };
  composite_tensor?: { components?: TensorInfoMessage[] };
  dtype?: number;
  tensor_shape?: TensorProtoMessage['tensor_shape'];
}

export interface SignatureDefMessage {
  inputs?: Record<string, TensorInfoMessage>;
  outputs?: Record<string, TensorInfoMessage>;
  method_name?: string;
  defaults?: Record<string, TensorProtoMessage>;
}

export interface SavedObjectMessage {
  children?: { node_id?: number; local_name?: string }[];
  variable?: { dtype?: number; name?: string };
  function?: { concrete_functions?: string[] };
  bare_concrete_function?: { concrete_function_name?: string };
  kind?: string;
}

export interface MetaGraphDefMessage {
  meta_info_def?: {
    meta_graph_version?: string;
    stripped_op_list?: { op?: OpDefMessage[] };
    tags?: string[];
    tensorflow_version?: string;
    tensorflow_git_version?: string;
    stripped_default_attrs?: boolean;
  };
  graph_def?: GraphDefMessage;
  saver_def?: { filename_tensor_name?: string; restore_op_name?: string; version?: number };
  collection_def?: Record<string, unknown>;
  signature_def?: Record<string, SignatureDefMessage>;
  asset_file_def?: { tensor_info?: TensorInfoMessage; filename?: string }[];
  object_graph_def?: {
    nodes?: SavedObjectMessage[];
    concrete_functions?: Record<string, { bound_inputs?: number[] }>;
  };
}

// ---------------------------------------------------------------------------------------------
// Public listing types

/** One input or output of a signature. */
export interface SignatureTensor {
  /** The key in the signature (what clients send/receive, e.g. "x"). */
  alias: string;
  /** Graph tensor name ("x:0"); for sparse/composite tensors the first component's name. */
  name: string;
  /** TensorFlow dtype name as TF Serving prints it ("DT_FLOAT", "DT_FLOAT_REF"). */
  dataType: string;
  /** Host dtype (ref types map to their value type); undefined for resource/variant/invalid. */
  dtype: HostDType | undefined;
  /** Dimensions (-1 unknown), or null when the rank is unknown or no shape is recorded. */
  shape: number[] | null;
  encoding: 'dense' | 'coo_sparse' | 'composite';
}

export interface SignatureInfo {
  /** Signature key, e.g. "serving_default". */
  name: string;
  /** e.g. "tensorflow/serving/predict". */
  methodName: string;
  inputs: SignatureTensor[];
  outputs: SignatureTensor[];
}

export interface MetaGraphInfo {
  tags: string[];
  tensorflowVersion: string;
  tensorflowGitVersion: string;
  strippedDefaultAttrs: boolean;
  /** Signatures sorted by name. */
  signatures: SignatureInfo[];
  /** The decoded MetaGraphDef (protobufjs object, snake_case fields). */
  def: MetaGraphDefMessage;
}

export interface SavedModelInfo {
  /** Absolute export directory. */
  dir: string;
  schemaVersion: number;
  metaGraphs: MetaGraphInfo[];
  /** TF2 exports carry an object graph and function library; TF1 ones do not. */
  kind: 'tf1' | 'tf2';
  /** Whether the export has a variables/ TensorBundle. */
  hasVariables: boolean;
}

export const SERVE_TAG = 'serve';
export const DEFAULT_SIGNATURE = 'serving_default';

/** Dimensions of a TensorShapeProto (-1 for an unknown size), or null when its rank is unknown or it is absent. */
export function tensorShapeOf(shape: TensorProtoMessage['tensor_shape']): number[] | null {
  if (!shape || shape.unknown_rank) return null;
  return (shape.dim ?? []).map((d) => Number(d.size ?? 0));
}

function tensorOf(alias: string, info: TensorInfoMessage): SignatureTensor {
  const dataType = info.dtype ?? 0;
  let dtype: HostDType | undefined;
  try {
    dtype = dataType === 0 ? undefined : dtypeOfDataType(dataType);
  } catch {
    dtype = undefined;
  }
  const encoding = info.coo_sparse ? 'coo_sparse' : info.composite_tensor ? 'composite' : 'dense';
  const name = info.name ?? info.coo_sparse?.values_tensor_name ?? info.composite_tensor?.components?.[0]?.name ?? '';
  return { alias, name, dataType: dataTypeName(dataType), dtype, shape: tensorShapeOf(info.tensor_shape), encoding };
}

/** The signature listing of a decoded SignatureDef. */
export function signatureInfo(name: string, def: SignatureDefMessage): SignatureInfo {
  const sorted = (m: Record<string, TensorInfoMessage> | undefined) =>
    Object.keys(m ?? {})
      .sort()
      .map((k) => tensorOf(k, m![k]!));
  return { name, methodName: def.method_name ?? '', inputs: sorted(def.inputs), outputs: sorted(def.outputs) };
}

function metaGraphInfo(def: MetaGraphDefMessage): MetaGraphInfo {
  const info = def.meta_info_def ?? {};
  const sigs = def.signature_def ?? {};
  return {
    tags: [...(info.tags ?? [])],
    tensorflowVersion: info.tensorflow_version ?? '',
    tensorflowGitVersion: info.tensorflow_git_version ?? '',
    strippedDefaultAttrs: info.stripped_default_attrs ?? false,
    signatures: Object.keys(sigs)
      .sort()
      .map((k) => signatureInfo(k, sigs[k]!)),
    def,
  };
}

/** Explains what a directory is when it is not an export directory. */
function notASavedModel(dir: string): LensError {
  if (!existsSync(dir)) return new LensError('SAVEDMODEL_NOT_FOUND', `SavedModel directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) return new LensError('SAVEDMODEL_NOT_FOUND', `${dir} is a file, not a SavedModel directory`);
  const names = readdirSync(dir);
  if (names.includes('saved_model.pbtxt')) {
    return new LensError('SAVEDMODEL_UNSUPPORTED', `${dir} holds saved_model.pbtxt (text format); only the binary saved_model.pb is supported`);
  }
  if (names.includes('export.meta') || (names.includes('checkpoint') && names.some((n) => n.startsWith('export')))) {
    return new LensError(
      'SAVEDMODEL_UNSUPPORTED',
      `${dir} is an old session-bundle export (export.meta + V1 checkpoint), not a SavedModel: it has no saved_model.pb and no signatures; re-export it with tf.saved_model`,
    );
  }
  const versions = names.filter((n) => /^\d+$/.test(n) && existsSync(join(dir, n, 'saved_model.pb')));
  if (versions.length > 0) {
    return new LensError(
      'SAVEDMODEL_NOT_FOUND',
      `${dir} has no saved_model.pb but holds version folders (${versions.join(', ')}): pass one of them, e.g. ${join(dir, versions.sort((a, b) => Number(b) - Number(a))[0]!)}`,
    );
  }
  return new LensError('SAVEDMODEL_NOT_FOUND', `${dir} has no saved_model.pb: not a SavedModel export directory`);
}

/**
 * Reads and decodes `<dir>/saved_model.pb` and lists its MetaGraphs and signatures.
 * Throws SAVEDMODEL_NOT_FOUND / SAVEDMODEL_UNSUPPORTED (e.g. an old V1 export) / PROTO_DECODE
 * (e.g. a truncated file), each naming the directory or file.
 *
 * @example
 * const sm = await readSavedModel('models/half_plus_two/1');
 * sm.metaGraphs[0].signatures[0].inputs; // [{ alias: 'x', name: 'x:0', dataType: 'DT_FLOAT', shape: [-1, 1], ... }]
 */
export async function readSavedModel(dir: string): Promise<SavedModelInfo> {
  const abs = resolve(dir);
  const pb = join(abs, 'saved_model.pb');
  if (!existsSync(pb)) throw notASavedModel(abs);
  const bytes = await readFile(pb);
  if (bytes.length === 0) throw new LensError('SAVEDMODEL_CORRUPT', `${pb} is empty`);
  let message: { saved_model_schema_version?: number; meta_graphs?: MetaGraphDefMessage[] };
  try {
    message = decodeMessage('tensorflow.SavedModel', bytes, pb);
  } catch (e) {
    throw new LensError('SAVEDMODEL_CORRUPT', `${(e as Error).message} (truncated or not a SavedModel?)`, { cause: e });
  }
  const metaGraphs = (message.meta_graphs ?? []).map(metaGraphInfo);
  if (metaGraphs.length === 0) throw new LensError('SAVEDMODEL_CORRUPT', `${pb} holds no MetaGraph`);
  const tf2 = metaGraphs.some((m) => (m.def.object_graph_def?.nodes?.length ?? 0) > 0);
  return {
    dir: abs,
    schemaVersion: message.saved_model_schema_version ?? 0,
    metaGraphs,
    kind: tf2 ? 'tf2' : 'tf1',
    hasVariables: existsSync(join(abs, 'variables', 'variables.index')),
  };
}

/**
 * The MetaGraph whose tag set equals `tags` (order-insensitive; TensorFlow requires the exact set).
 *
 * @example
 * selectMetaGraph(sm, ['serve', 'gpu']);
 */
export function selectMetaGraph(model: SavedModelInfo, tags: readonly string[] = [SERVE_TAG]): MetaGraphInfo {
  const want = [...new Set(tags)].sort().join(',');
  const found = model.metaGraphs.find((m) => [...new Set(m.tags)].sort().join(',') === want);
  if (!found) {
    const have = model.metaGraphs.map((m) => `{${m.tags.join(', ')}}`).join(', ');
    throw new LensError('UNKNOWN_TAGS', `SavedModel ${model.dir} has no MetaGraph tagged {${tags.join(', ')}}; it has ${have}`);
  }
  return found;
}

/**
 * A signature by name; throws UNKNOWN_SIGNATURE listing the available ones.
 *
 * @example
 * findSignature(mg, 'serving_default').outputs[0].name; // 'y:0'
 */
export function findSignature(metaGraph: MetaGraphInfo, name: string = DEFAULT_SIGNATURE): SignatureInfo {
  const sig = metaGraph.signatures.find((s) => s.name === name);
  if (!sig) {
    throw new LensError(
      'UNKNOWN_SIGNATURE',
      `signature "${name}" not found; the MetaGraph {${metaGraph.tags.join(', ')}} has: ${metaGraph.signatures.map((s) => s.name).join(', ') || 'none'}`,
    );
  }
  return sig;
}

/**
 * How often each op occurs in the top-level graph and in the function library (as
 * `saved_model_cli`-style inspection shows), sorted by op name.
 *
 * @example
 * opHistogram(mg); // { graph: { Const: 3, ... }, library: { Mul: 2, ... } }
 */
export function opHistogram(metaGraph: MetaGraphInfo): { graph: Record<string, number>; library: Record<string, number> } {
  const count = (nodes: readonly NodeDefMessage[], into: Map<string, number>) => {
    for (const n of nodes) into.set(n.op, (into.get(n.op) ?? 0) + 1);
  };
  const graph = new Map<string, number>();
  const library = new Map<string, number>();
  count(metaGraph.def.graph_def?.node ?? [], graph);
  for (const f of metaGraph.def.graph_def?.library?.function ?? []) count(f.node_def ?? [], library);
  const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
  return { graph: sorted(graph), library: sorted(library) };
}
