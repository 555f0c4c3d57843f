/**
 * Reads a TFLite flatbuffer into plain objects with the `flatbuffers` runtime's ByteBuffer,
 * through hand-written accessors over the schema facts in schema.ts. Every index is checked, so
 * a damaged file gives a MODEL_CORRUPT error instead of a crash.
 */
import { ByteBuffer } from 'flatbuffers';
import { LensError, errorMessage } from '../../core/errors.js';
import { ACTIVATIONS, FIELDS, FILE_IDENTIFIER, PADDING, TENSOR_TYPES, operatorName } from './schema.js';

/** Quantization of a tensor: real = scale * (q - zeroPoint), per tensor or per channel. */
export interface TfliteQuantization {
  scale: number[];
  zeroPoint: number[];
  /** Axis of per-channel parameters. */
  dimension: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  /** With -1 for dimensions unknown at conversion time, when the file records it. */
  shapeSignature?: number[];
  type: string;
  /** Constant contents (little-endian, as stored), for tensors backed by a non-empty buffer. */
  data?: Uint8Array;
  quantization?: TfliteQuantization;
}

/** Parsed options of one operator; only the fields of its option table are set. */
export interface TfliteOptions {
  padding?: 'same' | 'valid';
  strideW?: number;
  strideH?: number;
  dilationW?: number;
  dilationH?: number;
  filterW?: number;
  filterH?: number;
  depthMultiplier?: number;
  /** Fused activation: NONE, RELU, RELU_N1_TO_1, RELU6, TANH, SIGN_BIT. */
  activation?: string;
  keepNumDims?: boolean;
  beta?: number;
  axis?: number;
  newShape?: number[];
  keepDims?: boolean;
  squeezeDims?: number[];
  alpha?: number;
  alignCorners?: boolean;
  halfPixelCenters?: boolean;
}

export interface TfliteOperator {
  index: number;
  /** Builtin operator name ("CONV_2D") or "CUSTOM:<code>". */
  op: string;
  /** Tensor indices; -1 marks an omitted optional input. */
  inputs: number[];
  outputs: number[];
  options: TfliteOptions;
}

export interface TfliteModel {
  source: string;
  version: number;
  description: string;
  subgraphName: string;
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
  /** Names of metadata entries (e.g. "min_runtime_version", "TFLITE_METADATA"). */
  metadata: string[];
  /** Number of subgraphs in the file; only the first (the main graph) is read. */
  subgraphCount: number;
}

/** Table accessor over a ByteBuffer: fields by vtable slot. */
class Table {
  constructor(
    readonly bb: ByteBuffer,
    readonly pos: number,
  ) {
    if (pos < 0 || pos + 4 > bb.capacity()) throw new RangeError(`table at ${pos} lies outside the ${bb.capacity()}-byte file`);
    const vtable = pos - bb.readInt32(pos);
    if (vtable < 0 || vtable + 4 > bb.capacity()) throw new RangeError(`vtable of the table at ${pos} lies outside the file`);
  }

