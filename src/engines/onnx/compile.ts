/**
 * The core of the ONNX compiler: it emits a model's forward graph (class scores) and, in a second
 * graph, the gradient of a weighted sum of those scores with respect to the input pixels.
 *
 * Why by hand: onnxruntime's inference builds have no automatic differentiation, and attribution
 * needs only input gradients. So each op emits its forward nodes and records a backward rule;
 * the backward pass is emitted in reverse order, as a tape would run it. Every backward rule uses
 * fast forward kernels: a convolution's input gradient is a transposed convolution with the same
 * weights, ReLU's is a select on the saved output, max pooling's a scatter of the saved argmax,
 * nearest upsampling's a sum over each block.
 * Filter gradients are never built.
 *
 * Layout: the graph takes pixels NHWC (0..255, as everywhere in serving-lens), applies the model's
 * preprocessing, works in NCHW (onnxruntime's native convolution layout) and returns the input
 * gradient NHWC. The `seed` input [N, classes] selects what is differentiated: one-hot rows give
 * the gradient of one class score per image.
 */
import { LensError } from '../../core/errors.js';
import { affineOf, type PreprocessingName } from '../../core/preprocess.js';
import { OnnxGraphBuilder, type OnnxDim } from './graph.js';

/** A value in the graph: its name and its shape without the batch ([C,H,W] or [F]). */
export interface Value {
  name: string;
  shape: number[];
}

/** One forward step as the backward pass needs it. */
interface TapeEntry {
  inputs: Value[];
  output: Value;
  /** Emits the input gradients from the output gradient `g` (undefined: no gradient flows there). */
  backward(g: string): (string | undefined)[];
}

/** The two compiled graphs and the facts the runtime needs. */
export interface CompiledModel {
  /** pixels [N,H,W,C] -> scores [N,classes]. */
  forward: Uint8Array;
  /** pixels [N,H,W,C], seed [N,classes] -> scores [N,classes], gradients [N,H,W,C] = d sum(seed*scores) / d pixels. */
  gradient: Uint8Array;
  inputShape: [number, number, number];
  classes: number;
  /** The scores are pre-softmax logits of a model that ends in softmax. */
  logits: boolean;
  finalSoftmax: boolean;
  /** Bytes of weights in one graph. */
  weightBytes: number;
  /**
   * Estimated working memory per image in bytes: the forward pass needs about its two largest
   * activations at a time, the gradient pass keeps every activation of the forward pass for the
   * backward pass, plus the backward temporaries. Used to split batches so they fit.
   */
  bytesPerImage: { forward: number; gradient: number };
  /** Layer count by class (graph op count by op for TensorFlow graphs), for reports. */
  layers: Record<string, number>;
}

/** Throws MODEL_UNSUPPORTED naming the model and what has no ONNX rule. */
export function unsupported(model: string, what: string): never {
  throw new LensError('MODEL_UNSUPPORTED', `cannot compile ${model} for onnxruntime: ${what}`);
}

/** Explicit [begin, end] pads per spatial axis for Keras 'same'/'valid' (TF puts the odd pixel at the end). */
function spatialPads(padding: unknown, input: number, kernel: number, stride: number, dilation: number): [number, number] {
  if (padding === 'valid') return [0, 0];
  if (padding !== 'same') throw new LensError('MODEL_UNSUPPORTED', `padding "${String(padding)}" is not supported`);
  const out = Math.ceil(input / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - input, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function outputSize(input: number, kernel: number, stride: number, dilation: number, pads: [number, number]): number {
  return Math.floor((input + pads[0] + pads[1] - (kernel - 1) * dilation - 1) / stride) + 1;
}

/** Keras kernel [kh,kw,cin,cout] -> ONNX [cout,cin,kh,kw]. */
export function convKernel(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++) out[((o * cin + c) * kh + i) * kw + j] = k[((i * kw + j) * cin + c) * cout + o]!;
  return out;
}

/** Keras depthwise kernel [kh,kw,cin,mult] -> ONNX grouped [cin*mult,1,kh,kw]. */
export function depthwiseKernel(k: Float32Array, kh: number, kw: number, cin: number, mult: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let c = 0; c < cin; c++)
        for (let m = 0; m < mult; m++) out[((c * mult + m) * kh + i) * kw + j] = k[((i * kw + j) * cin + c) * mult + m]!;
  return out;
}

/**
 * Weights [cout, cin/G, kh, kw] of a G-group convolution -> the weights [cin, cout/G, kh, kw] of
 * the convolution computing its input gradient: in and out channels swapped within each group,
 * kernel rotated by 180 degrees.
 */
