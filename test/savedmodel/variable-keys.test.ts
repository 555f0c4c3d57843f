/**
 * Which bundle key restores each variable (src/convert/graph/variables.ts): a wrong pairing loads
 * a model that runs and answers wrongly, so every graph here holds decoys, keys that the wrong
 * rule would pick. TF1 pairs Assign(variable, RestoreV2:k) with the k-th restored name; TF2 maps
 * the call's bound inputs through the object paths of the SavedObjectGraph and the checkpoint's
 * TrackableObjectGraph, whose node ids differ; otherwise shared_name or the node name is tried.
 * The real exports in ../shared are checked against the values TF Serving's half_plus_two export
 * script gives its variables (a = a2 = 0.5, b = 2, c = c2 = 3).
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OBJECT_GRAPH_KEY, variableKeys } from '../../src/convert/graph/variables.js';
import { encodeMessage } from '../../src/proto/index.js';
import { readSavedModel, readTensorBundle, selectMetaGraph, type MetaGraphDefMessage, type NodeDefMessage } from '../../src/savedmodel/index.js';
import { encodeTensorProto } from '../../src/tensor/index.js';
import { SHARED } from '../helpers/cli.js';

const SM = resolve(SHARED, 'testdata/savedmodels');
const text = new TextEncoder();

const node = (name: string, op: string, input: string[] = [], attr: NodeDefMessage['attr'] = {}): NodeDefMessage => ({ name, op, input, attr });
const names = (name: string, keys: string[]) =>
  node(name, 'Const', [], { value: { tensor: encodeTensorProto({ dtype: 'string', shape: [keys.length], values: keys.map((k) => text.encode(k)) }) } });
const sharedName = (s: string) => ({ shared_name: { s: text.encode(s) } });
const graph = (nodes: NodeDefMessage[], objects?: MetaGraphDefMessage['object_graph_def']): MetaGraphDefMessage => ({ graph_def: { node: nodes }, ...(objects ? { object_graph_def: objects } : {}) });

/** A TrackableObjectGraph as the checkpoint stores it under _CHECKPOINTABLE_OBJECT_GRAPH. */
type Trackable = { children?: { node_id: number; local_name: string }[]; attributes?: { name: string; full_name?: string; checkpoint_key: string }[] };
const trackable = (nodes: Trackable[]) => encodeMessage('tensorflow.TrackableObjectGraph', { nodes });
const value = (key: string) => ({ name: 'VARIABLE_VALUE', full_name: key.split('/')[0]!, checkpoint_key: key });

describe('TF1: Assign(variable, RestoreV2:k)', () => {
  // RestoreV2 lists "bias" before "kernel"; the bundle also holds entries named like the nodes
  // ("kernel", "bias"), which the fallback would take.
  const nodes = [
    node('kernel', 'VariableV2'),
    node('kernel/Initializer/zeros', 'Const'),
    node('kernel/Assign', 'Assign', ['kernel', 'kernel/Initializer/zeros']),
    node('kernel/read', 'Identity', ['kernel']),
    node('bias', 'VariableV2'),
    node('counter', 'VarHandleOp', [], sharedName('counter')),
    node('save/Const', 'Const'),
    names('save/RestoreV2/tensor_names', ['layer/bias', 'layer/kernel', 'steps']),
    node('save/RestoreV2/tensor_names/snapshot', 'Snapshot', ['save/RestoreV2/tensor_names']),
    node('save/RestoreV2/tensor_names/read', 'Identity', ['save/RestoreV2/tensor_names/snapshot']),
    node('save/RestoreV2/shape_and_slices', 'Const'),
    node('save/RestoreV2', 'RestoreV2', ['save/Const', 'save/RestoreV2/tensor_names/read', 'save/RestoreV2/shape_and_slices']),
    node('save/Identity_1', 'Identity', ['save/RestoreV2:1']),
    node('save/Snapshot', 'Snapshot', ['save/Identity_1']),
    node('save/Assign_1', 'Assign', ['kernel', 'save/Snapshot', '^save/Const']),
    node('save/Assign', 'Assign', ['bias', 'save/RestoreV2']),
    node('save/AssignVariableOp', 'AssignVariableOp', ['counter', 'save/RestoreV2:2']),
    node('save/restore_all', 'NoOp', ['^save/Assign', '^save/Assign_1', '^save/AssignVariableOp']),
  ];
  const bundle = ['bias', 'kernel', 'counter', 'layer/bias', 'layer/kernel', 'steps'];

  it('takes the k-th restored name for each variable, through Identity and Snapshot nodes', () => {
    expect(Object.fromEntries(variableKeys(graph(nodes), bundle))).toEqual({ kernel: 'layer/kernel', bias: 'layer/bias', counter: 'steps' });
  });

  it('ignores assignments that restore nothing, and restores that name no variable', () => {
    const keys = variableKeys(
      graph([
        node('w', 'VariableV2'),
        node('w/Initializer', 'Const'),
        node('w/Assign', 'Assign', ['w', 'w/Initializer']),
        node('not_a_variable', 'Placeholder'),
        names('names', ['decoy']),
        node('restore', 'RestoreV2', ['prefix', 'names', 'slices']),
        node('Assign', 'Assign', ['not_a_variable', 'restore']),
        node('Assign_dangling', 'Assign', ['w']),
        node('Assign_unknown_value', 'Assign', ['w', 'missing_node']),
        node('loop', 'Identity', ['loop']),
        node('Assign_loop', 'Assign', ['w', 'loop']),
        // Output 3 of a restore that names one tensor, and a restore whose names are no constant.
        node('Assign_past_end', 'Assign', ['w', 'restore:3']),
        node('fed_names', 'Placeholder'),
        node('restore_fed', 'RestoreV2', ['prefix', 'fed_names', 'slices']),
        node('Assign_fed', 'Assign', ['w', 'restore_fed']),
      ]),
      ['w', 'decoy'],
    );
    expect(Object.fromEntries(keys)).toStrictEqual({ w: 'w' });
  });

  it('reads half_plus_two (TF1) as its export script set it: a = a2 = 0.5, b = 2, c = c2 = 3', async () => {
    const dir = resolve(SM, 'saved_model_half_plus_two_cpu/00000123');
    const [mg, bundle] = [selectMetaGraph(await readSavedModel(dir)), await readTensorBundle(dir)];
    const keys = variableKeys(mg.def, bundle.names);
    expect(Object.fromEntries(keys)).toEqual({ a: 'a', a2: 'a2', b: 'b', c: 'c', c2: 'c2' });
    const restored: Record<string, number> = {};
    for (const [variable, key] of keys) restored[variable] = ((await bundle.read(key)).values as Float32Array)[0]!;
    expect(restored).toEqual({ a: 0.5, a2: 0.5, b: 2, c: 3, c2: 3 });
  });
});

