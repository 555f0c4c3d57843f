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
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/graph/builder.js';
import { VariableSet } from '../../src/graph/variables.js';
import { buildMetaGraph, encodeSavedModel, writeVersionDir } from '../../src/export/write.js';
import { decodeMessage, encodeMessage, PROTO_DIR } from '../../src/proto/index.js';
import { createClient, startServer, type RunningServer, type ServingClient } from '../../src/serving/index.js';
import type { HostTensor } from '../../src/tensor/index.js';
import { runLens, SHARED } from '../helpers/cli.js';

const FIXTURES = resolve(SHARED, 'testdata/savedmodels');
const HALF_PLUS_TWO = join(FIXTURES, 'saved_model_half_plus_two_cpu');
const TWO_VERSIONS = join(FIXTURES, 'saved_model_half_plus_two_2_versions');
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

/** y = x for an int32 x: what the REST page's JSON mapping says of DT_INT32 shows on it. */
async function writeInt32Model(base: string): Promise<void> {
  const g = new GraphBuilder();
  const vars = new VariableSet();
  const x = g.op('Placeholder', [], { dtype: 'DT_INT32', shape: [-1] }, { name: 'x' });
  const y = g.op('Identity', [x], { T: 'DT_INT32' }, { name: 'y' });
  const saverDef = vars.addSaver(g);
  const signatures = {
    serving_default: { inputs: { x: { tensor: x, dtype: 'DT_INT32', shape: [-1] } }, outputs: { y: { tensor: y, dtype: 'DT_INT32', shape: [-1] } } },
  };
  await writeVersionDir(base, 1, { savedModel: encodeSavedModel(buildMetaGraph(g, vars, saverDef, signatures, 'test')), variables: vars, sidecar: {} }, false);
}