function flipTransposeKernel(wt: Float32Array, cout: number, cin: number, kh: number, kw: number, group: number): Float32Array {
  const cinG = cin / group;
  const coutG = cout / group;
  const out = new Float32Array(wt.length);
  for (let gi = 0; gi < group; gi++)
    for (let a = 0; a < cinG; a++)
      for (let b = 0; b < coutG; b++)
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const src = (((gi * coutG + b) * cinG + a) * kh + (kh - 1 - i)) * kw + (kw - 1 - j);
            out[(((gi * cinG + a) * coutG + b) * kh + i) * kw + j] = wt[src]!;
          }
  return out;
}

export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/**
 * Emits the graph of one model: forward nodes as layers (or graph nodes) are visited, backward
 * rules on a tape. Shared by the LayersModel and the TensorFlow graph compilers.
 *
 * @example
 * const cc = new Compiler('net');
 * const x = cc.preprocess(cc.g.input('pixels', [cc.g.dynamic('N'), 32, 32, 3]), [32, 32, 3], 'unit');
 * const y = cc.activation('relu', x, 'relu');
 */
export class Compiler {
  readonly g: OnnxGraphBuilder;
  readonly tape: TapeEntry[] = [];
  readonly layerCounts: Record<string, number> = {};
  private zero?: string;
  private batchAxis?: string;

  constructor(readonly modelName: string) {
    this.g = new OnnxGraphBuilder(modelName);
  }

  private zeroScalar(): string {
    return (this.zero ??= this.g.scalar('zero', 0));
  }

  private axes23(): string {
    return (this.batchAxis ??= this.g.ints('axes_hw', [2, 3]));
  }

  record(inputs: Value[], output: Value, backward: TapeEntry['backward']): Value {
    this.tape.push({ inputs, output, backward });
    return output;
  }

  /** Pixels NHWC -> preprocessed NCHW. */
  preprocess(pixels: string, shape: [number, number, number], name: PreprocessingName): Value {
    const g = this.g;
    const [h, w, c] = shape;
    const affine = affineOf(name);
    const identityOrder = affine.channelOrder.every((ch, i) => ch === i);
    const isIdentity = identityOrder && affine.scale.every((s) => s === 1) && affine.offset.every((o) => o === 0);
    let x = pixels;
    let inverse: number[] | undefined;
    if (!identityOrder) {
      if (c !== affine.channelOrder.length) unsupported(this.modelName, `preprocessing ${name} reorders ${affine.channelOrder.length} channels but the input has ${c}`);
      const inv = new Array<number>(c);
      affine.channelOrder.forEach((from, to) => (inv[from] = to));
      inverse = inv;
      x = g.op('Gather', [x, g.ints('channel_order', affine.channelOrder)], { axis: { i: 3 } }, 'pixels_reordered');
    }
    let scale: string | undefined;
    if (!isIdentity) {
      scale = g.constant('pre_scale', Float32Array.from(affine.scale.slice(0, c)), [c]);
      x = g.op('Add', [g.op('Mul', [x, scale]), g.constant('pre_offset', Float32Array.from(affine.offset.slice(0, c)), [c])], {}, 'preprocessed');
    }
    const out: Value = { name: g.op('Transpose', [x], { perm: { ints: [0, 3, 1, 2] } }, 'input_nchw'), shape: [c, h, w] };
    const input: Value = { name: pixels, shape: [h, w, c] };
    return this.record([input], out, (grad) => {
      let gx = g.op('Transpose', [grad], { perm: { ints: [0, 2, 3, 1] } }, 'grad_nhwc');
      if (scale) gx = g.op('Mul', [gx, scale]);
      if (inverse) gx = g.op('Gather', [gx, g.ints('channel_order_inverse', inverse)], { axis: { i: 3 } }, 'grad_pixels_order');
      return [gx];
    });
  }

