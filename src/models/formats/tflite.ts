/** TensorFlow Lite flatbuffers (`.tflite`): float or quantized, labels from embedded metadata. */
import { extname } from 'node:path';
import type { ModelFormatHandler } from './types.js';

export const tfliteFormat: ModelFormatHandler<'tflite'> = {
  name: 'tflite',
  detect: ({ path, exists, isDirectory }) => (exists && !isDirectory && extname(path).toLowerCase() === '.tflite' ? { path } : undefined),
  async load({ path, name, labels, preprocessing, engine }) {
    const { importTflite } = await import('../../convert/tflite/index.js');
    const { imageModelFromTflite } = await import('../tflite.js');
    const imp = await importTflite(path);
    const model = await imageModelFromTflite(imp, { name, ...(preprocessing ? { preprocessing } : {}), ...(labels ? { labels } : {}), ...engine });
    return {
      model,
      finalSoftmax: imp.softmax !== undefined,
      ...(!preprocessing && imp.inputAffine !== undefined ? { preprocessingSource: 'quantization' as const } : {}),
      ...(imp.labels && !labels ? { labelsSource: `${path}#${imp.labels.file}` } : {}),
      structure: { kind: 'tflite', tflite: imp },
    };
  },
};
