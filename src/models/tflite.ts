/**
 * TFLite -> ImageModel: the model lowered to TensorFlow ops (src/graph/tflite.ts) and converted in
 * memory to a graph model, which compiles to onnxruntime (the default engine) or runs on tfjs,
 * with the input's quantization map folded in when no preset matches it.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import type { PreprocessingName } from '../core/preprocess.js';
import type { TfliteImport } from '../convert/tflite/index.js';
import type { EngineInfo } from '../engines/onnx/model.js';
import type { EngineChoice } from './engine.js';
import { convertBody } from '../graph/run.js';
import { exportTfliteGraph } from '../graph/tflite.js';
import { imageModelFromGraphModel } from './graph.js';

export interface TfliteImageModelOptions {
  name: string;
  /** Overrides the preprocessing derived from the input quantization (default 'raw' for float inputs). */
  preprocessing?: PreprocessingName;
  labels?: readonly string[];
  /** Return the model's own output (probabilities) even when logits are reachable. */
  probabilities?: boolean;
  /** Engine for forward and gradient: auto (default, LENS_ENGINE), onnxruntime or tfjs. */
  engine?: EngineChoice | string;
}

/**
 * An ImageModel over an imported TFLite model. Without an explicit preprocessing, a quantized
 * input's own map is used: the matching preset, or its exact affine map inside the graph (reported
 * as 'raw'). Scores are the logits of a final SOFTMAX (its input times its beta) unless
 * `probabilities` is set.
 *
 * @example
 * const model = await imageModelFromTflite(await importTflite('mobilenet_v2_1.0_224_quant.tflite'), { name: 'mobilenet_v2' });
 * model.output;      // 'logit' (the input of the final SOFTMAX)
 * model.engine.name; // 'onnxruntime' (or 'tfjs', with model.engine.reason)
 */
export async function imageModelFromTflite(imp: TfliteImport, options: TfliteImageModelOptions): Promise<ImageModel & { engine: EngineInfo }> {
  const fold = options.preprocessing === undefined && imp.preprocessing === undefined ? imp.inputAffine : undefined;
  const preprocessing = options.preprocessing ?? imp.preprocessing ?? 'raw';
  const labels = options.labels ?? imp.labels?.labels;
  if (labels && labels.length !== imp.classes) {
    throw new LensError('SHAPE_MISMATCH', `${imp.path} has ${imp.classes} classes but ${labels.length} labels were given`);
  }
  const { converted, probabilities } = await convertBody(exportTfliteGraph(imp, { logits: !options.probabilities }), fold);
  return imageModelFromGraphModel(converted.artifacts, {
    name: options.name,
    preprocessing,
    inputShape: imp.inputShape,
    classes: imp.classes,
    output: probabilities ? 'probability' : 'logit',
    ...(labels ? { labels } : {}),
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
  });
}