  /**
   * An elementwise activation by its tfjs-layers name (TensorFlow ops map to these). `alpha` is
   * LeakyReLU's negative slope (default 0.2, as TensorFlow's op) or ELU's scale (default 1).
   */
  activation(kind: string, x: Value, hint: string, alpha?: number): Value {
    const g = this.g;
    switch (kind) {
      case 'linear':
        return x;
      case 'leakyRelu': {
        const slope = alpha ?? 0.2;
        const y: Value = { name: g.op('LeakyRelu', [x.name], { alpha: { f: slope } }, hint), shape: x.shape };
        return this.record([x], y, (grad) => [g.op('Where', [g.op('Greater', [x.name, this.zeroScalar()]), grad, g.op('Mul', [grad, g.scalar(`${hint}_alpha`, slope)])], {}, `${hint}_grad`)]);
      }
      case 'elu': {
        // dy/dx = 1 for x > 0, alpha e^x = y + alpha below.
        const scale = alpha ?? 1;
        const y: Value = { name: g.op('Elu', [x.name], { alpha: { f: scale } }, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          const below = g.op('Mul', [grad, g.op('Add', [y.name, g.scalar(`${hint}_alpha`, scale)])]);
          return [g.op('Where', [g.op('Greater', [x.name, this.zeroScalar()]), grad, below], {}, `${hint}_grad`)];
        });
      }
      case 'hardSigmoid': {
        // tfjs-layers: clip(0.2 x + 0.5, 0, 1); the slope 0.2 inside the clip range, 0 outside.
        const y: Value = { name: g.op('HardSigmoid', [x.name], { alpha: { f: 0.2 }, beta: { f: 0.5 } }, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          const inside = g.op('And', [g.op('Greater', [y.name, this.zeroScalar()]), g.op('Less', [y.name, g.scalar('one', 1)])]);
          return [g.op('Where', [inside, g.op('Mul', [grad, g.scalar(`${hint}_slope`, 0.2)]), this.zeroScalar()], {}, `${hint}_grad`)];
        });
      }
      case 'softplus': {
        const y: Value = { name: g.op('Softplus', [x.name], {}, hint), shape: x.shape };
        return this.record([x], y, (grad) => [g.op('Mul', [grad, g.op('Sigmoid', [x.name])], {}, `${hint}_grad`)]);
      }
      case 'relu': {
        const y: Value = { name: g.op('Relu', [x.name], {}, hint), shape: x.shape };
        return this.record([x], y, (grad) => [g.op('Where', [g.op('Greater', [y.name, this.zeroScalar()]), grad, this.zeroScalar()], {}, `${hint}_grad`)]);
      }
      case 'relu6': {
        const six = g.scalar('six', 6);
        const y: Value = { name: g.op('Clip', [x.name, this.zeroScalar(), six], {}, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          const inside = g.op('And', [g.op('Greater', [y.name, this.zeroScalar()]), g.op('Less', [y.name, six])]);
          return [g.op('Where', [inside, grad, this.zeroScalar()], {}, `${hint}_grad`)];
        });
      }
      case 'sigmoid': {
        const y: Value = { name: g.op('Sigmoid', [x.name], {}, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          const one = g.scalar('one', 1);
          return [g.op('Mul', [grad, g.op('Mul', [y.name, g.op('Sub', [one, y.name])])], {}, `${hint}_grad`)];
        });
      }
      case 'tanh': {
        const y: Value = { name: g.op('Tanh', [x.name], {}, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          const one = g.scalar('one', 1);
          return [g.op('Mul', [grad, g.op('Sub', [one, g.op('Mul', [y.name, y.name])])], {}, `${hint}_grad`)];
        });
      }
      case 'swish': {
        const s = g.op('Sigmoid', [x.name]);
        const y: Value = { name: g.op('Mul', [x.name, s], {}, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          // d(x s(x))/dx = s + x s (1 - s) = s (1 + x (1 - s))
          const one = g.scalar('one', 1);
          const inner = g.op('Add', [one, g.op('Mul', [x.name, g.op('Sub', [one, s])])]);
          return [g.op('Mul', [grad, g.op('Mul', [s, inner])], {}, `${hint}_grad`)];
        });
      }
      case 'softmax': {
        if (x.shape.length !== 1) unsupported(this.modelName, `softmax over a ${x.shape.length + 1}-D tensor (${hint})`);
        const y: Value = { name: g.op('Softmax', [x.name], { axis: { i: 1 } }, hint), shape: x.shape };
        return this.record([x], y, (grad) => {
          // dx = y * (g - sum(g * y))
          const dot = g.op('ReduceSum', [g.op('Mul', [grad, y.name]), g.ints('axis1', [1])], { keepdims: { i: 1 } });
          return [g.op('Mul', [y.name, g.op('Sub', [grad, dot])], {}, `${hint}_grad`)];
        });
      }
      default:
        return unsupported(this.modelName, `activation "${kind}" (${hint}) has no backward rule here`);
    }
  }

