/**
 * Input gradients for attribution that work on every tfjs backend and never compute filter
 * gradients.
 *
 * Why stock tfjs computes filter gradients: tfjs-layers runs Conv2D, DepthwiseConv2D and Dense
 * through the fused ops (`tf.fused.conv2d`, `tf.fused.depthwiseConv2d`, `tf.fused.matMul`), which
 * are built with `customGrad`. A customGrad backward function returns finished tensors, so the
 * fused conv gradient runs `Conv2DBackpropFilter` eagerly even when the engine later throws the
 * result away because the filter is not a function of the watched input (the tape prunes such
 * inputs, but only after the work is done). Registered kernel gradients (plain `Conv2D`) return
 * one thunk per input and the engine calls only the thunks of inputs it needs, so they are lazy.
 * The wasm backend has no `Conv2DBackpropFilter` (nor depthwise backprop kernels), so stock input
 * gradients of a tfjs-layers CNN fail there.
 *
 * The fix, installed by `installGradients()` (which `initBackend()` calls):
 * - The engine names a customGrad tape node after the op scope (`fusedConv2d__op`, ...) and looks
 *   its gradient up in the registry under that name when it records the node, right after the
 *   op's kernel ran. We register lazy gradients under those names; the fused kernels are wrapped
 *   to note their attributes (strides, padding, ...) which the gradient needs and the customGrad
 *   node does not carry.
 * - `Conv2D`, `DepthwiseConv2dNative` and `FusedBatchNorm` get gradients whose input thunk runs
 *   on fast kernels: the input gradient of a convolution is itself a convolution (spatially
 *   flipped, in/out-transposed filter; strides become sub-pixel phases recombined with
 *   depth-to-space; dilations stay dilations), so it runs on the backend's forward conv kernels
 *   (XNNPACK on wasm) instead of its generic backprop loop. The batch-norm input gradient is one
 *   broadcast multiply instead of a Tile.
 * - On wasm, the tape's clones of saved tensors share data instead of copying it, and the
 *   `UnsortedSegmentSum` kernel that the gather gradient needs is added.
 *
 * Stock gradients that are wrong, replaced for correctness (input gradients only as well):
 * - `AvgPool`: stock AvgPoolGrad divides by the whole window, where the forward pass (like
 *   Keras and TensorFlow) divides by the pixels inside the input, so 'same' borders were off.
 * - `MaxPool`: stock wasm MaxPoolGrad drops windows whose maximum is negative and sends ties to
 *   the last maximum; the replacement sends each window's gradient to its first maximum in
 *   row-major order on every backend, as TensorFlow's CPU kernel and onnxruntime do.
 * - `FusedBatchNorm` without scale or offset (Keras `scale=False` / `center=False`): stock tfjs
 *   cannot differentiate it at all; the kernel is wrapped to keep the missing inputs off the tape.
 *
 * @example
 * import * as tf from '@tensorflow/tfjs-core';
 * import { initBackend } from 'serving-lens';      // installs the gradients
 * await initBackend({ backend: 'wasm' });
 * const g = tf.grad((x: tf.Tensor4D) => model.apply(x) as tf.Tensor)(images); // no filter gradients
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers the stock ones
// when first loaded. Loading it here, before any installGradients() call, keeps it from later
// replacing the gradients registered below.
import '@tensorflow/tfjs-layers';
import { LensError } from '../../core/errors.js';

type Shape4 = [number, number, number, number];

/** Padding as tfjs convolutions take it. */
export type ConvPadding = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** Geometry of a 2-D convolution, as in its forward op. */
export interface ConvGeometry {
  strides: number | readonly [number, number];
  pad: ConvPadding;
  dilations?: number | readonly [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * How the input gradient of a convolution is computed: as a forward convolution on the fast
 * kernels, or with the backend's own backprop kernel.
 */
export type InputGradientMethod = 'forward-conv' | 'backprop';

/** `auto` picks per backend (see {@link inputGradientMethod}). */
export type InputGradientChoice = InputGradientMethod | 'auto';

const CHOICES: readonly InputGradientChoice[] = ['auto', 'forward-conv', 'backprop'];

let choice: InputGradientChoice = 'auto';

/**
 * Chooses how convolution input gradients are computed, for every backend (default `auto`, or
 * the `LENS_CONV_INPUT_GRADIENT` environment variable).
 *
 * @example
 * setInputGradientMethod('backprop'); // stock tfjs kernels, e.g. to compare speed
 */
export function setInputGradientMethod(method: InputGradientChoice): void {
  if (!CHOICES.includes(method)) {
    throw new LensError('INVALID_ARGUMENT', `unknown input gradient method "${String(method)}": expected one of ${CHOICES.join(', ')}`);
  }
  choice = method;
}

/**
 * The input-gradient method used on a backend. `auto` uses the forward-conv form on wasm, where
 * XNNPACK's forward convolution is 4-12x faster than the generic Conv2DBackpropInput loop, and
 * the backprop kernels elsewhere: the cpu backend's backprop is as fast as its own forward conv,
 * and the `tensorflow` backend's (cuDNN / oneDNN) is optimised (bench/results/conv-input-gradient.json).
 * Depthwise and dilated convolutions use the forward-conv form wherever no backprop kernel can.
 *
 * @example
 * inputGradientMethod('wasm'); // 'forward-conv'
 */
export function inputGradientMethod(backendName: string = tf.getBackend()): InputGradientMethod {
  const env = process.env.LENS_CONV_INPUT_GRADIENT;
  const c = choice === 'auto' && env ? (CHOICES.includes(env as InputGradientChoice) ? (env as InputGradientChoice) : 'auto') : choice;
  if (c !== 'auto') return c;
  return backendName === 'wasm' ? 'forward-conv' : 'backprop';
}

function pair(v: number | readonly [number, number] | null | undefined, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** Per spatial axis: how the input gradient is laid out as a stride-1 convolution. */
interface AxisPlan {
  /** Taps per phase in the transformed filter. */
  taps: number;
  /** Sub-pixel phases that hold taps (the stride, or fewer when the kernel is smaller). */
  phases: number;
  stride: number;
  dilation: number;
  /** Zero padding (>= 0) or cropping (< 0) of dy before / after, for the stride-1 conv. */
  before: number;
  after: number;
  /** Offset of dx[0] in the depth-to-space result, and the input length. */
  sliceStart: number;
  size: number;
}

/**
 * dx[i] = sum over o, k with o*s - top + k*d = i of dy[o] * w[k]. Writing i + top = q*s + r,
 * the taps k = j*s + r of phase r form a stride-1 correlation of dy with the flipped taps; q runs
 * from floor(top/s) to floor((top+size-1)/s).
 */
function planAxis(kernel: number, stride: number, dilation: number, top: number, size: number, outSize: number): AxisPlan {
  const [taps, phases] = stride === 1 ? [kernel, 1] : kernel >= stride ? [Math.ceil(kernel / stride), stride] : [1, kernel];
  const extent = (taps - 1) * dilation + 1;
  const q0 = Math.floor(top / stride);
  const q1 = Math.floor((top + size - 1) / stride);
  const count = q1 - q0 + 1;
  const before = extent - 1 - q0;
  const after = count + extent - 1 - outSize - before;
  return { taps, phases, stride, dilation, before, after, sliceStart: top - q0 * stride, size };
}

function convInfo(inputShape: Shape4, filterShape: Shape4, g: ConvGeometry, depthwise: boolean): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    pair(g.strides, 1),
    pair(g.dilations, 1),
    g.pad,
    g.dimRoundingMode,
    depthwise,
  );
}

/** Crops dy where a plan asks for negative padding and returns the explicit padding left. */
function cropForPlan(dy: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): { dy: tf.Tensor4D; pad: tf.backend_util.ExplicitPadding } | undefined {
  const [n, oh, ow, c] = dy.shape;
  const top = Math.max(0, -ph.before);
  const bottom = Math.max(0, -ph.after);
  const left = Math.max(0, -pw.before);
  const right = Math.max(0, -pw.after);
  if (oh - top - bottom < 1 || ow - left - right < 1) return undefined;
  const cropped = top || bottom || left || right ? tf.slice(dy, [0, top, left, 0], [n, oh - top - bottom, ow - left - right, c]) : dy;
  return {
    dy: cropped,
    pad: [
      [0, 0],
      [Math.max(0, ph.before), Math.max(0, ph.after)],
      [Math.max(0, pw.before), Math.max(0, pw.after)],
      [0, 0],
    ],
  };
}

/**
 * Turns the stride-1 result z [N, qh, qw, Ph*Pw*C] (channel = (rh*Pw + rw)*C + c) into dx by
 * interleaving the phases spatially and cutting out the input window.
 */
function assemble(z: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan, channels: number): tf.Tensor4D {
  const [n, qh, qw] = z.shape;
  let full: tf.Tensor4D;
  if (ph.stride === 1 && pw.stride === 1) {
    full = z;
  } else if (ph.phases === ph.stride && pw.phases === pw.stride && ph.stride === pw.stride && tf.getBackend() !== 'wasm') {
    full = tf.depthToSpace(z, ph.stride, 'NHWC');
  } else {
    // [N*qh, qw, Ph, Pw*C] -> [N*qh, Ph, qw, Pw*C]: a rank-4 transpose, which wasm runs about 5x
    // faster than its DepthToSpace (and than the same permutation written at rank 6).
    let t: tf.Tensor = tf.transpose(tf.reshape(z, [n * qh, qw, ph.phases, pw.phases * channels]), [0, 2, 1, 3]);
    if (ph.phases < ph.stride || pw.phases < pw.stride) {
      // Phases without taps (kernel smaller than the stride) receive no gradient.
      t = tf.pad(tf.reshape(t, [n * qh, ph.phases, qw, pw.phases, channels]), [[0, 0], [0, ph.stride - ph.phases], [0, 0], [0, pw.stride - pw.phases], [0, 0]]);
    }
    full = tf.reshape(t, [n, qh * ph.stride, qw * pw.stride, channels]);
  }
  const [, fh, fw] = full.shape;
  if (ph.sliceStart === 0 && pw.sliceStart === 0 && fh === ph.size && fw === pw.size) return full;
  return tf.slice(full, [0, ph.sliceStart, pw.sliceStart, 0], [n, ph.size, pw.size, channels]);
}

/**
 * [K_h, K_w, A, B] -> [J_h, P_h, J_w, P_w, A, B]: the filter padded to whole taps, split into
 * stride phases and flipped along the taps (shared by the dense and depthwise rewrites).
 */
function flippedPhases(filter: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): tf.Tensor {
  const [kh, kw, a, b] = filter.shape;
  let w: tf.Tensor = filter;
  const padH = ph.taps * ph.phases - kh;
  const padW = pw.taps * pw.phases - kw;
  if (padH > 0 || padW > 0) w = tf.pad(w, [[0, padH], [0, padW], [0, 0], [0, 0]]);
  w = tf.reshape(w, [ph.taps, ph.phases, pw.taps, pw.phases, a, b]);
  return tf.reverse(w, [0, 2]);
}

/** [K_h, K_w, in, out] -> [J_h, J_w, out, P_h*P_w*in]: phases of the flipped, transposed filter. */
function phaseFilter(filter: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): tf.Tensor4D {
  const [, , cin, cout] = filter.shape;
  const w = tf.transpose(flippedPhases(filter, ph, pw), [0, 2, 5, 1, 3, 4]);
  return tf.reshape(w, [ph.taps, pw.taps, cout, ph.phases * pw.phases * cin]);
}

/** [K_h, K_w, C, M] -> [J_h, J_w, C*M, P_h*P_w] for a depthwise stride-1 conv over dy. */
function phaseDepthwiseFilter(filter: tf.Tensor4D, ph: AxisPlan, pw: AxisPlan): tf.Tensor4D {
  const [, , c, m] = filter.shape;
  const w = tf.transpose(flippedPhases(filter, ph, pw), [0, 2, 4, 5, 1, 3]);
  return tf.reshape(w, [ph.taps, pw.taps, c * m, ph.phases * pw.phases]);
}

function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * Transformed filters, kept per original filter (tensor data is immutable in tfjs and a
 * `Variable.assign` swaps in new data, so the data id identifies the values). Caching matters
 * twice on wasm: the transform is a 6-D transpose, and XNNPACK packs each new filter again.
 * A filter is cached from its second use on, so filters computed afresh on every call do not
 * pile up; cached tensors are released when the original data is garbage-collected.
 */
const filterCache = new WeakMap<object, Map<string, tf.Tensor4D>>();
const seenOnce = new WeakSet<object>();
const releaseFilters = new FinalizationRegistry<Map<string, tf.Tensor4D>>((cached) => {
  for (const t of cached.values()) {
    // The backend may be gone by the time the original is collected; nothing is left to free then.
    try {
      t.dispose();
    } catch {
      /* already released with its backend */
    }
  }
});

function transformedFilter(identity: object | undefined, key: string, make: () => tf.Tensor4D): tf.Tensor4D {
  if (identity === undefined) return make();
  let cached = filterCache.get(identity);
  const hit = cached?.get(key);
  if (hit && !hit.isDisposed) return hit;
  if (!seenOnce.has(identity)) {
    seenOnce.add(identity);
    return make();
  }
  if (!cached) {
    cached = new Map();
    filterCache.set(identity, cached);
    releaseFilters.register(identity, cached);
  }
  const t = tf.keep(make());
  cached.set(key, t);
  return t;
}

/** Options of the convolution input-gradient functions. */
export interface InputGradientOptions {
  /** Defaults to {@link inputGradientMethod} for the current backend. */
  method?: InputGradientMethod;
  /**
   * An object that identifies the filter's values across calls (e.g. the model weight's
   * `dataId`); the transformed filter is then cached for it.
   */
  filterIdentity?: object;
}

function inputGradient(
  depthwise: boolean,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  xShape: Shape4,
  geometry: ConvGeometry,
  options: InputGradientOptions,
): tf.Tensor4D {
  const method = options.method ?? inputGradientMethod();
  const backpropKernel = depthwise ? tf.DepthwiseConv2dNativeBackpropInput : tf.Conv2DBackpropInput;
  return tf.tidy(() => {
    const info = convInfo(xShape, filter.shape, geometry, depthwise);
    const dilated = info.dilationHeight > 1 || info.dilationWidth > 1;
    // Stock backprop kernels take no dilations; wasm lacks the depthwise one altogether.
    const backpropUsable = !dilated && hasKernel(backpropKernel);
    if (method === 'forward-conv' || !backpropUsable) {
      const ph = planAxis(info.filterHeight, info.strideHeight, info.dilationHeight, info.padInfo.top, xShape[1], dy.shape[1]);
      const pw = planAxis(info.filterWidth, info.strideWidth, info.dilationWidth, info.padInfo.left, xShape[2], dy.shape[2]);
      const cropped = cropForPlan(dy, ph, pw);
      if (cropped) {
        const key = `${depthwise ? 'dw' : 'conv'}:${ph.taps},${ph.phases},${pw.taps},${pw.phases}`;
        const w = transformedFilter(options.filterIdentity, key, () =>
          depthwise ? phaseDepthwiseFilter(filter, ph, pw) : phaseFilter(filter, ph, pw),
        );
        const dilations: [number, number] = [ph.dilation, pw.dilation];
        if (!depthwise) return assemble(tf.conv2d(cropped.dy, w, 1, cropped.pad, 'NHWC', dilations), ph, pw, xShape[3]);
        const [, , c, m] = filter.shape;
        const phases = ph.phases * pw.phases;
        let z: tf.Tensor = tf.depthwiseConv2d(cropped.dy, w, 1, cropped.pad, 'NHWC', dilations);
        const [n, qh, qw] = z.shape as Shape4;
        if (m > 1) z = tf.sum(tf.reshape(z, [n, qh, qw, c, m, phases]), 4);
        if (phases > 1) z = tf.transpose(tf.reshape(z, [n, qh, qw, c, phases]), [0, 1, 2, 4, 3]);
        return assemble(tf.reshape(z, [n, qh, qw, phases * c]), ph, pw, c);
      }
    }
    if (!backpropUsable) {
      throw new LensError(
        'UNSUPPORTED',
        `${depthwise ? 'depthwise ' : ''}conv2d input gradient: the padding leaves no output over the input and ${tf.getBackend()} has no usable ${backpropKernel} kernel`,
      );
    }
    const attrs = {
      strides: pair(geometry.strides, 1),
      pad: geometry.pad,
      dimRoundingMode: geometry.dimRoundingMode,
      inputShape: xShape,
      ...(depthwise ? { dilations: pair(geometry.dilations, 1) } : { dataFormat: 'NHWC' }),
    };
    return tf.engine().runKernel(backpropKernel, { dy, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  });
}

/**
 * Gradient of a 2-D convolution's output with respect to its input, for the output gradient
 * `dy`. With the `forward-conv` method (default on wasm) it runs as one forward
 * convolution on the backend's fast kernels; strides, dilations and every padding are supported.
 *
 * @example
 * const dx = conv2dInputGradient(dy, filter, [1, 32, 32, 16], { strides: 2, pad: 'same' });
 */
export function conv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: readonly number[],
  geometry: ConvGeometry,
  options: InputGradientOptions = {},
): tf.Tensor4D {
  return inputGradient(false, dy, filter, inputShape as Shape4, geometry, options);
}

/**
 * Input gradient of a depthwise convolution (filter [K_h, K_w, C, multiplier]), as a depthwise
 * forward convolution; the wasm backend has no depthwise backprop kernel at all.
 *
 * @example
 * const dx = depthwiseConv2dInputGradient(dy, filter, [1, 32, 32, 16], { strides: 1, pad: 'same' });
 */
export function depthwiseConv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: readonly number[],
  geometry: ConvGeometry,
  options: InputGradientOptions = {},
): tf.Tensor4D {
  return inputGradient(true, dy, filter, inputShape as Shape4, geometry, options);
}

/** Geometry of a 2-D pooling, as in its forward op (`tf.maxPool`, `tf.avgPool`). */
export interface PoolGeometry {
  filterSize: number | readonly [number, number];
  strides: number | readonly [number, number];
  pad: ConvPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function poolInfo(inputShape: Shape4, g: PoolGeometry): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(inputShape, pair(g.filterSize, 1), pair(g.strides, 1), 1, g.pad, g.dimRoundingMode);
}

function poolAsConv(g: PoolGeometry): ConvGeometry {
  return { strides: g.strides, pad: g.pad, ...(g.dimRoundingMode !== undefined ? { dimRoundingMode: g.dimRoundingMode } : {}) };
}

/** Per output position along one axis: how many window positions fall inside the input. */
function inside(out: number, stride: number, before: number, kernel: number, size: number): number[] {
  return Array.from({ length: out }, (_, o) => Math.min(size, o * stride - before + kernel) - Math.max(0, o * stride - before));
}

/**
 * Input gradient of an average pooling whose forward pass divides each window by the pixels it
 * holds inside the input (TensorFlow's and Keras' semantics, and what tfjs computes forward).
 * Stock tfjs' AvgPoolGrad divides by the whole window instead, which is wrong at 'same' borders.
 * Here dy is divided by each window's own count and spread back over the window with a
 * transposed depthwise convolution of ones, which runs on the forward conv kernels on wasm.
 *
 * @example
 * const dx = avgPoolInputGradient(dy, [1, 7, 7, 64], { filterSize: 3, strides: 2, pad: 'same' });
 */
export function avgPoolInputGradient(dy: tf.Tensor4D, inputShape: readonly number[], geometry: PoolGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const info = poolInfo(inputShape as Shape4, geometry);
    const rows = inside(info.outHeight, info.strideHeight, info.padInfo.top, info.filterHeight, info.inHeight);
    const cols = inside(info.outWidth, info.strideWidth, info.padInfo.left, info.filterWidth, info.inWidth);
    // A window with no pixel inside (only with explicit padding) has no input to pass its gradient to.
    const perWindow = Float32Array.from({ length: rows.length * cols.length }, (_, i) => {
      const count = rows[Math.floor(i / cols.length)]! * cols[i % cols.length]!;
      return count > 0 ? 1 / count : 0;
    });
    const scaled = tf.mul(dy, tf.tensor4d(perWindow, [1, rows.length, cols.length, 1]));
    const ones = tf.ones([info.filterHeight, info.filterWidth, info.inChannels, 1]) as tf.Tensor4D;
    return inputGradient(true, scaled as tf.Tensor4D, ones, inputShape as Shape4, poolAsConv(geometry), {});
  });
}

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

