/** TF1 graphs with their weights: checkpoint folders or `model.ckpt-N` prefixes, and frozen GraphDefs (`.pb`). */
import { dirname } from 'node:path';
import type { FormatLoadContext, FormatLoaded, ModelFormatHandler } from './types.js';

async function loadGraphFile({ path, name, labels, preprocessing, sidecar, options, engine }: FormatLoadContext): Promise<FormatLoaded> {
  const { convertGraphFile } = await import('../../convert/checkpoint/graph-file.js');
  const { imageModelFromGraphModel } = await import('../graph.js');
  const g = await convertGraphFile(path, options);
  const { artifacts } = g.converted;
  const model = await imageModelFromGraphModel(artifacts, { name, preprocessing: preprocessing ?? 'raw', ...(labels ? { labels } : {}), ...(sidecar?.inputShape ? { inputShape: sidecar.inputShape } : {}), ...engine });
  const graphCut = { input: g.input, output: g.output, ...(g.checkpoint ? { checkpoint: { prefix: g.checkpoint.prefix, ...(g.checkpoint.step !== undefined ? { step: g.checkpoint.step } : {}) } } : {}) };
  // Cut at a Softmax's input, the model's own last op is that softmax.
  return { model, finalSoftmax: model.finalSoftmax || g.output.softmax !== undefined, structure: { kind: 'graph', artifacts }, graphCut };
}

async function graphFileKind(path: string) {
  const { graphFileKind: kind } = await import('../../convert/checkpoint/checkpoint.js');
  return kind(path);
}

export const checkpointFormat: ModelFormatHandler<'checkpoint'> = {
  name: 'checkpoint',
  takes: ['checkpoint', 'inputTensor', 'outputTensor'],
  async detect({ path, exists, isDirectory }) {
    if ((await graphFileKind(path)) !== 'checkpoint') return undefined;
    // A checkpoint prefix (model_dir/model.ckpt-N) names files that start with it.
    return { path, dir: exists && isDirectory ? path : dirname(path) };
  },
  load: loadGraphFile,
};

export const frozenGraphFormat: ModelFormatHandler<'frozen-graph'> = {
  name: 'frozen-graph',
  takes: ['inputTensor', 'outputTensor'],
  async detect({ path, exists, isDirectory }) {
    return exists && !isDirectory && (await graphFileKind(path)) === 'frozen-graph' ? { path } : undefined;
  },
  load: loadGraphFile,
};