  /** A (possibly grouped) convolution with ONNX weights [cout, cin/group, kh, kw]. */
  /** `pads` [[top, bottom], [left, right]] replaces `padding` when given (TensorFlow's EXPLICIT padding). */
  conv(
    x: Value,
    weights: Float32Array,
    bias: Float32Array | undefined,
    p: { cout: number; kernel: [number, number]; strides: [number, number]; dilations: [number, number]; padding: unknown; pads?: readonly [[number, number], [number, number]]; group: number; hint: string },
  ): Value {
    if (x.shape.length !== 3) unsupported(this.modelName, `${p.hint} takes a ${x.shape.length + 1}-D input`);
    const g = this.g;
    const [cin, h, w] = x.shape as [number, number, number];
    const padH = p.pads ? p.pads[0] : spatialPads(p.padding, h, p.kernel[0], p.strides[0], p.dilations[0]);
    const padW = p.pads ? p.pads[1] : spatialPads(p.padding, w, p.kernel[1], p.strides[1], p.dilations[1]);
    const ho = outputSize(h, p.kernel[0], p.strides[0], p.dilations[0], padH);
    const wo = outputSize(w, p.kernel[1], p.strides[1], p.dilations[1], padW);
    const wName = g.constant(`${p.hint}_w`, weights, [p.cout, cin / p.group, p.kernel[0], p.kernel[1]]);
    const inputs = [x.name, wName];
    if (bias) inputs.push(g.constant(`${p.hint}_b`, bias, [p.cout]));
    const attrs = {
      kernel_shape: { ints: p.kernel },
      strides: { ints: p.strides },
      dilations: { ints: p.dilations },
      pads: { ints: [padH[0], padW[0], padH[1], padW[1]] },
      group: { i: p.group },
    };
    const y: Value = { name: g.op('Conv', inputs, attrs, p.hint), shape: [p.cout, ho, wo] };
    return this.record([x], y, (grad) => {
      const unitStride = p.strides[0] === 1 && p.strides[1] === 1;
      const pointwise = p.kernel[0] === 1 && p.kernel[1] === 1 && padH[0] + padH[1] + padW[0] + padW[1] === 0;
      if (unitStride || pointwise) {
        // A stride-1 convolution's input gradient is a convolution of the output gradient with
        // the filters flipped and in/out swapped, padded by (k-1)*d minus the forward pads: it
        // runs on the same fast kernels (and layout) as the forward pass, unlike ConvTranspose.
        const flipped = g.constant(`${p.hint}_w_flipped`, flipTransposeKernel(weights, p.cout, cin, p.kernel[0], p.kernel[1], p.group), [cin, p.cout / p.group, p.kernel[0], p.kernel[1]]);
        const span = [(p.kernel[0] - 1) * p.dilations[0], (p.kernel[1] - 1) * p.dilations[1]] as const;
        const dx = g.op('Conv', [grad, flipped], {
          kernel_shape: { ints: p.kernel },
          dilations: { ints: p.dilations },
          pads: { ints: [span[0] - padH[0], span[1] - padW[0], span[0] - padH[1], span[1] - padW[1]] },
          group: { i: p.group },
        }, unitStride ? `${p.hint}_grad` : `${p.hint}_grad_sparse`);
        return [unitStride ? dx : this.spreadStrided(dx, cin, ho, wo, h, w, p.strides, `${p.hint}_grad`)];
      }
      // Other strided convolutions: the transposed convolution with the same weights;
      // output_padding restores the rows/columns the forward pass dropped.
      const outPad = [h + padH[0] + padH[1] - (p.strides[0] * (ho - 1) + (p.kernel[0] - 1) * p.dilations[0] + 1), w + padW[0] + padW[1] - (p.strides[1] * (wo - 1) + (p.kernel[1] - 1) * p.dilations[1] + 1)];
      return [g.op('ConvTranspose', [grad, wName], { ...attrs, output_padding: { ints: outPad } }, `${p.hint}_grad`)];
    });
  }

  /**
   * Places [N,C,Ho,Wo] at every stride-th pixel of a zero [N,C,H,W] tensor (the input gradient of a
   * strided 1x1 convolution): interleave zeros by padding inner unit axes, then crop.
   */
  private spreadStrided(x: string, c: number, ho: number, wo: number, h: number, w: number, strides: [number, number], hint: string): string {
    const g = this.g;
    const [sh, sw] = strides;
    const six = g.op('Unsqueeze', [x, g.ints(`${hint}_axes`, [3, 5])]);
    const padded = g.op('Pad', [six, g.ints(`${hint}_interleave`, [0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1])]);
    const dense = g.op('Reshape', [padded, g.ints(`${hint}_dense_shape`, [-1, c, ho * sh, wo * sw])]);
    if (ho * sh === h && wo * sw === w) return g.op('Identity', [dense], {}, hint);
    return g.op('Slice', [dense, g.ints(`${hint}_starts`, [0, 0]), g.ints(`${hint}_ends`, [h, w]), this.axes23()], {}, hint);
  }

