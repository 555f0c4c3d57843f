/**
 * The input gradient of a convolution two ways, per backend, on ResNet50's layer shapes (batch 1):
 * the backend's Conv2DBackpropInput kernel, and the same gradient as one forward convolution
 * (src/engines/tfjs/gradients/conv-input.ts, transformed filter cached as in attribution). The forward pass is
 * shown for scale. This is what `inputGradientMethod('auto')` is chosen from.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engines/tfjs/index.js';
import { conv2dInputGradient, type InputGradientMethod } from '../src/engines/tfjs/gradients/index.js';
import { median, timeRuns, writeBenchResult, type Cell } from './lib.js';

/** [input side, input channels, kernel, stride, output channels] of ResNet50 layers. */
const LAYERS: [number, number, number, number, number][] = [
  [230, 3, 7, 2, 64],
  [56, 64, 1, 1, 64],
  [56, 64, 3, 1, 64],
  [56, 64, 1, 1, 256],
  [56, 256, 1, 2, 128],
  [28, 128, 3, 1, 128],
  [14, 256, 3, 1, 256],
  [7, 512, 3, 1, 512],
  [7, 2048, 1, 1, 512],
];

async function timeMs(fn: () => tf.Tensor, repeats: number): Promise<number> {
  return median(
    await timeRuns(
      async () => {
        const t = fn();
        await t.data();
        t.dispose();
      },
      repeats,
      2,
    ),
  );
}

async function main(): Promise<void> {
  const rows: Record<string, Cell>[] = [];
  for (const backend of ['wasm', 'cpu'] as const) {
    await initBackend({ backend });
    const repeats = backend === 'cpu' ? 1 : 3;
    for (const [size, cin, k, s, cout] of LAYERS) {
      const x = tf.randomNormal([1, size, size, cin], 0, 1, 'float32', 1) as tf.Tensor4D;
      const w = tf.randomNormal([k, k, cin, cout], 0, 0.1, 'float32', 2) as tf.Tensor4D;
      const pad = k === 7 ? 'valid' : 'same';
      const dy = tf.tidy(() => tf.onesLike(tf.conv2d(x, w, s, pad))) as tf.Tensor4D;
      const grad = (method: InputGradientMethod) => () => conv2dInputGradient(dy, w, x.shape, { strides: s, pad }, { method, filterIdentity: w.dataId });
      const forward = await timeMs(() => tf.conv2d(x, w, s, pad), repeats);
      const backprop = await timeMs(grad('backprop'), repeats);
      const viaForward = await timeMs(grad('forward-conv'), repeats);
      const layer = `${size}x${size}x${cin} ${k}x${k}/${s} -> ${cout}`;
      process.stderr.write(`[conv-input-gradient] ${backend} ${layer}: forward ${forward.toFixed(1)}, backprop ${backprop.toFixed(1)}, forward-conv ${viaForward.toFixed(1)} ms\n`);
      rows.push({ backend, layer, 'forward ms': forward, 'Conv2DBackpropInput ms': backprop, 'as forward conv ms': viaForward, speedup: backprop / viaForward });
      tf.dispose([x, w, dy]);
    }
  }
  writeBenchResult('conv-input-gradient', 'Convolution input gradient: backprop kernel vs forward convolution (ResNet50 layers, batch 1)', rows, [
    'speedup = Conv2DBackpropInput time / forward-conv time; the forward-conv form is the default where it wins (wasm).',
    'The forward-conv filter (flipped, transposed, split into stride phases) is built once per weight and cached, as during attribution.',
  ]);
}

await main();
