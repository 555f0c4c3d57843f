/**
 * Elementwise ops: sums and products of activations (residual adds, squeeze-and-excitation,
 * swish), per-channel affine maps (BiasAdd, a batch norm left unfolded, Add/Sub/Mul/RealDiv with a
 * constant), bounds (Maximum/Minimum with a constant), and constant folding (Neg, Sqrt, Rsqrt,
 * Floor, arithmetic on constants, TF1 dropout at keep probability 1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchNormAffine } from '../../../graph/batchnorm.js';
import { unsupported, type Compiler, type Value } from '../compile.js';
import { sameRule, type Const, type Known, type OnnxOpRule } from './rule.js';

/** y = x * scale[c] + offset[c] over the channel axis (a batch norm that could not be folded, Rescaling). */
export function channelAffine(cc: Compiler, x: Value, scale: Float32Array, offset: Float32Array, hint: string): Value {
  const g = cc.g;
  const c = x.shape[0]!;
  const dims = x.shape.length === 3 ? [c, 1, 1] : [c];
  const s = g.constant(`${hint}_scale`, scale, dims);
  const y: Value = { name: g.op('Add', [g.op('Mul', [x.name, s]), g.constant(`${hint}_offset`, offset, dims)], {}, hint), shape: x.shape };
  return cc.record([x], y, (grad) => [g.op('Mul', [grad, s], {}, `${hint}_grad`)]);
}

/**
 * max(x, c) or min(x, c) with one constant per channel (a ReLU capped at a value, the clipped
 * sides of hard sigmoid). Backward: the gradient flows where x is the result.
 */
export function bound(cc: Compiler, op: 'Max' | 'Min', x: Value, bound: Float32Array, hint: string): Value {
  const g = cc.g;
  const c = g.constant(`${hint}_bound`, bound, x.shape.length === 3 ? [bound.length, 1, 1] : [bound.length]);
  const y: Value = { name: g.op(op, [x.name, c], {}, hint), shape: x.shape };
  return cc.record([x], y, (grad) => [g.op('Where', [g.op(op === 'Max' ? 'GreaterOrEqual' : 'LessOrEqual', [x.name, c]), grad, cc.zeroScalar()], {}, `${hint}_grad`)]);
}

export function add(cc: Compiler, xs: Value[], hint: string): Value {
  const shape = xs[0]!.shape;
  if (xs.some((v) => v.shape.join() !== shape.join())) unsupported(cc.modelName, `${hint} adds tensors of different shapes (broadcasting)`);
  const y: Value = { name: cc.g.op('Sum', xs.map((v) => v.name), {}, hint), shape };
  return cc.record(xs, y, (grad) => xs.map(() => grad));
}

/**
 * Elementwise product of activations of one rank, broadcasting dims of 1 (squeeze-and-excitation
 * scales [C,H,W] by [C,1,1]; swish written as x * sigmoid(x)). Backward: the product rule, each
 * operand's gradient summed over the axes it was broadcast along.
 */
export function multiply(cc: Compiler, a: Value, b: Value, hint: string): Value {
  const describe = (v: Value) => `[N,${(v.shape.length === 3 ? [v.shape[1], v.shape[2], v.shape[0]] : v.shape).join(',')}]`;
  const incompatible = a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i] && d !== 1 && b.shape[i] !== 1);
  if (incompatible) unsupported(cc.modelName, `${hint} multiplies ${describe(a)} by ${describe(b)} (only equal ranks whose dims match or are 1)`);
  const g = cc.g;
  const shape = a.shape.map((d, i) => Math.max(d, b.shape[i]!));
  const y: Value = { name: g.op('Mul', [a.name, b.name], {}, hint), shape };
  /** Sums a full-shape gradient down to `v`'s shape (axes where v has 1 and the product does not). */
  const gradOf = (grad: string, v: Value, other: Value, which: string): string => {
    const axes = v.shape.flatMap((d, i) => (d === 1 && shape[i] !== 1 ? [i + 1] : []));
    if (axes.length === 0) return g.op('Mul', [grad, other.name], {}, `${hint}_grad_${which}`);
    return g.op('ReduceSum', [g.op('Mul', [grad, other.name]), g.ints(`${hint}_${which}_axes`, axes)], { keepdims: { i: 1 } }, `${hint}_grad_${which}`);
  };
  return cc.record([a, b], y, (grad) => [gradOf(grad, a, b, 'a'), gradOf(grad, b, a, 'b')]);
}

