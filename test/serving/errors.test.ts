/**
 * Every error case of the protocol doc with its exact status code and message, over gRPC and REST,
 * against a real loopback server; the server keeps serving afterwards.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpcJs from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessage } from '../../src/proto/index.js';
import {
  createClient,
  createServable,
  savedModelLoader,
  startServer,
  ServingError,
  type RunningServer,
  type ServableLoader,
  type ServingClient,
} from '../../src/serving/index.js';
import { encodeRaw } from '../../src/serving/grpc.js';
import type { HostTensor } from '../../src/tensor/index.js';
import { SHARED } from '../helpers/cli.js';

const HALF = resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu');
const x3 = (): HostTensor => ({ dtype: 'float32', shape: [3, 1], values: new Float32Array([1, 2, 5]) });

let server: RunningServer;
let grpc: ServingClient;
let rest: ServingClient;
let dir: string;
let raw: grpcJs.Client;

/** Opened after the tests: until then the "slow" model answers nothing, so every deadline expires first, however loaded the machine. */
let releaseSlow!: () => void;
const slowGate = new Promise<void>((r) => (releaseSlow = r));

/** A model that answers only once `slowGate` opens, for deadlines. */
const slowLoader: ServableLoader = async () =>
  createServable({
    signatures: {
      serving_default: {
        methodName: 'tensorflow/serving/predict',
        inputs: { x: { name: 'x:0', dtype: 'DT_FLOAT', shape: [-1] } },
        outputs: { y: { name: 'y:0', dtype: 'DT_FLOAT', shape: [-1] } },
      },
    },
    run: async (_s, inputs) => {
      await slowGate;
      return { y: inputs.x! };
    },
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-errors-'));
  await mkdir(join(dir, 'slow', '1'), { recursive: true });
  const saved = savedModelLoader();
  server = await startServer({
    port: 0,
    restApiPort: 0,
    models: [
      { name: 'half', basePath: HALF, labels: { stable: 123 } },
      { name: 'slow', basePath: join(dir, 'slow') },
    ],
    loader: (d, id) => (id.name === 'slow' ? slowLoader(d, id) : saved(d, id)),
    fileSystemPollWaitSeconds: 0,
    restApiTimeoutMs: 150,
    maxRestBodyBytes: 64 * 1024,
  });
  grpc = createClient({ target: `127.0.0.1:${server.grpcPort}`, retry: { retries: 0 } });
  rest = createClient({ target: `127.0.0.1:${server.restPort}`, transport: 'rest', retry: { retries: 0 } });
  raw = new grpcJs.Client(`127.0.0.1:${server.grpcPort}`, grpcJs.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  releaseSlow();
  grpc?.close();
  rest?.close();
  raw?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A gRPC call with a hand-built request message; resolves to the decoded reply or rejects with the ServiceError. */
function rawCall(service: string, method: string, requestType: string, request: object, replyType: string): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    raw.makeUnaryRequest<Buffer, Buffer>(
      `/${service}/${method}`,
      (b) => b,
      (b) => b,
      encodeRaw(requestType, request),
      new grpcJs.Metadata(),
      (err, reply) => (err ? reject(err) : resolvePromise(decodeMessage(replyType, reply!, replyType))),
    );
  });
}

async function statusOf(p: Promise<unknown>): Promise<{ status: string; message: string; code: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ServingError) return { status: e.status, message: e.message, code: e.code };
    const s = e as grpcJs.ServiceError;
    if (typeof s.code === 'number') return { status: grpcJs.status[s.code]!, message: s.details, code: 'grpc' };
    throw e;
  }
  throw new Error('expected the call to fail');
}