  private off(slot: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * slot);
  }

  has(slot: number): boolean {
    return this.off(slot) !== 0;
  }

  int8(slot: number, dflt = 0): number {
    const o = this.off(slot);
    return o ? this.bb.readInt8(this.pos + o) : dflt;
  }

  uint8(slot: number, dflt = 0): number {
    const o = this.off(slot);
    return o ? this.bb.readUint8(this.pos + o) : dflt;
  }

  int32(slot: number, dflt = 0): number {
    const o = this.off(slot);
    return o ? this.bb.readInt32(this.pos + o) : dflt;
  }

  uint32(slot: number, dflt = 0): number {
    const o = this.off(slot);
    return o ? this.bb.readUint32(this.pos + o) : dflt;
  }

  uint64(slot: number, dflt = 0): number {
    const o = this.off(slot);
    return o ? Number(this.bb.readUint64(this.pos + o)) : dflt;
  }

  float32(slot: number, dflt = 0): number {
    const o = this.off(slot);
    return o ? this.bb.readFloat32(this.pos + o) : dflt;
  }

  bool(slot: number, dflt = false): boolean {
    const o = this.off(slot);
    return o ? this.bb.readInt8(this.pos + o) !== 0 : dflt;
  }

  string(slot: number): string {
    const o = this.off(slot);
    return o ? (this.bb.__string(this.pos + o) as string) : '';
  }

  table(slot: number): Table | undefined {
    const o = this.off(slot);
    return o ? new Table(this.bb, this.bb.__indirect(this.pos + o)) : undefined;
  }

  /** [start, length] of a vector field, or undefined when absent. */
  private vector(slot: number): [number, number] | undefined {
    const o = this.off(slot);
    if (!o) return undefined;
    const start = this.bb.__vector(this.pos + o);
    const len = this.bb.__vector_len(this.pos + o);
    return [start, len];
  }

  tables(slot: number): Table[] {
    const v = this.vector(slot);
    if (!v) return [];
    const [start, len] = v;
    checkSpan(this.bb, start, len * 4);
    return Array.from({ length: len }, (_, i) => new Table(this.bb, this.bb.__indirect(start + 4 * i)));
  }

  int32s(slot: number): number[] {
    const v = this.vector(slot);
    if (!v) return [];
    checkSpan(this.bb, v[0], v[1] * 4);
    return Array.from({ length: v[1] }, (_, i) => this.bb.readInt32(v[0] + 4 * i));
  }

  float32s(slot: number): number[] {
    const v = this.vector(slot);
    if (!v) return [];
    checkSpan(this.bb, v[0], v[1] * 4);
    return Array.from({ length: v[1] }, (_, i) => this.bb.readFloat32(v[0] + 4 * i));
  }

  int64s(slot: number): number[] {
    const v = this.vector(slot);
    if (!v) return [];
    checkSpan(this.bb, v[0], v[1] * 8);
    return Array.from({ length: v[1] }, (_, i) => Number(this.bb.readInt64(v[0] + 8 * i)));
  }

  bytes(slot: number): Uint8Array | undefined {
    const v = this.vector(slot);
    if (!v) return undefined;
    checkSpan(this.bb, v[0], v[1]);
    return this.bb.bytes().subarray(v[0], v[0] + v[1]);
  }
}

function checkSpan(bb: ByteBuffer, start: number, length: number): void {
  if (start < 0 || length < 0 || start + length > bb.capacity()) {
    throw new RangeError(`vector at ${start} of ${length} bytes runs past the end (${bb.capacity()} bytes)`);
  }
}

