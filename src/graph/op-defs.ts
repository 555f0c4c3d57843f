/**
 * TensorFlow op definitions for every op the SavedModel exporter emits: input and output args,
 * attrs with their types, defaults, allowed values and minimums, and the stateful / ref flags.
 *
 * The facts come from TensorFlow's op registrations as recorded in
 * `tensorflow/core/ops/compat/ops_history_v2/<Op>.pbtxt` (the newest entry of each file): the
 * same OpDefs a TensorFlow binary checks a GraphDef against when it imports it. The exporter
 * builds nodes through this table (so it cannot emit an unknown op or attr), writes the used
 * entries as the MetaGraph's `stripped_op_list`, and leaves out attrs equal to their defaults
 * (`stripped_default_attrs`), which lets older TensorFlow Serving binaries that predate a newer
 * attr load the graph. `checkGraphDef` re-checks a decoded file against the same table.
 *
 * Arg notation: `name: T` (type from attr T), `name: int32` (fixed type), `name: N*T` (N
 * tensors of type T), `name: N*string`, `name: dtypes` (a list(type) attr), `name: ref T`.
 *
 * @example
 * const conv = opDef('Conv2D');
 * conv.attrs.find((a) => a.name === 'dilations')?.default; // [1, 1, 1, 1]
 */
import { LensError } from '../core/errors.js';

/** TensorFlow attr types used by these ops. */
export type AttrType = 'type' | 'list(type)' | 'int' | 'list(int)' | 'float' | 'bool' | 'string' | 'shape' | 'tensor';

/** A default or allowed value, in plain JS form: type attrs hold DataType names ("DT_FLOAT"). */
export type AttrFactValue = string | number | boolean | readonly number[] | readonly string[] | { unknownRank: true } | { dims: readonly number[] };

export interface OpArgFact {
  name: string;
  /** Fixed DataType name, e.g. "DT_INT32". */
  type?: string;
  typeAttr?: string;
  numberAttr?: string;
  typeListAttr?: string;
  isRef?: boolean;
}

export interface OpAttrFact {
  name: string;
  type: AttrType;
  default?: AttrFactValue;
  /** Allowed DataType names (type attrs) or strings (string attrs). */
  allowed?: readonly string[];
  minimum?: number;
}

export interface OpDefFact {
  name: string;
  inputs: OpArgFact[];
  outputs: OpArgFact[];
  attrs: OpAttrFact[];
  isStateful?: boolean;
  isCommutative?: boolean;
  isAggregate?: boolean;
  allowsUninitializedInput?: boolean;
}

const FIXED_TYPES = new Set(['float', 'double', 'int32', 'uint8', 'int16', 'int8', 'string', 'int64', 'bool', 'resource', 'half', 'bfloat16']);

/** "half float int32" -> ["DT_HALF", "DT_FLOAT", "DT_INT32"]. */
function types(list: string): string[] {
  return list.split(/\s+/).filter(Boolean).map((t) => `DT_${t.toUpperCase()}`);
}

type AttrSpec = Omit<OpAttrFact, 'name'>;
const attr = (type: AttrType, extra: Omit<AttrSpec, 'type'> = {}): AttrSpec => ({ type, ...extra });
const typeAttr = (allowed?: string, defaultType?: string): AttrSpec => ({
  type: 'type',
  ...(allowed ? { allowed: types(allowed) } : {}),
  ...(defaultType ? { default: `DT_${defaultType.toUpperCase()}` } : {}),
});
const indexType = (defaultType = 'int32'): AttrSpec => typeAttr('int32 int64', defaultType);
const dataFormat = (extra = ''): AttrSpec => attr('string', { default: 'NHWC', allowed: ['NHWC', 'NCHW', ...extra.split(' ').filter(Boolean)] });

function parseArg(spec: string, attrs: Record<string, AttrSpec>, op: string): OpArgFact {
  const m = /^(\w+):\s*(ref\s+)?(?:(\w+)\s*\*\s*)?(\w+)$/.exec(spec.trim());
  if (!m) throw new LensError('INTERNAL', `op table: bad arg "${spec}" of ${op}`);
  const [, name, ref, count, kind] = m as unknown as [string, string, string | undefined, string | undefined, string];
  const arg: OpArgFact = { name };
  if (FIXED_TYPES.has(kind)) arg.type = `DT_${kind.toUpperCase()}`;
  else if (attrs[kind]?.type === 'list(type)') arg.typeListAttr = kind;
  else if (attrs[kind]?.type === 'type') arg.typeAttr = kind;
  else throw new LensError('INTERNAL', `op table: arg "${spec}" of ${op} names no type attr`);
  if (count) arg.numberAttr = count;
  if (ref) arg.isRef = true;
  return arg;
}

