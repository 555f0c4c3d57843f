/**
 * A TFLite model as an executable float32 tfjs graph. Constants are dequantized once
 * (real = scale * (q - zero_point), per tensor or per channel); operators run as differentiable
 * tfjs ops with fused activations applied, so input gradients flow for attribution.
 * Quantized activations are computed in float: the float graph is what the quantized one
 * approximates, and it is what gradients need.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../../core/errors.js';
import { halfToFloat } from '../../tensor/index.js';
import type { TfliteModel, TfliteOperator, TfliteTensor } from './reader.js';

/** Operators the graph runs. */
export const SUPPORTED_TFLITE_OPS: readonly string[] = [
  'ADD', 'SUB', 'MUL', 'DIV', 'MAXIMUM', 'MINIMUM',
  'CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED',
  'AVERAGE_POOL_2D', 'MAX_POOL_2D', 'MEAN', 'SUM', 'REDUCE_MAX',
  'RESHAPE', 'SQUEEZE', 'TRANSPOSE', 'PAD', 'PADV2', 'CONCATENATION',
  'SOFTMAX', 'LOGISTIC', 'TANH', 'RELU', 'RELU6', 'RELU_N1_TO_1', 'LEAKY_RELU', 'HARD_SWISH', 'PRELU',
  'RESIZE_BILINEAR', 'RESIZE_NEAREST_NEIGHBOR', 'QUANTIZE', 'DEQUANTIZE',
];