/** The REST page's three named inputs, tag (string), signal [5] and sensor [2,2] (int32), each echoed as an output. */
async function writeTagSignalSensorModel(base: string): Promise<void> {
  const g = new GraphBuilder();
  const vars = new VariableSet();
  const inputs: Record<string, { tensor: string; dtype: string; shape: number[] }> = {};
  const outputs: Record<string, { tensor: string; dtype: string; shape: number[] }> = {};
  for (const [name, dtype, shape] of [['tag', 'DT_STRING', [-1]], ['signal', 'DT_INT32', [-1, 5]], ['sensor', 'DT_INT32', [-1, 2, 2]]] as const) {
    const x = g.op('Placeholder', [], { dtype, shape: [...shape] }, { name });
    inputs[name] = { tensor: x, dtype, shape: [...shape] };
    outputs[name] = { tensor: g.op('Identity', [x], { T: dtype }, { name: `${name}/echo` }), dtype, shape: [...shape] };
  }
  const saverDef = vars.addSaver(g);
  await writeVersionDir(base, 1, { savedModel: encodeSavedModel(buildMetaGraph(g, vars, saverDef, { serving_default: { inputs, outputs } }, 'test')), variables: vars, sidecar: {} }, false);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-documented-'));
  await writeTagSignalSensorModel(join(dir, 'tss'));
  await writeMatMulModel(join(dir, 'matmul'));
  await writeInt32Model(join(dir, 'ints'));
  server = await startServer({
    port: 0,
    restApiPort: 0,
    models: [
      { name: 'half_plus_two', basePath: HALF_PLUS_TWO },
      { name: 'half_plus_three', basePath: join(FIXTURES, 'saved_model_half_plus_three') },
      { name: 'matmul', basePath: join(dir, 'matmul') },
      { name: 'two', basePath: TWO_VERSIONS, policy: { all: true }, labels: { stable: 123, canary: 124 } },
      { name: 'ints', basePath: join(dir, 'ints') },
      { name: 'tss', basePath: join(dir, 'tss') },
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

describe('the /versions/${VERSION} and /labels/${LABEL} URLs of every REST API', () => {
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${server.restPort}${path}`);
    return { status: res.status, json: JSON.parse(await res.text()) as Record<string, unknown> };
  };
  const available = (version: string) => ({ version, state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } });

  it('status: all versions without a suffix, one with /versions/N or /labels/L', async () => {
    expect((await get('/v1/models/two')).json).toEqual({ model_version_status: [available('123'), available('124')] });
    expect((await get('/v1/models/two/versions/124')).json).toEqual({ model_version_status: [available('124')] });
    expect((await get('/v1/models/two/labels/stable')).json).toEqual({ model_version_status: [available('123')] });
  });

  it('metadata: the latest version without a suffix, else the one named', async () => {
    const version = async (path: string) => ((await get(path)).json.model_spec as { version: string }).version;
    expect(await version('/v1/models/two/metadata')).toBe('124');
    expect(await version('/v1/models/two/versions/123/metadata')).toBe('123');
    expect(await version('/v1/models/two/labels/canary/metadata')).toBe('124');
  });

  it('predict, classify and regress on /versions/N and /labels/L', async () => {
    for (const at of ['/versions/123', '/labels/stable', '/versions/124', '/labels/canary']) {
      const p = await post(`/v1/models/two${at}:predict`, '{"instances": [1.0,2.0,5.0]}');
      expect(p.text.replace(/\s+/g, '')).toBe('{"predictions":[2.5,3.0,4.5]}');
      const c = await post(`/v1/models/two${at}:classify`, '{"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]}');
      expect(JSON.parse(c.text)).toEqual({ results: [[['', 2.5]], [['', 3.0]]] });
      const r = await post(`/v1/models/two${at}:regress`, '{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]}');
      expect(JSON.parse(r.text)).toEqual({ results: [2.5, 3.0] });
    }
  });

  it('an unknown version is NOT_FOUND (404), an unknown label INVALID_ARGUMENT (400), for every API', async () => {
    expect(await post('/v1/models/two/versions/7:predict', '{"instances": [1.0]}')).toEqual({ status: 404, text: '{ "error": "Servable not found for request: Specific(two, 7)" }' });
    expect(await post('/v1/models/two/labels/beta:regress', '{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}]}')).toEqual({
      status: 400,
      text: '{ "error": "Unrecognized servable version label: beta" }',
    });
    expect(await get('/v1/models/two/versions/7')).toEqual({ status: 404, json: { error: 'Could not find version 7 of model two' } });
    expect(await get('/v1/models/two/labels/beta/metadata')).toEqual({ status: 400, json: { error: 'Unrecognized servable version label: beta' } });
  });
});

describe('the REST page, verbatim where it says more than the format', () => {
  it('curl -i of the unknown model: 404 with "Content-Type: application/json" and { "error": ... }', async () => {
    const res = await fetch(`http://127.0.0.1:${server.restPort}/v1/models/half:predict`, { method: 'POST', body: '{"instances": [1.0,5.0]}' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe('{ "error": "Servable not found for request: Latest(half)" }');
    for (const path of ['/v1/models/half_plus_three', '/v1/models/half_plus_three/metadata']) {
      expect((await fetch(`http://127.0.0.1:${server.restPort}${path}`)).headers.get('content-type')).toBe('application/json');
    }
    const ok = await fetch(`http://127.0.0.1:${server.restPort}/v1/models/half_plus_three:predict`, { method: 'POST', body: '{"instances": [1.0,2.0,5.0]}' });
    expect(ok.headers.get('content-type')).toBe('application/json');
  });

  it('JSON conformance: NaN, Infinity and -Infinity are valid feature values in examples', async () => {
    const r = await post('/v1/models/half_plus_two:regress', '{"signature_name": "regress_x_to_y", "examples": [{"x": NaN}, {"x": Infinity}, {"x": -Infinity}]}');
    expect(r.status, r.text).toBe(200);
    // 0.5 * x + 2 keeps them; the reply writes the same bare tokens.
    expect(r.text.replace(/\s+/g, '')).toBe('{"results":[NaN,Infinity,-Infinity]}');
    const list = await post('/v1/models/half_plus_two:classify', '{"signature_name": "classify_x_to_y", "context": {"sensor_readings": [ 1.0, -3.14, NaN, Infinity ]}, "examples": [{"x": 1.0}]}');
    expect(JSON.parse(list.text)).toEqual({ results: [[['', 2.5]]] });
  });

  it('a whole number beyond uint64 is a float feature, as rapidjson reads it; int64 max is still an int64', async () => {
    const r = await post('/v1/models/half_plus_two:regress', '{"signature_name": "regress_x_to_y", "examples": [{"x": 100000000000000000000}]}');
    expect(r.status, r.text).toBe(200);
    expect(r.text.replace(/\s+/g, '')).toBe('{"results":[5e+19]}');
    const big = await post('/v1/models/half_plus_two:regress', '{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0, "id": 9223372036854775807}]}');
    expect(JSON.parse(big.text)).toEqual({ results: [2.5] });
    const uint = await post('/v1/models/half_plus_two:regress', '{"signature_name": "regress_x_to_y", "examples": [{"id": 9223372036854775808}]}');
    expect(JSON.parse(uint.text)).toEqual({ error: 'Feature: id has uint64 element. Only int64 is supported.' });
  });

  it('a body without "examples" gets TF Serving\'s message, which says "classify" for regress too', async () => {
    for (const api of ['classify', 'regress']) {
      const r = await post(`/v1/models/half_plus_two:${api}`, '{"signature_name": "regress_x_to_y"}');
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text)).toEqual({ error: `JSON Value: {"signature_name":"regress_x_to_y"} When method is classify, key 'examples' is expected and was not found` });
    }
  });

  it('the b64 classification example: binary "image" and text "caption" features go through tf.Example', async () => {
    const examples = '[{"image": { "b64": "aW1hZ2UgYnl0ZXM=" }, "caption": "seaside", "x": 1.0}, {"image": { "b64": "YXdlc29tZSBpbWFnZSBieXRlcw==" }, "caption": "mountains", "x": 3.0}]';
    const r = await post('/v1/models/half_plus_two:classify', `{"signature_name": "classify_x_to_y", "examples": ${examples}}`);
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ results: [[['', 2.5]], [['', 3.5]]] });
    // The page's own signature name is not one these models have.
    const verbatim = await post('/v1/models/half_plus_two:classify', `{"signature_name": "classify_objects", "examples": ${examples}}`);
    expect(verbatim).toEqual({ status: 400, text: '{ "error": "No signature was found with the name: classify_objects" }' });
  });
});

