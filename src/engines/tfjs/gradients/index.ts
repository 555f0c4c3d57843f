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
 * The fix, installed by `installGradients()` (which `initBackend()` calls), one gradient or
 * kernel patch per file of this folder, as tfjs-core keeps its own:
 * - The engine names a customGrad tape node after the op scope (`fusedConv2d__op`, ...) and looks
 *   its gradient up in the registry under that name when it records the node, right after the
 *   op's kernel ran. We register lazy gradients under those names; the fused kernels are wrapped
 *   to note their attributes (strides, padding, ...) which the gradient needs and the customGrad
 *   node does not carry (fused.ts, fused-conv.ts, fused-matmul.ts, kernel-calls.ts).
 * - `Conv2D`, `DepthwiseConv2dNative` and `FusedBatchNorm` get gradients whose input thunk runs
 *   on fast kernels: the input gradient of a convolution is itself a convolution (spatially
 *   flipped, in/out-transposed filter; strides become sub-pixel phases recombined with
 *   depth-to-space; dilations stay dilations), so it runs on the backend's forward conv kernels
 *   (XNNPACK on wasm) instead of its generic backprop loop. The batch-norm input gradient is one
 *   broadcast multiply instead of a Tile (conv.ts, conv-input.ts with the phase plan of
 *   graph/conv-geometry.ts, batch-norm.ts).
 * - On wasm, the tape's clones of saved tensors share data instead of copying it, and the
 *   `UnsortedSegmentSum` kernel that the gather gradient needs is added (wasm-identity.ts,
 *   wasm-segment-sum.ts).
 *
 * Stock gradients that are wrong, replaced for correctness (input gradients only as well):
 * - `AvgPool`: stock AvgPoolGrad divides by the whole window, where the forward pass (like
 *   Keras and TensorFlow) divides by the pixels inside the input, so 'same' borders were off
 *   (avg-pool.ts).
 * - `MaxPool`: stock wasm MaxPoolGrad drops windows whose maximum is negative and sends ties to
 *   the last maximum; the replacement sends each window's gradient to its first maximum in
 *   row-major order on every backend, as TensorFlow's CPU kernel and onnxruntime do (max-pool.ts).
 * - `FusedBatchNorm` without scale or offset (Keras `scale=False` / `center=False`): stock tfjs
 *   cannot differentiate it at all; the kernel is wrapped to keep the missing inputs off the tape.
 *
 * The stock gradients of every other op come from tfjs-layers: tfjs-core's Node bundle registers
 * none, and tfjs-layers' bundle registers them all when it is first loaded. `installGradients()`
 * loads it before registering the replacements, so that no later import can put the stock ones
 * back; processes that never differentiate (`lens serve`) never load it.
 *
 * @example
 * import * as tf from '@tensorflow/tfjs-core';
 * import { initBackend } from 'serving-lens';      // installs the gradients (unless { gradients: false })
 * await initBackend({ backend: 'wasm' });
 * const g = tf.grad((x: tf.Tensor4D) => model.apply(x) as tf.Tensor)(images); // no filter gradients
 */
import * as tf from '@tensorflow/tfjs-core';
import { avgPoolGradConfig } from './avg-pool.js';
import { dropMissingBatchNormInputs, fusedBatchNormGradConfig } from './batch-norm.js';
import { conv2DGradConfig, depthwiseConv2dNativeGradConfig } from './conv.js';
import { fusedConv2dGradConfig, fusedDepthwiseConv2dGradConfig } from './fused-conv.js';
import { fusedMatMulGradConfig } from './fused-matmul.js';
import { NOTED_KERNELS, noteCalls } from './kernel-calls.js';
import { maxPoolGradConfig } from './max-pool.js';
import { shareClonedDataOnWasm } from './wasm-identity.js';
import { registerWasmSegmentSum } from './wasm-segment-sum.js';

export { conv2dInputGradient, depthwiseConv2dInputGradient, type ConvGeometry, type ConvPadding, type InputGradientOptions } from './conv-input.js';
export { inputGradientMethod, setInputGradientMethod, type InputGradientChoice, type InputGradientMethod } from './method.js';
export { avgPoolInputGradient } from './avg-pool.js';
export { maxPoolInputGradient } from './max-pool.js';
export type { PoolGeometry } from './pool-geometry.js';

/** The replacement gradients, registered over tfjs' stock ones. */
const GRADIENTS: readonly tf.GradConfig[] = [
  conv2DGradConfig,
  depthwiseConv2dNativeGradConfig,
  fusedBatchNormGradConfig,
  avgPoolGradConfig,
  maxPoolGradConfig,
  fusedConv2dGradConfig,
  fusedDepthwiseConv2dGradConfig,
  fusedMatMulGradConfig,
];

/**
 * Kernels of the wasm backend that forward passes use too (a clone that shares its data, the
 * UnsortedSegmentSum kernel wasm lacks); idempotent. `initBackend()` adds them whether or not it
 * installs gradients.
 *
 * @example
 * await tf.setBackend('wasm');
 * patchWasmKernels();
 */
export function patchWasmKernels(): void {
  shareClonedDataOnWasm();
  registerWasmSegmentSum();
}

/** The stock gradients loaded and the replacements registered over them, once per process. */
let registered: Promise<void> | undefined;

/**
 * Registers the attribution-friendly gradients, after tfjs' stock gradients (idempotent). Call it
 * again after registering a backend that was not known at the first call; `initBackend()` does
 * this for you.
 *
 * @example
 * await tf.setBackend('wasm');
 * await installGradients();
 */
export async function installGradients(): Promise<void> {
  registered ??= import('@tensorflow/tfjs-layers').then(() => {
    for (const config of GRADIENTS) tf.registerGradient(config);
  });
  await registered;
  for (const backendName of Object.keys(tf.engine().registryFactory)) {
    for (const kernel of Object.keys(NOTED_KERNELS)) noteCalls(kernel, backendName);
    dropMissingBatchNormInputs(backendName);
  }
  patchWasmKernels();
}