function parseOptions(op: string, t: Table | undefined): TfliteOptions {
  if (!t) return {};
  const act = (slot: number) => ACTIVATIONS[t.int8(slot)] ?? `ACTIVATION_${t.int8(slot)}`;
  const pad = (slot: number) => PADDING[t.int8(slot)] ?? 'same';
  switch (op) {
    case 'CONV_2D': {
      const f = FIELDS.Conv2DOptions;
      return { padding: pad(f.padding), strideW: t.int32(f.strideW, 1), strideH: t.int32(f.strideH, 1), activation: act(f.fusedActivation), dilationW: t.int32(f.dilationW, 1), dilationH: t.int32(f.dilationH, 1) };
    }
    case 'DEPTHWISE_CONV_2D': {
      const f = FIELDS.DepthwiseConv2DOptions;
      return {
        padding: pad(f.padding), strideW: t.int32(f.strideW, 1), strideH: t.int32(f.strideH, 1), depthMultiplier: t.int32(f.depthMultiplier, 1),
        activation: act(f.fusedActivation), dilationW: t.int32(f.dilationW, 1), dilationH: t.int32(f.dilationH, 1),
      };
    }
    case 'AVERAGE_POOL_2D':
    case 'MAX_POOL_2D':
    case 'L2_POOL_2D': {
      const f = FIELDS.Pool2DOptions;
      return { padding: pad(f.padding), strideW: t.int32(f.strideW, 1), strideH: t.int32(f.strideH, 1), filterW: t.int32(f.filterW), filterH: t.int32(f.filterH), activation: act(f.fusedActivation) };
    }
    case 'FULLY_CONNECTED': {
      const f = FIELDS.FullyConnectedOptions;
      return { activation: act(f.fusedActivation), keepNumDims: t.bool(f.keepNumDims) };
    }
    case 'SOFTMAX':
      return { beta: t.float32(FIELDS.SoftmaxOptions.beta, 0) };
    case 'CONCATENATION':
      return { axis: t.int32(FIELDS.ConcatenationOptions.axis), activation: act(FIELDS.ConcatenationOptions.fusedActivation) };
    case 'ADD':
    case 'SUB':
    case 'MUL':
    case 'DIV':
      return { activation: act(FIELDS.ArithmeticOptions.fusedActivation) };
    case 'RESHAPE':
      return t.has(FIELDS.ReshapeOptions.newShape) ? { newShape: t.int32s(FIELDS.ReshapeOptions.newShape) } : {};
    case 'MEAN':
    case 'SUM':
    case 'REDUCE_MAX':
    case 'REDUCE_MIN':
    case 'REDUCE_PROD':
      return { keepDims: t.bool(FIELDS.ReducerOptions.keepDims) };
    case 'SQUEEZE':
      return { squeezeDims: t.int32s(FIELDS.SqueezeOptions.squeezeDims) };
    case 'LEAKY_RELU':
      return { alpha: t.float32(FIELDS.LeakyReluOptions.alpha) };
    case 'RESIZE_BILINEAR':
      return { alignCorners: t.bool(FIELDS.ResizeBilinearOptions.alignCorners), halfPixelCenters: t.bool(FIELDS.ResizeBilinearOptions.halfPixelCenters) };
    case 'RESIZE_NEAREST_NEIGHBOR':
      return { alignCorners: t.bool(FIELDS.ResizeNearestNeighborOptions.alignCorners), halfPixelCenters: t.bool(FIELDS.ResizeNearestNeighborOptions.halfPixelCenters) };
    default:
      return {};
  }
}

/**
 * Parses a TFLite model (the main subgraph) from its bytes.
 *
 * @example
 * const model = parseTflite(readFileSync('mobilenet_v2_1.0_224_quant.tflite'), 'mobilenet_v2_1.0_224_quant.tflite');
 * model.operators.filter((o) => o.op === 'CONV_2D').length; // 36
 */
