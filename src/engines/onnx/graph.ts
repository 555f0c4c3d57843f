/**
 * A small builder for ONNX graphs, and their encoding as an ONNX model (protos/onnx/onnx.proto).
 * serving-lens writes ONNX only as an execution format for onnxruntime: the graphs are built in
 * memory from a model's layers and handed to an InferenceSession as bytes.
 *
 * @example
 * const g = new OnnxGraphBuilder('double');
 * const x = g.input('x', [g.dynamic('N'), 3]);
 * g.output(g.op('Mul', [x, g.constant('two', new Float32Array([2]), [])]), 'y', [g.dynamic('N'), 3]);
 * const bytes = g.encode();
 */
import { encodeMessage } from '../../proto/index.js';
import { LensError } from '../../core/errors.js';
import { bytesOf } from '../../tensor/index.js';

/** ONNX TensorProto.DataType values used here. */
const DATA_TYPE = { float32: 1, int32: 6, int64: 7, bool: 9 } as const;
export type OnnxDataType = keyof typeof DATA_TYPE;

/** The opset the builder writes; onnxruntime 1.30 supports it fully (ScatterElements with reduction needs 16+). */
export const ONNX_OPSET = 17;
const IR_VERSION = 8;

/** A dimension: a size, or a named symbolic size such as the batch. */
export type OnnxDim = number | { param: string };

/** Attribute values, tagged because JS numbers do not say int or float. */
export type OnnxAttribute = { i: number } | { f: number } | { ints: readonly number[] } | { floats: readonly number[] } | { s: string };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
}

interface Initializer {
  name: string;
  type: OnnxDataType;
  dims: readonly number[];
  bytes: Uint8Array;
}

interface ValueInfo {
  name: string;
  type: OnnxDataType;
  shape: readonly OnnxDim[];
}

/** Builds one graph: nodes in execution order, constants as initializers, typed inputs and outputs. */
export class OnnxGraphBuilder {
  readonly nodes: OnnxNode[] = [];
  private readonly initializers = new Map<string, Initializer>();
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly taken = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A symbolic dimension (the batch). */
  dynamic(param: string): OnnxDim {
    return { param };
  }

  /** A value name not used before, derived from `hint`. */
  fresh(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]/g, '_') || 'v';
    let name = base;
    while (this.taken.has(name)) name = `${base}_${++this.counter}`;
    this.taken.add(name);
    return name;
  }

  input(name: string, shape: readonly OnnxDim[], type: OnnxDataType = 'float32'): string {
    if (this.taken.has(name)) throw new LensError('INTERNAL', `ONNX graph ${this.name}: input name ${name} is taken`);
    this.taken.add(name);
    this.inputs.push({ name, type, shape });
    return name;
  }

  /** Declares `value` as a graph output called `name` (an Identity node renames it when needed). */
  output(value: string, name: string, shape: readonly OnnxDim[], type: OnnxDataType = 'float32'): void {
    if (value !== name) {
      if (this.taken.has(name)) throw new LensError('INTERNAL', `ONNX graph ${this.name}: output name ${name} is taken`);
      this.taken.add(name);
      this.nodes.push({ op: 'Identity', inputs: [value], outputs: [name], attributes: {} });
    }
    this.outputs.push({ name, type, shape });
  }

  /** A constant tensor; `dims` of [] is a scalar. */
  constant(hint: string, data: Float32Array | Int32Array | BigInt64Array | Uint8Array, dims: readonly number[], type?: OnnxDataType): string {
    const kind: OnnxDataType =
      type ?? (data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : data instanceof BigInt64Array ? 'int64' : 'bool');
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new LensError('INTERNAL', `ONNX constant ${hint}: ${data.length} values for dims [${dims.join(',')}]`);
    }
    const name = this.fresh(hint);
    // Copy: the caller's buffer may be a view into weights that are disposed later.
    this.initializers.set(name, { name, type: kind, dims: [...dims], bytes: bytesOf(data).slice() });
    return name;
  }

  /** An int64 vector constant (shapes, axes, pads). */
  ints(hint: string, values: readonly number[]): string {
    return this.constant(hint, BigInt64Array.from(values.map((v) => BigInt(v))), [values.length], 'int64');
  }

  /** A float32 scalar constant. */
  scalar(hint: string, value: number): string {
    return this.constant(hint, new Float32Array([value]), [], 'float32');
  }

  /** Adds a node with one output and returns the output's name. */
  op(op: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, hint?: string): string {
    const out = this.fresh(hint ?? op.toLowerCase());
    this.nodes.push({ op, inputs: [...inputs], outputs: [out], attributes });
    return out;
  }

  /** Adds a node with several outputs (empty hints leave an output unused). */
  multi(op: string, inputs: readonly string[], hints: readonly string[], attributes: Record<string, OnnxAttribute> = {}): string[] {
    const outs = hints.map((h) => (h === '' ? '' : this.fresh(h)));
    this.nodes.push({ op, inputs: [...inputs], outputs: outs, attributes });
    return outs;
  }

  /** Total bytes of constants (weights), for reports. */
  get constantBytes(): number {
    let n = 0;
    for (const init of this.initializers.values()) n += init.bytes.byteLength;
    return n;
  }

  /** The graph as ONNX ModelProto bytes. */
  encode(metadata: Record<string, string> = {}): Uint8Array {
    const valueInfo = (v: ValueInfo) => ({
      name: v.name,
      type: {
        tensor_type: {
          elem_type: DATA_TYPE[v.type],
          shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d.param })) },
        },
      },
    });
    const attribute = (name: string, a: OnnxAttribute) => {
      if ('i' in a) return { name, type: 2, i: a.i };
      if ('f' in a) return { name, type: 1, f: a.f };
      if ('ints' in a) return { name, type: 7, ints: [...a.ints] };
      if ('floats' in a) return { name, type: 6, floats: [...a.floats] };
      return { name, type: 3, s: new TextEncoder().encode(a.s) };
    };
    const model = {
      ir_version: IR_VERSION,
      producer_name: 'serving-lens',
      opset_import: [{ domain: '', version: ONNX_OPSET }],
      graph: {
        name: this.name,
        node: this.nodes.map((n, i) => ({
          name: `${n.op}_${i}`,
          op_type: n.op,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attributes).map(([k, v]) => attribute(k, v)),
        })),
        initializer: [...this.initializers.values()].map((t) => ({ name: t.name, data_type: DATA_TYPE[t.type], dims: [...t.dims], raw_data: t.bytes })),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
      metadata_props: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    };
    return encodeMessage('onnx.ModelProto', model);
  }
}
