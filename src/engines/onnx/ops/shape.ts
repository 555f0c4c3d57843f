/**
 * Ops that move data without computing on it: Reshape and Squeeze (per-image flattening, features
 * to a 1x1 image), ConcatV2 over channels, Pad/PadV2 with zeros over the spatial axes, and nearest
 * ResizeNearestNeighbor at integer scales. TensorFlow tensors are NHWC and the compiled graph
 * keeps 4-D activations NCHW, so these rules translate axes; each backward rule undoes the move.
 */
import { unsupported, type Compiler, type Value } from '../compile.js';
import { attrInts } from '../graph-source.js';
import type { OnnxOpRule } from './rule.js';

export function concat(cc: Compiler, xs: Value[], axis: number, hint: string): Value {
  const rank = xs[0]!.shape.length + 1;
  const a = axis < 0 ? axis + rank : axis;
  // Keras axes are NHWC; the channel axis is 1 in NCHW, and 2-D tensors keep theirs.
  if (!((rank === 4 && a === 3) || (rank === 2 && a === 1))) unsupported(cc.modelName, `${hint} concatenates along axis ${axis}, not channels`);
  const g = cc.g;
  const sizes = xs.map((v) => v.shape[0]!);
  const shape = [sizes.reduce((p, q) => p + q, 0), ...xs[0]!.shape.slice(1)];
  const y: Value = { name: g.op('Concat', xs.map((v) => v.name), { axis: { i: 1 } }, hint), shape };
  return cc.record(xs, y, (grad) => g.multi('Split', [grad, g.ints(`${hint}_split`, sizes)], sizes.map((_, i) => `${hint}_grad${i}`), { axis: { i: 1 } }));
}

export function zeroPad(cc: Compiler, x: Value, top: number, bottom: number, left: number, right: number, hint: string): Value {
  const g = cc.g;
  const [c, h, w] = x.shape as [number, number, number];
  const y: Value = { name: g.op('Pad', [x.name, g.ints(`${hint}_pads`, [0, 0, top, left, 0, 0, bottom, right])], {}, hint), shape: [c, h + top + bottom, w + left + right] };
  return cc.record([x], y, (grad) => [g.op('Slice', [grad, g.ints(`${hint}_starts`, [top, left]), g.ints(`${hint}_ends`, [top + h, left + w]), cc.axes23()], {}, `${hint}_grad`)]);
}

/**
 * Nearest-neighbour upsampling by integer factors: every pixel repeated over a [sh, sw] block
 * (TensorFlow's nearest resize at an integer scale, with or without half-pixel centres: both
 * read source pixel floor(dst / s)). Backward: the sum over each block.
 */