describe('the gRPC calls, from a stock @grpc/grpc-js client generated from protos/', () => {
  type Callback = (err: grpcJs.ServiceError | null, reply: Record<string, unknown>) => void;
  type Stub = grpcJs.Client & Record<string, (request: object, callback: Callback) => void>;
  let prediction: Stub;
  let model: Stub;

  beforeAll(() => {
    const definition = protoLoader.loadSync(['tensorflow_serving/apis/prediction_service.proto', 'tensorflow_serving/apis/model_service.proto'], {
      keepCase: true,
      longs: String,
      enums: String,
      oneofs: true,
      includeDirs: [PROTO_DIR],
    });
    const services = (grpcJs.loadPackageDefinition(definition) as unknown as { tensorflow: { serving: Record<string, new (target: string, creds: grpcJs.ChannelCredentials) => Stub> } }).tensorflow.serving;
    const target = `127.0.0.1:${server.grpcPort}`;
    prediction = new services.PredictionService!(target, grpcJs.credentials.createInsecure());
    model = new services.ModelService!(target, grpcJs.credentials.createInsecure());
  });
  afterAll(() => {
    prediction?.close();
    model?.close();
  });

  const call = (stub: () => Stub, method: string, request: object) =>
    new Promise<Record<string, unknown>>((resolvePromise, reject) => stub()[method]!(request, (err, reply) => (err ? reject(err) : resolvePromise(reply))));
  const example = (x: number) => ({ features: { feature: { x: { float_list: { value: [x] } } } } });
  const spec = (name: string, signature_name = '', more: object = {}) => ({ name, signature_name, ...more });

  it('Predict, latest and by version and label', async () => {
    const x = { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 3 }] }, float_val: [1, 2, 5] };
    const reply = await call(() => prediction, 'Predict', { model_spec: spec('half_plus_two'), inputs: { x } });
    expect(reply.outputs).toEqual({ y: expect.objectContaining({ dtype: 'DT_FLOAT', tensor_shape: expect.objectContaining({ dim: [expect.objectContaining({ size: '3' })] }), float_val: [2.5, 3, 4.5] }) });
    expect(reply.model_spec).toMatchObject({ name: 'half_plus_two', version: { value: '123' }, signature_name: 'serving_default' });
    const byVersion = await call(() => prediction, 'Predict', { model_spec: spec('two', '', { version: { value: 123 } }), inputs: { x } });
    expect(byVersion.model_spec).toMatchObject({ version: { value: '123' } });
    const byLabel = await call(() => prediction, 'Predict', { model_spec: spec('two', '', { version_label: 'canary' }), inputs: { x } });
    expect(byLabel.model_spec).toMatchObject({ version: { value: '124' } });
  });

  it('Classify, Regress (with and without context) and MultiInference', async () => {
    const classify = await call(() => prediction, 'Classify', { model_spec: spec('half_plus_two', 'classify_x_to_y'), input: { example_list: { examples: [example(1), example(2)] } } });
    expect(classify.result).toEqual({ classifications: [{ classes: [{ label: '', score: 2.5 }] }, { classes: [{ label: '', score: 3 }] }] });
    const regress = await call(() => prediction, 'Regress', { model_spec: spec('half_plus_three', 'tensorflow/serving/regress'), input: { example_list: { examples: [example(1), example(2)] } } });
    expect(regress.result).toEqual({ regressions: [{ value: 3.5 }, { value: 4 }] });
    const withContext = await call(() => prediction, 'Regress', {
      model_spec: spec('half_plus_two', 'regress_x_to_y'),
      input: { example_list_with_context: { context: example(3), examples: [{ features: { feature: {} } }] } },
    });
    expect(withContext.result).toEqual({ regressions: [{ value: 3.5 }] });
    const multi = await call(() => prediction, 'MultiInference', {
      tasks: [
        { model_spec: spec('half_plus_two', 'regress_x_to_y'), method_name: 'tensorflow/serving/regress' },
        { model_spec: spec('half_plus_two', 'classify_x_to_y'), method_name: 'tensorflow/serving/classify' },
      ],
      input: { example_list: { examples: [example(1)] } },
    });
    const results = multi.results as Record<string, unknown>[];
    expect(results.map((r) => r.result)).toEqual(['regression_result', 'classification_result']);
    expect(results[0]!.regression_result).toEqual({ regressions: [{ value: 2.5 }] });
    expect(results[1]!.classification_result).toEqual({ classifications: [{ classes: [{ label: '', score: 2.5 }] }] });
  });

  it('GetModelMetadata packs a SignatureDefMap; without metadata_field it is INVALID_ARGUMENT', async () => {
    const reply = await call(() => prediction, 'GetModelMetadata', { model_spec: spec('two', '', { version_label: 'stable' }), metadata_field: ['signature_def'] });
    expect(reply.model_spec).toMatchObject({ name: 'two', version: { value: '123' } });
    const any = (reply.metadata as Record<string, { type_url: string; value: Buffer }>).signature_def!;
    expect(any.type_url).toBe('type.googleapis.com/tensorflow.serving.SignatureDefMap');
    const map = decodeMessage<{ signature_def: Record<string, { method_name: string }> }>('tensorflow.serving.SignatureDefMap', any.value, 'reply');
    expect(map.signature_def.regress_x_to_y!.method_name).toBe('tensorflow/serving/regress');
    await expect(call(() => prediction, 'GetModelMetadata', { model_spec: spec('two') })).rejects.toMatchObject({
      code: grpcJs.status.INVALID_ARGUMENT,
      details: 'GetModelMetadataRequest must specify at least one metadata_field',
    });
  });

  it('GetModelStatus and HandleReloadConfigRequest (the same models again: nothing changes)', async () => {
    const available = (version: string) => ({ version, state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } });
    expect((await call(() => model, 'GetModelStatus', { model_spec: spec('two') })).model_version_status).toEqual([available('123'), available('124')]);
    expect((await call(() => model, 'GetModelStatus', { model_spec: spec('two', '', { version_label: 'canary' }) })).model_version_status).toEqual([available('124')]);
    const config = (name: string, base_path: string, more: object = {}) => ({ name, base_path, model_platform: 'tensorflow', ...more });
    const reload = await call(() => model, 'HandleReloadConfigRequest', {
      config: {
        model_config_list: {
          config: [
            config('half_plus_two', HALF_PLUS_TWO),
            config('half_plus_three', join(FIXTURES, 'saved_model_half_plus_three')),
            config('matmul', join(dir, 'matmul')),
            config('ints', join(dir, 'ints')),
            config('tss', join(dir, 'tss')),
            config('two', TWO_VERSIONS, { model_version_policy: { all: {} }, version_labels: { stable: 123, canary: 124 } }),
          ],
        },
      },
    });
    expect(reload.status).toEqual({ error_code: 'OK', error_message: '' });
    expect((await call(() => model, 'GetModelStatus', { model_spec: spec('two', '', { version_label: 'stable' }) })).model_version_status).toEqual([available('123')]);
  });
});

