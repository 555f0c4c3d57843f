/**
 * Keras HDF5 files to tfjs LayersModels: the architecture from `model_config` (rebuilt with
 * tfjs-layers), the weights by layer and weight name. Weights-only files load into an
 * architecture the caller provides.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { LensError, errorMessage } from '../../core/errors.js';
import { isGroup, readHdf5, stringAttr, type Group, type H5File } from './h5.js';
import { translateKerasConfig } from './config.js';
import { assignKerasWeights, readWeightsGroup, type KerasWeightSet } from './weights.js';

/** What a Keras HDF5 file holds, before any model is built. */
export interface KerasFileInfo {
  path: string;
  /** `keras_version` attribute, e.g. "2.4.0". */
  kerasVersion?: string;
  backend?: string;
  /** Parsed `model_config`; absent in weights-only files. */
  modelConfig?: object;
  /** `training_config` is present (the file was saved after compile). */
  hasTrainingConfig: boolean;
  weights: KerasWeightSet;
}

function readConfig(file: H5File, path: string): Omit<KerasFileInfo, 'weights'> & { group: Group } {
  const configText = stringAttr(file, 'model_config');
  let modelConfig: object | undefined;
  if (configText !== undefined) {
    try {
      modelConfig = JSON.parse(configText) as object;
    } catch (e) {
      throw new LensError('MODEL_CORRUPT', `${path}: model_config is not valid JSON: ${errorMessage(e)}`);
    }
  }
  const nested = file.get('model_weights');
  const group = isGroup(nested) ? nested : file;
  const kerasVersion = stringAttr(file, 'keras_version') ?? stringAttr(group, 'keras_version');
  const backend = stringAttr(file, 'backend') ?? stringAttr(group, 'backend');
  return {
    path,
    group,
    ...(kerasVersion !== undefined ? { kerasVersion } : {}),
    ...(backend !== undefined ? { backend } : {}),
    ...(modelConfig !== undefined ? { modelConfig } : {}),
    hasTrainingConfig: file.attrs['training_config'] !== undefined,
  };
}

/**
 * Reads a Keras HDF5 file's config and weights (no tfjs model is built).
 *
 * @example
 * const info = await readKerasFile('pretrainedResnet.h5');
 * info.kerasVersion; // '2.4.0'
 */
export async function readKerasFile(path: string): Promise<KerasFileInfo> {
  return readHdf5(path, (file) => {
    const { group, ...info } = readConfig(file, path);
    return { ...info, weights: readWeightsGroup(group, path) };
  });
}

export interface KerasImportOptions {
  /**
   * For weights-only files: the architecture to load the weights into (a model, or a function
   * that builds one). Also accepted for full files, to override the stored architecture.
   */
  architecture?: tfl.LayersModel | (() => tfl.LayersModel | Promise<tfl.LayersModel>);
}

/**
 * Imports a Keras HDF5 file (`model.save('x.h5')` or `save_weights`) as a tfjs LayersModel.
 *
 * @example
 * const model = await importKerasModel('../shared/models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
 * const probs = model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor;
 * // weights-only file into a known architecture:
 * const net = await importKerasModel('weights.h5', { architecture: () => buildMyNet() });
 */
export async function importKerasModel(path: string, options: KerasImportOptions = {}): Promise<tfl.LayersModel> {
  let topology: object | undefined;
  const weights = await readHdf5(path, (file) => {
    const { group, modelConfig } = readConfig(file, path);
    if (!options.architecture) {
      if (!modelConfig) {
        throw new LensError(
          'MODEL_UNSUPPORTED',
          `${path} holds weights only (no model_config); pass the architecture to load them into (importKerasModel(path, { architecture }))`,
        );
      }
      // The architecture is checked before any weight is read, so unsupported layers are reported first.
      topology = translateKerasConfig(modelConfig, path);
    }
    return readWeightsGroup(group, path);
  });
  let model: tfl.LayersModel;
  if (options.architecture) {
    model = typeof options.architecture === 'function' ? await options.architecture() : options.architecture;
  } else {
    try {
      model = await tfl.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]);
    } catch (e) {
      throw new LensError('MODEL_UNSUPPORTED', `${path}: tfjs-layers cannot rebuild the model config: ${errorMessage(e)}`);
    }
  }
  try {
    assignKerasWeights(model, weights);
  } catch (e) {
    if (!options.architecture) model.dispose();
    throw e;
  }
  return model;
}
