/**
 * The TensorFlow graph the onnxruntime compiler reads: nodes in the proto3 JSON form tfjs
 * model.json and serving-lens's converter write ({name, op, input[], attr}), weights by node name,
 * and the tensors that feed the image and hold the scores. Sources come from converted graph
 * artifacts (SavedModels, tfjs graph models) or from a GraphDef built by a lowering in graph/
 * (Keras layers, TFLite operators).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { attrJson } from '../../convert/graph/convert.js';
import { parseTensorRef } from '../../convert/graph/flatten.js';
import type { NodeDefMessage } from '../../savedmodel/savedmodel.js';
import { decodeTensorProto, type HostTensor } from '../../tensor/index.js';

/** A graph attribute in proto3 JSON form, as tfjs model.json and serving-lens's converter write it. */
export interface TfGraphAttr {
  i?: string | number;
  f?: number;
  b?: boolean;
  /** Base64 bytes. */
  s?: string;
  type?: string;
  list?: { i?: (string | number)[]; f?: number[]; s?: string[] };
}

/** One node of a converted graph. */
export interface TfGraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfGraphAttr>;
}

/** The graph to compile, and the tensors that feed it and hold the scores. */
export interface TfGraphSource {
  nodes: readonly TfGraphNode[];
  /** The value of a Const node (the graph's weights), by node name. */
  constant(name: string): tf.Tensor | HostTensor | undefined;
  /** The fed image tensor, "name:0" (float NHWC). */
  input: string;
  /** The scores tensor, "name:0" ([N, classes]). */
  output: string;
  inputShape: [number, number, number];
}

/** A tensor reference "node:k" (or "node") split into its node and output index. */
export function tensorKey(ref: string): { node: string; index: number; key: string } {
  const [node, index] = parseTensorRef(ref);
  return { node, index, key: `${node}:${index}` };
}

export const attrInts = (n: TfGraphNode, key: string): number[] | undefined => n.attr?.[key]?.list?.i?.map(Number);

export const attrString = (n: TfGraphNode, key: string): string | undefined => {
  const s = n.attr?.[key]?.s;
  return s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8');
};

/** A float32 or int32 constant of the source as host data (undefined for other dtypes or none). */
export function constantValue(source: TfGraphSource, name: string): { data: Float32Array | Int32Array; shape: number[]; dtype: string } | undefined {
  const t = source.constant(name);
  if (!t) return undefined;
  if ('values' in t) {
    const data = t.values instanceof Float32Array || t.values instanceof Int32Array ? t.values : undefined;
    return { data: data?.slice() ?? new Float32Array(), shape: [...t.shape], dtype: data ? t.dtype : `${t.dtype} (unsupported)` };
  }
  return { data: t.dataSync().slice() as Float32Array | Int32Array, shape: [...t.shape], dtype: t.dtype };
}

/**
 * A compile source over converted graph artifacts (`modelTopology.node`) and the loaded graph
 * model's weight tensors.
 *
 * @example
 * const source = tfGraphSourceOf(graph.converted.artifacts, graph.model.weights, input.name, output.name, [28, 28, 1]);
 */
export function tfGraphSourceOf(
  artifacts: tf.io.ModelArtifacts,
  weights: tf.NamedTensorMap | Record<string, tf.Tensor[]>,
  input: string,
  output: string,
  inputShape: readonly [number, number, number],
): TfGraphSource {
  const nodes = (artifacts.modelTopology as { node?: TfGraphNode[] } | undefined)?.node ?? [];
  return {
    nodes,
    constant: (name) => {
      const w = weights[name];
      return Array.isArray(w) ? w[0] : w;
    },
    input,
    output,
    inputShape: [inputShape[0], inputShape[1], inputShape[2]],
  };
}

/**
 * A compile source over GraphDef nodes built by a lowering in graph/ (a `GraphBuilder`'s nodes):
 * weights are read from the Const nodes' tensors.
 *
 * @example
 * const source = tfGraphSourceOfGraphDef(g.nodes, 'pixels:0', `${scores}:0`, [32, 32, 3]);
 */
export function tfGraphSourceOfGraphDef(nodes: readonly NodeDefMessage[], input: string, output: string, inputShape: readonly [number, number, number]): TfGraphSource {
  const tensors = new Map<string, HostTensor>();
  const converted = nodes.map((n): TfGraphNode => {
    const { value, ...rest } = n.attr ?? {};
    if (n.op === 'Const' && value?.tensor) tensors.set(n.name, decodeTensorProto(value.tensor, `constant ${n.name}`));
    return { name: n.name, op: n.op, input: n.input ?? [], attr: Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, attrJson(v, `node "${n.name}"`) as TfGraphAttr])) };
  });
  return { nodes: converted, constant: (name) => tensors.get(name), input, output, inputShape: [inputShape[0], inputShape[1], inputShape[2]] };
}