type Flags = Pick<OpDefFact, 'isStateful' | 'isCommutative' | 'isAggregate' | 'allowsUninitializedInput'>;

function op(name: string, inputs: string[], outputs: string[], attrs: Record<string, AttrSpec> = {}, flags: Flags = {}): OpDefFact {
  return {
    name,
    inputs: inputs.map((s) => parseArg(s, attrs, name)),
    outputs: outputs.map((s) => parseArg(s, attrs, name)),
    attrs: Object.entries(attrs).map(([attrName, spec]) => ({ name: attrName, ...spec })),
    ...flags,
  };
}

const REAL = 'half bfloat16 float double';
const NUMERIC_BINARY = 'bfloat16 half float double uint8 int8 uint16 int16 int32 int64 complex64 complex128 uint32 uint64';
const ACTIVATION_INT = 'float double int32 uint8 int16 int8 int64 bfloat16 uint16 half uint32 uint64';
const REDUCE = 'float double int32 uint8 int16 int8 complex64 int64 qint8 quint8 qint32 bfloat16 qint16 quint16 uint16 complex128 half uint32 uint64';
const RESIZE = 'int8 uint8 int16 uint16 int32 int64 half float double bfloat16';
const unary = (name: string, allowed: string, io: [string, string] = ['x', 'y']) =>
  op(name, [`${io[0]}: T`], [`${io[1]}: T`], { T: typeAttr(allowed) });
const binary = (name: string, allowed: string, flags: Flags = {}) => op(name, ['x: T', 'y: T'], ['z: T'], { T: typeAttr(allowed) }, flags);
const reduction = (name: string, allowed: string) =>
  op(name, ['input: T', 'reduction_indices: Tidx'], ['output: T'], {
    keep_dims: attr('bool', { default: false }),
    T: typeAttr(allowed),
    Tidx: indexType(),
  });
const pool = (name: string, input: string, allowed: string, defaultT?: string, extra: Record<string, AttrSpec> = {}) =>
  op(name, [`${input}: T`], ['output: T'], {
    T: typeAttr(allowed, defaultT),
    ksize: attr('list(int)', { minimum: 4 }),
    strides: attr('list(int)', { minimum: 4 }),
    ...extra,
  });