/** Operators that only move or re-encode values, looked through when finding a final softmax. */
const PASSTHROUGH = new Set(['RESHAPE', 'SQUEEZE', 'QUANTIZE', 'DEQUANTIZE']);

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Raw stored values of a constant tensor as numbers (no dequantization). */
function storedValues(t: TfliteTensor, source: string): Float32Array | Int32Array {
  const data = t.data!;
  const copy = new Uint8Array(data); // an aligned copy (data may be a Buffer view into the file)
  const count = product(t.shape);
  const view = new DataView(copy.buffer);
  const need = (bytes: number) => {
    if (copy.length < count * bytes) {
      throw new LensError('MODEL_CORRUPT', `${source}: tensor ${t.index} (${t.name}) has ${copy.length} bytes for ${count} ${t.type} values`);
    }
  };
  switch (t.type) {
    case 'FLOAT32':
      need(4);
      return new Float32Array(copy.buffer, 0, count);
    case 'FLOAT16':
      need(2);
      return Float32Array.from({ length: count }, (_, i) => halfToFloat(view.getUint16(2 * i, true)));
    case 'UINT8':
      need(1);
      return Int32Array.from(copy.subarray(0, count));
    case 'INT8':
      need(1);
      return Int32Array.from(new Int8Array(copy.buffer, 0, count));
    case 'INT16':
      need(2);
      return Int32Array.from({ length: count }, (_, i) => view.getInt16(2 * i, true));
    case 'INT32':
      need(4);
      return new Int32Array(copy.buffer, 0, count);
    case 'INT64':
      need(8);
      return Int32Array.from({ length: count }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    default:
      throw new LensError('MODEL_UNSUPPORTED', `${source}: constant tensor ${t.index} (${t.name}) has unsupported type ${t.type}`);
  }
}

/**
 * A constant's real values: scale * (q - zero_point) for quantized tensors (per channel along
 * `quantization.dimension` when several scales are given), the stored values otherwise.
 */
export function dequantize(t: TfliteTensor, source: string): Float32Array {
  const raw = storedValues(t, source);
  const q = t.quantization;
  if (!q || t.type === 'FLOAT32' || t.type === 'FLOAT16') return raw instanceof Float32Array ? raw : Float32Array.from(raw);
  const out = new Float32Array(raw.length);
  if (q.scale.length === 1) {
    const s = q.scale[0]!;
    const z = q.zeroPoint[0] ?? 0;
    for (let i = 0; i < raw.length; i++) out[i] = s * (raw[i]! - z);
    return out;
  }
  const dim = q.dimension;
  const channels = t.shape[dim];
  if (channels !== q.scale.length) {
    throw new LensError('MODEL_CORRUPT', `${source}: tensor ${t.index} (${t.name}) has ${q.scale.length} scales for ${channels} channels on axis ${dim}`);
  }
  const inner = product(t.shape.slice(dim + 1));
  for (let i = 0; i < raw.length; i++) {
    const c = Math.floor(i / inner) % channels;
    out[i] = q.scale[c]! * (raw[i]! - (q.zeroPoint[c] ?? q.zeroPoint[0] ?? 0));
  }
  return out;
}

function activate(x: tf.Tensor, activation: string | undefined, where: string): tf.Tensor {
  switch (activation ?? 'NONE') {
    case 'NONE':
      return x;
    case 'RELU':
      return tf.relu(x);
    case 'RELU6':
      return tf.relu6(x);
    case 'RELU_N1_TO_1':
      return tf.clipByValue(x, -1, 1);
    case 'TANH':
      return tf.tanh(x);
    default:
      throw new LensError('UNSUPPORTED_OP', `${where}: fused activation ${activation} is not supported`);
  }
}

/** Where the final softmax is, when the model ends in one (looking through reshapes and (de)quantization). */
export interface SoftmaxTail {
  /** Tensor index of the softmax input (the logits). */
  logits: number;
  beta: number;
}

/**
 * An executable float graph of a TFLite model's main subgraph.
 *
 * @example
 * const graph = new TfliteGraph(parseTflite(bytes, 'model.tflite'));
 * const probs = tf.tidy(() => graph.run(realInput));             // [N, classes]
 * const logits = tf.tidy(() => graph.run(realInput, graph.softmaxTail()?.logits));
 */
export class TfliteGraph {
  readonly input: TfliteTensor;
  readonly output: TfliteTensor;
  private readonly constants = new Map<string, tf.Tensor>();
  private readonly producers = new Map<number, TfliteOperator>();
  private disposed = false;

  constructor(readonly model: TfliteModel) {
    const src = model.source;
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new LensError('MODEL_UNSUPPORTED', `${src}: expected one input and one output, found ${model.inputs.length} and ${model.outputs.length}`);
    }
    this.input = model.tensors[model.inputs[0]!]!;
    this.output = model.tensors[model.outputs[0]!]!;
    const unsupported = [...new Set(model.operators.filter((o) => !SUPPORTED_TFLITE_OPS.includes(o.op)).map((o) => o.op))];
    if (unsupported.length) {
      const where = unsupported.map((op) => `${op} (operator ${model.operators.find((o) => o.op === op)!.index})`);
      throw new LensError(
        'UNSUPPORTED_OP',
        `${src}: unsupported TFLite operator${unsupported.length > 1 ? 's' : ''} ${where.join(', ')}; supported: ${SUPPORTED_TFLITE_OPS.join(', ')}`,
      );
    }
    for (const op of model.operators) for (const o of op.outputs) this.producers.set(o, op);
    try {
      for (const op of model.operators) this.prepare(op);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private where(op: TfliteOperator): string {
    return `${this.model.source}: operator ${op.index} (${op.op})`;
  }

  private tensor(index: number): TfliteTensor {
    return this.model.tensors[index]!;
  }

  /** Dequantized constant in the layout an op needs, created once and kept. */
  private constant(index: number, layout: 'plain' | 'conv' = 'plain'): tf.Tensor {
    const key = `${index}:${layout}`;
    const cached = this.constants.get(key);
    if (cached) return cached;
    const t = this.tensor(index);
    if (!t.data) throw new LensError('MODEL_UNSUPPORTED', `${this.model.source}: tensor ${index} (${t.name}) must be a constant`);
    const values = dequantize(t, this.model.source);
    const made = tf.tidy(() => {
      const plain = tf.tensor(values, t.shape.length ? t.shape : [], 'float32');
      // CONV_2D filters are stored [out, kh, kw, in]; tfjs wants [kh, kw, in, out].
      return layout === 'conv' ? tf.transpose(plain, [1, 2, 3, 0]) : plain;
    });
    this.constants.set(key, tf.keep(made));
    return made;
  }

  /** Integer contents of a constant (shapes, axes, paddings). */
  private ints(index: number, op: TfliteOperator): number[] {
    const t = this.tensor(index);
    if (!t.data) throw new LensError('MODEL_UNSUPPORTED', `${this.where(op)}: input ${t.name} must be a constant`);
    return Array.from(storedValues(t, this.model.source));
  }

  private prepare(op: TfliteOperator): void {
    if (op.op === 'CONV_2D') this.constant(op.inputs[1]!, 'conv');
    for (const i of op.inputs) {
      if (i < 0) continue;
      const t = this.tensor(i);
      if (t.data && !(op.op === 'CONV_2D' && i === op.inputs[1]) && ['FLOAT32', 'FLOAT16', 'UINT8', 'INT8', 'INT16'].includes(t.type)) this.constant(i);
      if (t.data && t.type === 'INT32' && t.quantization) this.constant(i); // quantized biases
    }
  }

  /** The final softmax, if the output comes from one. */
  softmaxTail(): SoftmaxTail | undefined {
    let index = this.output.index;
    for (;;) {
      const op = this.producers.get(index);
      if (!op) return undefined;
      if (op.op === 'SOFTMAX') return { logits: op.inputs[0]!, beta: op.options.beta ?? 1 };
      if (!PASSTHROUGH.has(op.op)) return undefined;
      index = op.inputs[0]!;
    }
  }

  /**
   * Runs the graph on a real-valued (already preprocessed / dequantized) input batch, up to the
   * tensor `until` (default: the model output). Call inside tf.tidy or dispose the result.
   */
  run(input: tf.Tensor, until: number = this.output.index): tf.Tensor {
    if (this.disposed) throw new LensError('INVALID_ARGUMENT', `${this.model.source}: the graph was disposed`);
    const values = new Map<number, tf.Tensor>([[this.input.index, input]]);
    const staticBatch = this.input.shape[0] ?? 1;
    const batch = input.shape[0] ?? 1;
    const get = (index: number, op: TfliteOperator): tf.Tensor => {
      const v = values.get(index);
      if (v) return v;
      const t = this.tensor(index);
      if (t.data) return this.constant(index);
      throw new LensError('MODEL_CORRUPT', `${this.where(op)}: input tensor ${index} (${t.name}) is used before it is computed`);
    };
    for (const op of this.model.operators) {
      const out = this.apply(op, get, staticBatch, batch);
      values.set(op.outputs[0]!, out);
      if (op.outputs[0] === until) return out;
    }
    const result = values.get(until);
    if (!result) throw new LensError('UNKNOWN_TENSOR', `${this.model.source}: tensor ${until} is not computed by the graph`);
    return result;
  }

  private apply(op: TfliteOperator, get: (i: number, op: TfliteOperator) => tf.Tensor, staticBatch: number, batch: number): tf.Tensor {
    const o = op.options;
    const x = () => get(op.inputs[0]!, op);
    const second = () => get(op.inputs[1]!, op);
    const hasInput = (k: number) => op.inputs[k] !== undefined && op.inputs[k]! >= 0;
    const where = this.where(op);
    switch (op.op) {
      case 'ADD':
        return activate(tf.add(x(), second()), o.activation, where);
      case 'SUB':
        return activate(tf.sub(x(), second()), o.activation, where);
      case 'MUL':
        return activate(tf.mul(x(), second()), o.activation, where);
      case 'DIV':
        return activate(tf.div(x(), second()), o.activation, where);
      case 'MAXIMUM':
        return tf.maximum(x(), second());
      case 'MINIMUM':
        return tf.minimum(x(), second());
      case 'CONV_2D': {
        const filter = this.constant(op.inputs[1]!, 'conv') as tf.Tensor4D;
        let y: tf.Tensor = tf.conv2d(x() as tf.Tensor4D, filter, [o.strideH ?? 1, o.strideW ?? 1], o.padding ?? 'same', 'NHWC', [o.dilationH ?? 1, o.dilationW ?? 1]);
        if (hasInput(2)) y = tf.add(y, get(op.inputs[2]!, op));
        return activate(y, o.activation, where);
      }
      case 'DEPTHWISE_CONV_2D': {
        const input = x() as tf.Tensor4D;
        const raw = get(op.inputs[1]!, op); // [1, kh, kw, in * multiplier]
        const channelsIn = input.shape[3];
        const [, kh, kw, total] = raw.shape as [number, number, number, number];
        if (total % channelsIn !== 0) throw new LensError('MODEL_CORRUPT', `${where}: ${total} filter channels for ${channelsIn} input channels`);
        const filter = tf.reshape(raw, [kh, kw, channelsIn, total / channelsIn]) as tf.Tensor4D;
        let y: tf.Tensor = tf.depthwiseConv2d(input, filter, [o.strideH ?? 1, o.strideW ?? 1], o.padding ?? 'same', 'NHWC', [o.dilationH ?? 1, o.dilationW ?? 1]);
        if (hasInput(2)) y = tf.add(y, get(op.inputs[2]!, op));
        return activate(y, o.activation, where);
      }
      case 'FULLY_CONNECTED': {
        const weights = second() as tf.Tensor2D; // [out, in]
        const input = x();
        const flat = tf.reshape(input, [-1, weights.shape[1]]) as tf.Tensor2D;
        let y: tf.Tensor = tf.matMul(flat, weights, false, true);
        if (hasInput(2)) y = tf.add(y, get(op.inputs[2]!, op));
        if (o.keepNumDims) y = tf.reshape(y, [...input.shape.slice(0, -1), weights.shape[0]]);
        return activate(y, o.activation, where);
      }
      case 'AVERAGE_POOL_2D':
      case 'MAX_POOL_2D': {
        const pool = op.op === 'MAX_POOL_2D' ? tf.maxPool : tf.avgPool;
        const y = pool(x() as tf.Tensor4D, [o.filterH ?? 1, o.filterW ?? 1], [o.strideH ?? 1, o.strideW ?? 1], o.padding ?? 'same');
        return activate(y, o.activation, where);
      }
      case 'MEAN':
      case 'SUM':
      case 'REDUCE_MAX': {
        const axes = this.ints(op.inputs[1]!, op);
        const reduce = op.op === 'MEAN' ? tf.mean : op.op === 'SUM' ? tf.sum : tf.max;
        return reduce(x(), axes, o.keepDims ?? false);
      }
      case 'RESHAPE': {
        const input = x();
        let target = hasInput(1) && this.tensor(op.inputs[1]!).data ? this.ints(op.inputs[1]!, op) : (o.newShape ?? this.tensor(op.outputs[0]!).shape);
        // Shapes are recorded for the converted batch size; carry the real batch through.
        if (batch !== staticBatch && target.length > 0 && target[0] === staticBatch && input.shape[0] === batch) target = [batch, ...target.slice(1)];
        return tf.reshape(input, target);
      }
      case 'SQUEEZE': {
        const input = x();
        const dims = o.squeezeDims?.length ? o.squeezeDims : input.shape.map((d, i) => (d === 1 && i > 0 ? i : -1)).filter((i) => i >= 0);
        return tf.squeeze(input, dims);
      }
      case 'TRANSPOSE':
        return tf.transpose(x(), this.ints(op.inputs[1]!, op));
      case 'PAD':
      case 'PADV2': {
        const flat = this.ints(op.inputs[1]!, op);
        const pairs = Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!] as [number, number]);
        const value = op.op === 'PADV2' && hasInput(2) ? (get(op.inputs[2]!, op).dataSync()[0] ?? 0) : 0;
        return tf.pad(x(), pairs, value);
      }
      case 'CONCATENATION': {
        const parts = op.inputs.map((i) => get(i, op));
        const rank = parts[0]!.rank;
        const axis = (o.axis ?? 0) < 0 ? (o.axis ?? 0) + rank : (o.axis ?? 0);
        return activate(tf.concat(parts, axis), o.activation, where);
      }
      case 'SOFTMAX': {
        const beta = o.beta ?? 1;
        return tf.softmax(beta === 1 ? x() : tf.mul(x(), beta));
      }
      case 'LOGISTIC':
        return tf.sigmoid(x());
      case 'TANH':
        return tf.tanh(x());
      case 'RELU':
        return tf.relu(x());
      case 'RELU6':
        return tf.relu6(x());
      case 'RELU_N1_TO_1':
        return tf.clipByValue(x(), -1, 1);
      case 'LEAKY_RELU':
        return tf.leakyRelu(x(), o.alpha ?? 0.2);
      case 'HARD_SWISH': {
        const v = x();
        return tf.mul(v, tf.div(tf.relu6(tf.add(v, 3)), 6));
      }
      case 'PRELU':
        return tf.prelu(x(), second());
      case 'RESIZE_BILINEAR':
      case 'RESIZE_NEAREST_NEIGHBOR': {
        const [h, w] = this.ints(op.inputs[1]!, op) as [number, number];
        const resize = op.op === 'RESIZE_BILINEAR' ? tf.image.resizeBilinear : tf.image.resizeNearestNeighbor;
        return resize(x() as tf.Tensor4D, [h, w], o.alignCorners ?? false, o.halfPixelCenters ?? false);
      }
      case 'QUANTIZE':
      case 'DEQUANTIZE':
        return x();
      default:
        throw new LensError('UNSUPPORTED_OP', `${where} is not supported`);
    }
  }

  /** Releases the dequantized constants. */
  dispose(): void {
    this.disposed = true;
    for (const t of this.constants.values()) t.dispose();
    this.constants.clear();
  }
}