/**
 * A kernel call noted by the kernel wrappers: attributes, input shapes and the identity of the
 * weight input. The engine records a tape node synchronously after the kernel ran and reads the
 * gradient function from the registry at that moment, so a `gradFunc` getter can bind the
 * gradient to the call just noted. customGrad nodes (the fused ops) carry no attributes at all;
 * for plain kernels the note gives the weight's identity for the filter cache.
 */
interface KernelCall {
  kernel: string;
  attrs: tf.NamedAttrMap;
  shapes: number[][];
  weightId: object | undefined;
}

let lastCall: KernelCall | undefined;

function takeCall(kernel: string): KernelCall | undefined {
  const call = lastCall;
  lastCall = undefined;
  return call?.kernel === kernel ? call : undefined;
}

function sameShapes(call: KernelCall, tensors: (tf.Tensor | undefined)[]): boolean {
  return call.shapes.every((s, i) => {
    const t = tensors[i];
    return t !== undefined && s.length === t.shape.length && s.every((v, j) => v === t.shape[j]);
  });
}

/** Kernels whose calls are noted, with the names of their (data, weight) inputs. */
const NOTED_KERNELS: Record<string, [string, string]> = {
  [tf.Conv2D]: ['x', 'filter'],
  [tf.DepthwiseConv2dNative]: ['x', 'filter'],
  [tf.FusedConv2D]: ['x', 'filter'],
  [tf.FusedDepthwiseConv2D]: ['x', 'filter'],
  [tf._FusedMatMul]: ['a', 'b'],
};