export function upsampleNearest(cc: Compiler, x: Value, scale: [number, number], hint: string): Value {
  if (x.shape.length !== 3) unsupported(cc.modelName, `${hint} upsamples a ${x.shape.length + 1}-D tensor`);
  const g = cc.g;
  const [c, h, w] = x.shape as [number, number, number];
  const [sh, sw] = scale;
  const scales = g.constant(`${hint}_scales`, Float32Array.from([1, 1, sh, sw]), [4]);
  const attrs = { mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' } };
  const y: Value = { name: g.op('Resize', [x.name, '', scales], attrs, hint), shape: [c, h * sh, w * sw] };
  return cc.record([x], y, (grad) => {
    const blocks = g.op('Reshape', [grad, g.ints(`${hint}_blocks`, [-1, c, h, sh, w, sw])]);
    return [g.op('ReduceSum', [blocks, g.ints(`${hint}_block_axes`, [3, 5])], { keepdims: { i: 0 } }, `${hint}_grad`)];
  });
}

/** [F] -> [F,1,1]: the reshape of features to a 1x1 image, where NHWC and NCHW orders agree. */
export function toPixel(cc: Compiler, x: Value, hint: string): Value {
  const g = cc.g;
  const f = x.shape[0]!;
  const y: Value = { name: g.op('Reshape', [x.name, g.ints(`${hint}_shape`, [0, f, 1, 1])], {}, hint), shape: [f, 1, 1] };
  return cc.record([x], y, (grad) => [g.op('Reshape', [grad, g.ints(`${hint}_back_shape`, [0, f])], {}, `${hint}_grad`)]);
}

/**
 * Reshapes that keep each image's data, with `dims` the NHWC target without the batch (one -1
 * allowed): no change, flattening to [F], and [F] -> [1,1,F] (squeeze-and-excitation).
 * `subject` names the layer or node in errors.
 */
export function reshape(cc: Compiler, x: Value, dims: readonly number[], hint: string, subject = hint): Value {
  const size = x.shape.reduce((p, q) => p * q, 1);
  const current = x.shape.length === 3 ? [x.shape[1]!, x.shape[2]!, x.shape[0]!] : [...x.shape];
  const unknown = dims.filter((d) => d === -1).length;
  const known = dims.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const target = unknown === 1 && known > 0 && size % known === 0 ? dims.map((d) => (d === -1 ? size / known : d)) : [...dims];
  if (unknown > 1 || target.some((d) => d <= 0) || target.reduce((p, d) => p * d, 1) !== size) {
    unsupported(cc.modelName, `${subject} reshapes [N,${current.join(',')}] to [N,${dims.join(',')}]`);
  }
  if (target.join() === current.join()) return x;
  if (target.length === 1) return flatten(cc, x, hint);
  if (target.length === 3 && target[0] === 1 && target[1] === 1) return x.shape.length === 1 ? toPixel(cc, x, hint) : toPixel(cc, flatten(cc, x, `${hint}_flat`), hint);
  return unsupported(cc.modelName, `${subject} reshapes [N,${current.join(',')}] to [N,${target.join(',')}] (only flattening, and features to [1,1,F])`);
}

/** Keras Flatten of NHWC data: channel-last order, so transpose back before reshaping. */
export function flatten(cc: Compiler, x: Value, hint: string): Value {
  if (x.shape.length === 1) return x;
  const g = cc.g;
  const [c, h, w] = x.shape as [number, number, number];
  const nhwc = g.op('Transpose', [x.name], { perm: { ints: [0, 2, 3, 1] } });
  const y: Value = { name: g.op('Reshape', [nhwc, g.ints(`${hint}_shape`, [0, -1])], {}, hint), shape: [c * h * w] };
  return cc.record([x], y, (grad) => {
    const back = g.op('Reshape', [grad, g.ints(`${hint}_back_shape`, [-1, h, w, c])]);
    return [g.op('Transpose', [back], { perm: { ints: [0, 3, 1, 2] } }, `${hint}_grad`)];
  });
}

export const shapeRules: Record<string, OnnxOpRule> = {
  Reshape: ({ cc, node, act, constant, fail, output }) => {
    const x = act(0);
    const dims = Array.from(constant(1).data);
    if (dims[0] !== -1) return fail(`reshapes [N,${x.shape.join(',')}] to [${dims.join(',')}] (only per-image reshapes with a -1 batch)`);
    return output(reshape(cc, x, dims.slice(1), node.name, `node ${node.name} (Reshape)`));
  },
  Squeeze: ({ cc, node, act, fail, output }) => {
    const x = act(0, 4);
    const [c, h, w] = x.shape as [number, number, number];
    const axes = (attrInts(node, 'squeeze_dims') ?? attrInts(node, 'axis') ?? []).map((a) => (a < 0 ? a + 4 : a)).sort();
    const ok = h === 1 && w === 1 && (axes.join() === '1,2' || (axes.length === 0 && c > 1));
    if (!ok) return fail(`squeezes axes [${axes.join(',')}] of [N,${h},${w},${c}] (only 1x1 spatial axes)`);
    return output(flatten(cc, x, node.name));
  },
  ConcatV2: ({ cc, node, inputs, act, constant, output }) => {
    const xs = inputs.slice(0, -1).map((_, i) => act(i));
    return output(concat(cc, xs, constant(inputs.length - 1).data[0]!, node.name));
  },
  Pad: ({ cc, node, act, constant, fail, output }) => {
    const x = act(0, 4);
    const p = Array.from(constant(1).data);
    if (p.length !== 8 || p[0] !== 0 || p[1] !== 0 || p[6] !== 0 || p[7] !== 0) return fail(`pads [${p.join(',')}] (only the spatial axes)`);
    if (node.op === 'PadV2' && constant(2).data.some((v) => v !== 0)) return fail('pads with a value other than 0');
    return output(zeroPad(cc, x, p[2]!, p[3]!, p[4]!, p[5]!, node.name));
  },
  ResizeNearestNeighbor: ({ cc, node, act, constant, fail, output }) => {
    const x = act(0, 4);
    const [, h, w] = x.shape as [number, number, number];
    const [ho, wo] = Array.from(constant(1).data) as [number, number];
    // align_corners samples at (in-1)/(out-1) steps: not a block repeat.
    if (node.attr?.align_corners?.b === true) return fail('aligns corners (only align_corners=false)');
    if (ho % h !== 0 || wo % w !== 0) return fail(`resizes ${h}x${w} to ${ho}x${wo} (only integer scales)`);
    return output(upsampleNearest(cc, x, [ho / h, wo / w], node.name));
  },
};
shapeRules.PadV2 = shapeRules.Pad!;
