/**
 * Folds the per-channel affine ops that follow a linear op into its weights, before compilation:
 * Conv2D, DepthwiseConv2dNative or MatMul, then any chain of BiasAdd, FusedBatchNorm(V2/V3) and
 * Add/Sub/Mul/RealDiv by a constant (per channel or scalar), becomes the linear op with new weights and a fused BiasAdd (the
 * `fused_ops` attr of tfjs-converter's fused ops; the op name stays, so op counts still say what
 * the graph computes), as TensorFlow's fold_batch_norms graph transform does; readers of the
 * chain's last op read the linear op instead. The ONNX graph then has one Conv (or Gemm) where the
 * TensorFlow graph had three ops, and the gradient graph skips their backward passes.
 * A link of the chain is folded only when the op before it has no other consumer.
 */
import { batchNormAffine, composeAffine, foldAffineIntoKernel, type ChannelAffine } from '../../graph/batchnorm.js';
import { attrString, constantValue, tensorKey, type TfGraphNode, type TfGraphSource } from './graph-source.js';

const LINEAR = new Set(['Conv2D', 'DepthwiseConv2dNative', 'MatMul']);
const BATCH_NORMS = new Set(['FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3']);
/** Per-channel affine ops with a constant second operand (BiasAdd is Add over the channel axis). */
const ARITHMETIC = new Set(['BiasAdd', 'Add', 'AddV2', 'Sub', 'Mul', 'RealDiv']);
const PASS_THROUGH = new Set(['Identity', 'Snapshot']);

/**
 * The source with every foldable chain folded (the input source is not changed), and how many
 * ops of each kind were folded away (they are still part of what the graph computes).
 *
 * @example
 * const { source: folded } = foldLinearChains(source);
 */
