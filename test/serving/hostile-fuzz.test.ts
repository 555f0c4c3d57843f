/**
 * A seeded property-based fuzzer against a real `lens serve` core over loopback (gRPC and REST),
 * serving TF Serving's half_plus_two fixtures: small hostile requests (< 64 KiB) of every kind the
 * server takes — structured TensorProtos with huge, negative or many dims and dtype/content
 * mismatches, tf.Examples with every feature kind, multi-inference tasks, metadata, status and
 * reload requests with odd fields, gRPC metadata oddities, JSON with odd numbers, b64, nesting and
 * paths, and HTTP oddities (chunked, content types and encodings, huge headers, partial bodies, many
 * connections). After every request: the reply is a result or a proper TF Serving error (a request
 * status, never INTERNAL/UNKNOWN/500; one line, bounded; REST errors are `{ "error": "..." }`), and
 * the server still answers a known-good request. Fixed seeds and counts keep it deterministic.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect as connectHttp2, constants as h2 } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import * as grpcJs from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportSavedModel, loadExportableModel } from '../../src/export/export.js';
import { startServer, type RunningServer } from '../../src/serving/index.js';
import { encodeRaw } from '../../src/serving/grpc.js';
import { SHARED } from '../helpers/cli.js';

const HALF = resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu');
const TWO = resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_2_versions');
const MAX_REQUEST = 64 * 1024;
/** TensorFlow's node context after a kernel message, the one line break TF Serving's messages have. */
const TF_NODE_CONTEXT = /\n\t \[\[\{\{node [^\n{}]*\}\}\]\]$/;

let server: RunningServer;
let raw: grpcJs.Client;
/** Holds the bundled model's `lens export` output, served as "shapes" (JPEG/PNG/GIF/BMP bytes in). */
let exportDir: string;

/** mulberry32: a small seeded generator, so every run sends the same requests. */
function rng(seed: number): { next: () => number; int: (n: number) => number; pick: <T>(xs: readonly T[]) => T; chance: (p: number) => boolean } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)]!, chance: (p) => next() < p };
}
type Rng = ReturnType<typeof rng>;

const MODELS = ['half', 'two', '', 'nope', 'h'.repeat(300), 'half\u0000', '../half', 'HALF', '%2e%2e', 'half\nINFO forged line', 'half\u2028'];
const SIGNATURES = [undefined, '', 'serving_default', 'classify_x_to_y', 'regress_x_to_y', 'predict', 'nope', 's'.repeat(3000), 'tensorflow/serving/predict', 'sig\r\nX'];
const LABELS = [undefined, undefined, 'stable', 'canary', 'nope', '', 'l'.repeat(500), 'stable\n'];
const VERSIONS = [undefined, undefined, 0, 1, 123, 124, -1, 2 ** 31, 2 ** 53, 2 ** 62, -(2 ** 62)];
const DIMS = [0, 1, 1, 2, 3, -1, -2, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 62, 2 ** 63, -(2 ** 62), 1_000_000, 50_000_000];
const FLOATS = [0, -0, 1, 2.5, NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45, 1e300];
const INTS = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, -(2 ** 53), 2 ** 62];

function bytes(r: Rng, max: number): Buffer {
  return Buffer.from(Array.from({ length: r.int(max + 1) }, () => r.int(256)));
}

function modelSpec(r: Rng): Record<string, unknown> {
  if (r.chance(0.5)) return { name: 'half' };
  const spec: Record<string, unknown> = { name: r.chance(0.7) ? 'half' : r.pick(MODELS) };
  const v = r.pick(VERSIONS);
  if (v !== undefined) spec.version = { value: v };
  const label = r.pick(LABELS);
  if (label !== undefined) spec.version_label = label;
  const sig = r.chance(0.6) ? undefined : r.pick(SIGNATURES);
  if (sig !== undefined) spec.signature_name = sig;
  return spec;
}

function tensorProto(r: Rng): Record<string, unknown> {
  if (r.chance(0.4)) {
    const n = 1 + r.int(4);
    return { dtype: 1, tensor_shape: { dim: [{ size: n }, { size: 1 }] }, float_val: Array.from({ length: n }, () => r.pick(FLOATS)) };
  }
  const t: Record<string, unknown> = { dtype: r.chance(0.6) ? r.pick([1, 1, 7, 9, 2, 3, 10]) : r.pick([0, 4, 5, 6, 8, 14, 17, 19, 20, 21, 22, 23, 101, 999, 2 ** 31 - 1]) };
  const rank = r.chance(0.8) ? r.int(4) : r.pick([64, 254, 255, 256, 1000]);
  const dims = Array.from({ length: rank }, () => ({ size: r.chance(0.5) ? r.pick([1, 2, 3]) : r.pick(DIMS), ...(r.chance(0.05) ? { name: 'd'.repeat(r.int(100)) } : {}) }));
  if (r.chance(0.9)) t.tensor_shape = { dim: dims, ...(r.chance(0.05) ? { unknown_rank: true } : {}) };
  const n = r.int(6);
  const fields = r.chance(0.8) ? 1 : 2;
  for (let f = 0; f < fields; f++) {
    switch (r.int(9)) {
      case 0: t.float_val = Array.from({ length: n }, () => r.pick(FLOATS)); break;
      case 1: t.double_val = Array.from({ length: n }, () => r.pick(FLOATS)); break;
      case 2: t.int_val = Array.from({ length: n }, () => r.pick(INTS) | 0); break;
      case 3: t.int64_val = Array.from({ length: n }, () => r.pick(INTS)); break;
      case 4: t.bool_val = Array.from({ length: n }, () => r.chance(0.5)); break;
      case 5: t.half_val = Array.from({ length: n }, () => r.int(65536)); break;
      case 6: t.string_val = Array.from({ length: r.chance(0.1) ? 2000 : n }, () => (r.chance(0.05) ? Buffer.alloc(40_000, 0x61) : bytes(r, 12))); break;
      case 7: t.tensor_content = r.chance(0.5) ? Buffer.alloc(r.pick([0, 1, 3, 4, 7, 8, 12, 16, 4096])) : bytes(r, 40); break;
      default: t.scomplex_val = Array.from({ length: n }, () => r.pick(FLOATS));
    }
  }
  if (r.chance(0.03)) t.version_number = r.pick(INTS);
  return t;
}

