/**
 * TFLite import: `.tflite` flatbuffers (float, uint8 or int8 quantized) read into their tensors and
 * operators, with the input preprocessing derived from the input tensor's quantization, the final
 * softmax located, and labels from the file's embedded metadata when present. Running and
 * exporting go through the lowering to TensorFlow ops (src/graph/tflite.ts).
 */
import { readFile } from 'node:fs/promises';
import { LensError, errorMessage } from '../../core/errors.js';
import { affineOf, type PreprocessingName } from '../../core/preprocess.js';
import { embeddedLabels } from './embedded.js';
import { parseTflite, type TfliteModel, type TfliteTensor } from './reader.js';

export { parseTflite, type TfliteModel, type TfliteTensor, type TfliteOperator, type TfliteQuantization, type TfliteOptions } from './reader.js';
export { dequantize } from './dequantize.js';
export { embeddedFiles, embeddedLabels } from './embedded.js';

/** Where the final softmax is, when the model ends in one (looking through reshapes and (de)quantization). */
export interface SoftmaxTail {
  /** Tensor index of the softmax input (the logits). */
  logits: number;
  beta: number;
}

/** Operators that only move or re-encode values, looked through when finding a final softmax. */
const PASSTHROUGH = new Set(['RESHAPE', 'SQUEEZE', 'QUANTIZE', 'DEQUANTIZE']);

/** The final softmax of `model`, if its output comes from one. */
function softmaxTail(model: TfliteModel, output: number): SoftmaxTail | undefined {
  const producers = new Map(model.operators.flatMap((op) => op.outputs.map((o) => [o, op] as const)));
  for (let index = output; ; ) {
    const op = producers.get(index);
    if (!op) return undefined;
    if (op.op === 'SOFTMAX') return { logits: op.inputs[0]!, beta: op.options.beta ?? 1 };
    if (!PASSTHROUGH.has(op.op)) return undefined;
    index = op.inputs[0]!;
  }
}

/** Pixel p (0..255) fed to a quantized input means the real value p * scale + offset. */
export interface InputAffine {
  scale: number;
  offset: number;
}

export interface TfliteImport {
  path: string;
  model: TfliteModel;
  /** The model's one input and one output tensor. */
  input: TfliteTensor;
  output: TfliteTensor;
  inputShape: [number, number, number];
  classes: number;
  /** The input tensor's type (FLOAT32, UINT8, INT8). */
  inputType: string;
  /** For quantized inputs: what raw pixel bytes mean in real values. */
  inputAffine?: InputAffine;
  /** The preset equal (within 1% of the range) to `inputAffine`, if any. */
  preprocessing?: PreprocessingName;
  /** Present when the output comes from a softmax: where its logits are. */
  softmax?: SoftmaxTail;
  /** Labels embedded in the file (TFLite metadata zip), when their count matches the classes. */
  labels?: { file: string; labels: string[] };
}

/**
 * The affine map pixels -> real input of a quantized input tensor. A uint8 input receives the
 * pixel bytes themselves (real = scale * (p - zp)); an int8 input receives p - 128.
 */
export function inputAffineOf(type: string, scale: number, zeroPoint: number): InputAffine {
  const shift = type === 'INT8' ? 128 : 0;
  return { scale, offset: -scale * (zeroPoint + shift) };
}

/** The preset whose map equals `affine` within 1% of its output range at pixels 0 and 255, if any. */
export function presetForAffine(affine: InputAffine): PreprocessingName | undefined {
  for (const name of ['raw', 'unit', 'symmetric'] as const) {
    const p = affineOf(name);
    const s = p.scale[0]!;
    const o = p.offset[0]!;
    const range = 255 * s;
    const err0 = Math.abs(affine.offset - o);
    const err255 = Math.abs(255 * affine.scale + affine.offset - (255 * s + o));
    if (Math.max(err0, err255) <= 0.01 * range) return name;
  }
  return undefined;
}

/**
 * Reads and prepares a TFLite model.
 *
 * @example
 * const imp = await importTflite('mobilenet_v2_1.0_224_quant.tflite');
 * imp.preprocessing;   // 'symmetric' (from input scale 1/128, zero point 128)
 * imp.labels?.labels[286]; // 'Egyptian cat'
 */
export async function importTflite(path: string): Promise<TfliteImport> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new LensError('NOT_FOUND', `cannot read TFLite model ${path}: ${errorMessage(e)}`);
  }
  const model = parseTflite(bytes, path);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new LensError('MODEL_UNSUPPORTED', `${path}: expected one input and one output, found ${model.inputs.length} and ${model.outputs.length}`);
  }
  const input = model.tensors[model.inputs[0]!]!;
  const output = model.tensors[model.outputs[0]!]!;
  if (input.shape.length !== 4) {
    throw new LensError('MODEL_UNSUPPORTED', `${path}: input ${input.name} has shape [${input.shape.join(',')}]; image models take [N,H,W,C]`);
  }
  const classes = output.shape.slice(1).reduce((a, b) => a * b, 1);
  const result: TfliteImport = {
    path,
    model,
    input,
    output,
    inputShape: [input.shape[1]!, input.shape[2]!, input.shape[3]!],
    classes,
    inputType: input.type,
  };
  if ((input.type === 'UINT8' || input.type === 'INT8') && input.quantization?.scale.length === 1) {
    const affine = inputAffineOf(input.type, input.quantization.scale[0]!, input.quantization.zeroPoint[0] ?? 0);
    result.inputAffine = affine;
    const preset = presetForAffine(affine);
    if (preset) result.preprocessing = preset;
  }
  const tail = softmaxTail(model, output.index);
  if (tail) result.softmax = tail;
  const labels = embeddedLabels(bytes, classes);
  if (labels) result.labels = labels;
  return result;
}