export function foldLinearChains(source: TfGraphSource): { source: TfGraphSource; folded: Record<string, number> } {
  const byName = new Map(source.nodes.map((n) => [n.name, n]));
  /** Data inputs that read each node, as [consumer, input index, output index of the read node]. */
  const readers = new Map<string, { node: TfGraphNode; output: number }[]>();
  const controlled = new Set<string>();
  for (const n of source.nodes) {
    for (const ref of n.input ?? []) {
      if (ref.startsWith('^')) {
        controlled.add(ref.slice(1));
        continue;
      }
      const { node, index } = tensorKey(ref);
      (readers.get(node) ?? readers.set(node, []).get(node)!).push({ node: n, output: index });
    }
  }
  const outputNode = tensorKey(source.output).node;
  /** The one op that reads `name`'s output 0 as its input 0, when nothing else reads or waits on it. */
  const soleReader = (name: string): TfGraphNode | undefined => {
    const list = readers.get(name) ?? [];
    if (list.length !== 1 || controlled.has(name) || name === outputNode) return undefined;
    const [{ node, output }] = list as [{ node: TfGraphNode; output: number }];
    return output === 0 && tensorKey(node.input![0]!).node === name ? node : undefined;
  };
  const floatConstant = (ref: string | undefined): { data: Float32Array; shape: number[] } | undefined => {
    let name = ref === undefined ? undefined : tensorKey(ref).node;
    while (name !== undefined && PASS_THROUGH.has(byName.get(name)?.op ?? '')) name = tensorKey(byName.get(name)!.input![0]!).node;
    const node = name === undefined ? undefined : byName.get(name);
    const value = node?.op === 'Const' ? constantValue(source, node.name) : undefined;
    return value?.data instanceof Float32Array ? { data: value.data, shape: value.shape } : undefined;
  };
  /** The affine map of `node` when it is a foldable op over `channels` of a value of rank `rank`. */
  const affineOf = (node: TfGraphNode, channels: number, rank: number): ChannelAffine | undefined => {
    const format = attrString(node, 'data_format');
    if (format !== undefined && format !== 'NHWC') return undefined;
    if (ARITHMETIC.has(node.op)) {
      // The chain's value first, then a scalar or one constant per channel (Rescaling, a 2-D batch norm).
      const raw = floatConstant(node.input?.[1]);
      if (!raw || raw.shape.length > rank || raw.shape.some((d, i) => d !== 1 && i !== raw.shape.length - 1)) return undefined;
      const c = raw.data.length === 1 ? new Float32Array(channels).fill(raw.data[0]!) : raw.data;
      if (c.length !== channels) return undefined;
      if (node.op === 'Mul') return { scale: Float32Array.from(c), offset: new Float32Array(channels) };
      if (node.op === 'RealDiv') return { scale: c.map((d) => 1 / d), offset: new Float32Array(channels) };
      return { scale: new Float32Array(channels).fill(1), offset: node.op === 'Sub' ? c.map((v) => -v) : Float32Array.from(c) };
    }
    // A batch norm's other outputs (batch statistics) must be unused.
    if (!BATCH_NORMS.has(node.op) || (readers.get(node.name) ?? []).some((r) => r.output !== 0)) return undefined;
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => floatConstant(node.input?.[i])?.data);
    if (![gamma, beta, mean, variance].every((v) => v?.length === channels)) return undefined;
    return batchNormAffine({ gamma: gamma!, beta: beta!, mean: mean!, variance: variance!, epsilon: node.attr?.epsilon?.f ?? 1e-4 });
  };

  const absorbed: Record<string, number> = {};
  const replaced = new Map<string, TfGraphNode>();
  /** Last op of a folded chain -> the linear op that now computes it. */
  const renamed = new Map<string, string>();
  const removed = new Set<string>();
  const folded = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const node of source.nodes) {
    if (!LINEAR.has(node.op) || node.attr?.transpose_a?.b === true || node.attr?.transpose_b?.b === true) continue;
    const format = attrString(node, 'data_format');
    if (format !== undefined && format !== 'NHWC') continue;
    const filter = floatConstant(node.input?.[1]);
    if (!filter) continue;
    const { data: weights, shape } = filter;
    const channels = node.op === 'DepthwiseConv2dNative' ? shape[2]! * shape[3]! : shape[shape.length - 1]!;
    let affine: ChannelAffine | undefined;
    let last = node;
    const chain: TfGraphNode[] = [];
    for (let next = soleReader(last.name); next; next = soleReader(last.name)) {
      const step = affineOf(next, channels, node.op === 'MatMul' ? 2 : 4);
      if (!step) break;
      affine = affine ? composeAffine(affine, step) : step;
      chain.push(last);
      last = next;
    }
    if (!affine) continue;
    const { kernel, bias } = foldAffineIntoKernel(weights, undefined, affine);
    const filterName = `${node.name}/folded_filter`;
    const biasName = `${node.name}/folded_bias`;
    folded.set(filterName, { data: kernel, shape });
    folded.set(biasName, { data: bias, shape: [channels] });
    for (const n of [...chain.slice(1), last]) {
      removed.add(n.name);
      absorbed[n.op] = (absorbed[n.op] ?? 0) + 1;
    }
    renamed.set(last.name, node.name);
    replaced.set(node.name, {
      name: node.name,
      op: node.op,
      input: [node.input![0]!, filterName, biasName],
      attr: { ...node.attr, fused_ops: { list: { s: [Buffer.from('BiasAdd').toString('base64')] } }, num_args: { i: 1 } },
    });
  }
  if (replaced.size === 0) return { source, folded: absorbed };
  const constants = [...folded.keys()].map((name): TfGraphNode => ({ name, op: 'Const' }));
  const reread = (ref: string): string => {
    const to = renamed.get(tensorKey(ref).node);
    return to === undefined || ref.startsWith('^') ? ref : to;
  };
  const rewired = source.nodes
    .filter((n) => !removed.has(n.name))
    .map((n) => replaced.get(n.name) ?? n)
    .map((n) => (n.input?.some((r) => reread(r) !== r) ? { ...n, input: n.input.map(reread) } : n));
  const result: TfGraphSource = {
    ...source,
    nodes: [...constants, ...rewired],
    output: reread(source.output),
    constant: (name) => {
      const f = folded.get(name);
      return f ? { dtype: 'float32', shape: f.shape, values: f.data } : source.constant(name);
    },
  };
  return { source: result, folded: absorbed };
}
