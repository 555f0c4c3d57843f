/**
 * SavedModel export: models serving-lens loads written as TF1-style SavedModels that TensorFlow
 * Serving loads (JPEG-bytes and float-pixels signatures, top-k classes and probabilities), the
 * and the checks against TensorFlow's op definitions. The graphs themselves are built in src/graph.
 */
export {
  exportSavedModel,
  exportSourceOf,
  loadExportableModel,
  type ExportOptions,
  type ExportResult,
  type ExportSource,
  type ExportInput,
  type ExportProgress,
} from './export.js';
export { checkGraphDef, checkMetaGraph } from './check.js';
export { addJpegDecoder, addPreprocessing, addHead, type HeadTensors } from './serving-graph.js';
export { buildMetaGraph, encodeSavedModel, opDefMessage, recoverVersionLeftovers, GRAPH_VERSIONS, TENSORFLOW_VERSION, PREDICT_METHOD_NAME, type RecoveredLeftover, type SignatureSpecForExport, type SignatureTensorSpec } from './write.js';
