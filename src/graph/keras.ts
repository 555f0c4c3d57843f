/**
 * A tfjs LayersModel written as TensorFlow ops: the model's layer graph is walked from its
 * outputs (Functional, Sequential and nested models, shared layers reusing their variables) and
 * each layer becomes the ops Keras itself builds in TF1 graph mode, named `<layer>/<Op>`, with
 * its weights as variables `<layer>/<weight>` (kernel, bias, gamma, beta, moving_mean, ...):
 *
 * Conv2D -> Conv2D (+ BiasAdd) (+ activation), DepthwiseConv2D -> DepthwiseConv2dNative,
 * SeparableConv2D -> DepthwiseConv2dNative + Conv2D 1x1, Dense -> MatMul + BiasAdd,
 * BatchNormalization -> FusedBatchNormV3 (4-D) or Sub/Rsqrt/Mul/AddV2, pooling -> MaxPool /
 * AvgPool / Mean / Max, Add/Multiply/Average/Maximum/Minimum/Subtract -> AddV2/Mul/..., Concatenate
 * -> ConcatV2, ZeroPadding2D -> Pad, Cropping2D -> StridedSlice, UpSampling2D -> Resize*,
 * Flatten/Reshape -> Reshape, Permute -> Transpose, Rescaling -> Mul + AddV2, activations ->
 * Relu, Relu6, Elu, Selu, Sigmoid, Tanh, Softplus, Softsign, LeakyRelu, Softmax (swish, mish and
 * hard sigmoid composed), dropout and noise layers -> nothing (inference).
 *
 * Any other layer, or a setting TensorFlow cannot express the same way, is refused with
 * MODEL_UNSUPPORTED naming the layer.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { LensError } from '../core/errors.js';
import type { GraphBuilder } from './builder.js';
import type { VariableSet } from './variables.js';

type Layer = tfl.layers.Layer;
type SymbolicTensor = tfl.SymbolicTensor;
type Config = Record<string, unknown>;

const F = 'DT_FLOAT';
/** Keras activations that are one TensorFlow op. */
const ONE_OP_ACTIVATIONS = new Map(Object.entries({ relu: 'Relu', relu6: 'Relu6', elu: 'Elu', selu: 'Selu', sigmoid: 'Sigmoid', tanh: 'Tanh', softplus: 'Softplus', softsign: 'Softsign', softmax: 'Softmax' }));

/** Layers that are the identity at inference. */
const INFERENCE_IDENTITY = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'ActivityRegularization']);

/** Layer classes this module writes. */
export const EXPORTABLE_LAYERS: readonly string[] = [
  'InputLayer', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense', 'BatchNormalization', 'Activation', 'ReLU',
  'LeakyReLU', 'ELU', 'PReLU', 'Softmax', 'Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum', 'Concatenate',
  'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'ZeroPadding2D', 'Cropping2D',
  'UpSampling2D', 'Flatten', 'Reshape', 'Permute', 'Rescaling', 'Functional', 'Model', 'Sequential', ...INFERENCE_IDENTITY,
];

function pair(v: unknown, what: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  throw new LensError('MODEL_UNSUPPORTED', `${what}: expected a number or a pair, got ${JSON.stringify(v)}`);
}

function paddingOf(cfg: Config, where: string): 'SAME' | 'VALID' {
  if (cfg.padding === 'same') return 'SAME';
  if (cfg.padding === 'valid' || cfg.padding === undefined) return 'VALID';
  throw new LensError('MODEL_UNSUPPORTED', `${where}: padding "${String(cfg.padding)}" cannot be exported (same and valid can)`);
}

function channelsLast(cfg: Config, where: string): void {
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') {
    throw new LensError('MODEL_UNSUPPORTED', `${where}: data format ${String(cfg.dataFormat)} cannot be exported (channels-last only)`);
  }
}

/** Static dims of a symbolic tensor without the batch dimension (null for unknown). */
function dimsOf(t: SymbolicTensor): (number | null)[] {
  return t.shape.slice(1).map((d) => (d === undefined ? null : d));
}

