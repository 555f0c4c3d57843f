/**
 * Plain-JavaScript CNN operations written from their definitions (NHWC, float64 accumulation), so
 * that a model the project loads can be checked against an independent computation of the same
 * architecture from the same stored weights. Nothing here imports the project.
 */

/** A host array in NHWC layout. */
export interface Nhwc {
  data: Float64Array;
  shape: [number, number, number, number];
}

export type Padding = 'same' | 'valid';

/** TensorFlow's output size and leading pad for one spatial axis. */
function geometry(size: number, kernel: number, stride: number, padding: Padding): { out: number; before: number } {
  if (padding === 'valid') return { out: Math.floor((size - kernel) / stride) + 1, before: 0 };
  const out = Math.ceil(size / stride);
  return { out, before: Math.floor(Math.max((out - 1) * stride + kernel - size, 0) / 2) };
}

export function fromFloat32(values: ArrayLike<number>, shape: [number, number, number, number]): Nhwc {
  return { data: Float64Array.from(values), shape };
}

/**
 * y[b,oy,ox,co] = sum over ky,kx,ci of x[b, oy*s-pad+ky, ox*s-pad+kx, ci] * w[ky,kx,ci,co] (+ bias).
 * With `depthwise`, w is [kh,kw,C,M] and output channel ci*M+m reads input channel ci only.
 */
export function conv2d(
  x: Nhwc,
  w: ArrayLike<number>,
  wShape: readonly number[],
  options: { stride: number; padding: Padding; bias?: ArrayLike<number>; depthwise?: boolean },
): Nhwc {
  const [n, h, wd, cin] = x.shape;
  const [kh, kw, wc, wm] = wShape as [number, number, number, number];
  if (wc !== cin) throw new Error(`kernel expects ${wc} input channels, got ${cin}`);
  const cout = options.depthwise ? cin * wm : wm;
  const H = geometry(h, kh, options.stride, options.padding);
  const W = geometry(wd, kw, options.stride, options.padding);
  const y = new Float64Array(n * H.out * W.out * cout);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < H.out; oy++)
      for (let ox = 0; ox < W.out; ox++) {
        const o = ((b * H.out + oy) * W.out + ox) * cout;
        for (let co = 0; co < cout; co++) y[o + co] = options.bias ? options.bias[co]! : 0;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * options.stride - H.before + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * options.stride - W.before + kx;
            if (ix < 0 || ix >= wd) continue;
            const i = ((b * h + iy) * wd + ix) * cin;
            const k = (ky * kw + kx) * cin;
            for (let ci = 0; ci < cin; ci++) {
              const v = x.data[i + ci]!;
              if (options.depthwise) for (let m = 0; m < wm; m++) y[o + ci * wm + m]! += v * w[(k + ci) * wm + m]!;
              else for (let co = 0; co < cout; co++) y[o + co]! += v * w[(k + ci) * cout + co]!;
            }
          }
        }
      }
  return { data: y, shape: [n, H.out, W.out, cout] };
}

/** Inference-mode batch normalisation over the last axis: gamma * (x - mean) / sqrt(var + eps) + beta. */
export function batchNorm(x: Nhwc, p: { gamma: ArrayLike<number>; beta: ArrayLike<number>; mean: ArrayLike<number>; variance: ArrayLike<number>; epsilon: number }): Nhwc {
  const c = x.shape[3];
  const y = new Float64Array(x.data.length);
  for (let i = 0; i < y.length; i++) {
    const ch = i % c;
    y[i] = (p.gamma[ch]! * (x.data[i]! - p.mean[ch]!)) / Math.sqrt(p.variance[ch]! + p.epsilon) + p.beta[ch]!;
  }
  return { data: y, shape: x.shape };
}

export function relu(x: Nhwc): Nhwc {
  return { data: x.data.map((v) => (v > 0 ? v : 0)), shape: x.shape };
}

/** Average over whole windows (VALID), stride equal to the window. */
export function averagePool(x: Nhwc, ph: number, pw: number): Nhwc {
  const [n, h, w, c] = x.shape;
  const oh = Math.floor(h / ph);
  const ow = Math.floor(w / pw);
  const y = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let dy = 0; dy < ph; dy++) for (let dx = 0; dx < pw; dx++) s += x.data[((b * h + oy * ph + dy) * w + ox * pw + dx) * c + ch]!;
          y[((b * oh + oy) * ow + ox) * c + ch] = s / (ph * pw);
        }
  return { data: y, shape: [n, oh, ow, c] };
}

/** Row-major flatten of each example followed by x @ w + bias; returns [n, units] rows. */
export function dense(x: { data: Float64Array; rows: number }, w: ArrayLike<number>, wShape: readonly number[], bias: ArrayLike<number>): { data: Float64Array; rows: number } {
  const [k, units] = wShape as [number, number];
  if (x.data.length !== x.rows * k) throw new Error(`dense expects ${k} features per row, got ${x.data.length / x.rows}`);
  const y = new Float64Array(x.rows * units);
  for (let r = 0; r < x.rows; r++)
    for (let u = 0; u < units; u++) {
      let s = bias[u]!;
      for (let i = 0; i < k; i++) s += x.data[r * k + i]! * w[i * units + u]!;
      y[r * units + u] = s;
    }
  return { data: y, rows: x.rows };
}

export function flatten(x: Nhwc): { data: Float64Array; rows: number } {
  return { data: x.data, rows: x.shape[0] };
}

export function reluRows(x: { data: Float64Array; rows: number }): { data: Float64Array; rows: number } {
  return { data: x.data.map((v) => (v > 0 ? v : 0)), rows: x.rows };
}

export function softmaxRows(x: { data: Float64Array; rows: number }): Float64Array {
  const k = x.data.length / x.rows;
  const y = new Float64Array(x.data.length);
  for (let r = 0; r < x.rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < k; i++) max = Math.max(max, x.data[r * k + i]!);
    let sum = 0;
    for (let i = 0; i < k; i++) sum += y[r * k + i] = Math.exp(x.data[r * k + i]! - max);
    for (let i = 0; i < k; i++) y[r * k + i]! /= sum;
  }
  return y;
}

/** Deterministic values in [lo, hi) from a 32-bit LCG (independent of any library's generator). */
export function seededUniform(size: number, seed: number, lo = 0, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

/** Largest |a-b| over the largest |b|. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`lengths differ: ${actual.length} vs ${expected.length}`);
  let scale = 1e-12;
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  }
  return err / scale;
}
