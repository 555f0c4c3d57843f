/**
 * An imported TFLite model written as TensorFlow ops, operator by operator: the one lowering of
 * TFLite operators, which both `lens export` and running a .tflite (onnxruntime or tfjs, through
 * the converted graph) use. Constants are dequantized (real = scale * (q - zero_point)), fused
 * activations applied, quantized activations computed in float: the float graph is what the
 * quantized one approximates, and it is what gradients need. Float constants (filters, biases,
 * PReLU slopes, elementwise operands) become variables named after their TFLite tensors; integer
 * constants (shapes, axes, paddings) become Consts. CONV_2D filters are transposed from TFLite's
 * [out, kh, kw, in] to TensorFlow's [kh, kw, in, out] and FULLY_CONNECTED weights from [out, in]
 * to [in, out].
 */
import type { SoftmaxTail, TfliteImport, TfliteOperator, TfliteTensor } from '../convert/tflite/index.js';
import { dequantize } from '../convert/tflite/index.js';
import { LensError } from '../core/errors.js';
import type { ModelBody } from './body.js';
import type { GraphBuilder } from './builder.js';
import type { VariableSet } from './variables.js';

const F = 'DT_FLOAT';

/** TFLite operators this module writes (every operator serving-lens runs or exports). */
export const SUPPORTED_TFLITE_OPS: readonly string[] = [
  'ADD', 'SUB', 'MUL', 'DIV', 'MAXIMUM', 'MINIMUM', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED',
  'AVERAGE_POOL_2D', 'MAX_POOL_2D', 'MEAN', 'SUM', 'REDUCE_MAX', 'RESHAPE', 'SQUEEZE', 'TRANSPOSE', 'PAD', 'PADV2',
  'CONCATENATION', 'SOFTMAX', 'LOGISTIC', 'TANH', 'RELU', 'RELU6', 'RELU_N1_TO_1', 'LEAKY_RELU', 'HARD_SWISH', 'PRELU',
  'RESIZE_BILINEAR', 'RESIZE_NEAREST_NEIGHBOR', 'QUANTIZE', 'DEQUANTIZE',
];

/** The same list as {@link SUPPORTED_TFLITE_OPS} (its name from when export and running differed). */
export const EXPORTABLE_TFLITE_OPS = SUPPORTED_TFLITE_OPS;

/** A node-name scope from a TFLite tensor name ("a/b;c/d" -> "a/b"). */
function scopeName(t: TfliteTensor, op: TfliteOperator): string {
  const base = t.name.split(';')[0]!.trim();
  return base || `op${op.index}_${op.op.toLowerCase()}`;
}

/**
 * Transposes a row-major [rows, cols] matrix. TFLite's CONV_2D filter [out, kh, kw, in] to
 * TensorFlow's [kh, kw, in, out] is this transpose with cols = kh * kw * in.
 */