describe('TF2: bound inputs of the call, by object path', () => {
  // Saved objects: 0 root -> 1 "layer" -> {2 "kernel", 3 "bias"}, 0 -> 4 "step", 6 "table", 7
  // "untracked", with a back edge 1 -> 0 and a second, longer path to the kernel (0 -> 5 "variables" -> 2).
  const savedObjects = {
    nodes: [
      {
        children: [
          { node_id: 1, local_name: 'layer' },
          { node_id: 4, local_name: 'step' },
          { node_id: 5, local_name: 'variables' },
          { node_id: 6, local_name: 'table' },
          { node_id: 7, local_name: 'untracked' },
        ],
      },
      { children: [{ node_id: 2, local_name: 'kernel' }, { node_id: 3, local_name: 'bias' }, { node_id: 0, local_name: 'root' }] },
      {},
      {},
      {},
      { children: [{ node_id: 2, local_name: '0' }] },
      {},
      {},
    ],
    concrete_functions: { __inference_signature_wrapper_42: { bound_inputs: [3, 2, 4] }, __inference_signature_wrapper_43: { bound_inputs: [6, 7] } },
  };
  // The checkpoint numbers the same objects otherwise: 0 root -> 1 "step", 2 "layer" -> {3 "bias",
  // 4 "kernel"}; its "untracked" object (5) and "table" (6) hold no variable value.
  const checkpoint = trackable([
    { children: [{ node_id: 1, local_name: 'step' }, { node_id: 2, local_name: 'layer' }, { node_id: 5, local_name: 'untracked' }, { node_id: 6, local_name: 'table' }] },
    { attributes: [value('step/.ATTRIBUTES/VARIABLE_VALUE')] },
    { children: [{ node_id: 3, local_name: 'bias' }, { node_id: 4, local_name: 'kernel' }] },
    { attributes: [value('layer/bias/.ATTRIBUTES/VARIABLE_VALUE')] },
    { attributes: [{ name: 'OBJECT_CONFIG_JSON', checkpoint_key: 'layer/kernel/.ATTRIBUTES/OBJECT_CONFIG_JSON' }, value('layer/kernel/.ATTRIBUTES/VARIABLE_VALUE')] },
    { attributes: [{ name: 'OBJECT_CONFIG_JSON', checkpoint_key: 'untracked/.ATTRIBUTES/OBJECT_CONFIG_JSON' }] },
    { attributes: [value('table/.ATTRIBUTES/VARIABLE_VALUE')] },
  ]);
  const call = (inputs: string[]) => node('StatefulPartitionedCall', 'StatefulPartitionedCall', inputs, { f: { func: { name: '__inference_signature_wrapper_42' } } });
  const handles = [
    node('serving_default_x', 'Placeholder'),
    node('serving_default_y', 'Placeholder'),
    node('Variable', 'VarHandleOp', [], sharedName('Variable')),
    node('Variable_1', 'VarHandleOp', [], sharedName('Variable_1')),
    node('Variable_2', 'VarHandleOp', [], sharedName('Variable_2')),
    node('Variable_2/handle', 'Identity', ['Variable_2']),
  ];
  const bundle = ['Variable', 'Variable_1', 'layer/bias/.ATTRIBUTES/VARIABLE_VALUE', 'layer/kernel/.ATTRIBUTES/VARIABLE_VALUE', 'step/.ATTRIBUTES/VARIABLE_VALUE', OBJECT_GRAPH_KEY];

  it('maps each handle to the checkpoint key of the object at the same path', () => {
    const nodes = [
      ...handles,
      call(['serving_default_x', 'serving_default_y', 'Variable', 'Variable_1', 'Variable_2/handle', '^NoOp']),
      // A second call binds a captured constant (no variable, though its object has a value) and a
      // variable whose object has no value in the checkpoint: neither is mapped.
      node('table_handle', 'Const'),
      node('Variable_3', 'VarHandleOp', [], sharedName('Variable_3')),
      node('StatefulPartitionedCall_1', 'StatefulPartitionedCall', ['serving_default_x', 'table_handle', 'Variable_3'], { f: { func: { name: '__inference_signature_wrapper_43' } } }),
    ];
    expect(Object.fromEntries(variableKeys(graph(nodes, savedObjects), bundle, checkpoint))).toStrictEqual({
      Variable: 'layer/bias/.ATTRIBUTES/VARIABLE_VALUE',
      Variable_1: 'layer/kernel/.ATTRIBUTES/VARIABLE_VALUE',
      Variable_2: 'step/.ATTRIBUTES/VARIABLE_VALUE',
    });
  });

  it('falls back to shared names without the object graph, or for calls of other functions', () => {
    const nodes = [...handles, call(['serving_default_x', 'serving_default_y', 'Variable', 'Variable_1', 'Variable_2/handle'])];
    const byName = { Variable: 'Variable', Variable_1: 'Variable_1' };
    expect(Object.fromEntries(variableKeys(graph(nodes, savedObjects), bundle))).toEqual(byName);
    const other = { ...savedObjects, concrete_functions: { __inference_other_7: { bound_inputs: [3, 2, 4] } } };
    expect(Object.fromEntries(variableKeys(graph(nodes, other), bundle, checkpoint))).toEqual(byName);
    const notACall = [...handles, node('call', 'Identity', ['serving_default_x', 'serving_default_y', 'Variable', 'Variable_1', 'Variable_2/handle'], { f: { func: { name: '__inference_signature_wrapper_42' } } })];
    expect(Object.fromEntries(variableKeys(graph(notACall, savedObjects), bundle, checkpoint))).toEqual(byName);
  });

  it('a TF1 restore wins over the object graph', () => {
    const nodes = [
      ...handles,
      call(['serving_default_x', 'serving_default_y', 'Variable', 'Variable_1', 'Variable_2/handle']),
      names('names', ['restored_bias']),
      node('restore', 'RestoreV2', ['prefix', 'names', 'slices']),
      node('assign', 'AssignVariableOp', ['Variable', 'restore:0']),
    ];
    expect(variableKeys(graph(nodes, savedObjects), [...bundle, 'restored_bias'], checkpoint).get('Variable')).toBe('restored_bias');
  });

  it('reads half_plus_two (TF2) as a = 0.5, b = 2, c = 3, and leaves its unsaved variable out', async () => {
    const dir = resolve(SM, 'saved_model_half_plus_two_tf2_cpu/00000123');
    const [mg, bundle] = [selectMetaGraph(await readSavedModel(dir)), await readTensorBundle(dir)];
    const objects = await bundle.read(OBJECT_GRAPH_KEY);
    const keys = variableKeys(mg.def, bundle.names, objects.values[0] as Uint8Array);
    expect(Object.fromEntries(keys)).toEqual({ a: 'a/.ATTRIBUTES/VARIABLE_VALUE', b: 'b/.ATTRIBUTES/VARIABLE_VALUE', c: 'c/.ATTRIBUTES/VARIABLE_VALUE' });
    const restored: Record<string, number> = {};
    for (const [variable, key] of keys) restored[variable] = ((await bundle.read(key)).values as Float32Array)[0]!;
    expect(restored).toEqual({ a: 0.5, b: 2, c: 3 });
  });
});

