import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { SHARED } from '../helpers/cli.js';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { isLensError } from '../../src/core/errors.js';
import {
  findSignature,
  modelMetadataJson,
  opHistogram,
  readSavedModel,
  selectMetaGraph,
  signatureDefMapJson,
} from '../../src/savedmodel/index.js';
import { loadSavedModel, type LoadedSavedModel } from '../../src/engines/tfjs/savedmodel.js';
import { registerGraphOp, unregisterGraphOp } from '../../src/convert/graph/index.js';
import { hostFromNested, hostToNested, type HostTensor } from '../../src/tensor/index.js';

const SM = resolve(SHARED, 'testdata/savedmodels');
const tmp = mkdtempSync(join(tmpdir(), 'lens-sm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

async function expectLensError(p: Promise<unknown>, code: string, text: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isLensError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error(`expected a ${code} error`);
}

const f32 = (v: unknown): HostTensor => hostFromNested(v, 'float32');
const values = (t: HostTensor | undefined) => hostToNested(t!);
/** Drops "defaults" (newer servers add the TF2 export's defaults map; the expected files predate it). */
const withoutDefaults = (o: unknown) => JSON.parse(JSON.stringify(o, (k, v) => (k === 'defaults' ? undefined : v)));

describe('signature listings', () => {
  const pairs: [string, string][] = [
    ['saved_model_half_plus_two_cpu/00000123', 'half_plus_two_model_metadata.json'],
    ['saved_model_half_plus_two_2_versions/00000123', 'saved_model_half_plus_two_2_versions_metadata.json'],
    ['saved_model_half_plus_two_tf2_cpu/00000123', 'saved_model_half_plus_two_tf2_2_versions_metadata.json'],
  ];
  for (const [dir, expected] of pairs) {
    it(`carries the same information as TF Serving's metadata reply (${expected})`, async () => {
      const mg = selectMetaGraph(await readSavedModel(join(SM, dir)));
      const want = JSON.parse(readFileSync(join(SM, 'expected', expected), 'utf8'));
      const got = modelMetadataJson({ name: want.model_spec.name, version: 123, metaGraph: mg });
      expect(withoutDefaults(got)).toEqual(withoutDefaults(want));
    });
  }

  it('lists tags, dtypes, shapes, tensor names and method names', async () => {
    const sm = await readSavedModel(join(SM, 'saved_model_counter/00000123'));
    expect(sm.kind).toBe('tf1');
    const mg = selectMetaGraph(sm, ['serve']);
    expect(mg.tags).toEqual(['serve']);
    expect(mg.tensorflowVersion).toBe('1.5.0-rc1');
    expect(mg.signatures.map((s) => s.name)).toEqual(['get_counter', 'incr_counter', 'incr_counter_by', 'reset_counter']);
    const by = findSignature(mg, 'incr_counter_by');
    expect(by.methodName).toBe('tensorflow/serving/predict');
    expect(by.inputs).toEqual([{ alias: 'delta', name: 'delta:0', dataType: 'DT_FLOAT', dtype: 'float32', shape: null, encoding: 'dense' }]);
    expect(by.outputs[0]).toMatchObject({ alias: 'output', name: 'incr_counter_by_op/AssignAdd:0', dataType: 'DT_FLOAT_REF', dtype: 'float32', shape: [] });

    const tf2 = await readSavedModel(join(SM, 'saved_model_half_plus_two_tf2_cpu/00000123'));
    expect(tf2.kind).toBe('tf2');
    const def = signatureDefMapJson(selectMetaGraph(tf2)).signature_def['serving_default']!;
    expect(def.defaults['x']).toEqual({ dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '1', name: '' }], unknown_rank: false }, float_val: [0] });
    const hist = opHistogram(selectMetaGraph(tf2));
    expect(hist.graph['StatefulPartitionedCall']).toBe(8); // six signatures, save and restore
    expect(hist.library['ReadVariableOp']).toBeGreaterThan(0);
  });

  it('refuses what is not a SavedModel, naming the problem', async () => {
    await expectLensError(readSavedModel(join(SM, 'bad_half_plus_two/00000123')), 'SAVEDMODEL_UNSUPPORTED', /bad_half_plus_two\/00000123 is an old session-bundle export \(export\.meta \+ V1 checkpoint\)/);
    await expectLensError(readSavedModel(join(SM, 'saved_model_half_plus_two_2_versions')), 'SAVEDMODEL_NOT_FOUND', /holds version folders \(00000123, 00000124\)/);
    await expectLensError(readSavedModel(join(SM, 'no_such_model')), 'SAVEDMODEL_NOT_FOUND', /no_such_model does not exist/);
    await expectLensError(loadSavedModel(join(SM, 'saved_model_half_plus_three/00000123'), { tags: ['serve', 'gpu'] }), 'UNKNOWN_TAGS', /no MetaGraph tagged \{serve, gpu\}; it has \{serve\}/);
    await expectLensError(loadSavedModel(join(SM, 'saved_model_half_plus_three/00000123'), { signature: 'nope' }), 'UNKNOWN_SIGNATURE', /signature "nope" not found; .* has: serving_default, tensorflow\/serving\/regress/);
  });

  it('reports a truncated or garbled saved_model.pb as corrupt, naming the file', async () => {
    const dir = join(tmp, 'truncated');
    cpSync(join(SM, 'saved_model_half_plus_two_cpu/00000123'), dir, { recursive: true });
    const pb = readFileSync(join(dir, 'saved_model.pb'));
    writeFileSync(join(dir, 'saved_model.pb'), pb.subarray(0, 3000));
    await expectLensError(readSavedModel(dir), 'SAVEDMODEL_CORRUPT', /truncated\/saved_model\.pb is not a valid tensorflow\.SavedModel/);
    writeFileSync(join(dir, 'saved_model.pb'), Buffer.from('this is not a protobuf at all'));
    await expectLensError(readSavedModel(dir), 'SAVEDMODEL_CORRUPT', /saved_model\.pb/);
    writeFileSync(join(dir, 'saved_model.pb'), Buffer.alloc(0));
    await expectLensError(readSavedModel(dir), 'SAVEDMODEL_CORRUPT', /saved_model\.pb is empty/);
  });
});