describe('the JSON mapping: numbers are typed as rapidjson types them', () => {
  const error = (at: string, quoted: string) => `${at}JSON Value: ${quoted} Type: Number is not of expected type: int32`;
  const rowError = (row: number, quoted: string) => error(`Failed to process element: ${row} of 'instances' list. Error: INVALID_ARGUMENT: `, quoted);

  it('DT_INT32 takes whole numbers written as integers: 1, -10, 0', async () => {
    const r = await post('/v1/models/ints:predict', '{"instances": [1, -10, 0]}');
    expect(r.text.replace(/\s+/g, '')).toBe('{"predictions":[1,-10,0]}');
  });

  it('a number written with a fraction or an exponent is a double, which DT_INT32 refuses, quoted as a double', async () => {
    const one = await post('/v1/models/ints:predict', '{"instances": [1.0]}');
    expect(one.status).toBe(400);
    expect(JSON.parse(one.text)).toEqual({ error: rowError(0, '1.0') });
    expect(JSON.parse((await post('/v1/models/ints:predict', '{"instances": [2, 1e2]}')).text)).toEqual({ error: rowError(1, '100.0') });
    expect(JSON.parse((await post('/v1/models/ints:predict', '{"inputs": {"x": [3, 4.0]}}')).text)).toEqual({ error: error('', '4.0') });
    expect(JSON.parse((await post('/v1/models/ints:predict', '{"inputs": 1e0}')).text)).toEqual({ error: error('', '1.0') });
    expect(JSON.parse((await post('/v1/models/ints:predict', '{"instances": [{"x": 5.0}]}')).text)).toEqual({
      error: error("Failed to process element: 0 key: x of 'instances' list. Error: INVALID_ARGUMENT: ", '5.0'),
    });
  });

  it('DT_FLOAT: a whole number beyond float\'s exact integers passes when written as a double (exponent notation too)', async () => {
    const r = await post('/v1/models/half_plus_two:predict', '{"instances": [16777217.0, 1e20, 100000000000000000000]}');
    expect(r.status, r.text).toBe(200);
    // float32(16777217) = 16777216, and 0.5 * x + 2 = 8388610 prints in absl's six-digit %g form, which round-trips.
    expect(r.text.replace(/\s+/g, '')).toBe('{"predictions":[8.38861e+06,5e+19,5e+19]}');
    // Written as an integer it is an int64 to rapidjson, and TF Serving refuses the lossy conversion.
    expect(JSON.parse((await post('/v1/models/half_plus_two:predict', '{"instances": [16777217]}')).text)).toEqual({
      error: "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Cannot convert JSON value: 16777217 to float without loss of precision.",
    });
  });
});