  /** y = x * scale[c] + offset[c] over the channel axis (a batch norm that could not be folded, Rescaling). */
  channelAffine(x: Value, scale: Float32Array, offset: Float32Array, hint: string): Value {
    const g = this.g;
    const c = x.shape[0]!;
    const dims = x.shape.length === 3 ? [c, 1, 1] : [c];
    const s = g.constant(`${hint}_scale`, scale, dims);
    const y: Value = { name: g.op('Add', [g.op('Mul', [x.name, s]), g.constant(`${hint}_offset`, offset, dims)], {}, hint), shape: x.shape };
    return this.record([x], y, (grad) => [g.op('Mul', [grad, s], {}, `${hint}_grad`)]);
  }

  /**
   * max(x, c) or min(x, c) with one constant per channel (a ReLU capped at a value, the clipped
   * sides of hard sigmoid). Backward: the gradient flows where x is the result.
   */
  bound(op: 'Max' | 'Min', x: Value, bound: Float32Array, hint: string): Value {
    const g = this.g;
    const c = g.constant(`${hint}_bound`, bound, x.shape.length === 3 ? [bound.length, 1, 1] : [bound.length]);
    const y: Value = { name: g.op(op, [x.name, c], {}, hint), shape: x.shape };
    return this.record([x], y, (grad) => [g.op('Where', [g.op(op === 'Max' ? 'GreaterOrEqual' : 'LessOrEqual', [x.name, c]), grad, this.zeroScalar()], {}, `${hint}_grad`)]);
  }

  dense(x: Value, kernel: Float32Array, bias: Float32Array | undefined, units: number, hint: string): Value {
    if (x.shape.length !== 1) unsupported(this.modelName, `Dense layer ${hint} applied to a ${x.shape.length + 1}-D tensor`);
    const g = this.g;
    const features = x.shape[0]!;
    const inputs = [x.name, g.constant(`${hint}_w`, kernel, [features, units])];
    if (bias) inputs.push(g.constant(`${hint}_b`, bias, [units]));
    const y: Value = { name: g.op('Gemm', inputs, {}, hint), shape: [units] };
    return this.record([x], y, (grad) => [g.op('MatMul', [grad, g.constant(`${hint}_wt`, transpose2d(kernel, features, units), [units, features])], {}, `${hint}_grad`)]);
  }

  add(xs: Value[], hint: string): Value {
    const shape = xs[0]!.shape;
    if (xs.some((v) => v.shape.join() !== shape.join())) unsupported(this.modelName, `${hint} adds tensors of different shapes (broadcasting)`);
    const y: Value = { name: this.g.op('Sum', xs.map((v) => v.name), {}, hint), shape };
    return this.record(xs, y, (grad) => xs.map(() => grad));
  }

  /**
   * Elementwise product of activations of one rank, broadcasting dims of 1 (squeeze-and-excitation
   * scales [C,H,W] by [C,1,1]; swish written as x * sigmoid(x)). Backward: the product rule, each
   * operand's gradient summed over the axes it was broadcast along.
   */
  multiply(xs: Value[], hint: string): Value {
    if (xs.length < 2) unsupported(this.modelName, `${hint} multiplies ${xs.length} tensor(s)`);
    let y = xs[0]!;
    for (let k = 1; k < xs.length; k++) y = this.multiplyPair(y, xs[k]!, k === xs.length - 1 ? hint : `${hint}_${k}`);
    return y;
  }

