import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { conv2dInputGradient, depthwiseConv2dInputGradient, type ConvPadding, type InputGradientMethod } from '../../src/engines/tfjs/gradients/index.js';

/** A convolution case: input [N,H,W,C], kernel, output channels (or multiplier), geometry. */
interface Case {
  x: [number, number, number, number];
  k: [number, number];
  out: number;
  strides: [number, number];
  dilations: [number, number];
  pad: ConvPadding;
}

function outAndPad(size: number, k: number, s: number, d: number, pad: ConvPadding, axis: 0 | 1): { out: number; before: number } {
  const ke = (k - 1) * d + 1;
  if (pad === 'valid') return { out: Math.floor((size - ke) / s) + 1, before: 0 };
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + ke - size, 0);
    return { out, before: Math.floor(total / 2) };
  }
  if (typeof pad === 'number') return { out: Math.floor((size + 2 * pad - ke) / s) + 1, before: pad };
  const [b, a] = pad[axis + 1]!;
  return { out: Math.floor((size + b + a - ke) / s) + 1, before: b };
}

/** Straight from the definition: y[o] = sum_k x[o*s - before + k*d] w[k]; returns y and the transposed map. */
function naive(c: Case, depthwise: boolean) {
  const [n, h, w, cin] = c.x;
  const [kh, kw] = c.k;
  const H = outAndPad(h, kh, c.strides[0], c.dilations[0], c.pad, 0);
  const W = outAndPad(w, kw, c.strides[1], c.dilations[1], c.pad, 1);
  const cout = depthwise ? cin * c.out : c.out;
  const taps = (visit: (b: number, oy: number, ox: number, iy: number, ix: number, ky: number, kx: number) => void) => {
    for (let b = 0; b < n; b++)
      for (let oy = 0; oy < H.out; oy++)
        for (let ox = 0; ox < W.out; ox++)
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy * c.strides[0] - H.before + ky * c.dilations[0];
              const ix = ox * c.strides[1] - W.before + kx * c.dilations[1];
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) visit(b, oy, ox, iy, ix, ky, kx);
            }
  };
  const xi = (b: number, y: number, x: number, ch: number) => ((b * h + y) * w + x) * cin + ch;
  const yi = (b: number, y: number, x: number, ch: number) => ((b * H.out + y) * W.out + x) * cout + ch;
  const wi = (ky: number, kx: number, ci: number, co: number) => ((ky * kw + kx) * cin + ci) * (depthwise ? c.out : cout) + co;
  const pairs = (fn: (ci: number, co: number, wco: number) => void) => {
    for (let ci = 0; ci < cin; ci++) {
      if (depthwise) for (let q = 0; q < c.out; q++) fn(ci, ci * c.out + q, q);
      else for (let co = 0; co < cout; co++) fn(ci, co, co);
    }
  };
  return {
    yShape: [n, H.out, W.out, cout] as [number, number, number, number],
    forward(x: Float32Array, filt: Float32Array): Float32Array {
      const y = new Float32Array(n * H.out * W.out * cout);
      taps((b, oy, ox, iy, ix, ky, kx) => pairs((ci, co, wco) => (y[yi(b, oy, ox, co)]! += x[xi(b, iy, ix, ci)]! * filt[wi(ky, kx, ci, wco)]!)));
      return y;
    },
    inputGradient(dy: Float32Array, filt: Float32Array): Float32Array {
      const dx = new Float32Array(n * h * w * cin);
      taps((b, oy, ox, iy, ix, ky, kx) => pairs((ci, co, wco) => (dx[xi(b, iy, ix, ci)]! += dy[yi(b, oy, ox, co)]! * filt[wi(ky, kx, ci, wco)]!)));
      return dx;
    },
    filterGradient(x: Float32Array, dy: Float32Array): Float32Array {
      const dw = new Float32Array(kh * kw * cin * (depthwise ? c.out : cout));
      taps((b, oy, ox, iy, ix, ky, kx) => pairs((ci, co, wco) => (dw[wi(ky, kx, ci, wco)]! += x[xi(b, iy, ix, ci)]! * dy[yi(b, oy, ox, co)]!)));
      return dw;
    },
  };
}

