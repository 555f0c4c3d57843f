import * as tf from '@tensorflow/tfjs-core';
import { wrapKernel } from './wrap-kernel.js';

/**
 * A kernel call noted by the kernel wrappers: attributes, input shapes and the identity of the
 * weight input. The engine records a tape node synchronously after the kernel ran and reads the
 * gradient function from the registry at that moment, so a `gradFunc` getter can bind the
 * gradient to the call just noted. customGrad nodes (the fused ops) carry no attributes at all;
 * for plain kernels the note gives the weight's identity for the filter cache.
 */
export interface KernelCall {
  kernel: string;
  attrs: tf.NamedAttrMap;
  shapes: number[][];
  weightId: object | undefined;
}

let lastCall: KernelCall | undefined;

/** The call noted last, if it was of `kernel`; the note is used up either way. */
export function takeCall(kernel: string): KernelCall | undefined {
  const call = lastCall;
  lastCall = undefined;
  return call?.kernel === kernel ? call : undefined;
}

/** Whether the noted call's input shapes are those of `tensors`. */
export function sameShapes(call: KernelCall, tensors: (tf.Tensor | undefined)[]): boolean {
  return call.shapes.every((s, i) => {
    const t = tensors[i];
    return t !== undefined && s.length === t.shape.length && s.every((v, j) => v === t.shape[j]);
  });
}

/** Kernels whose calls are noted, with the names of their (data, weight) inputs. */
export const NOTED_KERNELS: Record<string, [string, string]> = {
  [tf.Conv2D]: ['x', 'filter'],
  [tf.DepthwiseConv2dNative]: ['x', 'filter'],
  [tf.FusedConv2D]: ['x', 'filter'],
  [tf.FusedDepthwiseConv2D]: ['x', 'filter'],
  [tf._FusedMatMul]: ['a', 'b'],
};

/** Notes every call of `kernelName` on a backend (wrapping its kernel once). */
export function noteCalls(kernelName: string, backendName: string): void {
  const names = NOTED_KERNELS[kernelName];
  if (names === undefined) return;
  wrapKernel(kernelName, backendName, (run) => (args) => {
    lastCall = {
      kernel: kernelName,
      attrs: args.attrs ?? {},
      shapes: names.map((n) => args.inputs[n]?.shape ?? []),
      weightId: args.inputs[names[1]]?.dataId,
    };
    return run(args);
  });
}