const wrappedKernels = new WeakSet<tf.KernelConfig>();

function noteCalls(kernelName: string, backendName: string): void {
  const config = tf.getKernel(kernelName, backendName);
  const names = NOTED_KERNELS[kernelName];
  if (config === undefined || names === undefined || wrappedKernels.has(config)) return;
  const run = config.kernelFunc;
  const wrapped: tf.KernelConfig = {
    ...config,
    kernelFunc: (args) => {
      lastCall = {
        kernel: kernelName,
        attrs: args.attrs ?? {},
        shapes: names.map((n) => args.inputs[n]?.shape ?? []),
        weightId: args.inputs[names[1]]?.dataId,
      };
      return run(args);
    },
  };
  wrappedKernels.add(wrapped);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel(wrapped);
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: ConvPadding;
  dilations?: number | [number, number] | null;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NHWC' | 'NCHW';
  activation?: string;
}

function geometryOf(a: ConvAttrs): ConvGeometry {
  return {
    strides: a.strides,
    pad: a.pad,
    ...(a.dilations != null ? { dilations: a.dilations } : {}),
    ...(a.dimRoundingMode != null ? { dimRoundingMode: a.dimRoundingMode } : {}),
  };
}

/** Filter gradients stay available (training needs them) but run only when asked for. */
function filterGradient(depthwise: boolean, x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  if (depthwise) {
    return tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, {
      strides: a.strides,
      pad: a.pad,
      dilations: pair(a.dilations, 1),
      dimRoundingMode: a.dimRoundingMode,
      filterShape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  if (pair(a.dilations, 1).some((d) => d > 1)) {
    throw new LensError('UNSUPPORTED', 'tfjs has no filter gradient for a dilated conv2d');
  }
  return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
    strides: a.strides,
    pad: a.pad,
    dataFormat: a.dataFormat ?? 'NHWC',
    dimRoundingMode: a.dimRoundingMode,
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Lazy gradients of a convolution: x through the fast input gradient, filter only on demand. */
function convGradients(depthwise: boolean, dy: tf.Tensor4D, x: tf.Tensor4D, filter: tf.Tensor4D, a: ConvAttrs, weightId: object | undefined): Record<string, () => tf.Tensor> {
  const options: InputGradientOptions = weightId ? { filterIdentity: weightId } : {};
  const input = (): tf.Tensor => {
    if (!depthwise && a.dataFormat === 'NCHW') {
      return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...a, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    return inputGradient(depthwise, dy, filter, x.shape, geometryOf(a), options);
  };
  return { x: input, filter: () => filterGradient(depthwise, x, dy, filter.shape, a) };
}

function convGradConfig(kernel: string, depthwise: boolean): tf.GradConfig {
  return {
    kernelName: kernel,
    inputsToSave: ['x', 'filter'],
    get gradFunc(): tf.GradFunc {
      const call = takeCall(kernel);
      return (dy, saved, attrs) => {
        const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
        const weightId = call && sameShapes(call, [x, filter]) ? call.weightId : undefined;
        return convGradients(depthwise, dy as tf.Tensor4D, x, filter, attrs as unknown as ConvAttrs, weightId);
      };
    },
  };
}

/**
 * Whether the batch-norm call that just ran had a scale. `tf.batchNorm` hands the kernel a
 * missing scale or offset (Keras `scale=False` / `center=False`) as an undefined input, and stock
 * tfjs then fails twice: saving the undefined scale for the gradient, and reading `.id` of the
 * undefined input when it walks the tape. The wrapped kernel (see dropMissingBatchNormInputs)
 * deletes missing inputs from the inputs object, which is the one the tape node keeps, and notes
 * here whether a scale was given; the engine reads `inputsToSave` right after the kernel ran.
 */
let batchNormScaled: boolean | undefined;

/** dy/dx of batch norm is one broadcast multiply; the other inputs' gradients run only on demand. */
const batchNormGrad: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  get inputsToSave(): string[] {
    const scaled = batchNormScaled ?? true;
    batchNormScaled = undefined;
    return scaled ? ['x', 'mean', 'variance', 'scale'] : ['x', 'mean', 'variance'];
  },
  gradFunc: (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    const d = dy as tf.Tensor;
    const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const axes = tf.broadcast_util.getReductionAxes(mean.shape, x.shape);
    const invStd = () => tf.rsqrt(tf.add(variance, eps));
    const reduce = (t: tf.Tensor) => tf.reshape(axes.length ? tf.sum(t, axes) : t, mean.shape);
    const scaled = () => (scale ? tf.mul(invStd(), scale) : invStd());
    return {
      x: () => tf.mul(d, scaled()),
      mean: () => reduce(tf.mul(d, tf.neg(scaled()))),
      variance: () => reduce(tf.mul(tf.mul(d, tf.sub(x, mean)), tf.mul(tf.pow(invStd(), 3), scale ? tf.mul(scale, -0.5) : -0.5))),
      scale: () => reduce(tf.mul(d, tf.mul(tf.sub(x, mean), invStd()))),
      offset: () => reduce(d),
    };
  },
};

function poolGeometryOf(attrs: unknown): PoolGeometry {
  const a = attrs as PoolGeometry;
  return { filterSize: a.filterSize, strides: a.strides, pad: a.pad, ...(a.dimRoundingMode != null ? { dimRoundingMode: a.dimRoundingMode } : {}) };
}

/** The input is saved for its shape (the tape's clone shares its data). */
const avgPoolGrad: tf.GradConfig = {
  kernelName: tf.AvgPool,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor4D];
    return { x: () => avgPoolInputGradient(dy as tf.Tensor4D, x.shape, poolGeometryOf(attrs)) };
  },
};

const maxPoolGrad: tf.GradConfig = {
  kernelName: tf.MaxPool,
  inputsToSave: ['x'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
    return { x: () => maxPoolInputGradient(dy as tf.Tensor4D, x, y, poolGeometryOf(attrs)) };
  },
};

/** Derivative of the fused activation at the saved output (under a tape only linear is fused). */
function activationGrad(dy: tf.Tensor, y: tf.Tensor, activation: unknown): tf.Tensor {
  if (activation === undefined || activation === null || activation === 'linear') return dy;
  if (activation === 'relu') return tf.mul(dy, tf.step(y));
  throw new LensError('UNSUPPORTED', `gradient of a fused op with activation "${String(activation)}"`);
}

function biasGradient(bias: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(bias.shape, dy.shape);
  return tf.reshape(axes.length ? tf.sum(dy, axes) : dy, bias.shape);
}

function checkCall(call: KernelCall, tensors: tf.Tensor[]): void {
  if (!sameShapes(call, tensors)) {
    throw new LensError('INTERNAL', `gradient of ${call.kernel}: the noted kernel call does not match the tape node`);
  }
}

/** Gradient of `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`: saved = [filter, x, y, bias?]. */
function fusedConvGradient(depthwise: boolean, call: KernelCall): tf.GradFunc {
  return (dy, saved) => {
    const [filter, x, y, bias] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor | undefined];
    checkCall(call, [x, filter]);
    const a = call.attrs as unknown as ConvAttrs;
    const dyAct = activationGrad(tf.reshape(dy as tf.Tensor, y.shape), y, a.activation) as tf.Tensor4D;
    const conv = convGradients(depthwise, dyAct, x, filter, a, call.weightId);
    const grads: Record<string, () => tf.Tensor> = { 0: conv.x!, 1: conv.filter! };
    if (bias) grads[2] = () => biasGradient(bias, dyAct);
    return grads;
  };
}

