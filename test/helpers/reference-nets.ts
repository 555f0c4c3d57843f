/**
 * Plain-JS layers in float64 (NHWC, one image at a time): an independent reference for model
 * outputs, computed from weight values alone, with no tfjs or onnxruntime kernel involved.
 */

/** An activation map [h, w, c] in row-major NHWC order (no batch). */
export interface Map3 {
  h: number;
  w: number;
  c: number;
  data: Float64Array;
}

/** VALID 2-D convolution with an HWIO kernel and square stride, plus bias. */
export function conv2dValid(x: Map3, kernel: ArrayLike<number>, kh: number, kw: number, cout: number, bias: ArrayLike<number> | undefined, stride = 1): Map3 {
  const h = Math.floor((x.h - kh) / stride) + 1;
  const w = Math.floor((x.w - kw) / stride) + 1;
  const out = new Float64Array(h * w * cout);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const o = (i * w + j) * cout;
      for (let co = 0; co < cout; co++) out[o + co] = bias ? bias[co]! : 0;
      for (let di = 0; di < kh; di++) {
        for (let dj = 0; dj < kw; dj++) {
          const xi = ((i * stride + di) * x.w + (j * stride + dj)) * x.c;
          const ki = (di * kw + dj) * x.c * cout;
          for (let ci = 0; ci < x.c; ci++) {
            const v = x.data[xi + ci]!;
            const kr = ki + ci * cout;
            for (let co = 0; co < cout; co++) out[o + co] += v * kernel[kr + co]!;
          }
        }
      }
    }
  }
  return { h, w, c: cout, data: out };
}

export function relu<T extends { data: Float64Array }>(x: T): T {
  for (let i = 0; i < x.data.length; i++) if (x.data[i]! < 0) x.data[i] = 0;
  return x;
}

/** 2x2 max pooling, stride 2, VALID. */
export function maxPool2(x: Map3): Map3 {
  const h = Math.floor(x.h / 2);
  const w = Math.floor(x.w / 2);
  const out = new Float64Array(h * w * x.c);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      for (let c = 0; c < x.c; c++) {
        let m = -Infinity;
        for (let di = 0; di < 2; di++) for (let dj = 0; dj < 2; dj++) m = Math.max(m, x.data[((2 * i + di) * x.w + (2 * j + dj)) * x.c + c]!);
        out[(i * w + j) * x.c + c] = m;
      }
    }
  }
  return { h, w, c: x.c, data: out };
}

/** x [n] times a [n, m] matrix (row-major), plus bias. */
export function dense(x: Float64Array, weights: ArrayLike<number>, m: number, bias?: ArrayLike<number>): { data: Float64Array } {
  const out = new Float64Array(m);
  if (bias) for (let k = 0; k < m; k++) out[k] = bias[k]!;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v === 0) continue;
    const r = i * m;
    for (let k = 0; k < m; k++) out[k] += v * weights[r + k]!;
  }
  return { data: out };
}

/** Largest |a - b| relative to the largest |b|. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
