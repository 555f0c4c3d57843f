/**
 * Errors of running a graph, told as TensorFlow tells them: the kernel's message followed by the
 * node that failed, `Incompatible shapes: [2,3] vs. [4]\n\t [[{{node add}}]]`. TF Serving feeds
 * request tensors to the graph without checking them against the signature's shapes, so a request
 * of the wrong shape is answered with such a message (INVALID_ARGUMENT); serving-lens does the same.
 *
 * TensorFlow.js reports a failed kernel without its node. The failing node is found again after
 * the fact: asking for the outputs of the first k nodes (in topological order) fails exactly when
 * one of them fails, so a binary search over k finds the first failing node in log2(nodes) runs.
 * This runs only on the error path, and never for graphs that assign variables (a rerun would
 * change their state).
 *
 * @example
 * const message = await describeRunFailure(error, { nodes, run: (names) => model.executeAsync(feeds, names) });
 * // 'Matrix size-incompatible: In[0]: [1,3], In[1]: [2,1]\n\t [[{{node MatMul}}]]'
 */
import * as tf from '@tensorflow/tfjs-core';
import { errorMessage } from '../../core/errors.js';

/** A node of the converted graph (tfjs graph-model topology). */
export interface RunNode {
  name: string;
  op: string;
  input?: string[];
}

export interface RunReplay {
  /** Nodes in topological order. */
  nodes: readonly RunNode[];
  /** Runs the graph on the request's feeds for the given output names. */
  run(names: string[]): Promise<tf.Tensor | tf.Tensor[]>;
  /** Ids of tensors the graph owns (weights, feeds): outputs that are these are not disposed. */
  owned: ReadonlySet<number>;
}

/** Ops that cannot fail on their own: nothing to blame on them. */
const SOURCE_OPS = new Set(['Placeholder', 'Const', 'PlaceholderWithDefault', 'NoOp']);

/** Element-wise ops with broadcasting: TensorFlow's BCast error. */
const BROADCAST_OPS = new Set([
  'Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'DivNoNan', 'FloorDiv', 'FloorMod', 'Maximum', 'Minimum', 'Pow',
  'SquaredDifference', 'Equal', 'NotEqual', 'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'LogicalAnd', 'LogicalOr',
  'BiasAdd', 'Atan2', 'Mod',
]);

/** "[2,3]", as TensorShape::DebugString prints a shape. */
function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

async function tryRun(replay: RunReplay, names: string[]): Promise<tf.Tensor[] | undefined> {
  try {
    const out = await replay.run(names);
    return Array.isArray(out) ? out : [out];
  } catch {
    return undefined;
  }
}

function release(replay: RunReplay, tensors: readonly tf.Tensor[]): void {
  tf.dispose(tensors.filter((t) => !replay.owned.has(t.id)));
}

/** The first node (in topological order) whose kernel fails on these feeds, with its inputs' values. */
async function failingNode(replay: RunReplay): Promise<{ node: RunNode; inputs: tf.Tensor[] } | undefined> {
  const candidates = replay.nodes.filter((n) => !SOURCE_OPS.has(n.op));
  let lo = 0; // the first `lo` candidates run
  let hi = candidates.length; // some of the first `hi` fail
  const all = await tryRun(replay, candidates.map((n) => n.name));
  if (all) {
    release(replay, all);
    return undefined;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const out = await tryRun(replay, candidates.slice(0, mid).map((n) => n.name));
    if (out) {
      release(replay, out);
      lo = mid;
    } else hi = mid;
  }
  const node = candidates[hi - 1]!;
  const inputNames = (node.input ?? []).filter((i) => !i.startsWith('^'));
  const inputs = inputNames.length ? await tryRun(replay, inputNames) : [];
  return inputs ? { node, inputs } : undefined;
}

/** TensorFlow's message for a kernel that failed on these inputs, when serving-lens knows it. */
async function tensorflowMessage(node: RunNode, inputs: tf.Tensor[]): Promise<string | undefined> {
  const [a, b] = inputs;
  if (!a || !b) return undefined;
  if (BROADCAST_OPS.has(node.op)) {
    if (node.op === 'BiasAdd') {
      return `Must provide as many biases as the last dimension of the input tensor: ${shapeText(b.shape)} vs. ${shapeText(a.shape)}`;
    }
    return `Incompatible shapes: ${shapeText(a.shape)} vs. ${shapeText(b.shape)}`;
  }
  if (node.op === 'MatMul' || node.op === 'BatchMatMul' || node.op === 'BatchMatMulV2' || node.op === 'BatchMatMulV3') {
    return `Matrix size-incompatible: In[0]: ${shapeText(a.shape)}, In[1]: ${shapeText(b.shape)}`;
  }
  if (node.op === 'Reshape') {
    const wanted = Array.from(await b.data());
    const known = wanted.filter((d) => d >= 0).reduce((x, y) => x * y, 1);
    return wanted.some((d) => d < 0)
      ? `Input to reshape is a tensor with ${a.size} values, but the requested shape requires a multiple of ${known}`
      : `Input to reshape is a tensor with ${a.size} values, but the requested shape has ${known}`;
  }
  if (node.op === 'Conv2D' || node.op === 'DepthwiseConv2dNative') {
    if (a.rank !== 4) return `input must be 4-dimensional${shapeText(a.shape)}`;
    if (node.op === 'Conv2D') return `input depth must be evenly divisible by filter depth: ${a.shape[3]} vs ${b.shape[2]}`;
    return `input and filter must have the same depth: ${a.shape[3]} vs ${b.shape[2]}`;
  }
  return undefined;
}

/**
 * The message TensorFlow would give for a failed run: the kernel's message (TensorFlow's wording
 * for the ops where it is known, else TensorFlow.js's) and `\n\t [[{{node NAME}}]]`. Without a
 * replay (stateful graphs) or when no single node fails on a rerun, the message alone.
 */
export async function describeRunFailure(error: unknown, replay?: RunReplay): Promise<string> {
  const plain = errorMessage(error);
  if (!replay) return plain;
  const found = await failingNode(replay);
  if (!found) return plain;
  try {
    const message = (await tensorflowMessage(found.node, found.inputs)) ?? plain;
    return `${message}\n\t [[{{node ${found.node.name}}}]]`;
  } finally {
    release(replay, found.inputs);
  }
}