function feature(r: Rng): Record<string, unknown> {
  switch (r.int(5)) {
    case 0: return { float_list: { value: Array.from({ length: r.pick([0, 1, 2, 3, 1000]) }, () => r.pick(FLOATS)) } };
    case 1: return { int64_list: { value: Array.from({ length: r.pick([0, 1, 2, 3]) }, () => r.pick(INTS)) } };
    case 2: return { bytes_list: { value: Array.from({ length: r.pick([0, 1, 2]) }, () => bytes(r, 20)) } };
    case 3: return {};
    default: return { float_list: { value: [r.pick(FLOATS)] }, int64_list: { value: [1] } };
  }
}

function example(r: Rng): Record<string, unknown> {
  if (r.chance(0.5)) return { features: { feature: { x: { float_list: { value: [r.pick(FLOATS)] } } } } };
  const feature_: Record<string, unknown> = {};
  const keys = r.int(4);
  for (let k = 0; k < keys; k++) feature_[r.pick(['x', 'x', 'y', '', 'inputs', 'k'.repeat(200), '\u00e9'])] = feature(r);
  return r.chance(0.05) ? {} : { features: { feature: feature_ } };
}

function input(r: Rng): Record<string, unknown> | undefined {
  const examples = () => Array.from({ length: r.pick([0, 1, 1, 2, 3, 200]) }, () => example(r));
  switch (r.int(4)) {
    case 0: return undefined;
    case 1: return { example_list_with_context: { examples: examples(), ...(r.chance(0.7) ? { context: example(r) } : {}) } };
    default: return { example_list: { examples: examples() } };
  }
}

/** A structured request to one PredictionService/ModelService method. */
function grpcRequest(r: Rng): { method: string; type: string; value: Record<string, unknown> } {
  const kind = r.int(9);
  if (kind <= 2) {
    const inputs: Record<string, unknown> = {};
    for (let i = r.int(3) + (r.chance(0.8) ? 1 : 0); i > 0; i--) inputs[r.chance(0.7) ? 'x' : r.pick(['y', 'inputs', '', 'z'.repeat(300), 'x\ny'])] = tensorProto(r);
    const value: Record<string, unknown> = { model_spec: modelSpec(r), inputs };
    if (r.chance(0.2)) value.output_filter = Array.from({ length: r.int(4) }, () => r.pick(['y', 'nope', '', 'y']));
    return { method: 'PredictionService/Predict', type: 'tensorflow.serving.PredictRequest', value };
  }
  if (kind <= 4) {
    const spec = modelSpec(r);
    if (r.chance(0.7)) spec.signature_name = r.pick(['classify_x_to_y', 'regress_x_to_y', 'serving_default', 'classify_x2_to_y3', 'nope']);
    const api = r.pick(['Classify', 'Regress']);
    return { method: `PredictionService/${api}`, type: `tensorflow.serving.${api === 'Classify' ? 'Classification' : 'Regression'}Request`, value: { model_spec: spec, ...(r.chance(0.95) ? { input: input(r) } : {}) } };
  }
  if (kind === 5) {
    const tasks = Array.from({ length: r.pick([0, 1, 2, 3, 40]) }, () => ({
      model_spec: { ...modelSpec(r), signature_name: r.pick(['classify_x_to_y', 'regress_x_to_y', 'serving_default', 'nope', '']) },
      method_name: r.pick(['tensorflow/serving/classify', 'tensorflow/serving/regress', 'tensorflow/serving/predict', '', 'nope']),
    }));
    return { method: 'PredictionService/MultiInference', type: 'tensorflow.serving.MultiInferenceRequest', value: { tasks, input: input(r) } };
  }
  if (kind === 6) {
    const fields = Array.from({ length: r.int(4) }, () => r.pick(['signature_def', 'signature_def', '', 'nope', 'f'.repeat(2000)]));
    if (r.chance(0.5)) fields.splice(0, fields.length, 'signature_def');
    return { method: 'PredictionService/GetModelMetadata', type: 'tensorflow.serving.GetModelMetadataRequest', value: { ...(r.chance(0.95) ? { model_spec: modelSpec(r) } : {}), metadata_field: fields } };
  }
  return { method: 'ModelService/GetModelStatus', type: 'tensorflow.serving.GetModelStatusRequest', value: r.chance(0.95) ? { model_spec: modelSpec(r) } : {} };
}

