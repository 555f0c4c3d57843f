/**
 * The models layer: every model format becomes an `ImageModel` here, through one loader
 * (`loadImageModel`), with the engine chosen in one place.
 */
export * from './load.js';
export { ENGINE_CHOICES, parseEngineChoice, preferredEngine, withCompiledEngine, withEngine, type EngineChoice, type EngineSource } from './engine.js';
export * from './graph.js';
export * from './labels.js';
export * from './layer-access.js';
export * from './optimize/index.js';
export * from './shapes-resnet.js';
export * from './tflite.js';
export * from './zoo/index.js';
export { imageModelFromSavedModel, type ImageModelFromSavedModelOptions } from './savedmodel.js';
export { createRemoteModel, openServedModel, type RemoteModelOptions, type RemoteImageModel } from './remote.js';
export { modelLoadFlags, graphModelFlags, type ModelLoadSettings } from './load-settings.js';
export { imageModelFromLayers, layersHead, type LayersHead, type LayersImageModelOptions } from './keras.js';
export { describeLayersModel, loadModelDescription, type ModelDescription, type LoadDescriptionOptions } from './describe.js';
