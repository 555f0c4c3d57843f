/** Keras files: HDF5 (`.h5`, `.hdf5`; full models or ResNet50 weights) and Keras 3 archives (`.keras`). */
import { extname } from 'node:path';
import type { PreprocessingName } from '../../core/preprocess.js';
import type { FormatTarget, ModelFormatHandler } from './types.js';

const withExtension = (...exts: string[]) => ({ path, exists, isDirectory }: FormatTarget) =>
  exists && !isDirectory && exts.includes(extname(path).toLowerCase()) ? { path } : undefined;

export const kerasH5Format: ModelFormatHandler<'keras-h5'> = {
  name: 'keras-h5',
  detect: withExtension('.h5', '.hdf5'),
  async load({ path, name, labels, preprocessing, engine }) {
    const { importKerasModel, readKerasFile } = await import('../../convert/keras/import.js');
    const { layersImageModel } = await import('../keras.js');
    const file = await readKerasFile(path);
    let layers;
    let zooPreprocessing: PreprocessingName | undefined;
    if (!file.modelConfig && file.weights.layers.has('conv1_conv') && file.weights.layers.has('conv5_block3_3_conv')) {
      // A weights-only file in Keras ResNet50 layout (e.g. the official weights): use the zoo architecture.
      const { buildResNet50 } = await import('../zoo/resnet50.js');
      const classes = file.weights.layers.get('predictions')?.find((w) => w.name.includes('bias'))?.shape[0] ?? 1000;
      const net = await buildResNet50({ weights: file.weights, classes });
      layers = net.model;
      zooPreprocessing = net.preprocessing;
    } else {
      layers = await importKerasModel(path);
    }
    // The ResNet50 layout means ImageNet classes: default to their names.
    const zooLabels = zooPreprocessing && !labels && layers.outputs[0]?.shape[1] === 1000 ? (await import('../labels.js')).imagenetLabels(1000) : undefined;
    const allLabels = labels ?? zooLabels;
    const model = await layersImageModel(layers, { name, preprocessing: preprocessing ?? zooPreprocessing ?? 'raw', ...(allLabels ? { labels: allLabels } : {}), ...engine });
    return {
      model,
      finalSoftmax: model.head.finalSoftmax,
      ...(!preprocessing && zooPreprocessing ? { preprocessingSource: 'zoo' as const } : {}),
      structure: { kind: 'layers', model: layers },
    };
  },
};

export const keras3Format: ModelFormatHandler<'keras3'> = {
  name: 'keras3',
  detect: withExtension('.keras'),
  async load({ path, name, labels, preprocessing, engine }) {
    const { importKeras3Model } = await import('../../convert/keras/keras3.js');
    const { layersImageModel } = await import('../keras.js');
    const layers = await importKeras3Model(path);
    const model = await layersImageModel(layers, { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}), ...engine });
    return { model, finalSoftmax: model.head.finalSoftmax, structure: { kind: 'layers', model: layers } };
  },
};