function seeded(size: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function maxRelErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let scale = 1e-6;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  return err / scale;
}

const CONV_CASES: Case[] = [
  { x: [2, 7, 7, 3], k: [3, 3], out: 4, strides: [1, 1], dilations: [1, 1], pad: 'same' },
  { x: [1, 8, 8, 3], k: [3, 3], out: 4, strides: [1, 1], dilations: [1, 1], pad: 'valid' },
  { x: [2, 8, 8, 3], k: [3, 3], out: 5, strides: [2, 2], dilations: [1, 1], pad: 'same' },
  { x: [1, 9, 9, 2], k: [3, 3], out: 4, strides: [2, 2], dilations: [1, 1], pad: 'valid' },
  { x: [1, 10, 10, 3], k: [7, 7], out: 4, strides: [2, 2], dilations: [1, 1], pad: 'same' },
  { x: [1, 8, 8, 4], k: [1, 1], out: 3, strides: [2, 2], dilations: [1, 1], pad: 'valid' },
  { x: [1, 11, 9, 2], k: [2, 3], out: 3, strides: [3, 2], dilations: [1, 1], pad: 'same' },
  { x: [1, 8, 7, 2], k: [3, 2], out: 3, strides: [2, 1], dilations: [1, 1], pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
  { x: [1, 9, 9, 2], k: [3, 3], out: 3, strides: [1, 1], dilations: [2, 2], pad: 'same' },
  { x: [1, 10, 9, 2], k: [3, 2], out: 3, strides: [1, 1], dilations: [2, 3], pad: 'valid' },
  { x: [1, 6, 6, 2], k: [3, 3], out: 2, strides: [1, 1], dilations: [1, 1], pad: [[0, 0], [4, 0], [0, 4], [0, 0]] },
];

const DEPTHWISE_CASES: Case[] = [
  { x: [2, 7, 7, 3], k: [3, 3], out: 1, strides: [1, 1], dilations: [1, 1], pad: 'same' },
  { x: [1, 8, 8, 3], k: [3, 3], out: 2, strides: [2, 2], dilations: [1, 1], pad: 'same' },
  { x: [1, 9, 9, 2], k: [5, 5], out: 1, strides: [2, 2], dilations: [1, 1], pad: 'valid' },
  { x: [1, 9, 9, 2], k: [3, 3], out: 2, strides: [1, 1], dilations: [2, 2], pad: 'same' },
];

function label(c: Case): string {
  return `x${c.x.join('x')} k${c.k.join('x')} s${c.strides.join(',')} d${c.dilations.join(',')} ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad)}`;
}

function tensors(c: Case, depthwise: boolean) {
  const ref = naive(c, depthwise);
  const filterShape: [number, number, number, number] = [c.k[0], c.k[1], c.x[3], c.out];
  const xv = seeded(c.x.reduce((a, b) => a * b), 1);
  const wv = seeded(filterShape.reduce((a, b) => a * b), 2);
  const dyv = seeded(ref.yShape.reduce((a, b) => a * b), 3);
  return { ref, filterShape, xv, wv, dyv };
}

function forwardOp(c: Case, depthwise: boolean, x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  return depthwise
    ? tf.depthwiseConv2d(x, w, c.strides, c.pad as 'same', 'NHWC', c.dilations)
    : tf.conv2d(x, w, c.strides, c.pad as 'same', 'NHWC', c.dilations);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`convolution input gradients on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend({ backend });
    });

    for (const depthwise of [false, true]) {
      for (const c of depthwise ? DEPTHWISE_CASES : CONV_CASES) {
        it(`${depthwise ? 'depthwise ' : ''}${label(c)}: forward-conv and backprop equal the definition`, () => {
          const { ref, filterShape, xv, wv, dyv } = tensors(c, depthwise);
          const x = tf.tensor4d(xv, c.x);
          const w = tf.tensor4d(wv, filterShape);
          const dy = tf.tensor4d(dyv, ref.yShape);
          // The reference's padding convention is tfjs's.
          expect(maxRelErr(forwardOp(c, depthwise, x, w).dataSync(), ref.forward(xv, wv))).toBeLessThan(1e-5);
          const expected = ref.inputGradient(dyv, wv);
          const fn = depthwise ? depthwiseConv2dInputGradient : conv2dInputGradient;
          const methods: InputGradientMethod[] = ['forward-conv', 'backprop'];
          for (const method of methods) {
            const dx = fn(dy, w, c.x, { strides: c.strides, pad: c.pad, dilations: c.dilations }, { method });
            expect(dx.shape).toEqual(c.x);
            expect(maxRelErr(dx.dataSync(), expected), method).toBeLessThan(1e-5);
          }
          // Through the registered gradient, as tf.grad runs it.
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(forwardOp(c, depthwise, t as tf.Tensor4D, w), dy)))(x);
          expect(maxRelErr(g.dataSync(), expected)).toBeLessThan(1e-5);
          tf.dispose([x, w, dy, g]);
        });
      }
    }

    it('fused conv2d (bias) and fused depthwise gradients: input, and filter and bias on demand', () => {
      const c: Case = { x: [2, 8, 8, 3], k: [3, 3], out: 4, strides: [2, 2], dilations: [1, 1], pad: 'same' };
      const { ref, filterShape, xv, wv, dyv } = tensors(c, false);
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, filterShape);
      const bias = tf.tensor1d([0.1, -0.2, 0.3, 0.5]);
      const dy = tf.tensor4d(dyv, ref.yShape);
      const loss = (t: tf.Tensor4D, f: tf.Tensor4D, b: tf.Tensor1D) =>
        tf.sum(tf.mul(tf.fused.conv2d({ x: t, filter: f, strides: 2, pad: 'same', bias: b }), dy));
      const gx = tf.grad((t: tf.Tensor) => loss(t as tf.Tensor4D, w, bias))(x);
      expect(maxRelErr(gx.dataSync(), ref.inputGradient(dyv, wv))).toBeLessThan(1e-5);
      if (backend === 'cpu') {
        // wasm has no Conv2DBackpropFilter: filter gradients are for training, on cpu.
        const [, gw, gb] = tf.grads((t: tf.Tensor, f: tf.Tensor, b: tf.Tensor) => loss(t as tf.Tensor4D, f as tf.Tensor4D, b as tf.Tensor1D))([x, w, bias]);
        expect(maxRelErr(gw!.dataSync(), ref.filterGradient(xv, dyv))).toBeLessThan(1e-5);
        const dyByChannel = [0, 0, 0, 0];
        dyv.forEach((v, i) => (dyByChannel[i % 4]! += v));
        expect(maxRelErr(gb!.dataSync(), dyByChannel)).toBeLessThan(1e-5);
      }
      const d: Case = { x: [1, 8, 8, 3], k: [3, 3], out: 2, strides: [2, 2], dilations: [1, 1], pad: 'same' };
      const dw = tensors(d, true);
      const gd = tf.grad((t: tf.Tensor) =>
        tf.sum(tf.mul(tf.fused.depthwiseConv2d({ x: t as tf.Tensor4D, filter: tf.tensor4d(dw.wv, dw.filterShape), strides: 2, pad: 'same', bias: tf.zeros([6]) }), tf.tensor4d(dw.dyv, dw.ref.yShape))),
      )(tf.tensor4d(dw.xv, d.x));
      expect(maxRelErr(gd.dataSync(), dw.ref.inputGradient(dw.dyv, dw.wv))).toBeLessThan(1e-5);
    });
  });
}

/** A small ResNet with every layer kind the gradient path must handle. */
function smallResNet(seed: number, nonlinear: boolean): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.randomNormal({ mean: 0, stddev: 0.3, seed: seed + s });
  const act = (x: tfl.SymbolicTensor) => (nonlinear ? (tfl.layers.activation({ activation: 'relu' }).apply(x) as tfl.SymbolicTensor) : x);
  const inp = tfl.input({ shape: [16, 16, 3] });
  let x = tfl.layers.zeroPadding2d({ padding: 1 }).apply(inp) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, kernelInitializer: init(1), biasInitializer: init(2) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ gammaInitializer: init(3), betaInitializer: init(4), movingMeanInitializer: init(5), movingVarianceInitializer: 'ones' }).apply(x) as tfl.SymbolicTensor;
  x = act(x);
  if (nonlinear) x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 1, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  let y = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(6) }).apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: init(7) }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 8, kernelSize: 1, dilationRate: 1, kernelInitializer: init(8) }).apply(act(y)) as tfl.SymbolicTensor;
  x = tfl.layers.add().apply([x, y]) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(act(x)) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 4, kernelInitializer: init(9) }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: out });
}

describe('gradients of a small ResNet (tfjs-layers)', () => {
  const images = seeded(2 * 16 * 16 * 3, 11).map((v) => 100 * v);
  const direction = seeded(2 * 16 * 16 * 3, 12);
  let model: tfl.LayersModel;
  let linear: tfl.LayersModel;

  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    model = smallResNet(100, true);
    linear = smallResNet(200, false);
  });
  afterAll(() => {
    model.dispose();
    linear.dispose();
  });

  const classScore = (m: tfl.LayersModel) => (t: tf.Tensor) => tf.sum(tf.slice(m.apply(t) as tf.Tensor, [0, 2], [-1, 1]));

  it('runs on wasm without missing kernels, computes no filter gradient, and matches cpu', async () => {
    const grads: Float32Array[] = [];
    for (const backend of ['wasm', 'cpu']) {
      await initBackend({ backend });
      const x = tf.tensor4d(images, [2, 16, 16, 3]);
      const profile = await tf.profile(() => tf.grad(classScore(model))(x));
      const ran = new Set(profile.kernelNames);
      for (const k of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'Tile']) expect(ran.has(k), `${backend} ran ${k}`).toBe(false);
      grads.push(tf.grad(classScore(model))(x).dataSync() as Float32Array);
    }
    expect(maxRelErr(grads[0]!, grads[1]!)).toBeLessThan(1e-4);
  });

  it('equals a finite-difference directional derivative (linear network, so exact up to rounding)', async () => {
    for (const backend of ['wasm', 'cpu']) {
      await initBackend({ backend });
      const x = tf.tensor4d(images, [2, 16, 16, 3]);
      const v = tf.tensor4d(direction, [2, 16, 16, 3]);
      const f = classScore(linear);
      const g = tf.grad(f)(x);
      const h = 1;
      const fd = (f(tf.add(x, tf.mul(v, h))).dataSync()[0]! - f(tf.sub(x, tf.mul(v, h))).dataSync()[0]!) / (2 * h);
      const analytic = tf.sum(tf.mul(g, v)).dataSync()[0]!;
      expect(Math.abs(fd - analytic), backend).toBeLessThan(1e-3 * Math.max(1, Math.abs(analytic)));
    }
  });
});

describe('gradients of ops whose stock gradient needs kernels wasm lacks', () => {
  it('gather (as in the caffe RGB->BGR reorder) scatters with UnsortedSegmentSum on wasm and cpu', async () => {
    const xv = seeded(2 * 3 * 3 * 3, 5);
    const wv = seeded(2 * 3 * 3 * 3, 6);
    // Output channels take input channels 2, 0, 0: dx0 = w1 + w2, dx1 = 0, dx2 = w0.
    const expected = new Float32Array(xv.length);
    for (let p = 0; p < xv.length / 3; p++) {
      expected[p * 3] = wv[p * 3 + 1]! + wv[p * 3 + 2]!;
      expected[p * 3 + 2] = wv[p * 3]!;
    }
    for (const backend of ['wasm', 'cpu']) {
      await initBackend({ backend });
      const x = tf.tensor4d(xv, [2, 3, 3, 3]);
      const w = tf.tensor4d(wv, [2, 3, 3, 3]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, [2, 0, 0], 3), w)))(x);
      expect(maxRelErr(g.dataSync(), expected), backend).toBeLessThan(1e-6);
    }
  });
});