function knownDims(t: SymbolicTensor, where: string): number[] {
  const dims = dimsOf(t);
  if (dims.some((d) => d === null)) throw new LensError('MODEL_UNSUPPORTED', `${where}: needs a known input shape, got [${dims.map((d) => d ?? '?').join(',')}]`);
  return dims as number[];
}

/** Writes the ops of a LayersModel into a graph. */
export class LayersExporter {
  /** Read tensors of each layer's weights, so a shared layer applied twice reuses its variables. */
  private readonly weightReads = new WeakMap<Layer, Map<string, string>>();

  constructor(
    private readonly g: GraphBuilder,
    /** Where weights go: variables for a SavedModel, or Consts (`constantWeights`) for a compiler. */
    private readonly vars: Pick<VariableSet, 'add'>,
    /** Called after each layer is written (for progress). */
    private readonly onLayer: (layer: Layer) => void = () => undefined,
  ) {}

  /**
   * Emits `model` applied to `inputs` (tensor names, one per model input) and returns its output
   * tensor names.
   */
  async model(model: tfl.LayersModel, inputs: readonly string[]): Promise<string[]> {
    if (inputs.length !== model.inputs.length) {
      throw new LensError('MODEL_UNSUPPORTED', `model ${model.name} takes ${model.inputs.length} inputs, got ${inputs.length}`);
    }
    const memo = new Map<number, string>();
    model.inputs.forEach((t, i) => memo.set(t.id, inputs[i]!));
    const resolve = async (t: SymbolicTensor): Promise<string> => {
      const known = memo.get(t.id);
      if (known !== undefined) return known;
      const layer = t.sourceLayer as Layer;
      const node = layer.inboundNodes[t.nodeIndex];
      if (!node) throw new LensError('MODEL_CORRUPT', `model ${model.name}: tensor ${t.name} has no producing node in layer ${layer.name}`);
      const ins: string[] = [];
      for (const input of node.inputTensors) ins.push(await resolve(input));
      const outs = await this.layer(layer, ins, node.inputTensors);
      this.onLayer(layer);
      node.outputTensors.forEach((o, i) => {
        const ref = outs[i];
        if (ref !== undefined) memo.set(o.id, ref);
      });
      const ref = memo.get(t.id);
      if (ref === undefined) throw new LensError('MODEL_UNSUPPORTED', `layer ${layer.name} (${layer.getClassName()}): output ${t.tensorIndex} was not produced`);
      return ref;
    };
    const outputs: string[] = [];
    for (const t of model.outputs) outputs.push(await resolve(t));
    return outputs;
  }

  /** The read tensor of a layer weight, creating its variable on first use. */
  private async weight(layer: Layer, index: number): Promise<string> {
    const w = layer.weights[index];
    if (!w) throw new LensError('MODEL_CORRUPT', `layer ${layer.name} has no weight ${index}`);
    const short = (w.originalName ?? w.name).replace(/:\d+$/, '').split('/').pop() ?? `weight_${index}`;
    let reads = this.weightReads.get(layer);
    if (!reads) this.weightReads.set(layer, (reads = new Map()));
    const known = reads.get(short);
    if (known) return known;
    const t = w.read();
    const values = (await t.data()) as Float32Array;
    const read = this.vars.add(this.g, short, { dtype: 'float32', shape: [...t.shape], values: Float32Array.from(values) });
    reads.set(short, read);
    return read;
  }

  /** The read tensor of the weight whose short name is `name` (e.g. "kernel"). */
  private async named(layer: Layer, name: string): Promise<string | undefined> {
    const index = layer.weights.findIndex((w) => ((w.originalName ?? w.name).replace(/:\d+$/, '').split('/').pop() ?? '') === name);
    return index < 0 ? undefined : this.weight(layer, index);
  }