const DEFS: OpDefFact[] = [
  // ---- graph plumbing
  op('Const', [], ['output: dtype'], { value: attr('tensor'), dtype: typeAttr() }),
  op('Placeholder', [], ['output: dtype'], { dtype: typeAttr(), shape: attr('shape', { default: { unknownRank: true } }) }),
  op('PlaceholderWithDefault', ['input: dtype'], ['output: dtype'], { dtype: typeAttr(), shape: attr('shape') }),
  op('Identity', ['input: T'], ['output: T'], { T: typeAttr() }),
  op('NoOp', [], []),
  op('Fill', ['dims: index_type', 'value: T'], ['output: T'], { T: typeAttr(), index_type: indexType() }),
  op('Shape', ['input: T'], ['output: out_type'], { T: typeAttr(), out_type: indexType() }),
  op('Cast', ['x: SrcT'], ['y: DstT'], { SrcT: typeAttr(), DstT: typeAttr(), Truncate: attr('bool', { default: false }) }),
  op('Range', ['start: Tidx', 'limit: Tidx', 'delta: Tidx'], ['output: Tidx'], { Tidx: typeAttr('bfloat16 half float double int32 int64', 'int32') }),
  op('Pack', ['values: N*T'], ['output: T'], { N: attr('int', { minimum: 1 }), T: typeAttr(), axis: attr('int', { default: 0 }) }),
  op(
    'StridedSlice',
    ['input: T', 'begin: Index', 'end: Index', 'strides: Index'],
    ['output: T'],
    {
      T: typeAttr(),
      Index: typeAttr('int32 int64'),
      begin_mask: attr('int', { default: 0 }),
      end_mask: attr('int', { default: 0 }),
      ellipsis_mask: attr('int', { default: 0 }),
      new_axis_mask: attr('int', { default: 0 }),
      shrink_axis_mask: attr('int', { default: 0 }),
    },
  ),

  // ---- TF1 variables and checkpoints
  op(
    'VariableV2',
    [],
    ['ref: ref dtype'],
    { shape: attr('shape'), dtype: typeAttr(), container: attr('string', { default: '' }), shared_name: attr('string', { default: '' }) },
    { isStateful: true },
  ),
  op(
    'Assign',
    ['ref: ref T', 'value: T'],
    ['output_ref: ref T'],
    { T: typeAttr(), validate_shape: attr('bool', { default: true }), use_locking: attr('bool', { default: true }) },
    { allowsUninitializedInput: true },
  ),
  op('SaveV2', ['prefix: string', 'tensor_names: string', 'shape_and_slices: string', 'tensors: dtypes'], [], { dtypes: attr('list(type)', { minimum: 1 }) }, { isStateful: true }),
  op('RestoreV2', ['prefix: string', 'tensor_names: string', 'shape_and_slices: string'], ['tensors: dtypes'], { dtypes: attr('list(type)', { minimum: 1 }) }, { isStateful: true }),
  op('MergeV2Checkpoints', ['checkpoint_prefixes: string', 'destination_prefix: string'], [], {
    delete_old_dirs: attr('bool', { default: true }),
    allow_missing_files: attr('bool', { default: false }),
  }, { isStateful: true }),
  op('ShardedFilename', ['basename: string', 'shard: int32', 'num_shards: int32'], ['filename: string']),
  op('StringJoin', ['inputs: N*string'], ['output: string'], { N: attr('int', { minimum: 0 }), separator: attr('string', { default: '' }) }),

  // ---- TF1 control flow and TensorArrays (tf.map_fn over the JPEG batch)
  op('Enter', ['data: T'], ['output: T'], {
    T: typeAttr(),
    frame_name: attr('string'),
    is_constant: attr('bool', { default: false }),
    parallel_iterations: attr('int', { default: 10 }),
  }),
  op('Exit', ['data: T'], ['output: T'], { T: typeAttr() }),
  op('Merge', ['inputs: N*T'], ['output: T', 'value_index: int32'], { T: typeAttr(), N: attr('int', { minimum: 1 }) }),
  op('Switch', ['data: T', 'pred: bool'], ['output_false: T', 'output_true: T'], { T: typeAttr() }),
  op('NextIteration', ['data: T'], ['output: T'], { T: typeAttr() }),
  op('LoopCond', ['input: bool'], ['output: bool']),
  op('Less', ['x: T', 'y: T'], ['z: bool'], { T: typeAttr(ACTIVATION_INT) }),
  op(
    'TensorArrayV3',
    ['size: int32'],
    ['handle: resource', 'flow: float'],
    {
      dtype: typeAttr(),
      element_shape: attr('shape', { default: { unknownRank: true } }),
      dynamic_size: attr('bool', { default: false }),
      clear_after_read: attr('bool', { default: true }),
      identical_element_shapes: attr('bool', { default: false }),
      tensor_array_name: attr('string', { default: '' }),
    },
    { isStateful: true },
  ),
  op('TensorArrayScatterV3', ['handle: resource', 'indices: int32', 'value: T', 'flow_in: float'], ['flow_out: float'], { T: typeAttr() }, { isStateful: true }),
  op('TensorArrayReadV3', ['handle: resource', 'index: int32', 'flow_in: float'], ['value: dtype'], { dtype: typeAttr() }, { isStateful: true }),
  op('TensorArrayWriteV3', ['handle: resource', 'index: int32', 'value: T', 'flow_in: float'], ['flow_out: float'], { T: typeAttr() }, { isStateful: true }),
  op('TensorArraySizeV3', ['handle: resource', 'flow_in: float'], ['size: int32'], {}, { isStateful: true }),
  op(
    'TensorArrayGatherV3',
    ['handle: resource', 'indices: int32', 'flow_in: float'],
    ['value: dtype'],
    { dtype: typeAttr(), element_shape: attr('shape', { default: { unknownRank: true } }) },
    { isStateful: true },
  ),

  // ---- images
  op('DecodeJpeg', ['contents: string'], ['image: uint8'], {
    channels: attr('int', { default: 0 }),
    ratio: attr('int', { default: 1 }),
    fancy_upscaling: attr('bool', { default: true }),
    try_recover_truncated: attr('bool', { default: false }),
    acceptable_fraction: attr('float', { default: 1 }),
    dct_method: attr('string', { default: '' }),
  }),
  op('ResizeBilinear', ['images: T', 'size: int32'], ['resized_images: float'], {
    T: typeAttr(RESIZE),
    align_corners: attr('bool', { default: false }),
    half_pixel_centers: attr('bool', { default: false }),
  }),
  op('ResizeNearestNeighbor', ['images: T', 'size: int32'], ['resized_images: T'], {
    T: typeAttr(RESIZE),
    align_corners: attr('bool', { default: false }),
    half_pixel_centers: attr('bool', { default: false }),
  }),
  op('ExpandDims', ['input: T', 'dim: Tdim'], ['output: T'], { T: typeAttr(), Tdim: indexType() }),
  op('Squeeze', ['input: T'], ['output: T'], { T: typeAttr(), squeeze_dims: attr('list(int)', { default: [], minimum: 0 }) }),
  op('ReverseV2', ['tensor: T', 'axis: Tidx'], ['output: T'], {
    Tidx: indexType(),
    T: typeAttr('uint8 int8 uint16 int16 int32 uint32 int64 uint64 bool bfloat16 half float double complex64 complex128 string'),
  }),

  // ---- neural network layers
  op('Conv2D', ['input: T', 'filter: T'], ['output: T'], {
    T: typeAttr('half bfloat16 float double int32'),
    strides: attr('list(int)'),
    use_cudnn_on_gpu: attr('bool', { default: true }),
    padding: attr('string', { allowed: ['SAME', 'VALID', 'EXPLICIT'] }),
    explicit_paddings: attr('list(int)', { default: [] }),
    data_format: dataFormat(),
    dilations: attr('list(int)', { default: [1, 1, 1, 1] }),
  }),
  op('DepthwiseConv2dNative', ['input: T', 'filter: T'], ['output: T'], {
    T: typeAttr(REAL),
    strides: attr('list(int)'),
    padding: attr('string', { allowed: ['SAME', 'VALID', 'EXPLICIT'] }),
    explicit_paddings: attr('list(int)', { default: [] }),
    data_format: dataFormat(),
    dilations: attr('list(int)', { default: [1, 1, 1, 1] }),
  }),
  op('BiasAdd', ['value: T', 'bias: T'], ['output: T'], {
    T: typeAttr('float double int32 uint8 int16 int8 complex64 int64 qint8 quint8 qint32 bfloat16 qint16 quint16 uint16 complex128 half uint32 uint64'),
    data_format: dataFormat(),
  }),
  op('MatMul', ['a: T', 'b: T'], ['product: T'], {
    transpose_a: attr('bool', { default: false }),
    transpose_b: attr('bool', { default: false }),
    T: typeAttr('bfloat16 half float double int32 int64 uint8 uint16 uint32 uint64 complex64 complex128'),
  }),
  op(
    'FusedBatchNormV3',
    ['x: T', 'scale: U', 'offset: U', 'mean: U', 'variance: U'],
    ['y: T', 'batch_mean: U', 'batch_variance: U', 'reserve_space_1: U', 'reserve_space_2: U', 'reserve_space_3: U'],
    {
      T: typeAttr('half bfloat16 float'),
      U: typeAttr('bfloat16 float'),
      epsilon: attr('float', { default: 0.0001 }),
      exponential_avg_factor: attr('float', { default: 1 }),
      data_format: dataFormat('NDHWC NCDHW'),
      is_training: attr('bool', { default: true }),
    },
  ),
  pool('MaxPool', 'input', 'half bfloat16 float double int32 int64 uint8 int16 int8 uint16 qint8', 'float', {
    padding: attr('string', { allowed: ['SAME', 'VALID', 'EXPLICIT'] }),
    explicit_paddings: attr('list(int)', { default: [] }),
    data_format: dataFormat('NCHW_VECT_C'),
  }),
  pool('AvgPool', 'value', REAL, undefined, {
    padding: attr('string', { allowed: ['SAME', 'VALID'] }),
    data_format: dataFormat(),
  }),
  reduction('Mean', REDUCE),
  reduction('Sum', REDUCE),
  reduction('Max', 'float double int32 uint8 int16 int8 int64 qint8 quint8 qint32 bfloat16 uint16 half uint32 uint64'),
  op('Pad', ['input: T', 'paddings: Tpaddings'], ['output: T'], { T: typeAttr(), Tpaddings: indexType() }),
  op('PadV2', ['input: T', 'paddings: Tpaddings', 'constant_values: T'], ['output: T'], { T: typeAttr(), Tpaddings: indexType() }),
  op('Reshape', ['tensor: T', 'shape: Tshape'], ['output: T'], { T: typeAttr(), Tshape: indexType() }),
  op('ConcatV2', ['values: N*T', 'axis: Tidx'], ['output: T'], { N: attr('int', { minimum: 2 }), T: typeAttr(), Tidx: indexType() }),
  op('Transpose', ['x: T', 'perm: Tperm'], ['y: T'], { T: typeAttr(), Tperm: indexType() }),
  op('GatherV2', ['params: Tparams', 'indices: Tindices', 'axis: Taxis'], ['output: Tparams'], {
    batch_dims: attr('int', { default: 0 }),
    Tparams: typeAttr(),
    Tindices: typeAttr('int16 int32 int64'),
    Taxis: typeAttr('int32 int64'),
  }),
  op('TopKV2', ['input: T', 'k: Tk'], ['values: T', 'indices: index_type'], {
    sorted: attr('bool', { default: true }),
    T: typeAttr('float double int32 uint8 int16 int8 int64 bfloat16 uint16 half uint32 uint64'),
    Tk: typeAttr('int16 int32 int64', 'int32'),
    index_type: typeAttr('int16 int32 int64', 'int32'),
  }),

  // ---- activations and elementwise math
  unary('Relu', `${ACTIVATION_INT} qint8`, ['features', 'activations']),
  unary('Relu6', ACTIVATION_INT, ['features', 'activations']),
  unary('Elu', REAL, ['features', 'activations']),
  unary('Selu', REAL, ['features', 'activations']),
  unary('Softplus', REAL, ['features', 'activations']),
  unary('Softsign', REAL, ['features', 'activations']),
  op('LeakyRelu', ['features: T'], ['activations: T'], { alpha: attr('float', { default: 0.2 }), T: typeAttr(REAL, 'float') }),
  unary('Sigmoid', `${REAL} complex64 complex128`),
  unary('Tanh', `${REAL} complex64 complex128`),
  unary('Rsqrt', `${REAL} complex64 complex128`),
  unary('Neg', `${REAL} int32 int64 complex64 complex128`),
  unary('Softmax', REAL, ['logits', 'softmax']),
  binary('AddV2', NUMERIC_BINARY, { isAggregate: true, isCommutative: true }),
  binary('Add', 'bfloat16 half float double uint8 int8 int16 int32 int64 complex64 complex128 string'),
  binary('Sub', NUMERIC_BINARY),
  binary('Mul', NUMERIC_BINARY, { isCommutative: true }),
  binary('RealDiv', NUMERIC_BINARY),
  binary('Maximum', 'bfloat16 half float double int8 uint8 int16 uint16 int32 uint32 int64 uint64'),
  binary('Minimum', 'bfloat16 half float double int16 int32 int64'),
];

const BY_NAME = new Map(DEFS.map((d) => [d.name, d]));

/** Every op definition the exporter knows, by name. */
export function opDefs(): ReadonlyMap<string, OpDefFact> {
  return BY_NAME;
}

/**
 * The definition of `name`; throws INTERNAL for ops outside the table (the exporter only emits
 * ops it has checked facts for).
 *
 * @example
 * opDef('TopKV2').outputs.map((a) => a.name); // ['values', 'indices']
 */
export function opDef(name: string): OpDefFact {
  const d = BY_NAME.get(name);
  if (!d) throw new LensError('INTERNAL', `op ${name} is not in the exporter's op-definition table (src/export/op-defs.ts)`);
  return d;
}