describe('running SavedModels', () => {
  const run = async (m: LoadedSavedModel, signature: string, inputs: Record<string, HostTensor>) => m.predict(inputs, { signature });

  it('TF1 half_plus_two (1.14, Snappy index): y = 0.5x + 2, y2 = 0.5x + 3, y3 = 0.5x2 + 3', async () => {
    const m = await loadSavedModel(join(SM, 'saved_model_half_plus_two_cpu/00000123'));
    expect(m.defaultSignature).toBe('serving_default');
    expect(values((await m.predict({ x: f32([[1], [2], [5]]) })).y)).toEqual([[2.5], [3], [4.5]]);
    expect(values((await run(m, 'regress_x2_to_y3', { inputs: f32([[2]]) })).outputs)).toEqual([[4]]);
    m.dispose();
  });

  it('half_plus_three and both versions of half_plus_two_2_versions', async () => {
    const three = await loadSavedModel(join(SM, 'saved_model_half_plus_three/00000123'));
    expect(values((await three.predict({ x: f32([[2]]) })).y)).toEqual([[4]]);
    three.dispose();
    for (const v of ['00000123', '00000124']) {
      const m = await loadSavedModel(join(SM, 'saved_model_half_plus_two_2_versions', v));
      expect(values((await m.predict({ x: f32([[2]]) })).y)).toEqual([[3]]);
      expect(values((await run(m, 'classify_x2_to_y3', { inputs: f32([[1], [3]]) })).scores)).toEqual([[3.5], [4.5]]);
      m.dispose();
    }
  });

  it('TF2 half_plus_two: inlined functions, variables through the object graph', async () => {
    const m = await loadSavedModel(join(SM, 'saved_model_half_plus_two_tf2_cpu/00000123'));
    expect(values((await m.predict({ x: f32([2]) })).y)).toEqual([3]);
    expect(values((await run(m, 'regress_x2_to_y3', { inputs: f32([4]) })).outputs)).toEqual([5]);
    expect(values((await run(m, 'classify_x2_to_y3', { inputs: f32([1]) })).scores)).toEqual([3.5]);
    const g = await m.graph();
    expect(g.outputs[0]!.name).toBe('StatefulPartitionedCall_5:0');
    expect(g.converted.opCounts['ReadVariableOp']).toBeUndefined();
    m.dispose();
  });

  it('counter (ref dtypes): state is shared by the signatures and persists between calls', async () => {
    const m = await loadSavedModel(join(SM, 'saved_model_counter/00000123'));
    expect(m.defaultSignature).toBe('get_counter');
    const counter = async (sig: string, inputs: Record<string, HostTensor> = {}) => values((await run(m, sig, inputs)).output);
    expect(await counter('get_counter')).toBe(0);
    expect(await counter('incr_counter')).toBe(1);
    expect(await counter('incr_counter')).toBe(2);
    expect(await counter('get_counter')).toBe(2);
    expect(await counter('incr_counter_by', { delta: f32(3) })).toBe(5);
    expect(await counter('reset_counter')).toBe(0);
    expect(await counter('get_counter')).toBe(0);
    const before = tf.memory().numTensors;
    await counter('incr_counter');
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('explains ops TensorFlow.js cannot run, and runs them once a kernel is registered', async () => {
    const m = await loadSavedModel(join(SM, 'saved_model_half_plus_two_tf2_cpu/00000123'), { lazy: true });
    await expectLensError(m.graph('regress_x_to_y'), 'UNSUPPORTED_OP', /signature "regress_x_to_y" needs ops TensorFlow\.js cannot run: ParseExampleV2 \(node "StatefulPartitionedCall_3\/StatefulPartitionedCall\/ParseExample\/ParseExampleV2"\)/);
    // A stand-in kernel: every example parses to x = 4 (the real one lives in src/serving).
    registerGraphOp('ParseExampleV2', (node) => [tf.fill([node.inputs[0]!.shape[0]!, 1], 4)]);
    try {
      const out = await m.predict({ inputs: { dtype: 'string', shape: [2], values: [new Uint8Array(0), new Uint8Array(0)] } }, { signature: 'regress_x_to_y' });
      expect(values(out.outputs)).toEqual([[4], [4]]);
    } finally {
      unregisterGraphOp('ParseExampleV2');
      m.dispose();
    }
  });

  it('cuts the graph at an inner tensor and feeds it instead', async () => {
    const m = await loadSavedModel(join(SM, 'saved_model_half_plus_two_cpu/00000123'), { cutAt: 'Mul:0' });
    const g = await m.graph();
    expect(g.inputs.map((t) => t.alias)).toEqual(['Mul:0']);
    expect(values((await m.predict({ 'Mul:0': f32([[10], [20]]) })).y)).toEqual([[12], [22]]);
    m.dispose();
    await expectLensError(loadSavedModel(join(SM, 'saved_model_half_plus_two_cpu/00000123'), { cutAt: 'NoSuchNode:0' }), 'UNKNOWN_TENSOR', /cut tensor "NoSuchNode:0" is not in the graph/);
  });

  it('checks inputs: names, dtypes, output filters (shapes are the graph\'s)', async () => {
    const m = await loadSavedModel(join(SM, 'saved_model_half_plus_two_tf2_cpu/00000123'));
    await expectLensError(m.predict({}), 'INVALID_ARGUMENT', /takes inputs \{x\}; missing: \{x\}/);
    await expectLensError(m.predict({ x: f32([1]), z: f32([1]) }), 'INVALID_ARGUMENT', /unknown: \{z\}/);
    // Not a shape check: like TensorFlow's session, the graph takes [2] for its [1] input.
    expect(Array.from((await m.predict({ x: f32([1, 2]) })).y!.values as Float32Array)).toEqual([2.5, 3]);
    await expectLensError(m.predict({ x: hostFromNested([1], 'int32') }), 'INVALID_ARGUMENT', /input "x" expects DT_FLOAT \(float32\), got int32/);
    await expectLensError(m.predict({ x: f32([1]) }, { outputFilter: ['nope'] }), 'INVALID_ARGUMENT', /no output\(s\) nope/);
    const t = tf.tensor1d([6]);
    const out = await m.predictTensors({ x: t });
    expect(Array.from(await out.y!.data())).toEqual([5]);
    tf.dispose([t, out.y!]);
    m.dispose();
    await expectLensError(m.predict({ x: f32([1]) }), 'INVALID_ARGUMENT', /was disposed/);
  });
});
