/**
 * TensorFlow graphs, the one model representation the exporters and the onnxruntime compiler read:
 * a GraphDef builder checked against TensorFlow's op definitions, its variables, and the
 * lowerings of Keras layers, TFLite operators and converted graphs into it.
 */
export { opDef, opDefs, type OpDefFact, type OpArgFact, type OpAttrFact, type AttrType, type AttrFactValue } from './op-defs.js';
export { GraphBuilder, sanitizeNodeName, tensorRef, type NodeOptions } from './builder.js';
export { VariableSet, constantWeights, type ExportVariable, type SaverDefMessage } from './variables.js';
export type { ModelBody, ModelStructure } from './body.js';
export { LayersExporter, EXPORTABLE_LAYERS } from './keras.js';
export { exportTfliteGraph, EXPORTABLE_TFLITE_OPS, SUPPORTED_TFLITE_OPS, type TfliteBodyOptions } from './tflite.js';
export { convertBody, type ConvertedBody } from './run.js';
export { exportConvertedGraph } from './converted.js';