async function post(path: string, body: string): Promise<{ status: number; error: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${server.restPort}${path}`, { method: 'POST', body });
  const text = await res.text();
  return { status: res.status, error: (JSON.parse(text) as { error: string }).error, type: res.headers.get('content-type') };
}

describe('model, version, label and signature errors', () => {
  it('unknown model and version: NOT_FOUND over gRPC, 404 over REST', async () => {
    for (const c of [grpc, rest]) {
      expect(await statusOf(c.predict({ model: 'nope', inputs: { x: x3() } }))).toMatchObject({ status: 'NOT_FOUND', message: 'Servable not found for request: Latest(nope)' });
      expect(await statusOf(c.predict({ model: 'half', version: 7, inputs: { x: x3() } }))).toMatchObject({
        status: 'NOT_FOUND',
        message: 'Servable not found for request: Specific(half, 7)',
      });
    }
    expect(await post('/v1/models/half/versions/7:predict', '{"inputs": [[1]]}')).toEqual({
      status: 404,
      error: 'Servable not found for request: Specific(half, 7)',
      type: expect.stringMatching(/application\/json/),
    });
  });

  it('unknown label: INVALID_ARGUMENT', async () => {
    for (const c of [grpc, rest]) {
      expect(await statusOf(c.predict({ model: 'half', label: 'nope', inputs: { x: x3() } }))).toMatchObject({
        status: 'INVALID_ARGUMENT',
        message: 'Unrecognized servable version label: nope',
      });
    }
    expect((await post('/v1/models/half/labels/nope:predict', '{"inputs": [[1]]}')).status).toBe(400);
  });

  it('unknown signature: FAILED_PRECONDITION over gRPC, INVALID_ARGUMENT over REST', async () => {
    expect(await statusOf(grpc.predict({ model: 'half', signature: 'nope', inputs: { x: x3() } }))).toMatchObject({
      status: 'FAILED_PRECONDITION',
      message: 'Serving signature key "nope" not found.',
    });
    expect(await post('/v1/models/half:predict', '{"signature_name": "nope", "inputs": [[1]]}')).toMatchObject({
      status: 400,
      error: 'Serving signature name: "nope" not found in signature def',
    });
  });

  it('missing model spec, empty name, metadata without field', async () => {
    const P = 'tensorflow.serving.PredictionService';
    const predict = (req: object) => rawCall(P, 'Predict', 'tensorflow.serving.PredictRequest', req, 'tensorflow.serving.PredictResponse');
    expect(await statusOf(predict({}))).toMatchObject({ status: 'INVALID_ARGUMENT', message: 'Missing ModelSpec' });
    expect(await statusOf(predict({ model_spec: { name: '' } }))).toMatchObject({ status: 'INVALID_ARGUMENT', message: 'ModelSpec has no name specified.' });
    const meta = (req: object) => rawCall(P, 'GetModelMetadata', 'tensorflow.serving.GetModelMetadataRequest', req, 'tensorflow.serving.GetModelMetadataResponse');
    expect(await statusOf(meta({ model_spec: { name: 'half' } }))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'GetModelMetadataRequest must specify at least one metadata_field',
    });
    expect(await statusOf(meta({ model_spec: { name: 'half' }, metadata_field: ['nope'] }))).toMatchObject({ message: 'Metadata field nope is not supported' });
  });

  it('model status of unknown models and versions', async () => {
    expect(await statusOf(grpc.getModelStatus({ model: 'nope' }))).toMatchObject({ status: 'NOT_FOUND', message: 'Could not find any versions of model nope' });
    expect(await statusOf(rest.getModelStatus({ model: 'half', version: 9 }))).toMatchObject({ status: 'NOT_FOUND', message: 'Could not find version 9 of model half' });
  });
});

describe('input errors', () => {
  it('wrong set of inputs', async () => {
    expect(await statusOf(grpc.predict({ model: 'half', inputs: { x: x3(), z: x3() } }))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}.',
    });
    expect(await statusOf(grpc.predict({ model: 'half', inputs: { z: x3() } }))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'Request inputs do not match required inputs for model `half`. Send extra: {z}. Missing but required: {x}.',
    });
  });

  it('wrong dtype; a shape other than the signature\'s runs', async () => {
    const ints: HostTensor = { dtype: 'int32', shape: [1, 1], values: new Int32Array([1]) };
    expect(await statusOf(grpc.predict({ model: 'half', inputs: { x: ints } }))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'Expects arg[0] to be float but int32 is provided',
    });
    // Shapes are the graph's business (test/serving/documented-examples.test.ts): [3] is served.
    const flat: HostTensor = { dtype: 'float32', shape: [3], values: new Float32Array([1, 2, 5]) };
    expect(Array.from((await grpc.predict({ model: 'half', inputs: { x: flat } })).outputs.y!.values as Float32Array)).toEqual([2.5, 3, 4.5]);
  });

  it('a TensorProto that does not parse', async () => {
    const bad = { dtype: 1, tensor_shape: { dim: [{ size: 4 }, { size: 1 }] }, tensor_content: Buffer.alloc(6) };
    const e = await statusOf(
      rawCall('tensorflow.serving.PredictionService', 'Predict', 'tensorflow.serving.PredictRequest', { model_spec: { name: 'half' }, inputs: { x: bad } }, 'tensorflow.serving.PredictResponse'),
    );
    expect(e.status).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/^tensor parsing error: x \(/);
  });

  it('bad output filter', async () => {
    expect(await statusOf(grpc.predict({ model: 'half', inputs: { x: x3() }, outputFilter: ['nope'] }))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'output tensor alias not found in signature: nope Outputs expected to be in the set {y}.',
    });
  });

  it('gRPC messages over 1024 characters are cut with ...TRUNCATED', async () => {
    const name = 'm'.repeat(2000);
    const e = await statusOf(grpc.predict({ model: name, inputs: { x: x3() } }));
    expect(e.message.length).toBe(1024 + '...TRUNCATED'.length);
    expect(e.message.endsWith('...TRUNCATED')).toBe(true);
  });
});

describe('REST request errors', () => {
  it('malformed JSON, non-object bodies, both or neither keys', async () => {
    expect(await post('/v1/models/half:predict', '{"instances": [1.0')).toMatchObject({ status: 400, error: "JSON Parse error: Missing a comma or ']' after an array element. at offset: 18" });
    expect(await post('/v1/models/half:predict', '')).toMatchObject({ status: 400, error: 'JSON Parse error: The document is empty' });
    expect(await post('/v1/models/half:predict', '[1]')).toMatchObject({ status: 400, error: 'JSON Value: [1] Is not object' });
    expect(await post('/v1/models/half:predict', '{"inputs": [[1]], "instances": [[1]]}')).toMatchObject({
      status: 400,
      error: `JSON Value: {"inputs":[[1]],"instances":[[1]]} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist `,
    });
    expect(await post('/v1/models/half:predict', '{"signature_name": "serving_default"}')).toMatchObject({ status: 400, error: "Missing 'inputs' or 'instances' key" });
    expect(await post('/v1/models/half:predict', '{"signature_name": 5, "inputs": [[1]]}')).toMatchObject({
      status: 400,
      error: `JSON Value: {"signature_name":5,"inputs":[[1]]} not formatted correctly. 'signature_name' key must be a string value.`,
    });
  });

  it('values of the wrong type or shape', async () => {
    expect(await post('/v1/models/half:predict', '{"instances": ["a"]}')).toMatchObject({
      status: 400,
      error: `Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "a" Type: String is not of expected type: float`,
    });
    expect(await post('/v1/models/half:predict', '{"instances": [[1], [1, 2]]}')).toMatchObject({
      status: 400,
      error: "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2",
    });
    expect(await post('/v1/models/half:predict', '{"inputs": [[1], [1, 2]]}')).toMatchObject({
      status: 400,
      error: 'Encountered list at unexpected size: 2 at level: 1 expected size: 1',
    });
    expect(await post('/v1/models/half:predict', '{"instances": []}')).toMatchObject({ status: 400, error: `JSON Value: {"instances":[]} No values in 'instances' array` });
  });

  it('routes: malformed paths, missing model name, unknown paths', async () => {
    expect(await post('/v1/models/half:explode', '{}')).toMatchObject({ status: 400, error: 'Malformed request: POST /v1/models/half:explode' });
    const get = await fetch(`http://127.0.0.1:${server.restPort}/v1/models`);
    expect(get.status).toBe(400);
    expect(await get.json()).toEqual({ error: 'Missing model name in request.' });
    const other = await fetch(`http://127.0.0.1:${server.restPort}/v1/models/half/versions/abc`);
    expect(other.status).toBe(400);
    expect(((await other.json()) as { error: string }).error).toBe('Malformed request: GET /v1/models/half/versions/abc');
    expect((await fetch(`http://127.0.0.1:${server.restPort}/v2/health/live`)).status).toBe(404);
    const upper = await fetch(`http://127.0.0.1:${server.restPort}/V1/MODELS/half:PREDICT`, { method: 'POST', body: '{"inputs": [[2]]}' });
    expect(JSON.parse(await upper.text())).toEqual({ outputs: [[3.0]] });
  });

  it('an oversize body answers 413 without reading it', async () => {
    const big = `{"inputs": [${'1.0,'.repeat(40_000)}1.0]}`;
    const r = await post('/v1/models/half:predict', big);
    expect(r.status).toBe(413);
    expect(r.error).toMatch(/^Request body larger than max \(\d+ vs\. 65536; --rest_api_max_body_bytes\)$/);
  });
});

