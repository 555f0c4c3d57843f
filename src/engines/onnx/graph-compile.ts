/**
 * Compiles a TensorFlow graph — the node list of a converted SavedModel signature or of a tfjs
 * graph model (GraphDef-like JSON: {name, op, input[], attr}) — into the same two ONNX graphs as
 * `compileLayersModel`: pixels -> scores, and pixels + seed -> scores + input gradients.
 *
 * Only what the chosen output needs is visited, backwards from it, stopping at the fed image
 * tensor. Constants come from the graph's weights. TensorFlow tensors are NHWC; the compiled
 * graph keeps 4-D activations NCHW (onnxruntime's native layout), so every rule that depends on
 * the axis order (reshapes, concatenation, padding, reductions) translates its axes. Constant
 * subgraphs are folded; TF1 dropout at keep probability 1 folds away (floor(1 + U[0,1)) = 1).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PreprocessingName } from '../../core/preprocess.js';
import { Compiler, assembleCompiled, convKernel, depthwiseKernel, transpose2d, unsupported, type CompiledModel, type Value } from './compile.js';
import { foldLinearChains } from './fold.js';
import { attrInts, attrString, constantValue, tensorKey, type TfGraphNode, type TfGraphSource } from './graph-source.js';

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

/** What a tensor of the TensorFlow graph is during compilation. */
type Known =
  /** Computed from the image: an ONNX value ([C,H,W] for NHWC 4-D tensors, [F] for 2-D). */
  | { kind: 'act'; value: Value; softmax?: boolean }
  | { kind: 'const'; data: Float32Array | Int32Array; shape: number[] }
  /** Uniform random numbers in [lo, hi) (dropout masks), of the shape of some activation. */
  | { kind: 'uniform'; lo: number; hi: number }
  /** The shape of an activation (feeds RandomUniform in dropout). */
  | { kind: 'shape' };

type Const = Extract<Known, { kind: 'const' }>;

const PASS_THROUGH = new Set(['Identity', 'Snapshot', 'PlaceholderWithDefault']);

