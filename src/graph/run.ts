/**
 * Running a ModelBody without writing a SavedModel: the body is emitted into a graph of its own
 * (float image placeholder -> optional affine map -> body -> scores) and converted in memory to
 * TensorFlow.js graph-model artifacts, as a SavedModel signature is converted (variables become
 * constants). The artifacts run on tfjs-converter's executor and compile to onnxruntime
 * (`compileTfGraph`), like any converted graph.
 */
import { convertSignature, type ConvertedGraph } from '../convert/graph/convert.js';
import type { MetaGraphInfo, SignatureTensor } from '../savedmodel/savedmodel.js';
import type { ModelBody } from './body.js';
import { GraphBuilder } from './builder.js';
import { VariableSet } from './variables.js';

/** The converted graph of a body: artifacts with one input ("images") and one output ("scores"). */
export interface ConvertedBody {
  converted: ConvertedGraph;
  /** Whether the scores are probabilities (the body ends in a softmax). */
  probabilities: boolean;
  classes: number;
}

/**
 * Emits `body` on a float NHWC input, after `x * affine.scale + affine.offset` when an affine map
 * is given, and converts the graph to tfjs artifacts in memory.
 *
 * @example
 * const { converted } = await convertBody(exportTfliteGraph(imp, { logits: true }));
 * const model = await imageModelFromGraphModel(converted.artifacts, { name: 'mobilenet', preprocessing: 'symmetric' });
 */
export async function convertBody(body: ModelBody, affine?: { scale: number; offset: number }): Promise<ConvertedBody> {
  const g = new GraphBuilder({ keepDefaultAttrs: true });
  const vars = new VariableSet();
  const shape = [-1, ...body.inputShape];
  const images = g.op('Placeholder', [], { dtype: 'DT_FLOAT', shape }, { name: 'images' });
  const input = affine
    ? g.op('AddV2', [g.op('Mul', [images, g.float('affine/scale', affine.scale)], { T: 'DT_FLOAT' }, { name: 'affine/mul' }), g.float('affine/offset', affine.offset)], { T: 'DT_FLOAT' }, { name: 'affine/add' })
    : images;
  const { scores, probabilities, classes } = await body.emit(g, vars, input, () => {});
  const tensor = (alias: string, name: string, dims: number[]): SignatureTensor => ({ alias, name: `${name}:0`, dataType: 'DT_FLOAT', dtype: 'float32', shape: dims, encoding: 'dense' });
  const metaGraph: MetaGraphInfo = {
    tags: ['serve'],
    tensorflowVersion: '',
    tensorflowGitVersion: '',
    strippedDefaultAttrs: false,
    signatures: [{ name: 'serving_default', methodName: 'tensorflow/serving/predict', inputs: [tensor('images', images, shape)], outputs: [tensor('scores', scores, [-1, classes])] }],
    def: { graph_def: { node: g.nodes } },
  };
  const values = new Map(vars.list.map((v) => [v.name, v.value]));
  const converted = await convertSignature({
    metaGraph,
    variableKeys: new Map(vars.list.map((v) => [v.name, v.name])),
    readVariable: async (key) => values.get(key)!,
  });
  return { converted, probabilities, classes };
}