  private async required(layer: Layer, name: string): Promise<string> {
    const ref = await this.named(layer, name);
    if (!ref) throw new LensError('MODEL_CORRUPT', `layer ${layer.name} (${layer.getClassName()}) has no "${name}" weight (it has ${layer.weights.map((w) => w.originalName ?? w.name).join(', ')})`);
    return ref;
  }

  /** Applies a Keras activation by name. */
  activation(x: string, name: unknown, where: string): string {
    const g = this.g;
    const a = typeof name === 'string' ? name : 'linear';
    const unary = ONE_OP_ACTIVATIONS.get(a);
    if (unary) return g.op(unary, [x], { T: F });
    switch (a) {
      case 'linear':
        return x;
      case 'swish':
        return g.op('Mul', [x, g.op('Sigmoid', [x], { T: F })], { T: F }, { name: 'swish' });
      case 'mish':
        return g.op('Mul', [x, g.op('Tanh', [g.op('Softplus', [x], { T: F })], { T: F })], { T: F }, { name: 'mish' });
      case 'hard_sigmoid':
      case 'hardSigmoid': {
        // Keras: clip(0.2 x + 0.5, 0, 1).
        const lin = g.op('AddV2', [g.op('Mul', [x, g.float('hard_sigmoid/mul/y', 0.2)], { T: F }), g.float('hard_sigmoid/add/y', 0.5)], { T: F });
        return g.op('Minimum', [g.op('Maximum', [lin, g.float('hard_sigmoid/Maximum/y', 0)], { T: F }), g.float('hard_sigmoid/Minimum/y', 1)], { T: F });
      }
      default:
        throw new LensError('MODEL_UNSUPPORTED', `${where}: activation "${a}" cannot be exported (supported: linear, relu, relu6, elu, selu, sigmoid, hard_sigmoid, tanh, softplus, softsign, softmax, swish, mish)`);
    }
  }

  private chain(op: 'AddV2' | 'Mul' | 'Maximum' | 'Minimum', inputs: readonly string[], where: string): string {
    if (inputs.length < 2) throw new LensError('MODEL_UNSUPPORTED', `${where}: needs at least 2 inputs`);
    let acc = inputs[0]!;
    for (const x of inputs.slice(1)) acc = this.g.op(op, [acc, x], { T: F });
    return acc;
  }

