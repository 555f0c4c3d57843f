/**
 * SavedModel export: models serving-lens loads written as TF1-style SavedModels that TensorFlow
 * Serving loads (JPEG-bytes and float-pixels signatures, top-k classes and probabilities), the
 * TensorFlow op definitions they are checked against, and the image-decoding kernels that let
 * converted graphs run DecodeJpeg & co. in TensorFlow.js.
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
  type ModelBody,
} from './export.js';
export { checkGraphDef, checkMetaGraph } from './check.js';
export { opDef, opDefs, type OpDefFact, type OpArgFact, type OpAttrFact, type AttrType, type AttrFactValue } from './op-defs.js';
export { GraphBuilder, sanitizeNodeName, tensorRef, type NodeOptions } from './graph.js';
export { VariableSet, type ExportVariable, type SaverDefMessage } from './variables.js';
export { LayersExporter, EXPORTABLE_LAYERS } from './layers.js';
export { exportTfliteGraph, EXPORTABLE_TFLITE_OPS } from './tflite.js';
export { exportConvertedGraph } from './graph-source.js';
export { addJpegDecoder, addPreprocessing, addHead, type HeadTensors } from './serving-graph.js';
export { buildMetaGraph, encodeSavedModel, opDefMessage, recoverVersionLeftovers, GRAPH_VERSIONS, TENSORFLOW_VERSION, PREDICT_METHOD_NAME, type RecoveredLeftover, type SignatureSpecForExport, type SignatureTensorSpec } from './write.js';
