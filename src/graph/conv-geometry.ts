/**
 * The input gradient of a 2-D convolution (TensorFlow's Conv2D and DepthwiseConv2dNative) as a
 * stride-1 convolution of the output gradient with the flipped filter, one spatial axis at a time.
 * Pure arithmetic, shared by the engines that build that convolution: the tfjs gradient kernels
 * (engines/tfjs/gradients/conv-input.ts) and the ONNX compiler (engines/onnx/compile.ts).
 *
 * Along one axis, dx[i] = sum over o, k with o*s - top + k*d = i of dy[o] * w[k]. Writing
 * i + top = q*s + r, the taps k = j*s + r of phase r form a stride-1 correlation of dy with the
 * flipped taps; q runs from floor(top/s) to floor((top+size-1)/s). A stride-1 convolution has one
 * phase holding every tap; a kernel smaller than the stride (a strided 1x1 convolution) has fewer
 * phases than the stride, and the phases without taps receive no gradient.
 *
 * @example
 * // 3 taps, stride 2, 'same' padding (1 before) over 8 pixels, 4 outputs:
 * planInputGradientAxis(3, 2, 1, 1, 8, 4);
 * // { taps: 2, phases: 2, stride: 2, dilation: 1, before: 1, after: 1, sliceStart: 1, size: 8 }
 */

/** Per spatial axis: how the input gradient is laid out as a stride-1 convolution. */
export interface AxisPlan {
  /** Taps per phase in the transformed filter. */
  taps: number;
  /** Sub-pixel phases that hold taps (the stride, or fewer when the kernel is smaller). */
  phases: number;
  stride: number;
  dilation: number;
  /** Zero padding (>= 0) or cropping (< 0) of dy before / after, for the stride-1 conv. */
  before: number;
  after: number;
  /** Offset of dx[0] once the phases are interleaved, and the input length. */
  sliceStart: number;
  size: number;
}

/**
 * Plans one axis of a convolution's input gradient: `kernel` taps, `stride`, `dilation`, `top`
 * padding before the input of length `size`, and `outSize` outputs of the forward convolution.
 */
export function planInputGradientAxis(kernel: number, stride: number, dilation: number, top: number, size: number, outSize: number): AxisPlan {
  const [taps, phases] = stride === 1 ? [kernel, 1] : kernel >= stride ? [Math.ceil(kernel / stride), stride] : [1, kernel];
  const extent = (taps - 1) * dilation + 1;
  const q0 = Math.floor(top / stride);
  const q1 = Math.floor((top + size - 1) / stride);
  const count = q1 - q0 + 1;
  const before = extent - 1 - q0;
  const after = count + extent - 1 - outSize - before;
  return { taps, phases, stride, dilation, before, after, sliceStart: top - q0 * stride, size };
}