describe('the REST client writes what TF Serving accepts', () => {
  it('a float32 tensor of whole values beyond 2^24 goes as double literals, not refused as lossy', async () => {
    const r = await rest.predict({ model: 'half_plus_two', inputs: { x: f32([16777218, 2 ** 30, 1], [3]) } });
    expect(Array.from(r.outputs.y!.values as Float32Array)).toEqual([8388611, Math.fround(2 ** 29 + 2), 2.5]);
  });
});

describe("the REST page's row and columnar examples with three named inputs", () => {
  const rows = [
    { tag: 'foo', signal: [1, 2, 3, 4, 5], sensor: [[1, 2], [3, 4]] },
    { tag: 'bar', signal: [3, 4, 1, 2, 5], sensor: [[4, 5], [6, 8]] },
  ];

  it('row format: a list of objects in, a list of objects out', async () => {
    // The page prints this body with a stray "]" after the second signal; that text is not JSON, and
    // the server says where, as rapidjson does.
    const printed = '{\n "instances": [\n   {\n     "tag": "foo",\n     "signal": [1, 2, 3, 4, 5],\n     "sensor": [[1, 2], [3, 4]]\n   },\n   {\n     "tag": "bar",\n     "signal": [3, 4, 1, 2, 5]],\n     "sensor": [[4, 5], [6, 8]]\n   }\n ]\n}';
    const bad = await post('/v1/models/tss:predict', printed);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text)).toEqual({ error: `JSON Parse error: Missing a comma or '}' after an object member. at offset: ${printed.indexOf('5]]') + 2}` });
    const r = await post('/v1/models/tss:predict', printed.replace('5]],', '5],'));
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ predictions: rows });
  });

  it('columnar format: an object of named tensors in, an object out', async () => {
    const body = '{\n "inputs": {\n   "tag": ["foo", "bar"],\n   "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],\n   "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]\n }\n}';
    const r = await post('/v1/models/tss:predict', body);
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ outputs: { tag: ['foo', 'bar'], signal: rows.map((x) => x.signal), sensor: rows.map((x) => x.sensor) } });
  });
});
