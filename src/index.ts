/**
 * serving-lens library entry. Each module's public API is re-exported here.
 */
export * from './errors.js';
export * from './fs/index.js';
export * from './backend/index.js';
export * from './backend/gradients.js';
export * from './backend/memory.js';
export { describeLayersModel, loadModelDescription, type ModelDescription, type LoadDescriptionOptions } from './backend/model-description.js';
export * from './backend/workers.js';
export * from './backend/wasm-threads.js';
export * from './models/optimize/index.js';
export * from './onnx/index.js';
export * from './models/model.js';
export * from './models/preprocess.js';
export * from './image/index.js';
export { bytesForDecodeJpeg, type ImageFormat } from './image/format.js';
export * from './tensor/index.js';
export * from './savedmodel/index.js';
export * from './convert/graph/index.js';
export { protoRoot, protoType, protoEnum, decodeMessage, encodeMessage, PROTO_DIR } from './proto/index.js';
export * from './notebook/index.js';
export * from './render/index.js';
export * from './serving/index.js';
export * from './models/labels.js';
export * from './convert/keras/index.js';
export * from './convert/tflite/index.js';
export * from './convert/checkpoint/index.js';
export * from './models/zoo/index.js';
export * from './models/load.js';
export * from './models/graph-model.js';
export * from './export/index.js';
export * from './datasets/index.js';
export * from './models/shapes-resnet.js';
export * from './batch/index.js';
export * from './k8s/index.js';
export * from './demo/index.js';
export * from './attribution/index.js';
