/** TensorFlow Lite flatbuffers (`.tflite`): float or quantized, labels from embedded metadata. */
import { extname } from 'node:path';
import { currentBackend } from '../../engines/tfjs/index.js';
import type { ModelFormatHandler } from './types.js';

export const tfliteFormat: ModelFormatHandler<'tflite'> = {
  name: 'tflite',
  detect: ({ path, exists, isDirectory }) => (exists && !isDirectory && extname(path).toLowerCase() === '.tflite' ? { path } : undefined),
  async load({ path, name, labels, preprocessing }) {
    const { importTflite } = await import('../../convert/tflite/index.js');
    const { imageModelFromTflite } = await import('../tflite.js');
    const imp = await importTflite(path);
    const model = imageModelFromTflite(imp, { name, ...(preprocessing ? { preprocessing } : {}), ...(labels ? { labels } : {}) });
    // TFLite models stay on TensorFlow.js.
    const engine = {
      name: 'tfjs' as const,
      detail: `tfjs ${currentBackend()?.name ?? 'backend'}`,
      reason: 'tflite models run on TensorFlow.js (Keras and tfjs LayersModels, SavedModels and tfjs graph models compile to onnxruntime)',
    };
    return {
      model: Object.assign(model, { engine }),
      finalSoftmax: imp.softmax !== undefined,
      ...(!preprocessing && imp.inputAffine !== undefined ? { preprocessingSource: 'quantization' as const } : {}),
      ...(imp.labels && !labels ? { labelsSource: `${path}#${imp.labels.file}` } : {}),
      structure: { kind: 'tflite', tflite: imp },
    };
  },
};
