/**
 * TF Serving's own documented requests, answered as TF Serving documents them: the Docker
 * quickstart (`{"instances": [1.0, 2.0, 5.0]}` to half_plus_two), the REST API page's example
 * (half_plus_three: status, predict, regress on "tensorflow/serving/regress"), columnar and row
 * formats, Classify and Regress with and without `context` (REST `context`, gRPC
 * ExampleListWithContext), metadata and status; over loopback gRPC and REST.
 *
 * Feed semantics: tensors go to the graph as sent (the signature's [-1,1] is not a gate), and what
 * the graph cannot compute fails as INVALID_ARGUMENT with TensorFlow's kernel message and node.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpcJs from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/graph/builder.js';
import { VariableSet } from '../../src/graph/variables.js';
import { buildMetaGraph, encodeSavedModel, writeVersionDir } from '../../src/export/write.js';
import { decodeMessage, encodeMessage } from '../../src/proto/index.js';
import { createClient, startServer, type RunningServer, type ServingClient } from '../../src/serving/index.js';
import type { HostTensor } from '../../src/tensor/index.js';
import { runLens, SHARED } from '../helpers/cli.js';

const FIXTURES = resolve(SHARED, 'testdata/savedmodels');
const HALF_PLUS_TWO = join(FIXTURES, 'saved_model_half_plus_two_cpu');
const f32 = (values: number[], shape: number[]): HostTensor => ({ dtype: 'float32', shape, values: new Float32Array(values) });

let server: RunningServer;
let grpc: ServingClient;
let rest: ServingClient;
let raw: grpcJs.Client;
let dir: string;

/** y = x · w + b with x [-1,2], w [2,1]: a model whose graph rejects a request of the wrong shape. */
async function writeMatMulModel(base: string): Promise<void> {
  const g = new GraphBuilder();
  const vars = new VariableSet();
  const x = g.op('Placeholder', [], { dtype: 'DT_FLOAT', shape: [-1, 2] }, { name: 'x' });
  const w = g.op('Reshape', [g.float('w', [1, 2]), g.int32('w/shape', [2, 1])], { T: 'DT_FLOAT', Tshape: 'DT_INT32' }, { name: 'w/reshaped' });
  const product = g.op('MatMul', [x, w], { T: 'DT_FLOAT' }, { name: 'MatMul' });
  const y = g.op('AddV2', [product, g.float('b', [0.5])], { T: 'DT_FLOAT' }, { name: 'y' });
  const saverDef = vars.addSaver(g);
  const signatures = {
    serving_default: { inputs: { x: { tensor: x, dtype: 'DT_FLOAT', shape: [-1, 2] } }, outputs: { y: { tensor: y, dtype: 'DT_FLOAT', shape: [-1, 1] } } },
  };
  const savedModel = encodeSavedModel(buildMetaGraph(g, vars, saverDef, signatures, 'test'));
  await writeVersionDir(base, 1, { savedModel, variables: vars, sidecar: {} }, false);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-documented-'));
  await writeMatMulModel(join(dir, 'matmul'));
  server = await startServer({
    port: 0,
    restApiPort: 0,
    models: [
      { name: 'half_plus_two', basePath: HALF_PLUS_TWO },
      { name: 'half_plus_three', basePath: join(FIXTURES, 'saved_model_half_plus_three') },
      { name: 'matmul', basePath: join(dir, 'matmul') },
    ],
    fileSystemPollWaitSeconds: 0,
  });
  grpc = createClient({ target: `127.0.0.1:${server.grpcPort}`, retry: { retries: 0 } });
  rest = createClient({ target: `127.0.0.1:${server.restPort}`, transport: 'rest', retry: { retries: 0 } });
  raw = new grpcJs.Client(`127.0.0.1:${server.grpcPort}`, grpcJs.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  grpc?.close();
  rest?.close();
  raw?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** POST a body as curl -d would; returns status and the body text. */
async function post(path: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${server.restPort}${path}`, { method: 'POST', body });
  return { status: res.status, text: await res.text() };
}

/** A PredictionService call with a hand-built request message, as a stock gRPC client sends it. */
function grpcCall(method: string, requestType: string, request: object, replyType: string): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    raw.makeUnaryRequest(
      `/tensorflow.serving.PredictionService/${method}`,
      (m: Uint8Array) => Buffer.from(m),
      (b: Buffer) => b,
      encodeMessage(requestType, request as Record<string, unknown>),
      (err, reply) => (err ? reject(err) : resolvePromise(decodeMessage(replyType, reply!, 'reply') as unknown as Record<string, unknown>)),
    );
  });
}

describe('the Docker quickstart and the predict formats', () => {
  it('REST row: {"instances": [1.0, 2.0, 5.0]} -> {"predictions": [2.5, 3.0, 4.5]}', async () => {
    const r = await post('/v1/models/half_plus_two:predict', '{"instances": [1.0, 2.0, 5.0]}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ predictions: [2.5, 3.0, 4.5] });
    // Whole-number floats print with ".0", as the real server prints them.
    expect(r.text.replace(/\s+/g, '')).toBe('{"predictions":[2.5,3.0,4.5]}');
  });

  it('REST columnar: {"inputs": {"x": [1.0, 2.0, 5.0]}} and the bare tensor -> {"outputs": [2.5, 3.0, 4.5]}', async () => {
    for (const body of ['{"inputs": {"x": [1.0, 2.0, 5.0]}}', '{"inputs": [1.0, 2.0, 5.0]}']) {
      const r = await post('/v1/models/half_plus_two:predict', body);
      expect(r.text.replace(/\s+/g, '')).toBe('{"outputs":[2.5,3.0,4.5]}');
    }
    const rows = await post('/v1/models/half_plus_two:predict', '{"instances": [[1.0], [2.0], [5.0]]}');
    expect(JSON.parse(rows.text)).toEqual({ predictions: [[2.5], [3.0], [4.5]] });
  });

  it('the REST API page example on half_plus_three: predict, regress, and a 404 for an unknown model', async () => {
    expect(JSON.parse((await post('/v1/models/half_plus_three:predict', '{"instances": [1.0,2.0,5.0]}')).text)).toEqual({ predictions: [3.5, 4.0, 5.5] });
    const reg = await post('/v1/models/half_plus_three:regress', '{"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}');
    expect(reg.status).toBe(200);
    expect(JSON.parse(reg.text)).toEqual({ results: [3.5, 4.0] });
    const missing = await post('/v1/models/half:predict', '{"instances": [1.0,5.0]}');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text)).toEqual({ error: 'Servable not found for request: Latest(half)' });
  });

  it('gRPC: a [3] tensor fed to the [-1,1] signature gives [3] back', async () => {
    for (const client of [grpc, rest]) {
      const r = await client.predict({ model: 'half_plus_two', inputs: { x: f32([1, 2, 5], [3]) } });
      expect(r.outputs.y!.shape).toEqual([3]);
      expect(Array.from(r.outputs.y!.values as Float32Array)).toEqual([2.5, 3, 4.5]);
    }
    const reply = await grpcCall(
      'Predict',
      'tensorflow.serving.PredictRequest',
      { model_spec: { name: 'half_plus_two' }, inputs: { x: { dtype: 1, tensor_shape: { dim: [{ size: 3 }] }, float_val: [1, 2, 5] } } },
      'tensorflow.serving.PredictResponse',
    );
    const y = (reply.outputs as Record<string, { float_val: number[]; tensor_shape: { dim: { size: unknown }[] } }>).y!;
    expect(y.float_val).toEqual([2.5, 3, 4.5]);
    expect(y.tensor_shape.dim.map((d) => Number(d.size))).toEqual([3]);
  });

  it("lens run DIR --input 'x=[1.0,2.0,5.0]' --json", async () => {
    const r = await runLens(['run', join(HALF_PLUS_TWO, '00000123'), '--input', 'x=[1.0,2.0,5.0]', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.replace(/\s+/g, '')).toBe('{"outputs":[2.5,3.0,4.5]}');
  });

  it('the signature shapes stay what metadata shows', async () => {
    const meta = await grpc.getModelMetadata({ model: 'half_plus_two' });
    expect(meta.signatures.serving_default!.inputs.x!.shape).toEqual([-1, 1]);
    // The real server's reply for this model, recorded when it was served under the name "default".
    const expected = JSON.parse(await readFile(join(FIXTURES, 'expected/half_plus_two_model_metadata.json'), 'utf8')) as { model_spec: object };
    const res = await fetch(`http://127.0.0.1:${server.restPort}/v1/models/half_plus_two/metadata`);
    expect(JSON.parse(await res.text())).toEqual({ ...expected, model_spec: { ...expected.model_spec, name: 'half_plus_two' } });
  });

  it('status answers as documented', async () => {
    const res = await fetch(`http://127.0.0.1:${server.restPort}/v1/models/half_plus_two`);
    expect(JSON.parse(await res.text())).toEqual({
      model_version_status: [{ version: '123', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }],
    });
  });
});

