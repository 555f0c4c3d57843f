/**
 * The ONNX bytes themselves, decoded with protobufjs (protos/onnx/onnx.proto): opset, inputs and
 * outputs of both graphs, and the Keras -> ONNX kernel transposition of a one-conv model.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { decodeMessage } from '../../src/proto/index.js';
import { compileLayersModel, ONNX_OPSET } from '../../src/engines/onnx/index.js';
import { seedWeights } from './helpers.js';

interface Dim {
  dim_value: number;
  dim_param: string;
  /** Which member of the `value` oneof is set. */
  value: 'dim_value' | 'dim_param';
}
interface ValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: Dim[] } } };
}
interface Tensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}
interface Attribute {
  name: string;
  ints: number[];
  i: number;
}
interface Model {
  ir_version: number;
  producer_name: string;
  opset_import: { domain: string; version: number }[];
  metadata_props: { key: string; value: string }[];
  graph: {
    node: { op_type: string; input: string[]; output: string[]; attribute: Attribute[] }[];
    initializer: Tensor[];
    input: ValueInfo[];
    output: ValueInfo[];
  };
}

const shapeOf = (v: ValueInfo) => v.type.tensor_type.shape.dim.map((d) => (d.value === 'dim_param' ? d.dim_param : d.dim_value));
const floats = (t: Tensor) => new Float32Array(Uint8Array.from(t.raw_data).buffer);

describe('ONNX encoding', () => {
  // Input 4x5x2, kernel 2x3 (not square, so rows and columns cannot be swapped unnoticed), 3 filters.
  let layers: tfl.LayersModel;
  let keras: { kernel: Float32Array; bias: Float32Array };
  let forward: Model;
  let gradient: Model;

  beforeAll(async () => {
    await initBackend();
    layers = tfl.sequential({ name: 'one_conv', layers: [tfl.layers.conv2d({ inputShape: [4, 5, 2], filters: 3, kernelSize: [2, 3], padding: 'same', name: 'only_conv' })] });
    seedWeights(layers, 9);
    const [kernel, bias] = layers.getLayer('only_conv').getWeights();
    keras = { kernel: kernel!.dataSync() as Float32Array, bias: bias!.dataSync() as Float32Array };
    const compiled = await compileLayersModel(layers, { name: 'one_conv', preprocessing: 'raw' });
    expect(compiled.classes).toBe(4 * 5 * 3);
    forward = decodeMessage<Model>('onnx.ModelProto', compiled.forward, 'forward graph');
    gradient = decodeMessage<Model>('onnx.ModelProto', compiled.gradient, 'gradient graph');
  });

  it('writes opset 17, IR 8 and says which graph is which', () => {
    for (const [model, kind] of [
      [forward, 'forward'],
      [gradient, 'gradient'],
    ] as const) {
      expect(ONNX_OPSET).toBe(17);
      expect(model.opset_import).toHaveLength(1);
      expect(model.opset_import[0]!.version).toBe(17);
      expect(model.opset_import[0]!.domain ?? '').toBe('');
      expect(model.ir_version).toBe(8);
      expect(model.producer_name).toBe('serving-lens');
      expect(model.metadata_props.map((p) => [p.key, p.value])).toEqual([['serving-lens.graph', kind]]);
    }
  });

  it('declares pixels (and seed) in, scores (and gradients) out, with a symbolic batch', () => {
    expect(forward.graph.input.map((v) => v.name)).toEqual(['pixels']);
    expect(forward.graph.output.map((v) => v.name)).toEqual(['scores']);
    expect(gradient.graph.input.map((v) => v.name)).toEqual(['pixels', 'seed']);
    expect(gradient.graph.output.map((v) => v.name)).toEqual(['scores', 'gradients']);
    const [pixels, seed] = gradient.graph.input;
    const [scores, grads] = gradient.graph.output;
    expect(shapeOf(pixels!)).toEqual(['N', 4, 5, 2]);
    expect(shapeOf(seed!)).toEqual(['N', 60]);
    expect(shapeOf(scores!)).toEqual(['N', 60]);
    expect(shapeOf(grads!)).toEqual(['N', 4, 5, 2]);
    for (const v of [pixels!, seed!, scores!, grads!]) expect(v.type.tensor_type.elem_type).toBe(1); // FLOAT
    // The gradient graph is the forward graph plus the backward pass fed by the seed.
    const consumers = (m: Model, value: string) => m.graph.node.filter((n) => n.input.includes(value)).length;
    expect(forward.graph.node.map((n) => n.op_type)).toContain('Conv');
    expect(gradient.graph.node.length).toBeGreaterThan(forward.graph.node.length);
    expect(consumers(gradient, 'seed')).toBeGreaterThan(0);
    expect(consumers(forward, 'pixels')).toBeGreaterThan(0);
  });

  it("stores the kernel as [out, in, kh, kw] and the bias as is, with TensorFlow's 'same' pads", () => {
    const weights = forward.graph.initializer.find((t) => t.name.startsWith('only_conv/Conv2D_w'));
    const bias = forward.graph.initializer.find((t) => t.name.startsWith('only_conv/Conv2D_b'));
    expect(weights?.data_type).toBe(1);
    expect(weights?.dims).toEqual([3, 2, 2, 3]);
    expect(bias?.dims).toEqual([3]);
    const onnx = floats(weights!);
    // onnx[o][c][i][j] = keras[i][j][c][o]; two values by hand first.
    // (o=2, c=1, i=0, j=2): onnx ((2*2+1)*2+0)*3+2 = 32, keras ((0*3+2)*2+1)*3+2 = 17.
    expect(onnx[32]).toBe(keras.kernel[17]);
    // (o=0, c=0, i=1, j=0): onnx ((0*2+0)*2+1)*3+0 = 3, keras ((1*3+0)*2+0)*3+0 = 18.
    expect(onnx[3]).toBe(keras.kernel[18]);
    for (let o = 0; o < 3; o++)
      for (let c = 0; c < 2; c++)
        for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expect(onnx[((o * 2 + c) * 2 + i) * 3 + j]).toBe(keras.kernel[((i * 3 + j) * 2 + c) * 3 + o]);
    expect(Array.from(floats(bias!))).toEqual(Array.from(keras.bias));
    const conv = forward.graph.node.find((n) => n.op_type === 'Conv')!;
    expect(conv.input.slice(1)).toEqual([weights!.name, bias!.name]);
    const attr = (name: string) => conv.attribute.find((a) => a.name === name)!;
    expect(attr('kernel_shape').ints).toEqual([2, 3]);
    // 'same' on 4x5 with a 2x3 kernel: one padded row, at the end; one column each side.
    expect(attr('pads').ints).toEqual([0, 1, 1, 1]);
    expect(attr('strides').ints).toEqual([1, 1]);
    expect(attr('group').i).toBe(1);
  });
});
