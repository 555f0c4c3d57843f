/**
 * Native CPU execution through onnxruntime: tfjs LayersModels and TensorFlow graphs (SavedModels,
 * tfjs graph models) compiled to ONNX graphs that return class scores and input gradients.
 */
export { OnnxGraphBuilder, ONNX_OPSET, type OnnxAttribute, type OnnxDataType, type OnnxDim, type OnnxNode } from './graph.js';
export { compileLayersModel, type CompileOptions, type CompiledModel } from './compile.js';
export { compileTfGraph, tfGraphSourceOf, type TfGraphAttr, type TfGraphCompileOptions, type TfGraphNode, type TfGraphSource } from './graph-compile.js';
export { loadOnnxRuntime, onnxThreads, type OnnxRuntime } from './runtime.js';
export {
  ENGINE_CHOICES,
  onnxImageModel,
  onnxImageModelFromCompiled,
  preferredEngine,
  onnxMemoryBudget,
  parseEngineChoice,
  withCompiledEngine,
  withEngine,
  type EngineChoice,
  type EngineInfo,
  type OnnxImageModel,
  type OnnxModelOptions,
} from './model.js';