/** Gradient of `tf.fused.matMul` (Dense layers): saved = [a3D, b3D, y, bias?]. */
function fusedMatMulGradient(call: KernelCall): tf.GradFunc {
  return (dy, saved) => {
    const [a, b, y, bias] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor | undefined];
    checkCall(call, [a, b]);
    const { transposeA, transposeB, activation } = call.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    const d = activationGrad(tf.reshape(dy as tf.Tensor, y.shape), y, activation) as tf.Tensor3D;
    const grads: Record<string, () => tf.Tensor> = {
      0: () => (transposeA ? tf.matMul(b, d, transposeB, true) : tf.matMul(d, b, false, !transposeB)),
      1: () => (transposeB ? tf.matMul(d, a, true, transposeA) : tf.matMul(a, d, !transposeA, false)),
    };
    if (bias) grads[2] = () => biasGradient(bias, d);
    return grads;
  };
}

/**
 * A gradient registered under an op-scope name: the engine names a customGrad tape node after
 * the op's scope (`op({fusedConv2d_})` runs in scope `fusedConv2d__op`) and looks that name up.
 */
function scopeGradient(scopeName: string, kernel: string, make: (call: KernelCall) => tf.GradFunc): tf.GradConfig {
  return {
    kernelName: scopeName,
    get gradFunc(): tf.GradFunc {
      const call = takeCall(kernel);
      if (call === undefined) {
        return () => {
          throw new LensError(
            'INTERNAL',
            `no attributes were noted for ${kernel} on backend ${tf.getBackend()}: call installGradients() after registering the backend`,
          );
        };
      }
      return make(call);
    },
  };
}

