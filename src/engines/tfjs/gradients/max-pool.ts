import * as tf from '@tensorflow/tfjs-core';
import type { Shape4 } from './conv-input.js';
import { poolGeometryOf, poolInfo, type PoolGeometry } from './pool-geometry.js';

/**
 * Layout of a pooling's padded input as stride phases: padded row q*s_h + r is row q of phase r
 * (likewise for columns), so window tap (k_y, k_x) = (j_y*s_h + r_y, j_x*s_w + r_x) of every
 * output is one contiguous slice: rows j_y..j_y+out_h-1 of phase (r_y, r_x). Phases are stacked
 * along the batch axis, phase (r_y, r_x) at images (r_x*s_h + r_y)*N onwards.
 */
interface PhaseGrid {
  n: number;
  c: number;
  /** Rows and columns per phase. */
  qh: number;
  qw: number;
  info: tf.backend_util.Conv2DInfo;
}

function phaseGrid(shape: Shape4, info: tf.backend_util.Conv2DInfo): PhaseGrid {
  const [n, , , c] = shape;
  return {
    n,
    c,
    qh: info.outHeight + Math.ceil(info.filterHeight / info.strideHeight) - 1,
    qw: info.outWidth + Math.ceil(info.filterWidth / info.strideWidth) - 1,
    info,
  };
}

function phaseOffset(g: PhaseGrid, ry: number, rx: number): number {
  return (rx * g.info.strideHeight + ry) * g.n;
}

/** Swaps the two leading axes of `[a, b, rest]`: one rank-3 transpose, fast on every backend (rank 6 is not on wasm). */
function swapLeading(t: tf.Tensor, a: number, b: number, rest: number): tf.Tensor {
  return tf.transpose(tf.reshape(t, [a, b, rest]), [1, 0, 2]);
}

/** [N, H, W, C] -> phases [s_h*s_w*N, q_h, q_w, C], padding with `fill` or cropping rows no window reads. */
function toPhases(x: tf.Tensor4D, g: PhaseGrid, fill: number): tf.Tensor4D {
  const { n, c, qh, qw, info } = g;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const [, h, w] = x.shape;
  const bottom = qh * sh - top - h;
  const right = qw * sw - left - w;
  let t: tf.Tensor = bottom < 0 || right < 0 ? tf.slice(x, [0, 0, 0, 0], [n, h + Math.min(0, bottom), w + Math.min(0, right), c]) : x;
  if (top > 0 || left > 0 || bottom > 0 || right > 0) t = tf.pad(t, [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]], fill);
  // [n*qh, sh, qw*sw*c] -> [sh, n*qh, qw*sw*c], then [sh*n*qh*qw, sw, c] -> [sw, sh*n*qh*qw, c].
  if (sh > 1) t = swapLeading(t, n * qh, sh, qw * sw * c);
  if (sw > 1) t = swapLeading(t, sh * n * qh * qw, sw, c);
  return tf.reshape(t, [sh * sw * n, qh, qw, c]);
}

/** Inverse of {@link toPhases}: phases back on the input grid, pads cut off, rows no window reads zero. */
function fromPhases(phases: tf.Tensor4D, g: PhaseGrid, h: number, w: number): tf.Tensor4D {
  const { n, c, qh, qw, info } = g;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  let t: tf.Tensor = phases;
  if (sw > 1) t = swapLeading(t, sw, sh * n * qh * qw, c);
  if (sh > 1) t = swapLeading(t, sh, n * qh, qw * sw * c);
  let full = tf.reshape(t, [n, qh * sh, qw * sw, c]) as tf.Tensor4D;
  const extraH = Math.max(0, top + h - qh * sh);
  const extraW = Math.max(0, left + w - qw * sw);
  if (extraH > 0 || extraW > 0) full = tf.pad(full, [[0, 0], [0, extraH], [0, extraW], [0, 0]]);
  return tf.slice(full, [0, top, left, 0], [n, h, w, c]);
}

/**
 * Input gradient of a max pooling: each window's gradient goes to ONE maximum, the first in
 * row-major order when several elements tie (as TensorFlow's CPU kernel and onnxruntime do, so
 * engines agree), and windows whose maximum is negative keep their gradient (stock
 * tfjs-backend-wasm MaxPoolGrad loses those). `y` is the forward output.
 *
 * The cpu backend's own MaxPoolGrad already does exactly this, and its slices and transposes
 * are slow, so it runs there. Elsewhere the gradient is built from forward ops: the input padded
 * with -Infinity is laid out by stride phase so that each window tap is a plain slice; taps in
 * row-major order take the gradient still pending where they equal the maximum and add it to
 * their phase, and the phases go back on the input grid.
 *
 * @example
 * const y = tf.maxPool(x, 3, 2, 'same');
 * const dx = maxPoolInputGradient(dy, x, y, { filterSize: 3, strides: 2, pad: 'same' });
 */
export function maxPoolInputGradient(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D, geometry: PoolGeometry): tf.Tensor4D {
  if (tf.getBackend() === 'cpu') {
    const attrs = { filterSize: geometry.filterSize, strides: geometry.strides, pad: geometry.pad, dimRoundingMode: geometry.dimRoundingMode };
    return tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: x, output: y }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const info = poolInfo(x.shape, geometry);
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
    const g = phaseGrid(x.shape, info);
    // -Infinity pads are never a window's maximum.
    const phases = toPhases(x, g, -Infinity);
    const zeros = tf.zerosLike(dy);
    const sums = new Map<number, tf.Tensor4D>();
    let pending: tf.Tensor4D = dy;
    // Intermediates are released as soon as they are used: a tidy would hold all of them, taps
    // times the output size.
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const [jy, ry, jx, rx] = [Math.floor(ky / sh), ky % sh, Math.floor(kx / sw), kx % sw];
        const tap = tf.slice(phases, [phaseOffset(g, ry, rx), jy, jx, 0], [n, oh, ow, c]);
        const isMax = tf.equal(tap, y);
        const routed = tf.where(isMax, pending, zeros);
        if (ky < kh - 1 || kx < kw - 1) {
          const rest = tf.where(isMax, zeros, pending);
          if (pending !== dy) pending.dispose();
          pending = rest;
        }
        // Tap (j_y*s_h + r_y, j_x*s_w + r_x) of output (o_y, o_x) is row o_y + j_y, column o_x + j_x of phase (r_y, r_x).
        const placed = tf.pad(routed, [[0, 0], [jy, g.qh - oh - jy], [jx, g.qw - ow - jx], [0, 0]]);
        const p = phaseOffset(g, ry, rx);
        const sum = sums.get(p);
        sums.set(p, sum ? tf.add(sum, placed) : placed);
        tf.dispose([tap, isMax, routed, ...(sum ? [sum, placed] : [])]);
      }
    }
    phases.dispose();
    const all: tf.Tensor4D[] = [];
    for (let p = 0; p < sh * sw * n; p += n) all.push(sums.get(p) ?? tf.zeros([n, g.qh, g.qw, c]));
    return fromPhases(all.length === 1 ? all[0]! : tf.concat(all, 0), g, h, w);
  });
}

export const maxPoolGradConfig: tf.GradConfig = {
  kernelName: tf.MaxPool,
  inputsToSave: ['x'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
    return { x: () => maxPoolInputGradient(dy as tf.Tensor4D, x, y, poolGeometryOf(attrs)) };
  },
};
