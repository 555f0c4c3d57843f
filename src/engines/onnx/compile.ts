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

/**
 * Emits the graph of one model: forward nodes as graph nodes are visited (by the op rules in
 * ops/), backward rules on a tape.
 *
 * @example
 * const cc = new Compiler('net');
 * const x = cc.preprocess(cc.g.input('pixels', [cc.g.dynamic('N'), 32, 32, 3]), [32, 32, 3], 'unit');
 * const y = activation(cc, 'relu', x, 'relu');   // ops/activation.ts
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

  /** The float scalar 0, shared by the rules. */
  zeroScalar(): string {
    return (this.zero ??= this.g.scalar('zero', 0));
  }

  /** The int64 axes [2, 3] (H and W of NCHW), shared by the rules. */
  axes23(): string {
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