/**
 * The tape keeps a clone of every tensor a gradient needs (a conv saves its input, filter,
 * output and bias). The cpu backend's clone shares the data; wasm's copies it, which costs a
 * backward pass time and about half its memory. tfjs tensors are immutable and wasm counts
 * references, so its clone can share the data as well.
 */
function shareClonedDataOnWasm(): void {
  const config = tf.getKernel(tf.Identity, 'wasm');
  if (config === undefined || wrappedKernels.has(config)) return;
  const copy = config.kernelFunc;
  const shared: tf.KernelConfig = {
    ...config,
    kernelFunc: (args) => {
      const x = args.inputs.x;
      if (x === undefined || x.dtype === 'string') return copy(args);
      (args.backend as tf.KernelBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  };
  wrappedKernels.add(shared);
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel(shared);
}

/** Wraps a backend's FusedBatchNorm so that missing scale / offset inputs leave the tape (see batchNormScaled). */
function dropMissingBatchNormInputs(backendName: string): void {
  const config = tf.getKernel(tf.FusedBatchNorm, backendName);
  if (config === undefined || wrappedKernels.has(config)) return;
  const run = config.kernelFunc;
  const wrapped: tf.KernelConfig = {
    ...config,
    kernelFunc: (args) => {
      const out = run(args);
      const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
      for (const name of Object.keys(inputs)) {
        if (inputs[name] == null) delete inputs[name];
      }
      batchNormScaled = inputs.scale !== undefined;
      return out;
    },
  };
  wrappedKernels.add(wrapped);
  tf.unregisterKernel(tf.FusedBatchNorm, backendName);
  tf.registerKernel(wrapped);
}

/** The parts of tfjs-backend-wasm's backend a JS kernel needs. */
interface WasmBackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/**
 * `UnsortedSegmentSum` for wasm, which lacks it. The stock gradient of a gather (e.g. the
 * RGB->BGR reorder of caffe preprocessing) scatters with it; a plain loop over the data is all
 * it takes and costs one pass over the gradient.
 */
function registerWasmSegmentSum(): void {
  if (!('wasm' in tf.engine().registryFactory) || tf.getKernel(tf.UnsortedSegmentSum, 'wasm') !== undefined) return;
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const segments = (attrs as { numSegments: number }).numSegments;
      const wasm = backend as unknown as WasmBackendLike;
      const ids = wasm.readSync(segmentIds.dataId) as tf.TypedArray;
      const values = wasm.readSync(x.dataId) as tf.TypedArray;
      const inner = ids.length === 0 ? 0 : values.length / ids.length;
      const out = wasm.makeOutput([segments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
      const sums = wasm.typedArrayFromHeap(out);
      sums.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const s = ids[i]!;
        if (s < 0 || s >= segments) continue;
        const from = i * inner;
        const to = s * inner;
        for (let j = 0; j < inner; j++) sums[to + j] += values[from + j]!;
      }
      return out;
    },
  });
}