describe('deadlines, message limits, retries', () => {
  it('a gRPC deadline shorter than the model answers DEADLINE_EXCEEDED', async () => {
    const e = await statusOf(grpc.predict({ model: 'slow', inputs: { x: { dtype: 'float32', shape: [1], values: new Float32Array(1) } }, timeoutMs: 50 }));
    expect(e.status).toBe('DEADLINE_EXCEEDED');
  });

  it('the REST timeout (--rest_api_timeout_in_ms) answers 504', async () => {
    const r = await post('/v1/models/slow:predict', '{"inputs": [1.0]}');
    expect(r).toMatchObject({ status: 504, error: 'Deadline Exceeded' });
  });

  it('a reply larger than the client limit is MESSAGE_TOO_LARGE', async () => {
    for (const transport of ['grpc', 'rest'] as const) {
      const port = transport === 'grpc' ? server.grpcPort : server.restPort!;
      const small = createClient({ target: `127.0.0.1:${port}`, transport, maxMessageBytes: 120, retry: { retries: 0 } });
      const big: HostTensor = { dtype: 'float32', shape: [40, 1], values: new Float32Array(40) };
      const e = await statusOf(small.predict({ model: 'half', inputs: { x: big } }).then(() => small.getModelMetadata({ model: 'half' })));
      expect(e).toMatchObject({ status: 'RESOURCE_EXHAUSTED', code: 'MESSAGE_TOO_LARGE' });
      expect(e.message).toMatch(/larger than max/);
      small.close();
    }
  });

  it('a server that is not there is UNAVAILABLE after the retries', async () => {
    const gone = createClient({ target: '127.0.0.1:1', transport: 'rest', retry: { retries: 2, initialBackoffMs: 5 } });
    expect((await statusOf(gone.getModelStatus({ model: 'half' }))).status).toBe('UNAVAILABLE');
    gone.close();
  });

  it('after all these errors the server still serves', async () => {
    const r = await grpc.predict({ model: 'half', label: 'stable', inputs: { x: x3() } });
    expect(Array.from(r.outputs.y!.values as Float32Array)).toEqual([2.5, 3, 4.5]);
  });
});