describe('shape errors come from executing the graph', () => {
  const message = 'Matrix size-incompatible: In[0]: [1,3], In[1]: [2,1]\n\t [[{{node MatMul}}]]';

  it('a [1,3] request to a [-1,2] MatMul fails with the kernel message and node, over gRPC and REST', async () => {
    for (const client of [grpc, rest]) {
      const e = await client.predict({ model: 'matmul', inputs: { x: f32([1, 2, 3], [1, 3]) } }).catch((err: unknown) => err);
      expect(e).toMatchObject({ status: 'INVALID_ARGUMENT', message });
    }
    const r = await post('/v1/models/matmul:predict', '{"instances": [[1.0, 2.0, 3.0]]}');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toEqual({ error: message });
  });

  it('a broadcast that cannot be made names the Add node; the right shape still serves', async () => {
    // [3,1] x [2,1] is fine for MatMul only if the inner sizes agree: [2,2] · [2,1] = [2,1], then + b.
    const ok = await grpc.predict({ model: 'matmul', inputs: { x: f32([1, 2, 3, 4], [2, 2]) } });
    expect(Array.from(ok.outputs.y!.values as Float32Array)).toEqual([1 * 1 + 2 * 2 + 0.5, 3 * 1 + 4 * 2 + 0.5]);
    // A rank-1 x cannot be multiplied: TensorFlow's MatMul says so about its inputs.
    const e = await grpc.predict({ model: 'matmul', inputs: { x: f32([1, 2], [2]) } }).catch((err: unknown) => err);
    expect(e).toMatchObject({ status: 'INVALID_ARGUMENT' });
    expect((e as Error).message).toMatch(/\n\t \[\[\{\{node MatMul\}\}\]\]$/);
  });

  it('lens run reports the same message', async () => {
    const r = await runLens(['run', join(dir, 'matmul', '1'), '--input', 'x=[[1.0,2.0,3.0]]']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Matrix size-incompatible: In[0]: [1,3], In[1]: [2,1]');
    expect(r.stderr).toContain('[[{{node MatMul}}]]');
  });

  it('dtypes and input names are still checked before the graph runs', async () => {
    const ints: HostTensor = { dtype: 'int32', shape: [3], values: new Int32Array([1, 2, 5]) };
    await expect(grpc.predict({ model: 'half_plus_two', inputs: { x: ints } })).rejects.toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'Expects arg[0] to be float but int32 is provided',
    });
    await expect(grpc.predict({ model: 'half_plus_two', inputs: { z: f32([1], [1]) } })).rejects.toMatchObject({ status: 'INVALID_ARGUMENT' });
  });
});