/** Elementwise op of two constants, with TensorFlow's broadcasting. */
function fold(op: string, a: Const, b: Const): Const {
  return tf.tidy(() => {
    const ta = tf.tensor(a.data, a.shape, a.data instanceof Int32Array ? 'int32' : 'float32');
    const tb = tf.tensor(b.data, b.shape, b.data instanceof Int32Array ? 'int32' : 'float32');
    const r = op === 'Add' ? tf.add(ta, tb) : op === 'Sub' ? tf.sub(ta, tb) : op === 'Mul' ? tf.mul(ta, tb) : op === 'Maximum' ? tf.maximum(ta, tb) : op === 'Minimum' ? tf.minimum(ta, tb) : tf.div(ta, tb);
    return { kind: 'const' as const, data: r.dataSync().slice() as Float32Array | Int32Array, shape: [...r.shape] };
  });
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** A constant that broadcasts over the last (channel or feature) axis of `x`, as one value per channel. */
function perChannel(c: Const, x: Value, fail: (what: string) => never): Float32Array {
  const channels = x.shape[0]!;
  if (c.data.length === 1) return new Float32Array(channels).fill(c.data[0]!);
  const last = c.shape[c.shape.length - 1];
  if (c.shape.length > x.shape.length + 1 || last !== channels || product(c.shape) !== channels) {
    return fail(`uses a constant of shape [${c.shape.join(',')}] on [N,${x.shape.length === 3 ? [x.shape[1], x.shape[2], x.shape[0]].join(',') : x.shape.join(',')}] (only scalars or one value per channel)`);
  }
  return Float32Array.from(c.data);
}

/** Add, Sub, Mul, RealDiv: folded on constants and dropout masks, a sum or product of activations, else x * scale[c] + offset[c]. */
const binary: OnnxOpRule = ({ cc, node, arg, fail, output }) => {
  const [a, b] = [arg(0), arg(1)];
  const op = node.op === 'AddV2' ? 'Add' : node.op;
  if (a.kind === 'const' && b.kind === 'const') return fold(op, a, b);
  if (a.kind === 'uniform' || b.kind === 'uniform') {
    const [u, c] = a.kind === 'uniform' ? [a, b] : [b as Extract<Known, { kind: 'uniform' }>, a];
    if (c.kind !== 'const' || c.data.length !== 1) return fail('combines random numbers with a non-constant');
    const v = c.data[0]!;
    if (op === 'Add') return { kind: 'uniform', lo: u.lo + v, hi: u.hi + v };
    if (op === 'Sub' && a.kind === 'uniform') return { kind: 'uniform', lo: u.lo - v, hi: u.hi - v };
    if (op === 'Mul' && v > 0) return { kind: 'uniform', lo: u.lo * v, hi: u.hi * v };
    if (op === 'RealDiv' && a.kind === 'uniform' && v > 0) return { kind: 'uniform', lo: u.lo / v, hi: u.hi / v };
    return fail('transforms random numbers in a way that has no rule');
  }
  if (a.kind === 'act' && b.kind === 'act') {
    if (op === 'Add') return output(add(cc, [a.value, b.value], node.name));
    if (op === 'Mul') return output(multiply(cc, a.value, b.value, node.name));
    return fail('combines two tensors computed from the image (only their sum and product have rules)');
  }
  if (a.kind === 'shape' || b.kind === 'shape') return fail('computes with a tensor shape');
  const [x, c, constFirst] = a.kind === 'act' ? [a.value, b as Const, false] : [(b as Extract<Known, { kind: 'act' }>).value, a as Const, true];
  const v = perChannel(c, x, fail);
  let scale = new Float32Array(v.length).fill(1);
  let offset = new Float32Array(v.length);
  if (op === 'Add') offset = v;
  else if (op === 'Sub') [scale, offset] = constFirst ? [scale.fill(-1), v] : [scale, v.map((o) => -o)];
  else if (op === 'Mul') scale = v;
  else if (op === 'RealDiv' && !constFirst) scale = v.map((d) => 1 / d);
  else return fail('divides a constant by a tensor computed from the image');
  // Dropout at keep probability 1 divides and multiplies by 1: nothing to emit.
  if (scale.every((s) => s === 1) && offset.every((o) => o === 0)) return { kind: 'act', value: x };
  return output(channelAffine(cc, x, scale, offset, node.name));
};

export const elementwiseRules: Record<string, OnnxOpRule> = {
  ...sameRule(['Add', 'AddV2', 'Sub', 'Mul', 'RealDiv'], binary),
  ...sameRule(['Maximum', 'Minimum'], ({ cc, node, arg, fail, output }) => {
    const [a, b] = [arg(0), arg(1)];
    if (a.kind === 'const' && b.kind === 'const') return fold(node.op, a, b);
    const [x, c] = a.kind === 'act' && b.kind === 'const' ? [a.value, b] : b.kind === 'act' && a.kind === 'const' ? [b.value, a] : fail('takes two tensors computed from the image (only a tensor and a constant have a rule)');
    return output(bound(cc, node.op === 'Maximum' ? 'Max' : 'Min', x, perChannel(c, x, fail), node.name));
  }),
  BiasAdd: ({ cc, node, act, constant, fail, nhwc, output }) => {
    nhwc();
    const x = act(0);
    const bias = perChannel(constant(1), x, fail);
    return output(channelAffine(cc, x, new Float32Array(bias.length).fill(1), bias, node.name));
  },
  // A batch norm that fold.ts could not fold into a convolution before it. Inference form, as tfjs
  // runs it: the given mean and variance, whatever is_training says.
  ...sameRule(['FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3'], ({ cc, node, act, constant, fail, nhwc, output }) => {
    nhwc();
    const x = act(0, 4);
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => perChannel(constant(i), x, fail)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const { scale, offset } = batchNormAffine({ gamma, beta, mean, variance, epsilon: node.attr?.epsilon?.f ?? 1e-4 });
    return output(channelAffine(cc, x, scale, offset, node.name));
  }),
  // Frozen graphs compute normalisation constants in the graph (e.g. rsqrt(var + eps)): fold them.
  ...sameRule(['Neg', 'Sqrt', 'Rsqrt'], ({ node, arg, fail }) => {
    const k = arg(0);
    if (k.kind !== 'const') return fail('applies to values computed from the image (only constants fold)');
    const f = node.op === 'Neg' ? (v: number) => -v : node.op === 'Sqrt' ? Math.sqrt : (v: number) => 1 / Math.sqrt(v);
    return { kind: 'const', data: Float32Array.from(k.data, f), shape: k.shape };
  }),
  Floor: ({ arg, fail }) => {
    const k = arg(0);
    if (k.kind === 'const') return { kind: 'const', data: k.data.map(Math.floor), shape: k.shape };
    // floor(u) of u in [lo, hi) is one number when [lo, hi) lies within one unit interval.
    if (k.kind === 'uniform' && Math.floor(k.lo) === Math.ceil(k.hi) - 1) return { kind: 'const', data: new Float32Array([Math.floor(k.lo)]), shape: [] };
    return fail('rounds values that are not constant');
  },
};
