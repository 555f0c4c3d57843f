/**
 * A tfjs graph model (model.json with `format: "graph-model"`) as an ImageModel, executed by
 * tfjs-converter, or compiled to onnxruntime when the engine choice allows and every op it needs
 * has a rule (src/engines/onnx/graph-compile.ts). When the output node is a Softmax, scores are taken at
 * its input (the logits).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { LensError, errorMessage } from '../core/errors.js';
import { createTfModel, type ImageModel, type ScoreKind } from '../core/model.js';
import type { PreprocessingName } from '../core/preprocess.js';
import type { EngineInfo } from '../engines/onnx/model.js';
import { withEngine, type EngineChoice } from './engine.js';

interface GraphNodeJson {
  name: string;
  op: string;
  input?: string[];
}

export interface GraphImageModelOptions {
  name: string;
  preprocessing: PreprocessingName;
  labels?: readonly string[];
  /** [H, W, C] when the graph's input shape leaves them unknown. */
  inputShape?: readonly [number, number, number];
  /** Engine for forward and gradient: auto (default, LENS_ENGINE), onnxruntime or tfjs. */
  engine?: EngineChoice | string;
  /** What the scores are, when the caller knows better than the graph's last op (default: from that op). */
  output?: ScoreKind;
  /** Number of classes, when the caller knows it (default: from a forward pass on zeros). */
  classes?: number;
}

/**
 * Builds an ImageModel from tfjs graph-model artifacts.
 *
 * @example
 * const model = await imageModelFromGraphModel(await readModelArtifacts('web_model/model.json'), { name: 'web', preprocessing: 'unit' });
 */
export async function imageModelFromGraphModel(artifacts: tf.io.ModelArtifacts, options: GraphImageModelOptions): Promise<ImageModel & { finalSoftmax: boolean; engine: EngineInfo }> {
  let graph: GraphModel;
  try {
    graph = await loadGraphModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `cannot load tfjs graph model ${options.name}: ${errorMessage(e)}`);
  }
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) {
    graph.dispose();
    throw new LensError('MODEL_UNSUPPORTED', `graph model ${options.name} has ${graph.inputs.length} inputs and ${graph.outputs.length} outputs; image models need one of each`);
  }
  const inShape = graph.inputs[0]!.shape ?? [];
  const known = inShape.length === 4 && inShape.slice(1).every((d) => d > 0);
  const inputShape = options.inputShape ?? (known ? ([inShape[1]!, inShape[2]!, inShape[3]!] as const) : undefined);
  if (!inputShape) {
    graph.dispose();
    throw new LensError('MODEL_UNSUPPORTED', `graph model ${options.name} takes input [${inShape.join(',')}]; give inputShape (lens.json "inputShape")`);
  }
  const nodes = ((artifacts.modelTopology as { node?: GraphNodeJson[] } | undefined)?.node ?? []) as GraphNodeJson[];
  const outputName = graph.outputNodes[0]!;
  // Output names are signature keys when the artifacts carry a signature (converted graphs do).
  const outputTensor = (artifacts.signature as { outputs?: Record<string, { name?: string }> } | undefined)?.outputs?.[outputName]?.name ?? outputName;
  const outputNode = nodes.find((n) => n.name === outputTensor.replace(/:\d+$/, ''));
  const finalSoftmax = outputNode?.op === 'Softmax';
  const logitsName = finalSoftmax ? outputNode!.input?.[0]?.replace(/^\^/, '') : undefined;
  const target = logitsName ?? outputName;
  const classes = options.classes ?? tf.tidy(() => (graph.execute(tf.zeros([1, ...inputShape]), target) as tf.Tensor).size);
  if (options.labels && options.labels.length !== classes) {
    graph.dispose();
    throw new LensError('SHAPE_MISMATCH', `graph model ${options.name} has ${classes} classes but ${options.labels.length} labels were given`);
  }
  const tfjsModel = Object.assign(
    createTfModel({
      name: options.name,
      inputShape,
      classes,
      ...(options.labels ? { labels: options.labels } : {}),
      // A Sigmoid output is one probability per label (multi-label heads).
      output: options.output ?? ((finalSoftmax && !logitsName) || outputNode?.op === 'Sigmoid' ? 'probability' : 'logit'),
      preprocessing: options.preprocessing,
      scores: (x) => tf.reshape(graph.execute(x, target) as tf.Tensor, [x.shape[0], -1]) as tf.Tensor2D,
      dispose: () => graph.dispose(),
    }),
    { finalSoftmax },
  );
  const [{ compileTfGraph }, { tfGraphSourceOf }] = await Promise.all([import('../engines/onnx/graph-compile.js'), import('../engines/onnx/graph-source.js')]);
  const facts = { name: options.name, preprocessing: options.preprocessing };
  // Names given to execute() are signature keys first (as tfjs-converter maps them), else tensor names.
  const signature = artifacts.signature as { inputs?: Record<string, { name?: string }>; outputs?: Record<string, { name?: string }> } | undefined;
  const inputName = graph.inputs[0]!.name;
  const source = () => tfGraphSourceOf(artifacts, graph.weights, signature?.inputs?.[inputName]?.name ?? inputName, signature?.outputs?.[target]?.name ?? target, inputShape);
  try {
    return await withEngine(tfjsModel, () => compileTfGraph(source(), facts), { ...facts, labels: options.labels, engine: options.engine });
  } catch (e) {
    tfjsModel.dispose();
    throw e;
  }
}