let gradientsRegistered = false;

/**
 * Registers the attribution-friendly gradients (idempotent). Call it again after registering a
 * backend that was not known at the first call; `initBackend()` does this for you.
 *
 * @example
 * import '@tensorflow/tfjs-backend-wasm';
 * installGradients();
 */
export function installGradients(): void {
  if (!gradientsRegistered) {
    tf.registerGradient(convGradConfig(tf.Conv2D, false));
    tf.registerGradient(convGradConfig(tf.DepthwiseConv2dNative, true));
    tf.registerGradient(batchNormGrad);
    tf.registerGradient(avgPoolGrad);
    tf.registerGradient(maxPoolGrad);
    tf.registerGradient(scopeGradient('fusedConv2d__op', tf.FusedConv2D, (c) => fusedConvGradient(false, c)));
    tf.registerGradient(scopeGradient('fusedDepthwiseConv2d__op', tf.FusedDepthwiseConv2D, (c) => fusedConvGradient(true, c)));
    tf.registerGradient(scopeGradient('fusedMatMul__op', tf._FusedMatMul, fusedMatMulGradient));
    gradientsRegistered = true;
  }
  for (const backendName of Object.keys(tf.engine().registryFactory)) {
    for (const kernel of Object.keys(NOTED_KERNELS)) noteCalls(kernel, backendName);
    dropMissingBatchNormInputs(backendName);
  }
  shareClonedDataOnWasm();
  registerWasmSegmentSum();
}
