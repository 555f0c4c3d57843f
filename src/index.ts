/**
 * serving-lens library entry. Each module's public API is re-exported here.
 */
export * from './core/errors.js';
export * from './fs/atomic.js';
export * from './engines/tfjs/index.js';
export * from './engines/tfjs/gradients/index.js';
export * from './engines/tfjs/memory.js';
export * from './models/workers.js';
export * from './engines/tfjs/wasm-threads.js';
export * from './engines/onnx/index.js';
export * from './core/model.js';
export * from './core/preprocess.js';
export * from './image/index.js';
export { bytesForDecodeJpeg, type ImageFormat } from './image/format.js';
export * from './image/files.js';
export * from './tensor/index.js';
export * from './savedmodel/index.js';
export * from './convert/graph/index.js';
export { protoRoot, protoType, protoEnum, decodeMessage, encodeMessage, PROTO_DIR } from './proto/index.js';
export * from './notebook/index.js';
export * from './render/index.js';
export * from './serving/index.js';
export * from './convert/keras/index.js';
export * from './convert/tflite/index.js';
export * from './convert/checkpoint/index.js';
export * from './graph/index.js';
export * from './export/index.js';
export * from './datasets/index.js';
export * from './batch/index.js';
export * from './k8s/index.js';
export * from './demo/index.js';
export * from './models/index.js';
export * from './attribution/index.js';
export * from './report/index.js';
export { profileChart } from './render/profile-chart.js';
export { registerImageOps, decodeImageBytes, IMAGE_OPS, type DecodedImage } from './engines/tfjs/image-ops.js';
export {
  loadSavedModel,
  type LoadedSavedModel,
  type LoadedGraph,
  type LoadSavedModelOptions,
  type LoadProgress,
  type PredictOptions,
  type PredictInputs,
} from './engines/tfjs/savedmodel.js';
export { convertSavedModel, convertSavedModelSignature, type ConvertSavedModelOptions, type ConvertSavedModelResult } from './convert/savedmodel.js';
export { sniffImageFormat } from './image/format.js';
