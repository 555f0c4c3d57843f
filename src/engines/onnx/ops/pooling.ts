/**
 * Window reductions: MaxPool (backward: a scatter of each window's gradient to its saved argmax),
 * AvgPool (a transposed convolution of ones over the inverse window counts) and Mean over the
 * spatial axes (global average pooling: the gradient spread evenly).
 */
import type { Compiler, Value } from '../compile.js';
import { outputSize, spatialPads } from './conv.js';
import { sameRule, type OnnxOpRule } from './rule.js';

export function maxPool(cc: Compiler, x: Value, kernel: [number, number], strides: [number, number], padding: unknown, hint: string): Value {
  const g = cc.g;
  const [c, h, w] = x.shape as [number, number, number];
  const padH = spatialPads(padding, h, kernel[0], strides[0], 1);
  const padW = spatialPads(padding, w, kernel[1], strides[1], 1);
  const [y, indices] = g.multi('MaxPool', [x.name], [hint, `${hint}_argmax`], {
    kernel_shape: { ints: kernel },
    strides: { ints: strides },
    pads: { ints: [padH[0], padW[0], padH[1], padW[1]] },
  });
  const out: Value = { name: y!, shape: [c, outputSize(h, kernel[0], strides[0], 1, padH), outputSize(w, kernel[1], strides[1], 1, padW)] };
  return cc.record([x], out, (grad) => {
    // Each output's gradient goes to the input element that was its maximum; windows overlap,
    // so contributions to one element add up. Indices are flat over the whole NCHW tensor.
    const flat = g.ints('flat', [-1]);
    const shape = g.op('Shape', [x.name]);
    const zeros = g.op('Reshape', [g.op('ConstantOfShape', [shape]), flat]);
    const scattered = g.op('ScatterElements', [zeros, g.op('Reshape', [indices!, flat]), g.op('Reshape', [grad, flat])], { axis: { i: 0 }, reduction: { s: 'add' } });
    return [g.op('Reshape', [scattered, shape], {}, `${hint}_grad`)];
  });
}

export function avgPool(cc: Compiler, x: Value, kernel: [number, number], strides: [number, number], padding: unknown, hint: string): Value {
  const g = cc.g;
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
  return cc.record([x], y, (grad) => {
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
export function globalAvgPool(cc: Compiler, x: Value, hint: string, keepDims = false): Value {
  const g = cc.g;
  const [c, h, w] = x.shape as [number, number, number];
  const y: Value = keepDims
    ? { name: g.op('GlobalAveragePool', [x.name], {}, hint), shape: [c, 1, 1] }
    : { name: g.op('Flatten', [g.op('GlobalAveragePool', [x.name], {}, `${hint}_4d`)], { axis: { i: 1 } }, hint), shape: [c] };
  return cc.record([x], y, (grad) => {
    const spread = g.op('Expand', [keepDims ? grad : g.op('Unsqueeze', [grad, cc.axes23()]), g.op('Shape', [x.name])]);
    return [g.op('Mul', [spread, g.scalar(`${hint}_inverse_area`, 1 / (h * w))], {}, `${hint}_grad`)];
  });
}

export const poolingRules: Record<string, OnnxOpRule> = {
  ...sameRule(['MaxPool', 'AvgPool'], ({ cc, node, act, nhwc, padding, spatial, fail, output }) => {
    nhwc();
    const x = act(0, 4);
    const mode = padding();
    if (mode === 'explicit') return fail('has explicit padding');
    return output((node.op === 'MaxPool' ? maxPool : avgPool)(cc, x, spatial('ksize'), spatial('strides'), mode, node.name));
  }),
  Mean: ({ cc, node, act, constant, fail, output }) => {
    const x = act(0, 4);
    const axes = Array.from(constant(1).data, (a) => (a < 0 ? a + 4 : a)).sort();
    if (axes.join() !== '1,2') return fail(`averages over axes [${axes.join(',')}] (only the spatial axes 1, 2)`);
    return output(globalAvgPool(cc, x, node.name, node.attr?.keep_dims?.b === true));
  },
};
