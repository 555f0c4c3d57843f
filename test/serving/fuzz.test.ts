/**
 * Fuzzing the server's request decoders (issue 12): seeded random and mutated PredictRequest /
 * ClassifyRequest protobufs through the gRPC handlers, and random and mutated JSON bodies through
 * the REST handler, each against a servable with float, int64 and string inputs. Every request must
 * end in a reply or a request error (never INTERNAL or a JS exception), and no input tensor may
 * hold more than its request's bytes pay for plus the broadcast bound. Bounded: a fixed number of
 * cases, a few seconds each side.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServingCore } from '../../src/serving/core.js';
import { encodeRaw, PREDICTION_SERVICE } from '../../src/serving/grpc.js';
import { grpcImplementations } from '../../src/serving/grpc-server.js';
import { ModelManager } from '../../src/serving/manager.js';
import { handleRest } from '../../src/serving/rest-server.js';
import { createServable, type Servable } from '../../src/serving/servable.js';
import { toServingError } from '../../src/serving/status.js';
import type { HostTensor } from '../../src/tensor/index.js';

const CASES = 1500;
const BROADCAST = 4096;
const STRINGS = 4096;
let dir: string;
let core: ServingCore;
/** Bytes of the largest input tensor the servable was given in the current case. */
let largestInput = 0;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tensorBytes(t: HostTensor): number {
  if (t.dtype === 'string') return t.values.length * 8 + t.values.reduce((a, b) => a + b.byteLength, 0);
  return t.values.byteLength;
}

const servable = (): Servable =>
  createServable({
    signatures: {
      serving_default: {
        methodName: 'tensorflow/serving/predict',
        inputs: { x: { name: 'x:0', dtype: 'DT_FLOAT', shape: [-1, 1] } },
        outputs: { y: { name: 'y:0', dtype: 'DT_FLOAT', shape: [-1, 1] } },
      },
      ints: {
        methodName: 'tensorflow/serving/predict',
        inputs: { i: { name: 'i:0', dtype: 'DT_INT64', shape: [-1] } },
        outputs: { i: { name: 'i:0', dtype: 'DT_INT64', shape: [-1] } },
      },
      strings: {
        methodName: 'tensorflow/serving/predict',
        inputs: { s: { name: 's:0', dtype: 'DT_STRING', shape: [-1] } },
        outputs: { s: { name: 's:0', dtype: 'DT_STRING', shape: [-1] } },
      },
    },
    run: async (_key, inputs): Promise<Record<string, HostTensor>> => {
      for (const t of Object.values(inputs)) largestInput = Math.max(largestInput, tensorBytes(t));
      if (inputs.x) return { y: inputs.x };
      if (inputs.i) return { i: inputs.i };
      return { s: inputs.s! };
    },
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-fuzz-'));
  await mkdir(join(dir, '1'));
  const manager = new ModelManager({ loader: async () => servable(), pollWaitSeconds: 0 });
  await manager.configure([{ name: 'm', basePath: dir }]);
  core = new ServingCore(manager, undefined, { tensorLimits: { maxBroadcastElements: BROADCAST, maxStringElements: STRINGS, maxStringBytes: 2 ** 20 } });
});

afterAll(async () => {
  await core.manager.close();
  await rm(dir, { recursive: true, force: true });
});

/** A request error is fine; INTERNAL or UNKNOWN means the decoder failed on its own. */
function expectRequestError(status: string, message: string, input: string): void {
  if (status === 'INTERNAL' || status === 'UNKNOWN') throw new Error(`${status}: ${message}\nfor ${input.slice(0, 300)}`);
}

function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const out = Array.from(bytes);
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (out.length + 1));
    const kind = random();
    if (kind < 0.3 && out.length) out[at % out.length] = Math.floor(random() * 256);
    else if (kind < 0.5) out.splice(at, 0, ...Array.from({ length: 1 + Math.floor(random() * 6) }, () => Math.floor(random() * 256)));
    else if (kind < 0.65) out.splice(at, 1 + Math.floor(random() * 4));
    else if (kind < 0.8) out.splice(at, 0, 0xff, 0xff, 0xff, 0xff, 0x0f); // a huge varint
    else out.length = Math.floor(random() * out.length);
  }
  return Uint8Array.from(out);
}

