/**
 * Native CPU execution through onnxruntime: TensorFlow graphs (SavedModels, tfjs graph models, and
 * tfjs LayersModels lowered by graph/keras.ts) compiled to ONNX graphs that return class scores and input gradients.
 */
export { OnnxGraphBuilder, ONNX_OPSET, type OnnxAttribute, type OnnxDataType, type OnnxDim, type OnnxNode } from './graph.js';
export type { CompiledModel } from './compile.js';
export { compileLayersModel, type CompileOptions } from './layers.js';
export { compileTfGraph, type TfGraphCompileOptions } from './graph-compile.js';
export { tfGraphSourceOf, tfGraphSourceOfGraphDef, type TfGraphAttr, type TfGraphNode, type TfGraphSource } from './graph-source.js';
export { loadOnnxRuntime, onnxThreads, type OnnxRuntime } from './runtime.js';
export {
  onnxImageModel,
  onnxImageModelFromCompiled,
  onnxMemoryBudget,
  type EngineInfo,
  type OnnxImageModel,
  type OnnxModelOptions,
} from './model.js';
