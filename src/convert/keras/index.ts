/** Keras HDF5 import (and weights export) for tfjs-layers. */
export { importKerasModel, readKerasFile, type KerasFileInfo, type KerasImportOptions } from './import.js';
export { readKerasWeights, readWeightsGroup, assignKerasWeights, writeKerasH5, shortWeightName, type KerasWeight, type KerasWeightSet } from './weights.js';
export { translateKerasConfig, unsupportedLayers, SUPPORTED_KERAS_LAYERS, type UnsupportedLayer } from './config.js';
export { checkHdf5File } from './h5.js';
export { importKeras3Model, kerasSnakeCase, layersModelFromArchive, readKerasArchive, type Keras3Layer, type KerasArchive } from './keras3.js';