  private multiplyPair(a: Value, b: Value, hint: string): Value {
    const describe = (v: Value) => `[N,${(v.shape.length === 3 ? [v.shape[1], v.shape[2], v.shape[0]] : v.shape).join(',')}]`;
    const incompatible = a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i] && d !== 1 && b.shape[i] !== 1);
    if (incompatible) unsupported(this.modelName, `${hint} multiplies ${describe(a)} by ${describe(b)} (only equal ranks whose dims match or are 1)`);
    const g = this.g;
    const shape = a.shape.map((d, i) => Math.max(d, b.shape[i]!));
    const y: Value = { name: g.op('Mul', [a.name, b.name], {}, hint), shape };
    /** Sums a full-shape gradient down to `v`'s shape (axes where v has 1 and the product does not). */
    const gradOf = (grad: string, v: Value, other: Value, which: string): string => {
      const axes = v.shape.flatMap((d, i) => (d === 1 && shape[i] !== 1 ? [i + 1] : []));
      if (axes.length === 0) return g.op('Mul', [grad, other.name], {}, `${hint}_grad_${which}`);
      return g.op('ReduceSum', [g.op('Mul', [grad, other.name]), g.ints(`${hint}_${which}_axes`, axes)], { keepdims: { i: 1 } }, `${hint}_grad_${which}`);
    };
    return this.record([a, b], y, (grad) => [gradOf(grad, a, b, 'a'), gradOf(grad, b, a, 'b')]);
  }

  concat(xs: Value[], axis: number, hint: string): Value {
    const rank = xs[0]!.shape.length + 1;
    const a = axis < 0 ? axis + rank : axis;
    // Keras axes are NHWC; the channel axis is 1 in NCHW, and 2-D tensors keep theirs.
    if (!((rank === 4 && a === 3) || (rank === 2 && a === 1))) unsupported(this.modelName, `${hint} concatenates along axis ${axis}, not channels`);
    const g = this.g;
    const sizes = xs.map((v) => v.shape[0]!);
    const shape = [sizes.reduce((p, q) => p + q, 0), ...xs[0]!.shape.slice(1)];
    const y: Value = { name: g.op('Concat', xs.map((v) => v.name), { axis: { i: 1 } }, hint), shape };
    return this.record(xs, y, (grad) => g.multi('Split', [grad, g.ints(`${hint}_split`, sizes)], sizes.map((_, i) => `${hint}_grad${i}`), { axis: { i: 1 } }));
  }

  maxPool(x: Value, kernel: [number, number], strides: [number, number], padding: unknown, hint: string): Value {
    const g = this.g;
    const [c, h, w] = x.shape as [number, number, number];
    const padH = spatialPads(padding, h, kernel[0], strides[0], 1);
    const padW = spatialPads(padding, w, kernel[1], strides[1], 1);
    const [y, indices] = g.multi('MaxPool', [x.name], [hint, `${hint}_argmax`], {
      kernel_shape: { ints: kernel },
      strides: { ints: strides },
      pads: { ints: [padH[0], padW[0], padH[1], padW[1]] },
    });
    const out: Value = { name: y!, shape: [c, outputSize(h, kernel[0], strides[0], 1, padH), outputSize(w, kernel[1], strides[1], 1, padW)] };
    return this.record([x], out, (grad) => {
      // Each output's gradient goes to the input element that was its maximum; windows overlap,
      // so contributions to one element add up. Indices are flat over the whole NCHW tensor.
      const flat = g.ints('flat', [-1]);
      const shape = g.op('Shape', [x.name]);
      const zeros = g.op('Reshape', [g.op('ConstantOfShape', [shape]), flat]);
      const scattered = g.op('ScatterElements', [zeros, g.op('Reshape', [indices!, flat]), g.op('Reshape', [grad, flat])], { axis: { i: 0 }, reduction: { s: 'add' } });
      return [g.op('Reshape', [scattered, shape], {}, `${hint}_grad`)];
    });
  }

  avgPool(x: Value, kernel: [number, number], strides: [number, number], padding: unknown, hint: string): Value {
    const g = this.g;
    const [c, h, w] = x.shape as [number, number, number];
    const padH = spatialPads(padding, h, kernel[0], strides[0], 1);
    const padW = spatialPads(padding, w, kernel[1], strides[1], 1);
    const ho = outputSize(h, kernel[0], strides[0], 1, padH);
    const wo = outputSize(w, kernel[1], strides[1], 1, padW);
    const pads = [padH[0], padW[0], padH[1], padW[1]];
    const y: Value = {
      name: g.op('AveragePool', [x.name], { kernel_shape: { ints: kernel }, strides: { ints: strides }, pads: { ints: pads }, count_include_pad: { i: 0 } }, hint),
      shape: [c, ho, wo],
    };
    return this.record([x], y, (grad) => {
      // Keras averages over the window's pixels inside the image: divide by that count, then
      // spread each output back over its window with a transposed convolution of ones.
      const inverseCount = new Float32Array(ho * wo);
      for (let i = 0; i < ho; i++) {
        const rows = Math.min(i * strides[0] - padH[0] + kernel[0], h) - Math.max(i * strides[0] - padH[0], 0);
        for (let j = 0; j < wo; j++) {
          const cols = Math.min(j * strides[1] - padW[0] + kernel[1], w) - Math.max(j * strides[1] - padW[0], 0);
          inverseCount[i * wo + j] = 1 / (rows * cols);
        }
      }
      const scaled = g.op('Mul', [grad, g.constant(`${hint}_inverse_count`, inverseCount, [1, 1, ho, wo])]);
      const ones = g.constant(`${hint}_ones`, new Float32Array(c * kernel[0] * kernel[1]).fill(1), [c, 1, kernel[0], kernel[1]]);
      const outPad = [h + padH[0] + padH[1] - (strides[0] * (ho - 1) + kernel[0]), w + padW[0] + padW[1] - (strides[1] * (wo - 1) + kernel[1])];
      return [
        g.op('ConvTranspose', [scaled, ones], { kernel_shape: { ints: kernel }, strides: { ints: strides }, pads: { ints: pads }, group: { i: c }, output_padding: { ints: outPad } }, `${hint}_grad`),
      ];
    });
  }

  /** Mean over H and W: [C] by default, [C,1,1] with `keepDims`. */
  globalAvgPool(x: Value, hint: string, keepDims = false): Value {
    const g = this.g;
    const [c, h, w] = x.shape as [number, number, number];
    const y: Value = keepDims
      ? { name: g.op('GlobalAveragePool', [x.name], {}, hint), shape: [c, 1, 1] }
      : { name: g.op('Flatten', [g.op('GlobalAveragePool', [x.name], {}, `${hint}_4d`)], { axis: { i: 1 } }, hint), shape: [c] };
    return this.record([x], y, (grad) => {
      const spread = g.op('Expand', [keepDims ? grad : g.op('Unsqueeze', [grad, this.axes23()]), g.op('Shape', [x.name])]);
      return [g.op('Mul', [spread, g.scalar(`${hint}_inverse_area`, 1 / (h * w))], {}, `${hint}_grad`)];
    });
  }

  zeroPad(x: Value, top: number, bottom: number, left: number, right: number, hint: string): Value {
    const g = this.g;
    const [c, h, w] = x.shape as [number, number, number];
    const y: Value = { name: g.op('Pad', [x.name, g.ints(`${hint}_pads`, [0, 0, top, left, 0, 0, bottom, right])], {}, hint), shape: [c, h + top + bottom, w + left + right] };
    return this.record([x], y, (grad) => [g.op('Slice', [grad, g.ints(`${hint}_starts`, [top, left]), g.ints(`${hint}_ends`, [top + h, left + w]), this.axes23()], {}, `${hint}_grad`)]);
  }

  /**
   * Nearest-neighbour upsampling by integer factors: every pixel repeated over a [sh, sw] block
   * (TensorFlow's nearest resize at an integer scale, with or without half-pixel centres: both
   * read source pixel floor(dst / s)). Backward: the sum over each block.
   */
  upsampleNearest(x: Value, scale: [number, number], hint: string): Value {
    if (x.shape.length !== 3) unsupported(this.modelName, `${hint} upsamples a ${x.shape.length + 1}-D tensor`);
    const g = this.g;
    const [c, h, w] = x.shape as [number, number, number];
    const [sh, sw] = scale;
    const scales = g.constant(`${hint}_scales`, Float32Array.from([1, 1, sh, sw]), [4]);
    const attrs = { mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' } };
    const y: Value = { name: g.op('Resize', [x.name, '', scales], attrs, hint), shape: [c, h * sh, w * sw] };
    return this.record([x], y, (grad) => {
      const blocks = g.op('Reshape', [grad, g.ints(`${hint}_blocks`, [-1, c, h, sh, w, sw])]);
      return [g.op('ReduceSum', [blocks, g.ints(`${hint}_block_axes`, [3, 5])], { keepdims: { i: 0 } }, `${hint}_grad`)];
    });
  }

  /** [F] -> [F,1,1]: the reshape of features to a 1x1 image, where NHWC and NCHW orders agree. */
  toPixel(x: Value, hint: string): Value {
    const g = this.g;
    const f = x.shape[0]!;
    const y: Value = { name: g.op('Reshape', [x.name, g.ints(`${hint}_shape`, [0, f, 1, 1])], {}, hint), shape: [f, 1, 1] };
    return this.record([x], y, (grad) => [g.op('Reshape', [grad, g.ints(`${hint}_back_shape`, [0, f])], {}, `${hint}_grad`)]);
  }

  /**
   * Reshapes that keep each image's data, with `dims` the NHWC target without the batch (one -1
   * allowed): no change, flattening to [F], and [F] -> [1,1,F] (squeeze-and-excitation).
   * `subject` names the layer or node in errors.
   */
  reshape(x: Value, dims: readonly number[], hint: string, subject = hint): Value {
    const size = x.shape.reduce((p, q) => p * q, 1);
    const current = x.shape.length === 3 ? [x.shape[1]!, x.shape[2]!, x.shape[0]!] : [...x.shape];
    const unknown = dims.filter((d) => d === -1).length;
    const known = dims.reduce((p, d) => (d === -1 ? p : p * d), 1);
    const target = unknown === 1 && known > 0 && size % known === 0 ? dims.map((d) => (d === -1 ? size / known : d)) : [...dims];
    if (unknown > 1 || target.some((d) => d <= 0) || target.reduce((p, d) => p * d, 1) !== size) {
      unsupported(this.modelName, `${subject} reshapes [N,${current.join(',')}] to [N,${dims.join(',')}]`);
    }
    if (target.join() === current.join()) return x;
    if (target.length === 1) return this.flatten(x, hint);
    if (target.length === 3 && target[0] === 1 && target[1] === 1) return x.shape.length === 1 ? this.toPixel(x, hint) : this.toPixel(this.flatten(x, `${hint}_flat`), hint);
    return unsupported(this.modelName, `${subject} reshapes [N,${current.join(',')}] to [N,${target.join(',')}] (only flattening, and features to [1,1,F])`);
  }

  /** Keras Flatten of NHWC data: channel-last order, so transpose back before reshaping. */
  flatten(x: Value, hint: string): Value {
    if (x.shape.length === 1) return x;
    const g = this.g;
    const [c, h, w] = x.shape as [number, number, number];
    const nhwc = g.op('Transpose', [x.name], { perm: { ints: [0, 2, 3, 1] } });
    const y: Value = { name: g.op('Reshape', [nhwc, g.ints(`${hint}_shape`, [0, -1])], {}, hint), shape: [c * h * w] };
    return this.record([x], y, (grad) => {
      const back = g.op('Reshape', [grad, g.ints(`${hint}_back_shape`, [-1, h, w, c])]);
      return [g.op('Transpose', [back], { perm: { ints: [0, 3, 1, 2] } }, `${hint}_grad`)];
    });
  }

  /** Runs the tape backwards from the gradient of `output` and returns the gradient of `input`. */
  backward(output: Value, seed: string, input: Value): string {
    const g = this.g;
    const pending = new Map<string, string[]>([[output.name, [seed]]]);
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const step = this.tape[i]!;
      const parts = pending.get(step.output.name);
      if (!parts) continue;
      pending.delete(step.output.name);
      const grad = parts.length === 1 ? parts[0]! : g.op('Sum', parts, {}, `${step.output.name}_grad_sum`);
      const grads = step.backward(grad);
      step.inputs.forEach((v, k) => {
        const gk = grads[k];
        if (gk === undefined) return;
        const list = pending.get(v.name);
        if (list) list.push(gk);
        else pending.set(v.name, [gk]);
      });
    }
    const parts = pending.get(input.name);
    if (!parts) throw new LensError('INTERNAL', `${this.modelName}: the scores do not depend on the input`);
    return parts.length === 1 ? parts[0]! : g.op('Sum', parts);
  }
}