/** TensorFlow activation ops (also as tfjs-converter fused ops) -> `Compiler.activation` kinds. */
const ACTIVATIONS: Record<string, string> = { Relu: 'relu', Relu6: 'relu6', Sigmoid: 'sigmoid', Tanh: 'tanh', LeakyRelu: 'leakyRelu', Elu: 'elu', Softplus: 'softplus' };

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

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
    const act = (i: number, rank?: 2 | 4): Value => {
      const k = arg(i);
      if (k.kind !== 'act') return fail(`needs input ${i} computed from the image, got a ${k.kind}`);
      if (rank !== undefined && k.value.shape.length + 1 !== rank) return fail(`takes a ${rank}-D input, got [N,${k.value.shape.join(',')}]`);
      return k.value;
    };
    const constant = (i: number): Const => {
      const k = arg(i);
      if (k.kind !== 'const') return fail(`needs a constant input ${i}`);
      return k;
    };
    const nhwc = (): void => {
      const format = attrString(node, 'data_format');
      if (format !== undefined && format !== 'NHWC') fail(`uses data format ${format} (only NHWC)`);
    };
    /** [h, w] of an NHWC 4-vector attribute (strides, ksize, dilations) whose batch and channel entries are 1. */
    const spatial = (key: string): [number, number] => {
      const v = attrInts(node, key) ?? [1, 1, 1, 1];
      if (v.length !== 4 || v[0] !== 1 || v[3] !== 1) return fail(`has ${key} [${v.join(',')}] (only spatial ones)`);
      return [v[1]!, v[2]!];
    };
    const padding = (): 'same' | 'valid' | 'explicit' => {
      const p = attrString(node, 'padding');
      if (p === 'SAME' || p === 'VALID' || p === 'EXPLICIT') return p.toLowerCase() as 'same' | 'valid' | 'explicit';
      return fail(`has padding ${String(p)}`);
    };
    const output = (value: Value, extra: { softmax?: boolean } = {}): Known => {
      const counted = options.origin ? origin?.kind : node.op;
      if (counted !== undefined && !(origin && countedLayers.has(origin.name))) cc.layerCounts[counted] = (cc.layerCounts[counted] ?? 0) + 1;
      if (origin) countedLayers.add(origin.name);
      return { kind: 'act', value, ...extra };
    };

    if (index !== 0 && node.op !== 'IdentityN') fail(`output ${index} is used (only output 0 has a rule)`);
    switch (node.op) {
      case 'Const': {
        const t = constantValue(source, node.name) ?? fail('has no value among the weights');
        if (t.dtype !== 'float32' && t.dtype !== 'int32') return fail(`holds ${t.dtype} values`);
        return { kind: 'const', data: t.data, shape: t.shape };
      }
      case 'Placeholder':
        return fail(`is a graph input other than the image ${source.input}`);
      case 'IdentityN':
        return resolve(inputs[index] ?? fail(`has no input ${index}`));
      case 'Cast': {
        const from = node.attr?.SrcT?.type;
        const to = node.attr?.DstT?.type;
        if (from !== 'DT_FLOAT' || to !== 'DT_FLOAT') return fail(`casts ${String(from)} to ${String(to)} (only float to float)`);
        return arg(0);
      }
      case 'Shape': {
        const k = arg(0);
        if (k.kind === 'const') return { kind: 'const', data: Int32Array.from(k.shape), shape: [k.shape.length] };
        return { kind: 'shape' };
      }
      case 'RandomUniform':
        return { kind: 'uniform', lo: 0, hi: 1 };
      case 'Floor': {
        const k = arg(0);
        if (k.kind === 'const') return { kind: 'const', data: k.data.map(Math.floor), shape: k.shape };
        // floor(u) of u in [lo, hi) is one number when [lo, hi) lies within one unit interval.
        if (k.kind === 'uniform' && Math.floor(k.lo) === Math.ceil(k.hi) - 1) return { kind: 'const', data: new Float32Array([Math.floor(k.lo)]), shape: [] };
        return fail('rounds values that are not constant');
      }
      case 'Neg':
      case 'Sqrt':
      case 'Rsqrt': {
        // Frozen graphs compute normalisation constants in the graph (e.g. rsqrt(var + eps)): fold them.
        const k = arg(0);
        if (k.kind !== 'const') return fail('applies to values computed from the image (only constants fold)');
        const f = node.op === 'Neg' ? (v: number) => -v : node.op === 'Sqrt' ? Math.sqrt : (v: number) => 1 / Math.sqrt(v);
        return { kind: 'const', data: Float32Array.from(k.data, f), shape: k.shape };
      }
      case 'Add':
      case 'AddV2':
      case 'Sub':
      case 'Mul':
      case 'RealDiv':
        return binary(node, arg(0), arg(1), fail, output);
      case 'Maximum':
      case 'Minimum': {
        const [a, b] = [arg(0), arg(1)];
        if (a.kind === 'const' && b.kind === 'const') return fold(node.op, a, b);
        const [x, c] = a.kind === 'act' && b.kind === 'const' ? [a.value, b] : b.kind === 'act' && a.kind === 'const' ? [b.value, a] : fail('takes two tensors computed from the image (only a tensor and a constant have a rule)');
        return output(cc.bound(node.op === 'Maximum' ? 'Max' : 'Min', x, perChannel(c, x, fail), node.name));
      }
      case 'BiasAdd': {
        nhwc();
        const x = act(0);
        const bias = perChannel(constant(1), x, fail);
        return output(cc.channelAffine(x, new Float32Array(bias.length).fill(1), bias, node.name));
      }
      case 'Relu':
      case 'Relu6':
      case 'Sigmoid':
      case 'Tanh':
      case 'LeakyRelu':
      case 'Elu':
      case 'Softplus':
        return output(cc.activation(ACTIVATIONS[node.op]!, act(0), node.name, node.attr?.alpha?.f));
      case 'Softmax':
        return output(cc.activation('softmax', act(0, 2), node.name), { softmax: true });
      case 'Conv2D':
      case 'DepthwiseConv2dNative':
      case '_FusedConv2D':
      case 'FusedDepthwiseConv2dNative': {
        nhwc();
        const fused = node.attr?.fused_ops ? fusedOps(node, fail) : undefined;
        const depthwise = node.op.includes('Depthwise');
        const x = act(0, 4);
        const w = constant(1);
        if (w.shape.length !== 4) return fail(`has a filter of shape [${w.shape.join(',')}]`);
        const [kh, kw, cin, last] = w.shape as [number, number, number, number];
        if (cin !== x.shape[0]) return fail(`has a filter for ${cin} channels on an input with ${x.shape[0]} (grouped convolution)`);
        const mode = padding();
        let pads: [[number, number], [number, number]] | undefined;
        if (mode === 'explicit') {
          const e = attrInts(node, 'explicit_paddings') ?? [];
          if (e.length !== 8 || e[0] !== 0 || e[1] !== 0 || e[6] !== 0 || e[7] !== 0) return fail(`has explicit paddings [${e.join(',')}]`);
          pads = [[e[2]!, e[3]!], [e[4]!, e[5]!]];
        }
        const weights = Float32Array.from(w.data);
        const bias = fused?.bias ? Float32Array.from(constant(2).data) : undefined;
        const cout = depthwise ? cin * last : last;
        if (bias && bias.length !== cout) return fail(`adds ${bias.length} biases to ${cout} channels`);
        const common = { kernel: [kh, kw] as [number, number], strides: spatial('strides'), dilations: spatial('dilations'), padding: mode, ...(pads ? { pads } : {}), hint: node.name, cout };
        const y = depthwise
          ? cc.conv(x, depthwiseKernel(weights, kh, kw, cin, last), bias, { ...common, group: cin })
          : cc.conv(x, convKernel(weights, kh, kw, cin, last), bias, { ...common, group: 1 });
        return output(fused?.activation ? cc.activation(fused.activation, y, `${node.name}_act`, fused.alpha) : y);
      }
      case 'MaxPool':
      case 'AvgPool': {
        nhwc();
        const x = act(0, 4);
        const mode = padding();
        if (mode === 'explicit') return fail('has explicit padding');
        const pool = node.op === 'MaxPool' ? cc.maxPool.bind(cc) : cc.avgPool.bind(cc);
        return output(pool(x, spatial('ksize'), spatial('strides'), mode, node.name));
      }
      case 'Mean': {
        const x = act(0, 4);
        const axes = Array.from(constant(1).data, (a) => (a < 0 ? a + 4 : a)).sort();
        if (axes.join() !== '1,2') return fail(`averages over axes [${axes.join(',')}] (only the spatial axes 1, 2)`);
        return output(cc.globalAvgPool(x, node.name, node.attr?.keep_dims?.b === true));
      }
      case 'FusedBatchNorm':
      case 'FusedBatchNormV2':
      case 'FusedBatchNormV3': {
        nhwc();
        // Inference form, as tfjs runs it: the given mean and variance, whatever is_training says.
        const x = act(0, 4);
        const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => perChannel(constant(i), x, fail)) as [Float32Array, Float32Array, Float32Array, Float32Array];
        const eps = node.attr?.epsilon?.f ?? 1e-4;
        const scale = gamma.map((s, c) => s / Math.sqrt(variance[c]! + eps));
        const offset = beta.map((b, c) => b - mean[c]! * scale[c]!);
        return output(cc.channelAffine(x, scale, offset, node.name));
      }
      case 'MatMul':
      case '_FusedMatMul': {
        const fused = node.attr?.fused_ops ? fusedOps(node, fail) : undefined;
        if (node.attr?.transpose_a?.b === true) return fail('transposes its activation input (transpose_a)');
        const x = act(0, 2);
        const w = constant(1);
        if (w.shape.length !== 2) return fail(`has weights of shape [${w.shape.join(',')}]`);
        const transposed = node.attr?.transpose_b?.b === true;
        const [features, units] = (transposed ? [w.shape[1], w.shape[0]] : w.shape) as [number, number];
        if (features !== x.shape[0]) return fail(`multiplies ${x.shape[0]} features by weights for ${features}`);
        const kernel = transposed ? transpose2d(Float32Array.from(w.data), units, features) : Float32Array.from(w.data);
        const bias = fused?.bias ? Float32Array.from(constant(2).data) : undefined;
        if (bias && bias.length !== units) return fail(`adds ${bias.length} biases to ${units} units`);
        const y = cc.dense(x, kernel, bias, units, node.name);
        return output(fused?.activation ? cc.activation(fused.activation, y, `${node.name}_act`, fused.alpha) : y);
      }
      case 'Reshape':
        return output(reshape(cc, act(0), Array.from(constant(1).data), node.name, fail));
      case 'Squeeze': {
        const x = act(0, 4);
        const [c, h, w] = x.shape as [number, number, number];
        const axes = (attrInts(node, 'squeeze_dims') ?? attrInts(node, 'axis') ?? []).map((a) => (a < 0 ? a + 4 : a)).sort();
        const ok = h === 1 && w === 1 && (axes.join() === '1,2' || (axes.length === 0 && c > 1));
        if (!ok) return fail(`squeezes axes [${axes.join(',')}] of [N,${h},${w},${c}] (only 1x1 spatial axes)`);
        return output(cc.flatten(x, node.name));
      }
      case 'ConcatV2': {
        const xs = inputs.slice(0, -1).map((_, i) => act(i));
        const axis = constant(inputs.length - 1).data[0]!;
        return output(cc.concat(xs, axis, node.name));
      }
      case 'Pad':
      case 'PadV2': {
        const x = act(0, 4);
        const p = Array.from(constant(1).data);
        if (p.length !== 8 || p[0] !== 0 || p[1] !== 0 || p[6] !== 0 || p[7] !== 0) return fail(`pads [${p.join(',')}] (only the spatial axes)`);
        if (node.op === 'PadV2' && constant(2).data.some((v) => v !== 0)) return fail('pads with a value other than 0');
        return output(cc.zeroPad(x, p[2]!, p[3]!, p[4]!, p[5]!, node.name));
      }
      case 'ResizeNearestNeighbor': {
        const x = act(0, 4);
        const [, h, w] = x.shape as [number, number, number];
        const [ho, wo] = Array.from(constant(1).data) as [number, number];
        // align_corners samples at (in-1)/(out-1) steps: not a block repeat.
        if (node.attr?.align_corners?.b === true) return fail('aligns corners (only align_corners=false)');
        if (ho % h !== 0 || wo % w !== 0) return fail(`resizes ${h}x${w} to ${ho}x${wo} (only integer scales)`);
        return output(cc.upsampleNearest(x, [ho / h, wo / w], node.name));
      }
      default:
        if (PASS_THROUGH.has(node.op)) return arg(0);
        return fail('has no ONNX rule');
    }
  };

  /** x * scale[c] + offset[c] per channel (or feature) from an elementwise op with a constant. */
  const binary = (node: TfGraphNode, a: Known, b: Known, fail: (what: string) => never, output: (v: Value) => Known): Known => {
    const op = node.op === 'AddV2' ? 'Add' : node.op;
    if (a.kind === 'const' && b.kind === 'const') return fold(op, a, b);
    if (a.kind === 'uniform' || b.kind === 'uniform') {
      const [u, c] = a.kind === 'uniform' ? [a, b] : [b as Extract<Known, { kind: 'uniform' }>, a];
      if (c.kind !== 'const' || c.data.length !== 1) return fail('combines random numbers with a non-constant');
      const v = c.data[0]!;
      if (op === 'Add') return { kind: 'uniform', lo: u.lo + v, hi: u.hi + v };
      if (op === 'Sub' && a.kind === 'uniform') return { kind: 'uniform', lo: u.lo - v, hi: u.hi - v };
      if (op === 'Mul' && v > 0) return { kind: 'uniform', lo: u.lo * v, hi: u.hi * v };
      if (op === 'RealDiv' && a.kind === 'uniform' && v > 0) return { kind: 'uniform', lo: u.lo / v, hi: u.hi / v };
      return fail('transforms random numbers in a way that has no rule');
    }
    if (a.kind === 'act' && b.kind === 'act') {
      if (op === 'Add') return output(cc.add([a.value, b.value], node.name));
      if (op === 'Mul') return output(cc.multiply([a.value, b.value], node.name));
      return fail('combines two tensors computed from the image (only their sum and product have rules)');
    }
    if (a.kind === 'shape' || b.kind === 'shape') return fail('computes with a tensor shape');
    const [x, c, constFirst] = a.kind === 'act' ? [a.value, b as Const, false] : [(b as Extract<Known, { kind: 'act' }>).value, a as Const, true];
    const v = perChannel(c, x, fail);
    let scale = new Float32Array(v.length).fill(1);
    let offset = new Float32Array(v.length);
    if (op === 'Add') offset = v;
    else if (op === 'Sub') [scale, offset] = constFirst ? [scale.fill(-1), v] : [scale, v.map((o) => -o)];
    else if (op === 'Mul') scale = v;
    else if (op === 'RealDiv' && !constFirst) scale = v.map((d) => 1 / d);
    else return fail('divides a constant by a tensor computed from the image');
    // Dropout at keep probability 1 divides and multiplies by 1: nothing to emit.
    if (scale.every((s) => s === 1) && offset.every((o) => o === 0)) return { kind: 'act', value: x };
    return output(cc.channelAffine(x, scale, offset, node.name));
  };

  const out = resolve(source.output);
  if (out.kind !== 'act') return unsupported(options.name, `the output ${source.output} does not depend on the input ${source.input}`);
  return assembleCompiled(cc, { pixels, batch, inputShape: source.inputShape, scores: out.value, logits: false, finalSoftmax: out.softmax === true });
}

