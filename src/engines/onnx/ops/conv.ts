/**
 * Linear ops with weights: Conv2D, DepthwiseConv2dNative and MatMul, plain or fused with a bias
 * and an activation (tfjs-converter's _FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul, and
 * the folds of fold.ts). A convolution's input gradient is a convolution with the flipped filters
 * (or a transposed convolution), a MatMul's a MatMul with the transposed weights.
 */
import { LensError } from '../../../core/errors.js';
import { planInputGradientAxis } from '../../../graph/conv-geometry.js';
import { unsupported, type Compiler, type Value } from '../compile.js';
import { attrInts, type TfGraphNode } from '../graph-source.js';
import { ACTIVATIONS, activation } from './activation.js';
import { sameRule, type OnnxOpRule } from './rule.js';

/** Explicit [begin, end] pads per spatial axis for Keras 'same'/'valid' (TF puts the odd pixel at the end). */
export function spatialPads(padding: unknown, input: number, kernel: number, stride: number, dilation: number): [number, number] {
  if (padding === 'valid') return [0, 0];
  if (padding !== 'same') throw new LensError('MODEL_UNSUPPORTED', `padding "${String(padding)}" is not supported`);
  const out = Math.ceil(input / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - input, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Output size of a window op along one axis. */
export function outputSize(input: number, kernel: number, stride: number, dilation: number, pads: [number, number]): number {
  return Math.floor((input + pads[0] + pads[1] - (kernel - 1) * dilation - 1) / stride) + 1;
}

/**
 * TensorFlow filter [kh,kw,cin,cout] -> ONNX [cout,cin,kh,kw]. A depthwise filter [kh,kw,cin,mult]
 * is the filter [kh,kw,1,cin*mult] of the grouped convolution ONNX runs (channel c*mult+m).
 */
export function convKernel(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++) out[((o * cin + c) * kh + i) * kw + j] = k[((i * kw + j) * cin + c) * cout + o]!;
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

/** A (possibly grouped) convolution with ONNX weights [cout, cin/group, kh, kw]. */
/** `pads` [[top, bottom], [left, right]] replaces `padding` when given (TensorFlow's EXPLICIT padding). */
export function conv(cc: Compiler, 
  x: Value,
  weights: Float32Array,
  bias: Float32Array | undefined,
  p: { cout: number; kernel: [number, number]; strides: [number, number]; dilations: [number, number]; padding: unknown; pads?: readonly [[number, number], [number, number]]; group: number; hint: string },
): Value {
  if (x.shape.length !== 3) unsupported(cc.modelName, `${p.hint} takes a ${x.shape.length + 1}-D input`);
  const g = cc.g;
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
  return cc.record([x], y, (grad) => {
    const unitStride = p.strides[0] === 1 && p.strides[1] === 1;
    const pointwise = p.kernel[0] === 1 && p.kernel[1] === 1 && padH[0] + padH[1] + padW[0] + padW[1] === 0;
    if (unitStride || pointwise) {
      // A stride-1 convolution's input gradient is a convolution of the output gradient with
      // the filters flipped and in/out swapped, padded by (k-1)*d minus the forward pads: it
      // runs on the same fast kernels (and layout) as the forward pass, unlike ConvTranspose.
      const flipped = g.constant(`${p.hint}_w_flipped`, flipTransposeKernel(weights, p.cout, cin, p.kernel[0], p.kernel[1], p.group), [cin, p.cout / p.group, p.kernel[0], p.kernel[1]]);
      const ph = planInputGradientAxis(p.kernel[0], p.strides[0], p.dilations[0], padH[0], h, ho);
      const pw = planInputGradientAxis(p.kernel[1], p.strides[1], p.dilations[1], padW[0], w, wo);
      const dx = g.op('Conv', [grad, flipped], {
        kernel_shape: { ints: p.kernel },
        dilations: { ints: p.dilations },
        pads: { ints: [ph.before, pw.before, ph.after, pw.after] },
        group: { i: p.group },
      }, unitStride ? `${p.hint}_grad` : `${p.hint}_grad_sparse`);
      return [unitStride ? dx : spreadStrided(cc, dx, cin, ho, wo, h, w, p.strides, `${p.hint}_grad`)];
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
function spreadStrided(cc: Compiler, x: string, c: number, ho: number, wo: number, h: number, w: number, strides: [number, number], hint: string): string {
  const g = cc.g;
  const [sh, sw] = strides;
  const six = g.op('Unsqueeze', [x, g.ints(`${hint}_axes`, [3, 5])]);
  const padded = g.op('Pad', [six, g.ints(`${hint}_interleave`, [0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1])]);
  const dense = g.op('Reshape', [padded, g.ints(`${hint}_dense_shape`, [-1, c, ho * sh, wo * sw])]);
  if (ho * sh === h && wo * sw === w) return g.op('Identity', [dense], {}, hint);
  return g.op('Slice', [dense, g.ints(`${hint}_starts`, [0, 0]), g.ints(`${hint}_ends`, [h, w]), cc.axes23()], {}, hint);
}

export function dense(cc: Compiler, x: Value, kernel: Float32Array, bias: Float32Array | undefined, units: number, hint: string): Value {
  if (x.shape.length !== 1) unsupported(cc.modelName, `Dense layer ${hint} applied to a ${x.shape.length + 1}-D tensor`);
  const g = cc.g;
  const features = x.shape[0]!;
  const inputs = [x.name, g.constant(`${hint}_w`, kernel, [features, units])];
  if (bias) inputs.push(g.constant(`${hint}_b`, bias, [units]));
  const y: Value = { name: g.op('Gemm', inputs, {}, hint), shape: [units] };
  return cc.record([x], y, (grad) => [g.op('MatMul', [grad, g.constant(`${hint}_wt`, transpose2d(kernel, features, units), [units, features])], {}, `${hint}_grad`)]);
}

/** The fused ops of a fused node (_FusedConv2D ...): an optional BiasAdd, then an optional activation. */
function fusedOps(node: TfGraphNode, fail: (what: string) => never): { bias: boolean; activation?: string; alpha?: number } | undefined {
  if (!node.attr?.fused_ops) return undefined;
  const ops = (node.attr.fused_ops.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
  const bias = ops[0] === 'BiasAdd';
  const rest = bias ? ops.slice(1) : ops;
  const FUSABLE = ['Relu', 'Relu6', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Elu'];
  if (rest.length > 1 || (rest.length === 1 && !FUSABLE.includes(rest[0]!))) return fail(`fuses ${ops.join(', ')} (only BiasAdd and ${FUSABLE.join(', ')})`);
  const alpha = rest[0] === 'LeakyRelu' ? node.attr.leakyrelu_alpha?.f : undefined;
  return { bias, ...(rest[0] ? { activation: ACTIVATIONS[rest[0]]! } : {}), ...(alpha !== undefined ? { alpha } : {}) };
}

const convolution: OnnxOpRule = ({ cc, node, act, constant, fail, nhwc, padding, spatial, output }) => {
  nhwc();
  const fused = fusedOps(node, fail);
  const depthwise = node.op.includes('Depthwise');
  const x = act(0, 4);
  const w = constant(1);
  if (w.shape.length !== 4) return fail(`has a filter of shape [${w.shape.join(',')}]`);
  const [kh, kw, cin, last] = w.shape as [number, number, number, number];
  if (cin !== x.shape[0]) return fail(`has a filter for ${cin} channels on an input with ${x.shape[0]} (grouped convolution)`);
  const mode = padding();
  let pads: [[number, number], [number, number]] | undefined;
  if (mode === 'explicit') {
    const e = attrInts(node, 'explicit_paddings') ?? [];
    if (e.length !== 8 || e[0] !== 0 || e[1] !== 0 || e[6] !== 0 || e[7] !== 0) return fail(`has explicit paddings [${e.join(',')}]`);
    pads = [[e[2]!, e[3]!], [e[4]!, e[5]!]];
  }
  const weights = Float32Array.from(w.data);
  const bias = fused?.bias ? Float32Array.from(constant(2).data) : undefined;
  const cout = depthwise ? cin * last : last;
  if (bias && bias.length !== cout) return fail(`adds ${bias.length} biases to ${cout} channels`);
  const common = { kernel: [kh, kw] as [number, number], strides: spatial('strides'), dilations: spatial('dilations'), padding: mode, ...(pads ? { pads } : {}), hint: node.name, cout };
  const y = depthwise
    ? conv(cc, x, convKernel(weights, kh, kw, 1, cout), bias, { ...common, group: cin })
    : conv(cc, x, convKernel(weights, kh, kw, cin, last), bias, { ...common, group: 1 });
  return output(fused?.activation ? activation(cc, fused.activation, y, `${node.name}_act`, fused.alpha) : y);
};

const matMul: OnnxOpRule = ({ cc, node, act, constant, fail, output }) => {
  const fused = fusedOps(node, fail);
  if (node.attr?.transpose_a?.b === true) return fail('transposes its activation input (transpose_a)');
  const x = act(0, 2);
  const w = constant(1);
  if (w.shape.length !== 2) return fail(`has weights of shape [${w.shape.join(',')}]`);
  const transposed = node.attr?.transpose_b?.b === true;
  const [features, units] = (transposed ? [w.shape[1], w.shape[0]] : w.shape) as [number, number];
  if (features !== x.shape[0]) return fail(`multiplies ${x.shape[0]} features by weights for ${features}`);
  const kernel = transposed ? transpose2d(Float32Array.from(w.data), units, features) : Float32Array.from(w.data);
  const bias = fused?.bias ? Float32Array.from(constant(2).data) : undefined;
  if (bias && bias.length !== units) return fail(`adds ${bias.length} biases to ${units} units`);
  const y = dense(cc, x, kernel, bias, units, node.name);
  return output(fused?.activation ? activation(cc, fused.activation, y, `${node.name}_act`, fused.alpha) : y);
};

export const convRules: Record<string, OnnxOpRule> = {
  ...sameRule(['Conv2D', 'DepthwiseConv2dNative', '_FusedConv2D', 'FusedDepthwiseConv2dNative'], convolution),
  ...sameRule(['MatMul', '_FusedMatMul'], matMul),
};
