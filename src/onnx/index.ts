/**
 * Native CPU execution through onnxruntime: tfjs LayersModels compiled to ONNX graphs that return
 * class scores and input gradients.
 */
export { OnnxGraphBuilder, ONNX_OPSET, type OnnxAttribute, type OnnxDataType, type OnnxDim, type OnnxNode } from './graph.js';
export { compileLayersModel, type CompileOptions, type CompiledModel } from './compile.js';
export { loadOnnxRuntime, onnxThreads, type OnnxRuntime } from './runtime.js';
export { ENGINE_CHOICES, onnxImageModel, onnxMemoryBudget, parseEngineChoice, withEngine, type EngineChoice, type EngineInfo, type OnnxModelOptions } from './model.js';