describe('fuzzing the gRPC decoders', () => {
  it(`${CASES} random and mutated PredictRequests and ClassifyRequests end in a reply or a request error`, async () => {
    const random = rng(12);
    const impl = grpcImplementations(core)[PREDICTION_SERVICE]!;
    const call = (method: string, request: Uint8Array) =>
      new Promise<{ code: number; details: string } | null>((done) => {
        (impl[method] as (c: unknown, cb: (err: { code: number; details: string } | null) => void) => void)({ request: Buffer.from(request), cancelled: false, getPeer: () => 'fuzz' }, done);
      });
    const seeds: [string, Uint8Array][] = [
      ['Predict', encodeRaw('tensorflow.serving.PredictRequest', { model_spec: { name: 'm' }, inputs: { x: { dtype: 1, tensor_shape: { dim: [{ size: 3 }, { size: 1 }] }, float_val: [1, 2, 3] } } })],
      ['Predict', encodeRaw('tensorflow.serving.PredictRequest', { model_spec: { name: 'm' }, inputs: { x: { dtype: 1, tensor_shape: { dim: [{ size: 2 }, { size: 1 }] }, tensor_content: Buffer.alloc(8) } } })],
      ['Predict', encodeRaw('tensorflow.serving.PredictRequest', { model_spec: { name: 'm', signature_name: 'ints' }, inputs: { i: { dtype: 9, tensor_shape: { dim: [{ size: 2 }] }, int64_val: [1, 2] } } })],
      ['Predict', encodeRaw('tensorflow.serving.PredictRequest', { model_spec: { name: 'm', signature_name: 'strings' }, inputs: { s: { dtype: 7, tensor_shape: { dim: [{ size: 2 }] }, string_val: [Buffer.from('ab'), Buffer.from('c')] } } })],
      ['Classify', encodeRaw('tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm' }, input: { example_list: { examples: [{ features: { feature: { x: { float_list: { value: [1] } } } } }] } } })],
    ];
    let replies = 0;
    for (let i = 0; i < CASES; i++) {
      const [method, seed] = seeds[Math.floor(random() * seeds.length)]!;
      const request = random() < 0.1 ? Uint8Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)) : mutate(seed, random);
      largestInput = 0;
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      const err = await call(method, request);
      if (err) expectRequestError(['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL'][err.code] ?? 'UNKNOWN', err.details, Buffer.from(request).toString('hex'));
      else replies++;
      // What an input holds is paid for by the request's bytes, or is a bounded broadcast.
      expect(largestInput).toBeLessThanOrEqual(Math.max(16 * request.length, 8 * BROADCAST));
    }
    expect(replies).toBeGreaterThan(0);
  });
});

describe('fuzzing the REST decoders', () => {
  const seeds = [
    '{"instances": [[1.0], [2.0], [NaN]]}',
    '{"inputs": {"x": [[1], [2]]}}',
    '{"signature_name": "ints", "instances": [1, 2, 3]}',
    '{"signature_name": "strings", "inputs": ["a", {"b64": "YWJj"}]}',
    '{"signature_name": "strings", "instances": [{"s": "a"}, {"s": "b"}]}',
    '{"examples": [{"x": 1.5, "y": [1, 2]}], "context": {"z": "a"}}',
  ];
  const paths = ['/v1/models/m:predict', '/v1/models/m:predict', '/v1/models/m:classify', '/v1/models/m:regress', '/v1/models/m/versions/1:predict'];
  const tokens = ['[', ']', '{', '}', ',', ':', '"', '1', '-0.5e3', 'NaN', '-Infinity', 'null', 'true', '"b64"', '"x"', '"instances"', '"inputs"', '\\u00', '1e999', '[[[[', ']]]]', ' '];

  it(`${CASES} random and mutated JSON bodies end in a reply or a request error`, async () => {
    const random = rng(34);
    let replies = 0;
    for (let i = 0; i < CASES; i++) {
      let body = seeds[Math.floor(random() * seeds.length)]!;
      const edits = Math.floor(random() * 5);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * (body.length + 1));
        const r = random();
        if (r < 0.5) body = body.slice(0, at) + tokens[Math.floor(random() * tokens.length)]! + body.slice(at);
        else if (r < 0.8) body = body.slice(0, at) + body.slice(at + 1 + Math.floor(random() * 3));
        else body = body.slice(0, at) + body.slice(Math.floor(random() * body.length)); // splice a copy of another part
      }
      if (random() < 0.02) body = `{"instances": ${'['.repeat(1 + Math.floor(random() * 12_000))}1${']'.repeat(Math.floor(random() * 12_000))}}`;
      // Other tests' workers and vitest's own messages get their turn.
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      const path = paths[Math.floor(random() * paths.length)]!;
      largestInput = 0;
      try {
        const reply = await handleRest(core, 'POST', path, body, { maxJsonNodes: 10_000 });
        const text = typeof reply === 'string' ? reply : [...reply].join('');
        expect(() => JSON.parse(text.replace(/\bNaN\b|-?Infinity/g, '0'))).not.toThrow();
        replies++;
      } catch (e) {
        const s = toServingError(e);
        expectRequestError(s.status, s.message, body);
        expect(s.message.length).toBeLessThan(2048);
      }
      expect(largestInput).toBeLessThanOrEqual(Math.max(16 * body.length, 8 * BROADCAST));
    }
    expect(replies).toBeGreaterThan(0);
  });
});
