/**
 * The op-definition check: an exported saved_model.pb, decoded with the generic protobuf schema
 * (protos/), is checked node by node against TensorFlow's op definitions kept in
 * src/export/op-defs.ts; the checker itself must catch each kind of mistake; and the parts
 * TensorFlow Serving relies on (Saver, versions, tags, signatures) look like a real TF1 export.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { checkGraphDef, checkMetaGraph } from '../../src/export/check.js';
import { exportSavedModel } from '../../src/export/export.js';
import { GraphBuilder } from '../../src/graph/builder.js';
import { opDef, opDefs } from '../../src/graph/op-defs.js';
import { buildShapesResNet } from '../../src/models/shapes-resnet.js';
import { decodeMessage } from '../../src/proto/index.js';
import type { MetaGraphDefMessage, NodeDefMessage } from '../../src/savedmodel/savedmodel.js';
import { SHARED } from '../helpers/cli.js';

interface SavedModelMessage {
  saved_model_schema_version?: number;
  meta_graphs: (MetaGraphDefMessage & {
    saver_def?: { filename_tensor_name?: string; save_tensor_name?: string; restore_op_name?: string; sharded?: boolean; version?: number };
    collection_def?: Record<string, { bytes_list?: { value?: Uint8Array[] } }>;
  })[];
}

const tmp = mkdtempSync(join(tmpdir(), 'lens-export-opdefs-'));
let mg: SavedModelMessage['meta_graphs'][number];

function readPb(path: string): SavedModelMessage {
  return decodeMessage<SavedModelMessage>('tensorflow.SavedModel', readFileSync(path), path);
}

beforeAll(async () => {
  await initBackend();
  const model = buildShapesResNet({ seed: 5 });
  const r = await exportSavedModel(model, join(tmp, 'shapes'), { version: 1, preprocessing: 'unit', topK: 3 });
  model.dispose();
  mg = readPb(join(r.dir, 'saved_model.pb')).meta_graphs[0]!;
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('exported saved_model.pb against TensorFlow op definitions', () => {
  it('every node has a known op, declared attrs of the right kind, the right inputs and dtypes', () => {
    const nodes = mg.graph_def?.node ?? [];
    expect(nodes.length).toBeGreaterThan(300);
    for (const n of nodes) expect(opDefs().has(n.op), `${n.name} uses ${n.op}`).toBe(true);
    expect(checkMetaGraph(mg)).toEqual([]);
  });

  it('uses only real TensorFlow ops (no tfjs-only or serving-lens ops)', () => {
    const ops = new Set((mg.graph_def?.node ?? []).map((n) => n.op));
    for (const op of ['_FusedConv2D', 'FusedDepthwiseConv2dNative', '_FusedMatMul', 'LensReadVariable', 'LensAssignVariable', 'IdentityN']) {
      expect(ops.has(op)).toBe(false);
    }
    for (const op of ['Conv2D', 'FusedBatchNormV3', 'Relu', 'AddV2', 'Mean', 'MatMul', 'BiasAdd', 'Softmax', 'TopKV2', 'DecodeJpeg', 'TensorArrayV3', 'LoopCond']) {
      expect(ops.has(op), op).toBe(true);
    }
  });

  it('lists the definitions of exactly the ops it uses, with defaults stripped from nodes', () => {
    const listed = (mg.meta_info_def?.stripped_op_list?.op ?? []).map((o) => o.name).sort();
    const used = [...new Set((mg.graph_def?.node ?? []).map((n) => n.op))].sort();
    expect(listed).toEqual(used);
    expect(mg.meta_info_def?.stripped_default_attrs).toBe(true);
    const conv = (mg.graph_def?.node ?? []).find((n) => n.op === 'Conv2D')!;
    // dilations [1,1,1,1] and data_format NHWC are defaults: left out; strides and padding are required.
    expect(Object.keys(conv.attr ?? {}).sort()).toEqual(['T', 'padding', 'strides']);
    const listedConv = mg.meta_info_def?.stripped_op_list?.op?.find((o) => o.name === 'Conv2D');
    expect(listedConv?.attr?.find((a) => a.name === 'dilations')?.default_value?.list?.i).toEqual([1, 1, 1, 1]);
  });

  it('carries the serve tag, a TensorFlow version, GraphDef versions and TF Serving method names', () => {
    expect(mg.meta_info_def?.tags).toEqual(['serve']);
    expect(mg.meta_info_def?.tensorflow_version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(mg.graph_def?.versions?.producer).toBeGreaterThan(0);
    const sigs = mg.signature_def ?? {};
    expect(Object.keys(sigs).sort()).toEqual(['predict', 'predict_pixels', 'serving_default']);
    for (const s of Object.values(sigs)) expect(s.method_name).toBe('tensorflow/serving/predict');
    expect(sigs.serving_default?.inputs?.image_bytes?.name).toBe('image_bytes:0');
    expect(sigs.serving_default?.inputs?.image_bytes?.dtype).toBe(7); // DT_STRING
    expect(sigs.predict_pixels?.inputs?.images?.tensor_shape?.dim?.map((d) => Number(d.size))).toEqual([-1, 64, 64, 3]);
    expect(sigs.predict?.outputs?.classes?.dtype).toBe(7); // DT_STRING: class names
    expect(sigs.predict?.outputs?.class_ids?.dtype).toBe(9); // DT_INT64
    expect(sigs.predict?.outputs?.classes?.tensor_shape?.dim?.map((d) => Number(d.size))).toEqual([-1, 3]);
    expect(sigs.predict?.outputs?.probabilities?.tensor_shape?.dim?.map((d) => Number(d.size))).toEqual([-1, 5]);
  });

  it('has the Saver subgraph of a real TF1 export (same node names and ops as saved_model_half_plus_two)', () => {
    const real = readPb(join(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu/00000123/saved_model.pb')).meta_graphs[0]!;
    const saverNodes = (nodes: NodeDefMessage[]) =>
      new Map(nodes.filter((n) => n.name.startsWith('save/') && !/^save\/Assign_\d+$/.test(n.name)).map((n) => [n.name, n.op]));
    expect(saverNodes(mg.graph_def?.node ?? [])).toEqual(saverNodes(real.graph_def?.node ?? []));
    for (const key of ['filename_tensor_name', 'save_tensor_name', 'restore_op_name', 'sharded', 'version'] as const) {
      expect(mg.saver_def?.[key], key).toEqual(real.saver_def?.[key]);
    }
    // One Assign per variable restores it from RestoreV2, under restore_shard.
    const variables = (mg.graph_def?.node ?? []).filter((n) => n.op === 'VariableV2').map((n) => n.name);
    const restores = (mg.graph_def?.node ?? []).filter((n) => n.name.startsWith('save/Assign'));
    expect(restores.length).toBe(variables.length);
    expect(new Set(restores.map((n) => n.input?.[0]))).toEqual(new Set(variables));
  });

  it('describes every variable in the variables collection with nodes that exist', () => {
    const names = new Set((mg.graph_def?.node ?? []).map((n) => n.name));
    const defs = (mg.collection_def?.variables?.bytes_list?.value ?? []).map((b) =>
      decodeMessage<{ variable_name: string; initializer_name: string; snapshot_name: string; initial_value_name: string }>('tensorflow.VariableDef', b, 'VariableDef'),
    );
    expect(defs.length).toBe((mg.graph_def?.node ?? []).filter((n) => n.op === 'VariableV2').length);
    for (const d of defs) {
      for (const ref of [d.variable_name, d.snapshot_name, d.initial_value_name]) expect(names.has(ref.replace(/:\d+$/, '')), ref).toBe(true);
      expect(names.has(d.initializer_name)).toBe(true);
    }
  });
});

describe('the checker catches', () => {
  const node = (name: string, op: string, input: string[], attr: NodeDefMessage['attr'] = {}): NodeDefMessage => ({ name, op, input, attr });
  const f = { type: 1 };
  const x = node('x', 'Placeholder', [], { dtype: f });

  it('a sound graph as sound', () => {
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['x'], { T: f })] })).toEqual([]);
  });

  it('unknown ops, unknown attrs, wrong attr kinds and disallowed values', () => {
    expect(checkGraphDef({ node: [x, node('r', 'Gelu', ['x'], { T: f })] })[0]).toMatch(/op Gelu is not in the op-definition table/);
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['x'], { T: f, alpha: { f: 0.1 } })] })[0]).toMatch(/Relu has no attr "alpha"/);
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['x'], { T: { i: 1 } })] })[0]).toMatch(/declared type but holds a "i" value/);
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['x'], { T: { type: 10 } })] }).join()).toMatch(/DT_BOOL is not one of/);
  });

  it('missing required attrs, wrong input counts, dtype mismatches, dangling inputs and non-ref inputs to Assign', () => {
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['x'])] })[0]).toMatch(/required attr "T" is missing/);
    expect(checkGraphDef({ node: [x, node('a', 'AddV2', ['x'], { T: f })] })[0]).toMatch(/has 1 inputs, its op takes 2/);
    const i = node('i', 'Placeholder', [], { dtype: { type: 3 } });
    expect(checkGraphDef({ node: [x, i, node('a', 'AddV2', ['x', 'i'], { T: f })] })[0]).toMatch(/input 1 \(y\) must be DT_FLOAT, "i" is DT_INT32/);
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['nope:0'], { T: f })] })[0]).toMatch(/names no node/);
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['x:1'], { T: f })] })[0]).toMatch(/has no output 1/);
    expect(checkGraphDef({ node: [x, node('a', 'Assign', ['x', 'x'], { T: f })] })[0]).toMatch(/must be a ref/);
    expect(checkGraphDef({ node: [x, node('r', 'Relu', ['^x', 'x'], { T: f })] }).join()).toMatch(/data input follows a control input/);
  });

  it('and the builder refuses to emit such nodes in the first place', () => {
    const g = new GraphBuilder();
    const p = g.op('Placeholder', [], { dtype: 'DT_FLOAT' }, { name: 'x' });
    expect(() => g.op('Relu', [p], { T: 'DT_FLOAT', alpha: 0.2 })).toThrow(/Relu has no attr "alpha"/);
    expect(() => g.op('Conv2D', [p], { T: 'DT_FLOAT', strides: [1, 1, 1, 1], padding: 'SAME' })).toThrow(/takes 2 inputs/);
    expect(() => g.op('Conv2D', [p, p], { T: 'DT_FLOAT', strides: [1, 1, 1, 1], padding: 'FULL' })).toThrow(/FULL is not one of SAME, VALID, EXPLICIT/);
    expect(() => g.op('Conv2D', [p, p], { T: 'DT_FLOAT', padding: 'SAME' })).toThrow(/required attr "strides"/);
  });
});

describe('the op table', () => {
  it('holds TensorFlow facts for the ops the exporter emits', () => {
    const topk = opDef('TopKV2');
    expect(topk.inputs.map((a) => a.name)).toEqual(['input', 'k']);
    expect(topk.outputs.map((a) => a.name)).toEqual(['values', 'indices']);
    expect(opDef('VariableV2').outputs[0]?.isRef).toBe(true);
    expect(opDef('VariableV2').isStateful).toBe(true);
    expect(opDef('FusedBatchNormV3').attrs.find((a) => a.name === 'epsilon')?.default).toBe(0.0001);
    expect(opDef('DecodeJpeg').outputs[0]?.type).toBe('DT_UINT8');
    expect(opDef('SaveV2').inputs[3]?.typeListAttr).toBe('dtypes');
    expect(opDef('ConcatV2').inputs[0]?.numberAttr).toBe('N');
    expect(() => opDef('Gelu')).toThrow(/not in the exporter's op-definition table/);
  });
});