function transposeRows(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

/** Options of {@link exportTfliteGraph}. */
export interface TfliteBodyOptions {
  /**
   * Scores are the logits of a final SOFTMAX (its input times its beta: the softmax computes
   * softmax(beta * x)) instead of the model's output. Ignored when the model has no final softmax.
   */
  logits?: boolean;
}

/**
 * The body of a TFLite model as TensorFlow ops, for the exporter and for running the model.
 * Throws UNSUPPORTED_OP naming each operator it cannot write (and where it first occurs).
 *
 * @example
 * const body = exportTfliteGraph(await importTflite('mobilenet_v2_1.0_224_quant.tflite'), { logits: true });
 * const { scores, probabilities } = await body.emit(g, vars, input, () => {}); // probabilities: false
 */
export function exportTfliteGraph(imp: TfliteImport, options: TfliteBodyOptions = {}): ModelBody {
  const model = imp.model;
  const unsupported = [...new Set(model.operators.map((o) => o.op).filter((op) => !SUPPORTED_TFLITE_OPS.includes(op)))];
  if (unsupported.length) {
    const where = unsupported.map((op) => `${op} (operator ${model.operators.find((o) => o.op === op)!.index})`);
    throw new LensError('UNSUPPORTED_OP', `${imp.path}: unsupported TFLite operator${unsupported.length > 1 ? 's' : ''} ${where.join(', ')}; supported: ${SUPPORTED_TFLITE_OPS.join(', ')}`);
  }
  const logits = options.logits && imp.softmax ? imp.softmax : undefined;
  return {
    inputShape: imp.inputShape,
    async emit(g, vars, input, progress) {
      const writer = new TfliteWriter(imp, g, vars);
      const scores = writer.run(input, progress, logits);
      return { scores, probabilities: imp.softmax !== undefined && !logits, classes: imp.classes };
    },
  };
}

class TfliteWriter {
  private readonly values = new Map<number, string>();
  private readonly floats = new Map<string, string>();
  private readonly staticBatch: number;

  constructor(
    private readonly imp: TfliteImport,
    private readonly g: GraphBuilder,
    private readonly vars: VariableSet,
  ) {
    this.staticBatch = imp.input.shape[0] ?? 1;
  }

  private tensor(index: number): TfliteTensor {
    return this.imp.model.tensors[index]!;
  }

  private where(op: TfliteOperator): string {
    return `${this.imp.path}: operator ${op.index} (${op.op})`;
  }

  /** A float constant as a variable (created once per tensor and layout). */
  private floatVariable(index: number, layout: 'plain' | 'conv' | 'dense' | 'depthwise', op: TfliteOperator): string {
    const key = `${index}:${layout}`;
    const known = this.floats.get(key);
    if (known) return known;
    const t = this.tensor(index);
    if (!t.data) throw new LensError('MODEL_UNSUPPORTED', `${this.where(op)}: tensor ${t.name} must be a constant to be exported`);
    let values = dequantize(t, this.imp.path);
    let shape = [...t.shape];
    if (layout === 'conv') {
      values = transposeRows(values, shape[0]!, shape[1]! * shape[2]! * shape[3]!);
      shape = [shape[1]!, shape[2]!, shape[3]!, shape[0]!];
    } else if (layout === 'dense') {
      const [rows, cols] = shape as [number, number];
      values = transposeRows(values, rows, cols);
      shape = [cols, rows];
    } else if (layout === 'depthwise') {
      const input = this.tensor(op.inputs[0]!);
      const channels = input.shape[3]!;
      const [, kh, kw, total] = shape as [number, number, number, number];
      if (total % channels !== 0) throw new LensError('MODEL_CORRUPT', `${this.where(op)}: ${total} filter channels for ${channels} input channels`);
      shape = [kh, kw, channels, total / channels];
    }
    const name = (t.name.split(';')[0] || `tensor_${index}`).trim();
    const read = this.vars.add(this.g, `${name}${layout === 'plain' ? '' : `/${layout}`}`, { dtype: 'float32', shape, values: Float32Array.from(values) });
    this.floats.set(key, read);
    return read;
  }

  /** Integer contents of a constant (axes, shapes, paddings). */
  private ints(index: number, op: TfliteOperator): number[] {
    const t = this.tensor(index);
    if (!t.data) throw new LensError('MODEL_UNSUPPORTED', `${this.where(op)}: input ${t.name} must be a constant`);
    return Array.from(dequantize(t, this.imp.path), (v) => Math.round(v));
  }

  private value(index: number, op: TfliteOperator): string {
    const v = this.values.get(index);
    if (v) return v;
    const t = this.tensor(index);
    if (t.data) return this.floatVariable(index, 'plain', op);
    throw new LensError('MODEL_CORRUPT', `${this.where(op)}: input tensor ${index} (${t.name}) is used before it is computed`);
  }

  private activate(x: string, activation: string | undefined, op: TfliteOperator): string {
    const g = this.g;
    switch (activation ?? 'NONE') {
      case 'NONE':
        return x;
      case 'RELU':
        return g.op('Relu', [x], { T: F });
      case 'RELU6':
        return g.op('Relu6', [x], { T: F });
      case 'RELU_N1_TO_1':
        return g.op('Minimum', [g.op('Maximum', [x, g.float('Maximum/y', -1)], { T: F }), g.float('Minimum/y', 1)], { T: F });
      case 'TANH':
        return g.op('Tanh', [x], { T: F });
      default:
        throw new LensError('MODEL_UNSUPPORTED', `${this.where(op)}: fused activation ${activation} cannot be exported`);
    }
  }

  /** Writes the operators up to the output (or the softmax's logits, scaled by its beta); returns the scores [N, classes]. */
  run(input: string, progress: (fraction: number) => void, logits?: SoftmaxTail): string {
    const { model } = this.imp;
    const until = logits?.logits ?? this.imp.output.index;
    this.values.set(this.imp.input.index, input);
    model.operators.forEach((op, i) => {
      const out = this.tensor(op.outputs[0]!);
      const ref = this.g.scope(scopeName(out, op), () => this.apply(op));
      this.values.set(op.outputs[0]!, ref);
      progress((i + 1) / model.operators.length);
    });
    let output = this.values.get(until);
    if (!output) throw new LensError('MODEL_CORRUPT', `${this.imp.path}: the output tensor is not computed by any operator`);
    if (logits && logits.beta !== 1) output = this.g.op('Mul', [output, this.g.float('logits/beta', logits.beta)], { T: F }, { name: 'logits' });
    return this.g.op('Reshape', [output, this.g.int32('scores/shape', [-1, this.imp.classes])], { T: F, Tshape: 'DT_INT32' }, { name: 'scores' });
  }

  private apply(op: TfliteOperator): string {
    const g = this.g;
    const o = op.options;
    const x = () => this.value(op.inputs[0]!, op);
    const second = () => this.value(op.inputs[1]!, op);
    const has = (k: number) => op.inputs[k] !== undefined && op.inputs[k]! >= 0;
    const binary = (name: string) => this.activate(g.op(name, [x(), second()], { T: F }), o.activation, op);
    const padding = (o.padding ?? 'same') === 'same' ? 'SAME' : 'VALID';
    switch (op.op) {
      case 'ADD':
        return binary('AddV2');
      case 'SUB':
        return binary('Sub');
      case 'MUL':
        return binary('Mul');
      case 'DIV':
        return binary('RealDiv');
      case 'MAXIMUM':
        return g.op('Maximum', [x(), second()], { T: F });
      case 'MINIMUM':
        return g.op('Minimum', [x(), second()], { T: F });
      case 'CONV_2D':
      case 'DEPTHWISE_CONV_2D': {
        const depthwise = op.op === 'DEPTHWISE_CONV_2D';
        const filter = this.floatVariable(op.inputs[1]!, depthwise ? 'depthwise' : 'conv', op);
        let y = g.op(depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', [x(), filter], {
          T: F,
          strides: [1, o.strideH ?? 1, o.strideW ?? 1, 1],
          padding,
          dilations: [1, o.dilationH ?? 1, o.dilationW ?? 1, 1],
        });
        if (has(2)) y = g.op('BiasAdd', [y, this.floatVariable(op.inputs[2]!, 'plain', op)], { T: F });
        return this.activate(y, o.activation, op);
      }
      case 'FULLY_CONNECTED': {
        const weights = this.tensor(op.inputs[1]!);
        const [units, inner] = weights.shape as [number, number];
        const flat = g.op('Reshape', [x(), g.int32('Reshape/shape', [-1, inner])], { T: F, Tshape: 'DT_INT32' });
        let y = g.op('MatMul', [flat, this.floatVariable(op.inputs[1]!, 'dense', op)], { T: F });
        if (has(2)) y = g.op('BiasAdd', [y, this.floatVariable(op.inputs[2]!, 'plain', op)], { T: F });
        if (o.keepNumDims) {
          const inShape = this.tensor(op.inputs[0]!).shape;
          y = g.op('Reshape', [y, g.int32('Reshape_1/shape', [-1, ...inShape.slice(1, -1), units])], { T: F, Tshape: 'DT_INT32' });
        }
        return this.activate(y, o.activation, op);
      }
      case 'AVERAGE_POOL_2D':
      case 'MAX_POOL_2D': {
        const y = g.op(op.op === 'MAX_POOL_2D' ? 'MaxPool' : 'AvgPool', [x()], {
          T: F,
          ksize: [1, o.filterH ?? 1, o.filterW ?? 1, 1],
          strides: [1, o.strideH ?? 1, o.strideW ?? 1, 1],
          padding,
        });
        return this.activate(y, o.activation, op);
      }
      case 'MEAN':
      case 'SUM':
      case 'REDUCE_MAX': {
        const name = op.op === 'MEAN' ? 'Mean' : op.op === 'SUM' ? 'Sum' : 'Max';
        return g.op(name, [x(), g.int32('reduction_indices', this.ints(op.inputs[1]!, op))], { T: F, Tidx: 'DT_INT32', keep_dims: o.keepDims ?? false });
      }
      case 'RESHAPE': {
        const out = this.tensor(op.outputs[0]!);
        let target = has(1) && this.tensor(op.inputs[1]!).data ? this.ints(op.inputs[1]!, op) : (o.newShape ?? out.shape);
        // Shapes were recorded for the converted batch size; the exported graph takes any batch.
        if (out.shape.length > 0 && out.shape[0] === this.staticBatch && out.shape.every((d) => d > 0)) target = [-1, ...out.shape.slice(1)];
        return g.op('Reshape', [x(), g.int32('shape', target)], { T: F, Tshape: 'DT_INT32' });
      }
      case 'SQUEEZE': {
        const inShape = this.tensor(op.inputs[0]!).shape;
        const dims = o.squeezeDims?.length ? o.squeezeDims : inShape.map((d, i) => (d === 1 && i > 0 ? i : -1)).filter((i) => i >= 0);
        return g.op('Squeeze', [x()], { T: F, squeeze_dims: dims });
      }
      case 'TRANSPOSE':
        return g.op('Transpose', [x(), g.int32('perm', this.ints(op.inputs[1]!, op))], { T: F, Tperm: 'DT_INT32' });
      case 'PAD':
      case 'PADV2': {
        const flat = this.ints(op.inputs[1]!, op);
        const paddings = g.constant('paddings', { dtype: 'int32', shape: [flat.length / 2, 2], values: Int32Array.from(flat) });
        if (op.op === 'PADV2' && has(2)) {
          const fill = dequantize(this.tensor(op.inputs[2]!), this.imp.path)[0] ?? 0;
          return g.op('PadV2', [x(), paddings, g.float('constant_values', fill)], { T: F, Tpaddings: 'DT_INT32' });
        }
        return g.op('Pad', [x(), paddings], { T: F, Tpaddings: 'DT_INT32' });
      }
      case 'CONCATENATION': {
        const parts = op.inputs.map((i) => this.value(i, op));
        const y = g.op('ConcatV2', [...parts, g.int32('axis', o.axis ?? 0)], { N: parts.length, T: F, Tidx: 'DT_INT32' });
        return this.activate(y, o.activation, op);
      }
      case 'SOFTMAX': {
        const beta = o.beta ?? 1;
        return g.op('Softmax', [beta === 1 ? x() : g.op('Mul', [x(), g.float('beta', beta)], { T: F })], { T: F });
      }
      case 'LOGISTIC':
        return g.op('Sigmoid', [x()], { T: F });
      case 'TANH':
        return g.op('Tanh', [x()], { T: F });
      case 'RELU':
        return g.op('Relu', [x()], { T: F });
      case 'RELU6':
        return g.op('Relu6', [x()], { T: F });
      case 'RELU_N1_TO_1':
        return this.activate(x(), 'RELU_N1_TO_1', op);
      case 'LEAKY_RELU':
        return g.op('LeakyRelu', [x()], { T: F, alpha: o.alpha ?? 0.2 });
      case 'HARD_SWISH': {
        // x * relu6(x + 3) / 6
        const v = x();
        const gate = g.op('Relu6', [g.op('AddV2', [v, g.float('add/y', 3)], { T: F })], { T: F });
        return g.op('Mul', [g.op('Mul', [v, gate], { T: F }), g.float('mul/y', 1 / 6)], { T: F }, { name: 'mul_1' });
      }
      case 'PRELU': {
        // relu(x) - alpha * relu(-x)
        const v = x();
        const neg = g.op('Mul', [second(), g.op('Relu', [g.op('Neg', [v], { T: F })], { T: F }, { name: 'Relu_neg' })], { T: F });
        return g.op('Sub', [g.op('Relu', [v], { T: F }), neg], { T: F });
      }
      case 'RESIZE_BILINEAR':
      case 'RESIZE_NEAREST_NEIGHBOR':
        return g.op(op.op === 'RESIZE_BILINEAR' ? 'ResizeBilinear' : 'ResizeNearestNeighbor', [x(), g.int32('size', this.ints(op.inputs[1]!, op))], {
          T: F,
          align_corners: o.alignCorners ?? false,
          half_pixel_centers: o.halfPixelCenters ?? false,
        });
      case 'QUANTIZE':
      case 'DEQUANTIZE':
        return g.op('Identity', [x()], { T: F });
      default:
        throw new LensError('MODEL_UNSUPPORTED', `${this.where(op)} cannot be exported`);
    }
  }
}