describe('fallbacks: shared_name, then the node name, as stored or in TF2 attribute form', () => {
  it('tries each candidate in order and leaves unknown variables out', () => {
    const nodes = [
      node('p', 'VarHandleOp', [], sharedName('p_shared')),
      node('q', 'VariableV2'),
      node('r', 'VarHandleOp', [], sharedName('r_shared')),
      node('s', 'Variable'),
      node('t', 'VarHandleOp', [], sharedName('t_shared')),
      node('u', 'VarHandleOp', [], sharedName('u_shared')),
      node('not_a_variable', 'Const'),
    ];
    const bundle = ['p', 'p_shared', 'q', 'r_shared/.ATTRIBUTES/VARIABLE_VALUE', 's/.ATTRIBUTES/VARIABLE_VALUE', 'r', 'u/.ATTRIBUTES/VARIABLE_VALUE', 'u_shared/.ATTRIBUTES/VARIABLE_VALUE', 'not_a_variable'];
    expect(Object.fromEntries(variableKeys(graph(nodes), bundle))).toStrictEqual({
      p: 'p_shared',
      q: 'q',
      r: 'r',
      s: 's/.ATTRIBUTES/VARIABLE_VALUE',
      u: 'u_shared/.ATTRIBUTES/VARIABLE_VALUE',
    });
  });
});