/** Mutates encoded bytes: flips, inserts, deletions, huge varints, truncation. */
function mutate(b: Buffer, r: Rng): Buffer {
  const out = Array.from(b);
  for (let e = 1 + r.int(3); e > 0; e--) {
    const at = r.int(out.length + 1);
    const k = r.int(5);
    if (k === 0 && out.length) out[at % out.length] = r.int(256);
    else if (k === 1) out.splice(at, 0, ...bytes(r, 6));
    else if (k === 2) out.splice(at, 1 + r.int(4));
    else if (k === 3) out.splice(at, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    else out.length = r.int(out.length + 1);
  }
  return Buffer.from(out);
}

interface GrpcOutcome {
  code: number;
  details: string;
}

function grpcCall(method: string, body: Buffer, metadata = new grpcJs.Metadata()): Promise<GrpcOutcome> {
  return new Promise((done) => {
    raw.makeUnaryRequest(`/tensorflow.serving.${method}`, (b: Buffer) => b, (b: Buffer) => b, body, metadata, { deadline: Date.now() + 20_000 }, (err) =>
      done(err ? { code: err.code, details: err.details } : { code: 0, details: '' }),
    );
  });
}

/** A proper TF Serving gRPC outcome: OK or a request status, one bounded line. */
function expectProperGrpc(o: GrpcOutcome, what: string): void {
  const name = grpcJs.status[o.code];
  expect(['INTERNAL', 'UNKNOWN', 'DATA_LOSS', 'UNAVAILABLE'], `${name}: ${o.details}\nfor ${what}`).not.toContain(name);
  expect(o.details.replace(TF_NODE_CONTEXT, ''), what).not.toMatch(/[\r\n]/);
  expect(o.details.length, what).toBeLessThanOrEqual(1024 + '...TRUNCATED'.length);
  expect(o.details, what).not.toMatch(/\bat [\w.<>]+ \(|node:internal|\/work\//);
}

interface HttpOutcome {
  status: number;
  text: string;
}

function http(method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<HttpOutcome> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port: server.restPort!, path, method, agent: false, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** A proper TF Serving REST outcome: 200 with JSON, or a request status with a one-line `{ "error": "..." }`. */
function expectProperRest(o: HttpOutcome, what: string): void {
  expect(o.status, `${o.status} ${o.text.slice(0, 300)}\nfor ${what.slice(0, 300)}`).toBeLessThan(500);
  if (o.status === 200) {
    expect(() => JSON.parse(o.text.replace(/\bNaN\b|-?Infinity/g, '0')), what).not.toThrow();
    return;
  }
  expect(o.text, what).toMatch(/^\{ "error": "(?:[^"\\\n]|\\.)*" \}$/);
  const error = (JSON.parse(o.text) as { error: string }).error;
  expect(error.length, what).toBeLessThanOrEqual(1024 + '...TRUNCATED'.length);
  expect(error.replace(TF_NODE_CONTEXT, ''), what).not.toMatch(/[\r\n]|\bat [\w.<>]+ \(|node:internal|\/work\//);
}

const GOOD = encodeRaw('tensorflow.serving.PredictRequest', { model_spec: { name: 'half' }, inputs: { x: { dtype: 1, tensor_shape: { dim: [{ size: 2 }, { size: 1 }] }, float_val: [1, 2] } } });

/** The server still answers a known-good request, over both transports. */
async function expectStillServing(what: string): Promise<void> {
  const g = await new Promise<string>((done) => {
    raw.makeUnaryRequest('/tensorflow.serving.PredictionService/Predict', (b: Buffer) => b, (b: Buffer) => b, GOOD, new grpcJs.Metadata(), { deadline: Date.now() + 20_000 }, (err, reply) =>
      done(err ? `${grpcJs.status[err.code]}: ${err.details}` : reply!.toString('hex')),
    );
  });
  expect(g, `gRPC after ${what.slice(0, 300)}`).toMatch(/^[0-9a-f]+$/);
  const r = await http('POST', '/v1/models/half:predict', '{"instances": [1.0, 2.0]}');
  expect(r, `REST after ${what.slice(0, 300)}`).toEqual({ status: 200, text: '{\n    "predictions": [2.5, 3.0\n    ]\n}' });
}

beforeAll(async () => {
  exportDir = await mkdtemp(join(tmpdir(), 'lens-hostile-fuzz-'));
  await exportSavedModel(await loadExportableModel('default'), join(exportDir, 'shapes'), { version: 1 });
  server = await startServer({
    port: 0,
    restApiPort: 0,
    models: [
      { name: 'half', basePath: HALF, labels: { stable: 123 } },
      { name: 'two', basePath: TWO, policy: { all: true }, labels: { stable: 123, canary: 124 } },
      { name: 'shapes', basePath: join(exportDir, 'shapes') },
    ],
    fileSystemPollWaitSeconds: 0,
    maxRestBodyBytes: MAX_REQUEST,
    restMaxJsonNodes: 20_000,
    tensorLimits: { maxBroadcastElements: 100_000, maxStringElements: 10_000, maxStringBytes: 2 ** 20 },
    restConnections: { headersTimeoutMs: 400, requestTimeoutMs: 800, idleTimeoutMs: 400, maxConnections: 256 },
    log: () => undefined,
  });
  raw = new grpcJs.Client(`127.0.0.1:${server.grpcPort}`, grpcJs.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  raw?.close();
  await server?.close();
  await rm(exportDir, { recursive: true, force: true });
});

describe('gRPC: structured and mutated requests to every method', () => {
  it('2000 requests: each a result or a request error, and the server keeps answering', async () => {
    const r = rng(5);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) {
      const req = grpcRequest(r);
      let body = encodeRaw(req.type, req.value);
      if (r.chance(0.25)) body = mutate(body, r);
      if (body.length > MAX_REQUEST) continue;
      const o = await grpcCall(req.method, body);
      const what = `${req.method} ${body.toString('hex').slice(0, 600)}`;
      expectProperGrpc(o, what);
      const key = `${req.method} ${grpcJs.status[o.code]}`;
      counts[key] = (counts[key] ?? 0) + 1;
      if (i % 5 === 0) await expectStillServing(what);
    }
    // Both results and errors were reached in every method.
    for (const m of ['Predict', 'Classify', 'Regress', 'GetModelMetadata', 'GetModelStatus']) {
      expect(counts[`PredictionService/${m} OK`] ?? counts[`ModelService/${m} OK`], m).toBeGreaterThan(0);
      expect(counts[`PredictionService/${m} INVALID_ARGUMENT`] ?? counts[`ModelService/${m} INVALID_ARGUMENT`] ?? counts[`PredictionService/${m} NOT_FOUND`] ?? counts[`ModelService/${m} NOT_FOUND`], m).toBeGreaterThan(0);
    }
  }, 60_000);

  it('300 concurrent calls, hostile and good mixed: each hostile one a request error, each good one its answer', async () => {
    const r = rng(10);
    const calls = Array.from({ length: 300 }, (_, i) => {
      if (i % 3 === 0) return grpcCall('PredictionService/Predict', GOOD).then((o) => expect(o, `good ${i}`).toEqual({ code: 0, details: '' }));
      const req = grpcRequest(r);
      const body = mutate(encodeRaw(req.type, req.value), r);
      return grpcCall(req.method, body).then((o) => expectProperGrpc(o, `${req.method} ${body.toString('hex').slice(0, 300)}`));
    });
    await Promise.all(calls);
    await expectStillServing('concurrent gRPC');
  }, 30_000);

  it('odd metadata: huge, binary and reserved-looking keys', async () => {
    const r = rng(6);
    for (let i = 0; i < 60; i++) {
      const md = new grpcJs.Metadata();
      for (let k = r.int(4); k > 0; k--) {
        const key = r.pick(['x-odd', 'authorization', 'grpc-foo', 'user-agent', 'te', 'a'.repeat(200), 'data-bin']);
        if (key.endsWith('-bin')) md.add(key, bytes(r, 200));
        else md.add(key, r.pick(['', 'v', 'v'.repeat(r.pick([100, 7000, 20_000])), ' spaced ']));
      }
      const o = await grpcCall('PredictionService/Predict', GOOD, md);
      // Metadata over grpc-js's 8 KiB default is the transport's RESOURCE_EXHAUSTED or INTERNAL from the client side; the server must live on.
      if (o.code !== grpcJs.status.RESOURCE_EXHAUSTED && o.code !== grpcJs.status.INTERNAL) expectProperGrpc(o, `metadata ${i}`);
      await expectStillServing(`metadata ${i}`);
    }
  }, 30_000);

  it('ReloadConfig with odd configs keeps the good model served', async () => {
    const r = rng(7);
    const good = { name: 'half', base_path: HALF, model_platform: 'tensorflow' };
    for (let i = 0; i < 40; i++) {
      const extra = Array.from({ length: r.int(3) }, () => ({
        name: r.pick(['half', 'x', '', 'n'.repeat(300)]),
        base_path: r.pick([HALF, TWO, '', '/nonexistent', '/proc/self', '/proc', 'relative/path', '/dev/null']),
        ...(r.chance(0.3) ? { model_platform: r.pick(['tensorflow', 'onnx', '']) } : {}),
        ...(r.chance(0.3) ? { model_version_policy: r.pick([{ all: {} }, { latest: { num_versions: r.pick([0, 1, 2 ** 31 - 1]) } }, { specific: { versions: [r.pick(INTS)] } }]) } : {}),
        ...(r.chance(0.3) ? { version_labels: { [r.pick(['stable', '', 'x'])]: r.pick(INTS) } } : {}),
      }));
      const configs = r.chance(0.5) ? [good, ...extra] : [...extra, good];
      const value = r.chance(0.1) ? {} : { config: r.chance(0.1) ? { custom_model_config: { type_url: 'x', value: Buffer.from('y') } } : { model_config_list: { config: configs } } };
      const body = encodeRaw('tensorflow.serving.ReloadConfigRequest', value);
      const o = await grpcCall('ModelService/HandleReloadConfigRequest', body);
      const what = `reload ${JSON.stringify(value).slice(0, 500)}`;
      expectProperGrpc(o, what);
      await expectStillServing(what);
    }
    // A folder of numeric folders that hold no SavedModel (/proc: one per process) is NOT_FOUND, as TF Serving's loader says.
    const proc = await grpcCall('ModelService/HandleReloadConfigRequest', encodeRaw('tensorflow.serving.ReloadConfigRequest', { config: { model_config_list: { config: [good, { name: 'proc', base_path: '/proc' }] } } }));
    expect(proc.code).toBe(grpcJs.status.NOT_FOUND);
    expect(proc.details).toMatch(/^Loading servable: \{name: proc version: \d+\} failed: (\/proc\/\d+ has no saved_model\.pb: not a SavedModel export directory|SavedModel directory \/proc\/\d+ does not exist)$/);
    await expectStillServing('reload /proc');
    // The models of the other tests come back.
    const all = [
      good,
      { name: 'two', base_path: TWO, model_version_policy: { all: {} }, version_labels: { stable: 123, canary: 124 } },
      { name: 'shapes', base_path: join(exportDir, 'shapes') },
    ];
    const back = await grpcCall('ModelService/HandleReloadConfigRequest', encodeRaw('tensorflow.serving.ReloadConfigRequest', { config: { model_config_list: { config: all } } }));
    expect(back).toEqual({ code: 0, details: '' });
  }, 60_000);
});

const JSON_NUMBERS = ['1', '-0', '2.5', 'NaN', '-NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '1e-400', '123456789012345678901234567890', '9007199254740993', '0x10', '01', '1.', '.5', '+1', '1e', '-'];
const B64 = ['"YWJj"', '"YWJ"', '"YW=="', '"Y"', '"===="', '"YWJj===="', '"!!!!"', '""', '"YW Jj"', '"\\u0000"', '1', 'null', '["YWJj"]'];
const STRINGS = ['"a"', '""', '"\\ud800"', '"\\u0000"', '"\\uZZZZ"', '"\u00e9"', `"${'s'.repeat(5000)}"`, '"\\"'];

/** A JSON value of the kinds the REST API meets, nested at most `depth` deep. */
function jsonValue(r: Rng, depth: number): string {
  const k = r.int(depth > 0 ? 8 : 5);
  if (k === 0) return r.pick(JSON_NUMBERS);
  if (k === 1) return r.pick(STRINGS);
  if (k === 2) return `{"b64": ${r.pick(B64)}${r.chance(0.1) ? ', "x": 1' : ''}}`;
  if (k === 3) return r.pick(['null', 'true', 'false', '[]', '{}']);
  if (k === 4) return r.pick(['1.0', '2.0', '[1.0]']);
  if (k === 5) return `[${Array.from({ length: r.int(4) }, () => jsonValue(r, depth - 1)).join(', ')}]`;
  if (k === 6) return `[${Array.from({ length: r.pick([1, 2, 3]) }, () => `[${r.pick(JSON_NUMBERS)}]`).join(', ')}]`;
  return `{${Array.from({ length: r.int(3) }, () => `"${r.pick(['x', 'y', 'inputs', '', 'b64', 'x'])}": ${jsonValue(r, depth - 1)}`).join(', ')}}`;
}

function restBody(r: Rng, api: string): string {
  const sig = r.chance(0.3) ? `"signature_name": ${r.pick(['"serving_default"', '"classify_x_to_y"', '"regress_x_to_y"', '"nope"', '1', 'null', '[]'])}, ` : '';
  if (api === 'predict') {
    const key = r.pick(['instances', 'inputs', 'instances', 'inputs', 'examples', 'nope']);
    const both = r.chance(0.05) ? ', "inputs": [1.0]' : '';
    return `{${sig}"${key}": ${r.chance(0.3) ? `[${r.pick(['1.0', '[1.0]', '{"x": 1.0}', '{"x": [1.0]}'])}]` : jsonValue(r, 4)}${both}}`;
  }
  const examples = Array.from({ length: r.int(4) }, () => (r.chance(0.5) ? `{"x": ${r.pick(JSON_NUMBERS)}}` : jsonValue(r, 3))).join(', ');
  return `{${sig}"examples": [${examples}]${r.chance(0.3) ? `, "context": ${jsonValue(r, 2)}` : ''}}`;
}

function restPath(r: Rng): { method: string; path: string; api: string } {
  const api = r.pick(['predict', 'predict', 'classify', 'regress', 'metadata', 'status', 'odd']);
  const model = r.chance(0.7) ? 'half' : r.pick(['two', 'nope', '%zz', '%00', '..%2f..', 'h'.repeat(3000), '%E9', '', 'half%0Ax', '%E2%80%A8']);
  const at = r.chance(0.7) ? '' : r.pick(['/versions/123', '/versions/124', '/versions/0', '/versions/99999999999999999999', '/versions/-1', '/versions/abc', '/labels/stable', '/labels/canary', '/labels/%zz', '/labels/', '/versions/1e3']);
  if (api === 'metadata' || api === 'status') return { method: r.chance(0.9) ? 'GET' : r.pick(['POST', 'DELETE', 'PUT']), path: `/v1/models/${model}${at}${api === 'metadata' ? '/metadata' : ''}`, api };
  if (api === 'odd') return { method: r.pick(['GET', 'POST', 'OPTIONS', 'PATCH', 'HEAD']), path: r.pick(['/v1/', '/v1/models', '/v1/models/', '/v1/models/half:explain', '/v1/models/half:predict/extra', '/v1//models/half:predict', '/v1/models/half:PREDICT', '/v2/models/half/infer', '/', '/v1/models/half?x=1', '/v1/models/half:predict?%zz', '/v1/models/half#f']), api: 'predict' };
  return { method: r.chance(0.95) ? 'POST' : 'GET', path: `/v1/models/${model}${at}:${api}`, api };
}

const CONTENT_TYPES = ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/octet-stream', ''];

/** One raw HTTP/2 gRPC call: the grpc-status and grpc-message it ends with (headers or trailers). */
function rawGrpcFrame(headers: Record<string, string>, body: Buffer): Promise<{ status: string | undefined; message: string | undefined; http: number | undefined }> {
  return new Promise((done, fail) => {
    const session = connectHttp2(`http://127.0.0.1:${server.grpcPort}`);
    session.on('error', fail);
    const stream = session.request({ [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: '/tensorflow.serving.PredictionService/Predict', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let result: { status: string | undefined; message: string | undefined; http: number | undefined } = { status: undefined, message: undefined, http: undefined };
    const take = (h: Record<string, unknown>) => {
      if (h[':status'] !== undefined) result.http = Number(h[':status']);
      if (h['grpc-status'] !== undefined) result = { ...result, status: String(h['grpc-status']), message: h['grpc-message'] === undefined ? undefined : decodeURIComponent(String(h['grpc-message'])) };
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      session.close();
      done(result);
    });
    stream.end(body);
  });
}

const framed = (message: Buffer, length = message.length, compressed = 0) => Buffer.concat([Buffer.from([compressed, length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255]), message]);

describe('raw HTTP/2 gRPC framing', () => {
  const cases: [string, Record<string, string>, Buffer][] = [
    ['a length prefix claiming 2 GiB before 10 bytes', {}, framed(Buffer.alloc(10), 2 ** 31 - 1)],
    ['a length prefix shorter than the message', {}, framed(GOOD, 3)],
    ['a compressed flag without grpc-encoding', {}, framed(GOOD, GOOD.length, 1)],
    ['gzip declared, garbage sent', { 'grpc-encoding': 'gzip' }, framed(Buffer.from('not gzip'), 8, 1)],
    ['an unknown grpc-encoding', { 'grpc-encoding': 'x-odd' }, framed(GOOD, GOOD.length, 1)],
    ['a malformed grpc-timeout', { 'grpc-timeout': 'soon' }, framed(GOOD)],
    ['content-type text/plain', { 'content-type': 'text/plain' }, framed(GOOD)],
    ['two messages in a unary call', {}, Buffer.concat([framed(GOOD), framed(GOOD)])],
    ['no message at all', {}, Buffer.alloc(0)],
    ['half a frame header', {}, Buffer.from([0, 0, 0])],
  ];
  for (const [name, headers, body] of cases) {
    it(`${name}: the call ends with a status, and the server keeps answering`, async () => {
      const r = await rawGrpcFrame(headers, body);
      expect(r.status !== undefined || (r.http !== undefined && r.http !== 200), `${name}: ${JSON.stringify(r)}`).toBe(true);
      if (r.message !== undefined) expect(r.message).not.toMatch(/[\r\n]/);
      await expectStillServing(name);
    });
  }
});

describe('request values with line breaks', () => {
  it('are quoted on one line, escaped, in gRPC and REST errors', async () => {
    const predict = (spec: object, alias = 'x') =>
      grpcCall('PredictionService/Predict', encodeRaw('tensorflow.serving.PredictRequest', { model_spec: spec, inputs: { [alias]: { dtype: 1, tensor_shape: { dim: [{ size: 1 }] }, float_val: [1] } } }));
    expect(await predict({ name: 'half\nINFO forged' })).toEqual({ code: grpcJs.status.NOT_FOUND, details: 'Servable not found for request: Latest(half\\nINFO forged)' });
    expect(await predict({ name: 'half', signature_name: 'a\r\nb' })).toEqual({ code: grpcJs.status.FAILED_PRECONDITION, details: 'Serving signature key "a\\r\\nb" not found.' });
    expect((await predict({ name: 'half', version_label: 'x\u2028y' })).details).toBe('Unrecognized servable version label: x\\u2028y');
    expect((await predict({ name: 'half' }, 'x\ny')).details).toMatch(/^Request inputs do not match required inputs for model `half`\. Send extra: \{x\\ny\}\./);
    const rest = await http('GET', '/v1/models/half%0Aforged', '');
    expect(rest).toEqual({ status: 404, text: '{ "error": "Could not find any versions of model half\\\\nforged" }' });
    await expectStillServing('line breaks');
  });
});

describe('REST: structured and mutated requests to every route', () => {
  it('1500 requests: each 200 with JSON or a one-line {"error": ...}, and the server keeps answering', async () => {
    const r = rng(8);
    const statuses: Record<number, number> = {};
    for (let i = 0; i < 1500; i++) {
      const { method, path, api } = restPath(r);
      let body = method === 'GET' ? '' : restBody(r, api);
      if (r.chance(0.2)) {
        for (let e = 1 + r.int(3); e > 0; e--) {
          const at = r.int(body.length + 1);
          body = r.chance(0.5) ? body.slice(0, at) + r.pick(['[', ']', '{', '}', ',', '"', ':', '\\', 'NaN', '\u0000', '\ud800', '[[[[[[', '}}}']) + body.slice(at) : body.slice(0, at) + body.slice(at + 1 + r.int(4));
        }
      }
      if (r.chance(0.01)) body = `{"instances": ${'['.repeat(5000 + r.int(5000))}1.0${']'.repeat(r.int(10_000))}}`;
      const headers: Record<string, string> = {};
      if (r.chance(0.2)) headers['content-type'] = r.pick(CONTENT_TYPES);
      if (r.chance(0.03)) headers['content-encoding'] = r.pick(['gzip', 'deflate', 'br', 'identity', 'x-odd', 'gzip, gzip']);
      if (r.chance(0.03)) headers['x-huge'] = 'h'.repeat(r.pick([1000, 8000, 15_000]));
      const what = `${method} ${path.slice(0, 200)} ${JSON.stringify(headers).slice(0, 100)} ${body.slice(0, 300)}`;
      const o = await http(method, path, body, headers);
      statuses[o.status] = (statuses[o.status] ?? 0) + 1;
      if (method === 'HEAD') expect(o.status, what).toBeLessThan(500);
      else expectProperRest(o, what);
      if (i % 5 === 0) await expectStillServing(what);
    }
    expect(statuses[200]).toBeGreaterThan(50);
    expect(statuses[400]).toBeGreaterThan(50);
    expect(statuses[404]).toBeGreaterThan(10);
  }, 60_000);
});

/** Sends raw bytes on a new connection (in pieces, `gapMs` apart) and resolves with all the server wrote once it closes. */
function rawHttp(pieces: string[], gapMs = 0): Promise<string> {
  const socket = connect(server.restPort!, '127.0.0.1');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((done) => socket.on('close', () => done(received)));
  void (async () => {
    for (const p of pieces) {
      if (socket.destroyed) return;
      socket.write(p);
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
    }
  })();
  return closed;
}

/** Every HTTP reply in `text`, each checked as a proper REST outcome. */
function expectProperReplies(text: string, what: string): number[] {
  const statuses: number[] = [];
  let rest = text;
  while (rest.length) {
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n/.exec(rest);
    expect(m, `${what}: ${rest.slice(0, 300)}`).not.toBeNull();
    const head = m![2]!;
    const status = Number(m![1]);
    rest = rest.slice(m![0].length);
    let body = '';
    const length = /content-length: (\d+)/i.exec(head);
    if (status < 200) continue; // 100 Continue: the reply follows
    if (length) {
      body = rest.slice(0, Number(length[1]));
      rest = rest.slice(Number(length[1]));
    } else if (/transfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const c = /^([0-9a-f]+)\r\n/i.exec(rest)!;
        const n = parseInt(c[1]!, 16);
        body += rest.slice(c[0].length, c[0].length + n);
        rest = rest.slice(c[0].length + n + 2);
        if (n === 0) break;
      }
    } else {
      body = rest; // HTTP/1.0: the body runs to the end of the connection
      rest = '';
    }
    statuses.push(status);
    expectProperRest({ status, text: body }, what);
  }
  return statuses;
}

const GOOD_BODY = '{"instances": [1.0, 2.0]}';
const line = (method: string, path = '/v1/models/half:predict') => `${method} ${path} HTTP/1.1\r\nHost: x\r\n`;

describe('HTTP oddities on raw connections', () => {
  const cases: [string, string[], RegExp][] = [
    ['chunked body', [`${line('POST')}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{"ins\r\n14\r\ntances": [1.0, 2.0]}\r\n0\r\n\r\n`], /^200$/],
    ['chunk size not hex', [`${line('POST')}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`], /^400$/],
    ['chunk size 2^64', [`${line('POST')}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n`], /^(400|413)$/],
    ['chunk larger than the body limit', [`${line('POST')}Transfer-Encoding: chunked\r\n\r\n7fffffff\r\n{"instances": [1.0]}`], /^(400|408|413)$/],
    ['chunked and Content-Length (smuggling)', [`${line('POST')}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`], /^400$/],
    ['two different Content-Lengths', [`${line('POST')}Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}`], /^400$/],
    ['negative Content-Length', [`${line('POST')}Content-Length: -1\r\n\r\n{}`], /^400$/],
    ['Content-Length not a number', [`${line('POST')}Content-Length: 1e3\r\n\r\n{}`], /^400$/],
    ['Content-Length 2^70', [`${line('POST')}Content-Length: 1180591620717411303424\r\n\r\n{}`], /^(400|413)$/],
    ['Transfer-Encoding gzip, chunked', [`${line('POST')}Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`], /^400$/],
    ['bad method', ['GE\u0001T /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n'], /^400$/],
    ['HTTP/9.9', ['GET /v1/models/half HTTP/9.9\r\nHost: x\r\n\r\n'], /^(400|505)$/],
    ['no path', ['GET  HTTP/1.1\r\nHost: x\r\n\r\n'], /^400$/],
    ['NUL in a header', [`${line('GET', '/v1/models/half')}X: a\u0000b\r\nConnection: close\r\n\r\n`], /^400$/],
    ['header without a colon', [`${line('GET', '/v1/models/half')}Bogus\r\nConnection: close\r\n\r\n`], /^400$/],
    ['obs-fold header', [`${line('GET', '/v1/models/half')}X: a\r\n b\r\nConnection: close\r\n\r\n`], /^(200|400)$/],
    ['a 20 KiB header', [`${line('GET', '/v1/models/half')}X: ${'a'.repeat(20_000)}\r\n\r\n`], /^431$/],
    ['2000 small headers', [`${line('GET', '/v1/models/half')}${'X: a\r\n'.repeat(2000)}Connection: close\r\n\r\n`], /^(200|431)$/],
    ['a 10 KiB path', [`GET /v1/models/${'h'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`], /^404$/],
    ['Expect: 100-continue', [`${line('POST')}Expect: 100-continue\r\nContent-Length: ${GOOD_BODY.length}\r\nConnection: close\r\n\r\n`, GOOD_BODY], /^200$/],
    ['HTTP/1.0 without Host', [`POST /v1/models/half:predict HTTP/1.0\r\nContent-Length: ${GOOD_BODY.length}\r\n\r\n${GOOD_BODY}`], /^200$/],
    ['a good then a malformed pipelined request', [`${line('POST')}Content-Length: ${GOOD_BODY.length}\r\n\r\n${GOOD_BODY}GARBAGE\r\n\r\n`], /^200,400$/],
    ['a body shorter than its Content-Length', [`${line('POST')}Content-Length: 100\r\n\r\n{"inst`], /^408$/],
    ['headers never finished', [`${line('POST')}Content-Length: 2\r\n`], /^408$/],
    ['a body longer than its Content-Length, then garbage', [`${line('POST')}Content-Length: 2\r\n\r\n{}\u0000\u0001\u0002\r\n\r\n`], /^400(,400)?$/],
  ];
  for (const [name, pieces, expected] of cases) {
    it(name, async () => {
      const statuses = expectProperReplies(await rawHttp(pieces), name);
      expect(statuses.join(','), name).toMatch(expected);
      await expectStillServing(name);
    });
  }

  it('slowloris: 30 connections trickling headers get 408 while others are served', async () => {
    const slow = Array.from({ length: 30 }, (_, i) => rawHttp([...`${line('POST')}X-Slow-${i}: ${'s'.repeat(40)}`], 50));
    for (let i = 0; i < 5; i++) await expectStillServing('slowloris');
    for (const reply of await Promise.all(slow)) expect(expectProperReplies(reply, 'slowloris')).toEqual([408]);
  });

  it('200 concurrent connections each get their answer', async () => {
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        rawHttp([i % 2 ? `${line('POST')}Content-Length: ${GOOD_BODY.length}\r\nConnection: close\r\n\r\n${GOOD_BODY}` : `${line('GET', '/v1/models/half')}Connection: close\r\n\r\n`]),
      ),
    );
    for (const reply of replies) expect(expectProperReplies(reply, 'concurrent')).toEqual([200]);
    await expectStillServing('concurrent');
  });
});

/** CRC-32 of PNG chunks. */
function crc32(b: Buffer): number {
  let c = ~0;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** Image files whose headers claim what their few bytes do not hold, and other hostile image bytes. */
async function hostileImages(): Promise<[string, Buffer][]> {
  const pixels = sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 30 } } });
  const jpeg = await pixels.clone().jpeg().toBuffer();
  const png = await pixels.clone().png().toBuffer();
  const gif = await pixels.clone().gif().toBuffer();
  const hugeJpeg = Buffer.from(jpeg);
  const sof = hugeJpeg.findIndex((v, i) => v === 0xff && (hugeJpeg[i + 1] === 0xc0 || hugeJpeg[i + 1] === 0xc2));
  hugeJpeg.writeUInt16BE(65500, sof + 5);
  hugeJpeg.writeUInt16BE(65500, sof + 7);
  const hugePng = Buffer.from(png);
  hugePng.writeUInt32BE(1_000_000, 16);
  hugePng.writeUInt32BE(1_000_000, 20);
  hugePng.writeUInt32BE(crc32(hugePng.subarray(12, 29)), 29);
  const hugeGif = Buffer.from(gif);
  hugeGif.writeUInt16LE(65535, 6);
  hugeGif.writeUInt16LE(65535, 8);
  const bmp = Buffer.alloc(58);
  bmp.write('BM', 0);
  bmp.writeUInt32LE(58, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(1_000_000, 18);
  bmp.writeInt32LE(-1_000_000, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  return [
    ['jpeg', jpeg],
    ['png', png],
    ['gif', gif],
    ['jpeg claiming 65500x65500', hugeJpeg],
    ['png claiming 1e6x1e6', hugePng],
    ['gif claiming 65535x65535', hugeGif],
    ['bmp claiming 1e6x1e6', bmp],
    ['truncated jpeg', jpeg.subarray(0, jpeg.length >> 1)],
    ['jpeg header only', jpeg.subarray(0, 2)],
    ['empty', Buffer.alloc(0)],
    ['text', Buffer.from('not an image')],
    ['png magic then zeros', Buffer.concat([png.subarray(0, 8), Buffer.alloc(64)])],
  ];
}

describe('the exported bundled model: hostile image bytes', () => {
  it('every image, alone or in a batch, over gRPC and REST (b64 odd padding too): a result or a request error', async () => {
    const images = await hostileImages();
    const r = rng(9);
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < 120; i++) {
      const batch = Array.from({ length: r.pick([1, 1, 2, 3, 8]) }, () => r.pick(images));
      const names = batch.map(([n]) => n).join(' + ');
      const signature = r.pick(['serving_default', 'predict']);
      if (r.chance(0.5)) {
        const body = encodeRaw('tensorflow.serving.PredictRequest', {
          model_spec: { name: 'shapes', signature_name: signature },
          inputs: { image_bytes: { dtype: 7, tensor_shape: { dim: [{ size: r.chance(0.9) ? batch.length : r.pick(DIMS) }] }, string_val: batch.map(([, b]) => b) } },
        });
        const o = await grpcCall('PredictionService/Predict', body);
        expectProperGrpc(o, `gRPC ${names}`);
        outcomes[grpcJs.status[o.code]!] = (outcomes[grpcJs.status[o.code]!] ?? 0) + 1;
      } else {
        const b64 = (b: Buffer) => {
          const t = b.toString('base64');
          return r.chance(0.8) ? t : r.pick([t.replace(/=+$/, ''), `${t}=`, `${t}===`, t.replace(/\+/g, '-'), ` ${t}`, `${t.slice(0, -1)}!`]);
        };
        const body = `{"signature_name": "${signature}", "instances": [${batch.map(([, b]) => `{"b64": "${b64(b)}"}`).join(', ')}]}`;
        const o = await http('POST', '/v1/models/shapes:predict', body);
        expectProperRest(o, `REST ${names}`);
        outcomes[o.status] = (outcomes[o.status] ?? 0) + 1;
      }
      await expectStillServing(names);
    }
    expect(outcomes.OK).toBeGreaterThan(0);
    expect(outcomes.INVALID_ARGUMENT).toBeGreaterThan(0);
    expect(outcomes[200]).toBeGreaterThan(0);
    expect(outcomes[400]).toBeGreaterThan(0);
  }, 60_000);
});