  /** Emits one layer application; returns its output tensors. */
  private async layer(layer: Layer, inputs: string[], symbolic: SymbolicTensor[]): Promise<string[]> {
    const cls = layer.getClassName();
    const where = `layer ${layer.name} (${cls})`;
    const nested = layer as unknown as tfl.LayersModel;
    if (Array.isArray((nested as { layers?: unknown }).layers) && Array.isArray(nested.inputs)) {
      return this.g.scopeAsync(layer.name, () => this.model(nested, inputs));
    }
    if (cls === 'InputLayer' || INFERENCE_IDENTITY.has(cls)) return inputs;
    const cfg = layer.getConfig() as Config;
    const x = inputs[0]!;
    const g = this.g;
    return this.g.scopeAsync(layer.name, async () => {
      switch (cls) {
        case 'Conv2D':
        case 'DepthwiseConv2D': {
          channelsLast(cfg, where);
          const [sh, sw] = pair(cfg.strides ?? 1, `${where} strides`);
          const [dh, dw] = pair(cfg.dilationRate ?? 1, `${where} dilation rate`);
          const depthwise = cls === 'DepthwiseConv2D';
          const kernel = await this.required(layer, depthwise ? 'depthwise_kernel' : 'kernel');
          let y = g.op(depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', [x, kernel], {
            T: F,
            strides: [1, sh, sw, 1],
            padding: paddingOf(cfg, where),
            dilations: [1, dh, dw, 1],
          }, { name: depthwise ? 'depthwise' : 'Conv2D' });
          if (cfg.useBias !== false) y = g.op('BiasAdd', [y, await this.required(layer, 'bias')], { T: F });
          return [this.activation(y, cfg.activation, where)];
        }
        case 'SeparableConv2D': {
          channelsLast(cfg, where);
          const [sh, sw] = pair(cfg.strides ?? 1, `${where} strides`);
          const [dh, dw] = pair(cfg.dilationRate ?? 1, `${where} dilation rate`);
          let y = g.op('DepthwiseConv2dNative', [x, await this.required(layer, 'depthwise_kernel')], {
            T: F,
            strides: [1, sh, sw, 1],
            padding: paddingOf(cfg, where),
            dilations: [1, dh, dw, 1],
          }, { name: 'separable_conv2d/depthwise' });
          y = g.op('Conv2D', [y, await this.required(layer, 'pointwise_kernel')], { T: F, strides: [1, 1, 1, 1], padding: 'VALID' }, { name: 'separable_conv2d' });
          if (cfg.useBias !== false) y = g.op('BiasAdd', [y, await this.required(layer, 'bias')], { T: F });
          return [this.activation(y, cfg.activation, where)];
        }
        case 'Dense': {
          const dims = dimsOf(symbolic[0]!);
          const inner = dims[dims.length - 1];
          let flat = x;
          if (dims.length !== 1) {
            if (dims.some((d) => d === null)) throw new LensError('MODEL_UNSUPPORTED', `${where}: input of rank ${dims.length + 1} with unknown dims`);
            flat = g.op('Reshape', [x, g.int32('Tensordot/shape', [-1, inner as number])], { T: F, Tshape: 'DT_INT32' }, { name: 'Tensordot/Reshape' });
          }
          let y = g.op('MatMul', [flat, await this.required(layer, 'kernel')], { T: F });
          if (cfg.useBias !== false) y = g.op('BiasAdd', [y, await this.required(layer, 'bias')], { T: F });
          if (dims.length !== 1) {
            const units = Number(cfg.units);
            y = g.op('Reshape', [y, g.int32('Tensordot/output_shape', [-1, ...(dims.slice(0, -1) as number[]), units])], { T: F, Tshape: 'DT_INT32' }, { name: 'Tensordot' });
          }
          return [this.activation(y, cfg.activation, where)];
        }
        case 'BatchNormalization': {
          const rank = symbolic[0]!.shape.length;
          const axis = typeof cfg.axis === 'number' ? (cfg.axis < 0 ? cfg.axis + rank : cfg.axis) : NaN;
          if (axis !== rank - 1) throw new LensError('MODEL_UNSUPPORTED', `${where}: normalises axis ${String(cfg.axis)}; only the last (channel) axis can be exported`);
          const channels = symbolic[0]!.shape[rank - 1] as number;
          const eps = typeof cfg.epsilon === 'number' ? cfg.epsilon : 1e-3;
          const gamma = cfg.scale === false ? g.float('ones', new Array<number>(channels).fill(1)) : await this.required(layer, 'gamma');
          const beta = cfg.center === false ? g.float('zeros', new Array<number>(channels).fill(0)) : await this.required(layer, 'beta');
          const mean = await this.required(layer, 'moving_mean');
          const variance = await this.required(layer, 'moving_variance');
          if (rank === 4) {
            return [g.op('FusedBatchNormV3', [x, gamma, beta, mean, variance], { T: F, U: F, epsilon: eps, is_training: false }, { name: 'FusedBatchNormV3' })];
          }
          // Other ranks: y = (x - mean) * rsqrt(variance + eps) * gamma + beta.
          const inv = g.op('Mul', [g.op('Rsqrt', [g.op('AddV2', [variance, g.float('batchnorm/add/y', eps)], { T: F }, { name: 'batchnorm/add' })], { T: F }, { name: 'batchnorm/Rsqrt' }), gamma], { T: F }, { name: 'batchnorm/mul' });
          const centered = g.op('Sub', [x, mean], { T: F }, { name: 'batchnorm/sub' });
          return [g.op('AddV2', [g.op('Mul', [centered, inv], { T: F }, { name: 'batchnorm/mul_1' }), beta], { T: F }, { name: 'batchnorm/add_1' })];
        }
        case 'Activation':
          return [this.activation(x, cfg.activation, where)];
        case 'ReLU': {
          const maxValue = cfg.maxValue as number | null | undefined;
          const slope = Number(cfg.negativeSlope ?? 0);
          const threshold = Number(cfg.threshold ?? 0);
          if (slope !== 0 || threshold !== 0) throw new LensError('MODEL_UNSUPPORTED', `${where}: negative_slope/threshold settings cannot be exported`);
          if (maxValue === 6) return [g.op('Relu6', [x], { T: F })];
          const y = g.op('Relu', [x], { T: F });
          return [maxValue === null || maxValue === undefined ? y : g.op('Minimum', [y, g.float('Minimum/y', maxValue)], { T: F })];
        }
        case 'LeakyReLU':
          return [g.op('LeakyRelu', [x], { T: F, alpha: Number(cfg.alpha ?? 0.3) })];
        case 'ELU': {
          const alpha = Number(cfg.alpha ?? 1);
          if (alpha !== 1) throw new LensError('MODEL_UNSUPPORTED', `${where}: ELU alpha ${alpha} cannot be exported (TensorFlow's Elu has alpha 1)`);
          return [g.op('Elu', [x], { T: F })];
        }
        case 'PReLU': {
          // prelu(x) = relu(x) - alpha * relu(-x)
          const alpha = await this.required(layer, 'alpha');
          const pos = g.op('Relu', [x], { T: F });
          const neg = g.op('Mul', [alpha, g.op('Relu', [g.op('Neg', [x], { T: F })], { T: F }, { name: 'Relu_1' })], { T: F });
          return [g.op('Sub', [pos, neg], { T: F })];
        }
        case 'Softmax': {
          const axis = Array.isArray(cfg.axis) ? cfg.axis : [cfg.axis ?? -1];
          const rank = symbolic[0]!.shape.length;
          if (axis.length !== 1 || ((axis[0] as number) !== -1 && (axis[0] as number) !== rank - 1)) {
            throw new LensError('MODEL_UNSUPPORTED', `${where}: softmax over axis ${JSON.stringify(cfg.axis)}; only the last axis can be exported`);
          }
          return [g.op('Softmax', [x], { T: F })];
        }
        case 'Add':
          return [this.chain('AddV2', inputs, where)];
        case 'Multiply':
          return [this.chain('Mul', inputs, where)];
        case 'Maximum':
          return [this.chain('Maximum', inputs, where)];
        case 'Minimum':
          return [this.chain('Minimum', inputs, where)];
        case 'Subtract':
          return [g.op('Sub', [inputs[0]!, inputs[1]!], { T: F })];
        case 'Average':
          return [g.op('Mul', [this.chain('AddV2', inputs, where), g.float('mul/y', 1 / inputs.length)], { T: F })];
        case 'Concatenate': {
          const axis = Number(cfg.axis ?? -1);
          return [g.op('ConcatV2', [...inputs, g.int32('concat/axis', axis)], { N: inputs.length, T: F, Tidx: 'DT_INT32' }, { name: 'concat' })];
        }
        case 'MaxPooling2D':
        case 'AveragePooling2D': {
          channelsLast(cfg, where);
          const [ph, pw] = pair(cfg.poolSize ?? 2, `${where} pool size`);
          const [sh, sw] = pair(cfg.strides ?? cfg.poolSize ?? 2, `${where} strides`);
          const op = cls === 'MaxPooling2D' ? 'MaxPool' : 'AvgPool';
          return [g.op(op, [x], { T: F, ksize: [1, ph, pw, 1], strides: [1, sh, sw, 1], padding: paddingOf(cfg, where) })];
        }
        case 'GlobalAveragePooling2D':
        case 'GlobalMaxPooling2D': {
          channelsLast(cfg, where);
          const keep = cfg.keepdims === true || cfg.keepDims === true;
          const op = cls === 'GlobalAveragePooling2D' ? 'Mean' : 'Max';
          return [g.op(op, [x, g.int32(`${op}/reduction_indices`, [1, 2])], { T: F, Tidx: 'DT_INT32', keep_dims: keep })];
        }
        case 'ZeroPadding2D': {
          channelsLast(cfg, where);
          const p = cfg.padding as unknown;
          const [[t, b], [l, r]] = Array.isArray(p) && Array.isArray(p[0])
            ? [pair(p[0], `${where} padding`), pair(p[1], `${where} padding`)]
            : [pair(p, `${where} padding`), pair(p, `${where} padding`)];
          return [g.op('Pad', [x, g.constant('Pad/paddings', { dtype: 'int32', shape: [4, 2], values: Int32Array.from([0, 0, t, b, l, r, 0, 0]) })], { T: F, Tpaddings: 'DT_INT32' })];
        }
        case 'Cropping2D': {
          channelsLast(cfg, where);
          const c = cfg.cropping as unknown;
          const [[t, b], [l, r]] = Array.isArray(c) && Array.isArray(c[0])
            ? [pair(c[0], `${where} cropping`), pair(c[1], `${where} cropping`)]
            : [pair(c, `${where} cropping`), pair(c, `${where} cropping`)];
          const [h, w] = knownDims(symbolic[0]!, where);
          // Batch and channel axes are taken whole (begin/end mask bits 0 and 3).
          return [g.op('StridedSlice', [x, g.int32('strided_slice/stack', [0, t, l, 0]), g.int32('strided_slice/stack_1', [0, h! - b, w! - r, 0]), g.int32('strided_slice/stack_2', [1, 1, 1, 1])], {
            T: F,
            Index: 'DT_INT32',
            begin_mask: 9,
            end_mask: 9,
          }, { name: 'strided_slice' })];
        }
        case 'UpSampling2D': {
          channelsLast(cfg, where);
          const [fh, fw] = pair(cfg.size ?? 2, `${where} size`);
          const [h, w] = knownDims(symbolic[0]!, where);
          const op = cfg.interpolation === 'bilinear' ? 'ResizeBilinear' : 'ResizeNearestNeighbor';
          // tfjs-layers resizes without half-pixel centers; the export computes what the source model computes.
          return [g.op(op, [x, g.int32('size', [h! * fh, w! * fw])], { T: F, align_corners: false, half_pixel_centers: false })];
        }
        case 'Flatten': {
          const dims = knownDims(symbolic[0]!, where);
          return [g.op('Reshape', [x, g.int32('Reshape/shape', [-1, dims.reduce((a, d) => a * d, 1)])], { T: F, Tshape: 'DT_INT32' })];
        }
        case 'Reshape': {
          const target = (cfg.targetShape as number[]).map((d) => (d === null ? -1 : d));
          return [g.op('Reshape', [x, g.int32('Reshape/shape', [-1, ...target])], { T: F, Tshape: 'DT_INT32' })];
        }
        case 'Permute': {
          const dims = cfg.dims as number[];
          return [g.op('Transpose', [x, g.int32('transpose/perm', [0, ...dims])], { T: F, Tperm: 'DT_INT32' }, { name: 'transpose' })];
        }
        case 'Rescaling': {
          const scale = Number(cfg.scale ?? 1);
          const offset = Number(cfg.offset ?? 0);
          let y = x;
          if (scale !== 1) y = g.op('Mul', [y, g.float('mul/y', scale)], { T: F }, { name: 'mul' });
          if (offset !== 0) y = g.op('AddV2', [y, g.float('add/y', offset)], { T: F }, { name: 'add' });
          return [y === x ? g.op('Identity', [x], { T: F }) : y];
        }
        default:
          throw new LensError('MODEL_UNSUPPORTED', `${where} cannot be exported to a SavedModel; exportable layers: ${EXPORTABLE_LAYERS.join(', ')}`);
      }
    });
  }
}