export function parseTflite(bytes: Uint8Array, source: string): TfliteModel {
  if (bytes.length < 8) throw new LensError('MODEL_CORRUPT', `${source} is ${bytes.length} bytes, too short for a TFLite flatbuffer`);
  const ident = Buffer.from(bytes.subarray(4, 8)).toString('latin1');
  if (ident !== FILE_IDENTIFIER) {
    throw new LensError('MODEL_CORRUPT', `${source} is not a TFLite model: expected file identifier "${FILE_IDENTIFIER}" at byte 4, found ${JSON.stringify(ident)}`);
  }
  try {
    const bb = new ByteBuffer(bytes);
    const rootPos = bb.readUint32(0);
    if (rootPos + 4 > bytes.length) throw new RangeError(`root table offset ${rootPos} is past the end`);
    const model = new Table(bb, rootPos);
    const F = FIELDS;
    const codes = model.tables(F.Model.operatorCodes).map((c) => {
      const code = Math.max(c.int8(F.OperatorCode.deprecatedBuiltinCode), c.int32(F.OperatorCode.builtinCode));
      const name = operatorName(code);
      return name === 'CUSTOM' ? `CUSTOM:${c.string(F.OperatorCode.customCode)}` : name;
    });
    const buffers = model.tables(F.Model.buffers);
    const subgraphs = model.tables(F.Model.subgraphs);
    const main = subgraphs[0];
    if (!main) throw new LensError('MODEL_CORRUPT', `${source} has no subgraph`);
    const tensorTables = main.tables(F.SubGraph.tensors);
    const tensors = tensorTables.map((t, index): TfliteTensor => {
      const typeCode = t.int8(F.Tensor.type);
      const bufferIndex = t.uint32(F.Tensor.buffer);
      const tensor: TfliteTensor = {
        index,
        name: t.string(F.Tensor.name),
        shape: t.int32s(F.Tensor.shape),
        type: TENSOR_TYPES[typeCode] ?? `TYPE_${typeCode}`,
      };
      if (t.has(F.Tensor.shapeSignature)) tensor.shapeSignature = t.int32s(F.Tensor.shapeSignature);
      if (bufferIndex > 0) {
        const buffer = buffers[bufferIndex];
        if (!buffer) throw new LensError('MODEL_CORRUPT', `${source}: tensor ${index} (${tensor.name}) refers to buffer ${bufferIndex} of ${buffers.length}`);
        let data = buffer.bytes(F.Buffer.data);
        const offset = buffer.uint64(F.Buffer.offset);
        if ((!data || data.length === 0) && offset > 1) {
          // Models over 2 GB keep constants after the flatbuffer, addressed from the file start.
          const size = buffer.uint64(F.Buffer.size);
          if (offset + size > bytes.length) throw new LensError('MODEL_CORRUPT', `${source}: buffer ${bufferIndex} lies past the end of the file`);
          data = bytes.subarray(offset, offset + size);
        }
        if (data && data.length > 0) tensor.data = data;
      }
      const q = t.table(F.Tensor.quantization);
      if (q) {
        const scale = q.float32s(F.QuantizationParameters.scale);
        if (scale.length > 0) {
          const zp = q.int64s(F.QuantizationParameters.zeroPoint);
          tensor.quantization = {
            scale,
            zeroPoint: zp.length ? zp : scale.map(() => 0),
            dimension: q.int32(F.QuantizationParameters.quantizedDimension),
          };
        }
      }
      return tensor;
    });
    const checkIndex = (i: number, what: string) => {
      if (i !== -1 && (i < 0 || i >= tensors.length)) throw new LensError('MODEL_CORRUPT', `${source}: ${what} refers to tensor ${i} of ${tensors.length}`);
      return i;
    };
    const operators = main.tables(F.SubGraph.operators).map((o, index): TfliteOperator => {
      const codeIndex = o.uint32(F.Operator.opcodeIndex);
      const op = codes[codeIndex];
      if (op === undefined) throw new LensError('MODEL_CORRUPT', `${source}: operator ${index} uses opcode ${codeIndex} of ${codes.length}`);
      return {
        index,
        op,
        inputs: o.int32s(F.Operator.inputs).map((i) => checkIndex(i, `operator ${index} (${op}) input`)),
        outputs: o.int32s(F.Operator.outputs).map((i) => checkIndex(i, `operator ${index} (${op}) output`)),
        options: parseOptions(op, o.table(F.Operator.builtinOptions)),
      };
    });
    return {
      source,
      version: model.uint32(F.Model.version),
      description: model.string(F.Model.description),
      subgraphName: main.string(F.SubGraph.name),
      tensors,
      operators,
      inputs: main.int32s(F.SubGraph.inputs).map((i) => checkIndex(i, 'subgraph input')),
      outputs: main.int32s(F.SubGraph.outputs).map((i) => checkIndex(i, 'subgraph output')),
      metadata: model.tables(F.Model.metadata).map((m) => m.string(F.Metadata.name)),
      subgraphCount: subgraphs.length,
    };
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('MODEL_CORRUPT', `${source} is not a valid TFLite flatbuffer: ${errorMessage(e)}`);
  }
}