/** The fused ops of a tfjs-converter fused node (_FusedConv2D ...): an optional BiasAdd, then an optional activation. */
function fusedOps(node: TfGraphNode, fail: (what: string) => never): { bias: boolean; activation?: string; alpha?: number } {
  const ops = (node.attr?.fused_ops?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
  const bias = ops[0] === 'BiasAdd';
  const rest = bias ? ops.slice(1) : ops;
  const FUSABLE = ['Relu', 'Relu6', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Elu'];
  if (rest.length > 1 || (rest.length === 1 && !FUSABLE.includes(rest[0]!))) return fail(`fuses ${ops.join(', ')} (only BiasAdd and ${FUSABLE.join(', ')})`);
  const alpha = rest[0] === 'LeakyRelu' ? node.attr?.leakyrelu_alpha?.f : undefined;
  return { bias, ...(rest[0] ? { activation: ACTIVATIONS[rest[0]]! } : {}), ...(alpha !== undefined ? { alpha } : {}) };
}

/** Elementwise op of two constants, with TensorFlow's broadcasting. */
function fold(op: string, a: Const, b: Const): Const {
  return tf.tidy(() => {
    const ta = tf.tensor(a.data, a.shape, a.data instanceof Int32Array ? 'int32' : 'float32');
    const tb = tf.tensor(b.data, b.shape, b.data instanceof Int32Array ? 'int32' : 'float32');
    const r = op === 'Add' ? tf.add(ta, tb) : op === 'Sub' ? tf.sub(ta, tb) : op === 'Mul' ? tf.mul(ta, tb) : op === 'Maximum' ? tf.maximum(ta, tb) : op === 'Minimum' ? tf.minimum(ta, tb) : tf.div(ta, tb);
    return { kind: 'const' as const, data: r.dataSync().slice() as Float32Array | Int32Array, shape: [...r.shape] };
  });
}

/** A constant that broadcasts over the last (channel or feature) axis of `x`, as one value per channel. */
function perChannel(c: Const, x: Value, fail: (what: string) => never): Float32Array {
  const channels = x.shape[0]!;
  if (c.data.length === 1) return new Float32Array(channels).fill(c.data[0]!);
  const last = c.shape[c.shape.length - 1];
  if (c.shape.length > x.shape.length + 1 || last !== channels || product(c.shape) !== channels) {
    return fail(`uses a constant of shape [${c.shape.join(',')}] on [N,${x.shape.length === 3 ? [x.shape[1], x.shape[2], x.shape[0]].join(',') : x.shape.join(',')}] (only scalars or one value per channel)`);
  }
  return Float32Array.from(c.data);
}

/** Reshapes of one image's data with a -1 batch ([N, F] flattening, [N, F] -> [N, 1, 1, F]): `Compiler.reshape`. */
function reshape(cc: Compiler, x: Value, dims: number[], hint: string, fail: (what: string) => never): Value {
  if (dims[0] !== -1) return fail(`reshapes [N,${x.shape.join(',')}] to [${dims.join(',')}] (only per-image reshapes with a -1 batch)`);
  return cc.reshape(x, dims.slice(1), hint, `node ${hint} (Reshape)`);
}