/**
 * Declares the scores output (forward graph), then the seed input, the backward pass and the
 * gradients output (gradient graph) of a compiler whose forward pass is emitted.
 *
 * @example
 * return assembleCompiled(cc, { pixels, batch, inputShape, scores, logits: false, finalSoftmax: false });
 */
export function assembleCompiled(
  cc: Compiler,
  io: { pixels: string; batch: OnnxDim; inputShape: [number, number, number]; scores: Value; logits: boolean; finalSoftmax: boolean },
): CompiledModel {
  const { g } = cc;
  const { pixels, batch, inputShape, scores } = io;
  if (scores.shape.length !== 1) unsupported(cc.modelName, `the scores have shape [N,${scores.shape.join(',')}], not [N, classes]`);
  const classes = scores.shape[0]!;
  g.output(scores.name, 'scores', [batch, classes]);
  const forward = g.encode({ 'serving-lens.graph': 'forward' });

  const seed = g.input('seed', [batch, classes]);
  const grad = cc.backward(scores, seed, { name: pixels, shape: inputShape });
  g.output(grad, 'gradients', [batch, ...inputShape]);
  const gradient = g.encode({ 'serving-lens.graph': 'gradient' });
  const sizes = cc.tape.map((t) => t.output.shape.reduce((a, b) => a * b, 1) * 4);
  const largest = sizes.reduce((a, b) => Math.max(a, b), inputShape[0] * inputShape[1] * inputShape[2] * 4);
  const kept = sizes.reduce((a, b) => a + b, 0);
  return {
    forward,
    gradient,
    inputShape,
    classes,
    logits: io.logits,
    finalSoftmax: io.finalSoftmax,
    weightBytes: g.constantBytes,
    bytesPerImage: { forward: 3 * largest, gradient: kept + 3 * largest },
    layers: cc.layerCounts,
  };
}
