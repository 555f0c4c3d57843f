/**
 * tfjs LayersModels on onnxruntime: the model is written as TensorFlow ops by the same lowering
 * the SavedModel exporter uses (graph/keras.ts), with its weights as constants, and that graph is
 * compiled like any other TensorFlow graph (graph-compile.ts). Batch norms and biases after a
 * convolution or Dense layer fold into its weights there (fold.ts).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { GraphBuilder, sanitizeNodeName } from '../../graph/builder.js';
import { LayersExporter } from '../../graph/keras.js';
import { constantWeights } from '../../graph/variables.js';
import { LensError } from '../../core/errors.js';
import type { PreprocessingName } from '../../core/preprocess.js';
import { unsupported, type CompiledModel } from './compile.js';
import { compileTfGraph } from './graph-compile.js';
import { tensorKey, tfGraphSourceOfGraphDef } from './graph-source.js';

export interface CompileOptions {
  /** Name for the graphs. */
  name: string;
  preprocessing: PreprocessingName;
  /** Keep a final softmax (scores are probabilities); by default the scores are the logits before it. */
  probabilities?: boolean;
}

const isContainer = (layer: tfl.layers.Layer): layer is tfl.LayersModel => Array.isArray((layer as { layers?: unknown }).layers);

type Origin = { name: string; kind: string };

/** Node-name scope of every layer (nested models add their name), with the layer's name and class. */
function layerScopes(model: tfl.LayersModel, prefix = '', out = new Map<string, Origin>()): Map<string, Origin> {
  for (const layer of model.layers) {
    const scope = `${prefix}${sanitizeNodeName(layer.name)}`;
    if (isContainer(layer)) layerScopes(layer, `${scope}/`, out);
    else out.set(scope, { name: layer.name, kind: layer.getClassName() });
  }
  return out;
}

/**
 * Compiles a single-input, single-output image LayersModel (NHWC input, class scores output).
 * Throws MODEL_UNSUPPORTED naming the layer (and op) that has no rule.
 *
 * @example
 * const compiled = await compileLayersModel(await importKerasModel('resnet8.h5'), { name: 'resnet8', preprocessing: 'raw' });
 * const session = await ort.InferenceSession.create(compiled.gradient);
 */
export async function compileLayersModel(model: tfl.LayersModel, options: CompileOptions): Promise<CompiledModel> {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    unsupported(options.name, `it has ${model.inputs.length} inputs and ${model.outputs.length} outputs; image models need one of each`);
  }
  const shape = model.inputs[0]!.shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d === null || d === undefined)) {
    unsupported(options.name, `its input is [${shape.map((d) => d ?? '?').join(',')}]; image models need [N,H,W,C] with H, W and C known`);
  }
  const inputShape = [shape[1]!, shape[2]!, shape[3]!] as [number, number, number];
  const g = new GraphBuilder();
  const pixels = g.op('Placeholder', [], { dtype: 'DT_FLOAT', shape: [-1, ...inputShape] }, { name: 'pixels' });
  const exporter = new LayersExporter(g, constantWeights);
  const scopes = layerScopes(model);
  const origin = (node: string): Origin | undefined => {
    for (let scope = node; scope.includes('/'); scope = scope.slice(0, scope.lastIndexOf('/'))) {
      const found = scopes.get(scope.slice(0, scope.lastIndexOf('/')));
      if (found) return found;
    }
    return undefined;
  };
  let [scores] = (await exporter.model(model, [pixels]).catch((e: unknown) => {
    // The lowering names the layer it has no TensorFlow ops for.
    if (e instanceof LensError && e.code === 'MODEL_UNSUPPORTED') unsupported(options.name, e.message);
    throw e;
  })) as [string];
  // Attribution wants the logits: a final softmax is cut unless probabilities are asked for.
  const last = g.nodes.find((n) => n.name === tensorKey(scores).node);
  const finalSoftmax = last?.op === 'Softmax';
  const logits = finalSoftmax && !options.probabilities;
  if (logits) scores = last.input![0]!;
  const outShape = model.outputs[0]!.shape;
  if (outShape.length !== 2) {
    const classes = outShape.slice(1).reduce((a: number, b) => a * (b ?? 1), 1);
    scores = g.op('Reshape', [scores, g.int32('scores/shape', [-1, classes])], { T: 'DT_FLOAT', Tshape: 'DT_INT32' }, { name: 'scores' });
  }
  const source = tfGraphSourceOfGraphDef(g.nodes, `${pixels}:0`, scores, inputShape);
  const compiled = compileTfGraph(source, { name: options.name, preprocessing: options.preprocessing, origin });
  return { ...compiled, logits, finalSoftmax };
}