describe('Classify and Regress with and without context', () => {
  it('REST regress: {"context": {"x": 3.0}, "examples": [{}]} -> 0.5 * 3 + 2', async () => {
    const r = await post('/v1/models/half_plus_two:regress', '{"signature_name": "regress_x_to_y", "context": {"x": 3.0}, "examples": [{}]}');
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ results: [3.5] });
    const plain = await post('/v1/models/half_plus_two:regress', '{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]}');
    expect(JSON.parse(plain.text)).toEqual({ results: [2.5, 3.0] });
  });

  it('REST classify with context: every example gets the context features', async () => {
    const r = await post('/v1/models/half_plus_two:classify', '{"signature_name": "classify_x_to_y", "context": {"x": 4.0}, "examples": [{}, {"unused": [1, 2]}]}');
    expect(JSON.parse(r.text)).toEqual({ results: [[['', 4.0]], [['', 4.0]]] });
  });

  it('gRPC ExampleListWithContext, through the client and as a raw message', async () => {
    expect((await grpc.regress({ model: 'half_plus_two', signature: 'regress_x_to_y', examples: [{}, {}], context: { x: 6 } })).values).toEqual([5, 5]);
    expect((await grpc.classify({ model: 'half_plus_two', signature: 'classify_x_to_y', examples: [{}], context: { x: 2 } })).classifications).toEqual([[{ label: '', score: 3 }]]);
    expect((await rest.regress({ model: 'half_plus_two', signature: 'regress_x_to_y2', examples: [{}], context: { x: 2 } })).values).toEqual([4]);
    const reply = await grpcCall(
      'Regress',
      'tensorflow.serving.RegressionRequest',
      {
        model_spec: { name: 'half_plus_two', signature_name: 'regress_x_to_y' },
        input: { example_list_with_context: { context: { features: { feature: { x: { float_list: { value: [10] } } } } }, examples: [{ features: { feature: {} } }] } },
      },
      'tensorflow.serving.RegressionResponse',
    );
    expect(reply.result).toEqual({ regressions: [{ value: 7 }] });
  });

  it('feature lists of every type go through tf.Example: floats, int64s, strings and bytes', async () => {
    // The half_plus_two graphs read x only; the other features must parse and be ignored.
    const body = '{"signature_name": "regress_x_to_y", "context": {"tags": ["a", "b"], "ids": [1, 2, 3], "blob": {"b64": "AAEC"}}, "examples": [{"x": [1.5], "w": [0.25, 0.5]}]}';
    const r = await post('/v1/models/half_plus_two:regress', body);
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ results: [2.75] });
  });
});
