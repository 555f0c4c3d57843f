/**
 * Compiles a TensorFlow graph — the node list of a converted SavedModel signature, a tfjs graph
 * model, or a graph lowered from Keras layers or TFLite operators (GraphDef-like JSON: {name, op,
 * input[], attr}) — into two ONNX graphs: pixels -> scores, and pixels + seed -> scores + input
 * gradients.
 *
 * Only what the chosen output needs is visited, backwards from it, stopping at the fed image
 * tensor; each node is lowered by the rule its op has in the registry (ops/index.ts). Constants
 * come from the graph's weights. TensorFlow tensors are NHWC; the compiled graph keeps 4-D
 * activations NCHW (onnxruntime's native layout), so every rule that depends on the axis order
 * translates its axes. Linear ops absorb the bias and batch norm after them first (fold.ts).
 */
import type { PreprocessingName } from '../../core/preprocess.js';
import { Compiler, assembleCompiled, unsupported, type CompiledModel, type Value } from './compile.js';
import { foldLinearChains } from './fold.js';
import { attrInts, attrString, tensorKey, type TfGraphNode, type TfGraphSource } from './graph-source.js';
import { OP_RULES, type Known, type RuleContext } from './ops/index.js';

export interface TfGraphCompileOptions {
  /** Name for the graphs and error messages. */
  name: string;
  /** Pixel preprocessing applied before the graph's input (as the tfjs path applies it). */
  preprocessing: PreprocessingName;
  /**
   * The layer (name and class) a node was lowered from, when the graph was lowered from layers:
   * errors then name the layer, and the compiled model counts layers by class instead of ops.
   */
  origin?: (node: string) => { name: string; kind: string } | undefined;
}

/**
 * Compiles the part of a TensorFlow graph between `source.input` and `source.output` to ONNX.
 * Throws MODEL_UNSUPPORTED naming the node and op that has no rule. Scores after a Softmax stay
 * probabilities (`finalSoftmax`), as the tfjs execution of the same output returns them.
 *
 * @example
 * const loaded = await loadSavedModel('../shared/testdata/savedmodels-cnn/dotnet-cifar-conv-tf1');
 * const graph = await loaded.graph();
 * const compiled = compileTfGraph(tfGraphSourceOf(graph.converted.artifacts, graph.model.weights, 'Input:0', 'add_1:0', [32, 32, 3]), { name: 'cifar', preprocessing: 'raw' });
 */
export function compileTfGraph(given: TfGraphSource, options: TfGraphCompileOptions): CompiledModel {
  const { source, folded } = foldLinearChains(given);
  const byName = new Map(source.nodes.map((n) => [n.name, n]));
  const cc = new Compiler(options.name);
  const g = cc.g;
  const batch = g.dynamic('N');
  const pixels = g.input('pixels', [batch, ...source.inputShape]);
  const image = cc.preprocess(pixels, source.inputShape, options.preprocessing);
  const known = new Map<string, Known>([[tensorKey(source.input).key, { kind: 'act', value: image }]]);
  const visiting = new Set<string>();
  const countedLayers = new Set<string>();
  if (!options.origin) for (const [op, n] of Object.entries(folded)) cc.layerCounts[op] = n;

  const resolve = (ref: string): Known => {
    const { node: nodeName, index, key } = tensorKey(ref);
    const done = known.get(key);
    if (done) return done;
    const node = byName.get(nodeName);
    if (!node) return unsupported(options.name, `tensor ${ref} has no node in the graph`);
    if (visiting.has(key)) return unsupported(options.name, `node ${node.name} (${node.op}) is part of a cycle`);
    visiting.add(key);
    const value = emit(node, index);
    visiting.delete(key);
    known.set(key, value);
    return value;
  };

  const emit = (node: TfGraphNode, index: number): Known => {
    const origin = options.origin?.(node.name);
    const fail = (what: string): never => unsupported(options.name, `node ${node.name} (${node.op})${origin ? ` of layer ${origin.name} (${origin.kind})` : ''} ${what}`);
    const inputs = (node.input ?? []).filter((r) => !r.startsWith('^'));
    const arg = (i: number): Known => resolve(inputs[i] ?? fail(`lacks input ${i}`));
    const ctx: RuleContext = {
      cc,
      node,
      source,
      inputs,
      index,
      fail,
      resolve,
      arg,
      act(i, rank) {
        const k = arg(i);
        if (k.kind !== 'act') return fail(`needs input ${i} computed from the image, got a ${k.kind}`);
        if (rank !== undefined && k.value.shape.length + 1 !== rank) return fail(`takes a ${rank}-D input, got [N,${k.value.shape.join(',')}]`);
        return k.value;
      },
      constant(i) {
        const k = arg(i);
        if (k.kind !== 'const') return fail(`needs a constant input ${i}`);
        return k;
      },
      nhwc() {
        const format = attrString(node, 'data_format');
        if (format !== undefined && format !== 'NHWC') fail(`uses data format ${format} (only NHWC)`);
      },
      spatial(key) {
        const v = attrInts(node, key) ?? [1, 1, 1, 1];
        if (v.length !== 4 || v[0] !== 1 || v[3] !== 1) return fail(`has ${key} [${v.join(',')}] (only spatial ones)`);
        return [v[1]!, v[2]!];
      },
      padding() {
        const p = attrString(node, 'padding');
        if (p === 'SAME' || p === 'VALID' || p === 'EXPLICIT') return p.toLowerCase() as 'same' | 'valid' | 'explicit';
        return fail(`has padding ${String(p)}`);
      },
      output(value: Value, extra = {}) {
        const counted = options.origin ? origin?.kind : node.op;
        if (counted !== undefined && !(origin && countedLayers.has(origin.name))) cc.layerCounts[counted] = (cc.layerCounts[counted] ?? 0) + 1;
        if (origin) countedLayers.add(origin.name);
        return { kind: 'act', value, ...extra };
      },
    };
    if (index !== 0 && node.op !== 'IdentityN') fail(`output ${index} is used (only output 0 has a rule)`);
    const rule = (Object.hasOwn(OP_RULES, node.op) ? OP_RULES[node.op] : undefined) ?? fail('has no ONNX rule');
    return rule(ctx);
  };

  const out = resolve(source.output);
  if (out.kind !== 'act') return unsupported(options.name, `the output ${source.output} does not depend on the input ${source.input}`);
  return assembleCompiled(cc, { pixels, batch, inputShape: source.inputShape, scores: out.value, logits: false, finalSoftmax: out.softmax === true });
}
