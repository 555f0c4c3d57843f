/**
 * TFLite -> ImageModel: the imported graph (convert/tflite) run by tfjs ops, with the input's
 * quantization map folded in when no preset matches it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError } from '../core/errors.js';
import { createTfModel, type ImageModel } from '../core/model.js';
import type { PreprocessingName } from '../core/preprocess.js';
import type { TfliteImport } from '../convert/tflite/index.js';

export interface TfliteImageModelOptions {
  name: string;
  /** Overrides the preprocessing derived from the input quantization (default 'raw' for float inputs). */
  preprocessing?: PreprocessingName;
  labels?: readonly string[];
  /** Return the model's own output (probabilities) even when logits are reachable. */
  probabilities?: boolean;
}

/**
 * An ImageModel over an imported TFLite graph. Without an explicit preprocessing, a quantized
 * input's own map is used: the matching preset, or its exact affine map inside the graph (reported as 'raw').
 *
 * @example
 * const model = imageModelFromTflite(await importTflite('mobilenet_v2_1.0_224_quant.tflite'), { name: 'mobilenet_v2' });
 * model.output; // 'logit' (the input of the final SOFTMAX)
 */
export function imageModelFromTflite(imp: TfliteImport, options: TfliteImageModelOptions): ImageModel {
  const fold = options.preprocessing === undefined && imp.preprocessing === undefined ? imp.inputAffine : undefined;
  const preprocessing = options.preprocessing ?? imp.preprocessing ?? 'raw';
  const useLogits = imp.softmax !== undefined && !options.probabilities;
  const until = useLogits ? imp.softmax!.logits : imp.graph.output.index;
  const beta = useLogits ? imp.softmax!.beta : 1;
  const labels = options.labels ?? imp.labels?.labels;
  if (labels && labels.length !== imp.classes) {
    throw new LensError('SHAPE_MISMATCH', `${imp.path} has ${imp.classes} classes but ${labels.length} labels were given`);
  }
  return createTfModel({
    name: options.name,
    inputShape: imp.inputShape,
    classes: imp.classes,
    ...(labels ? { labels } : {}),
    output: imp.softmax && !useLogits ? 'probability' : 'logit',
    preprocessing,
    scores: (x) => {
      const input = fold ? tf.add(tf.mul(x, fold.scale), fold.offset) : x;
      let y = imp.graph.run(input, until);
      // The softmax computes softmax(beta * logits); the logit of that model is beta * logits.
      if (beta !== 1) y = tf.mul(y, beta);
      return tf.reshape(y, [x.shape[0], -1]) as tf.Tensor2D;
    },
    dispose: () => imp.graph.dispose(),
  });
}
