/**
 * Kernels for TensorFlow's tf.Example parsing ops (ParseExample, ParseExampleV2), which
 * TensorFlow.js lacks. Classify and Regress feed serialized tf.Examples to signatures whose graphs
 * start with these ops (the half_plus_two family, Estimator exports), so the server registers them.
 * Dense features (float, int64, bytes) with defaults and 1-D sparse features are supported; ragged
 * features are not.
 *
 * @example
 * registerExampleOps();   // once, before loading models
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GraphNode } from '@tensorflow/tfjs-converter';
import { registerGraphOp } from '../convert/graph/ops.js';
import { LensError } from '../core/errors.js';
import protobuf from 'protobufjs';
import { decodeMessage } from '../proto/index.js';
import type { ExampleMessage, FeatureMessage } from './core.js';

type Kind = 'float32' | 'int32' | 'string';

const dec = new TextDecoder();

/** Raw bytes of a string tensor (dataSync would decode them as UTF-8 text, corrupting protos). */
async function bytesOf(t: tf.Tensor, what: string): Promise<Uint8Array[]> {
  if (t.dtype !== 'string') throw new LensError('INVALID_ARGUMENT', `${what} must be a string tensor, got ${t.dtype}`);
  return (await t.bytes()) as Uint8Array[];
}

async function stringsOf(t: tf.Tensor, what: string): Promise<string[]> {
  return (await bytesOf(t, what)).map((b) => dec.decode(b));
}

function kindOf(dtype: unknown, what: string): Kind {
  if (dtype === 'float32') return 'float32';
  if (dtype === 'int32' || dtype === 'int64') return 'int32';
  if (dtype === 'string') return 'string';
  throw new LensError('UNSUPPORTED', `${what}: tf.Example features of type ${String(dtype)} are not supported`);
}

function featureValues(f: FeatureMessage | undefined, kind: Kind, key: string, index: number): (number | Uint8Array)[] | null {
  if (!f) return null;
  const got = f.float_list ? 'float' : f.int64_list ? 'int64' : f.bytes_list ? 'string' : null;
  if (got === null) return [];
  const want = kind === 'float32' ? 'float' : kind === 'int32' ? 'int64' : 'string';
  if (got !== want) {
    throw new LensError('INVALID_ARGUMENT', `Name: <unknown>, Feature: ${key} (data type: ${want}) is required but has the wrong data type: ${got} (example ${index})`);
  }
  return (f.float_list?.value ?? f.int64_list?.value ?? f.bytes_list?.value ?? []) as (number | Uint8Array)[];
}

function makeTensor(values: (number | Uint8Array)[], shape: number[], kind: Kind): tf.Tensor {
  if (kind === 'string') return tf.tensor(values as Uint8Array[], shape, 'string');
  return tf.tensor(kind === 'float32' ? Float32Array.from(values as number[]) : Int32Array.from(values as number[]), shape, kind);
}

/**
 * A serialized tf.Example decoded with protobuf's merge rule for a repeated message field: every
 * `features` occurrence adds its map entries, later keys winning. TF Serving joins a context and
 * an example by concatenating their bytes (ExampleListWithContext), which protobufjs alone would
 * decode as the last `features` only.
 */
function decodeExample(bytes: Uint8Array, what: string): ExampleMessage {
  const feature: Record<string, FeatureMessage> = {};
  let seen = false;
  try {
    const reader = protobuf.Reader.create(bytes);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === 2) {
        Object.assign(feature, decodeMessage<NonNullable<ExampleMessage['features']>>('tensorflow.Features', reader.bytes(), what).feature ?? {});
        seen = true;
      } else reader.skipType(tag & 7);
    }
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('PROTO_DECODE', `${what} is not a valid tensorflow.Example: ${e instanceof Error ? e.message : String(e)}`);
  }
  return seen ? { features: { feature } } : {};
}

interface ParseSpec {
  serialized: Uint8Array[];
  sparseKeys: string[];
  sparseKinds: Kind[];
  denseKeys: string[];
  denseKinds: Kind[];
  denseShapes: number[][];
  denseDefaults: tf.Tensor[];
}

function parse(spec: ParseSpec, op: string): tf.Tensor[] {
  const what = `${op} kernel`;
  const records = spec.serialized;
  const n = records.length;
  const examples = records.map((bytes, i) => decodeExample(bytes, `serialized tf.Example ${i}`));
  const sparseIndices: tf.Tensor[] = [];
  const sparseValues: tf.Tensor[] = [];
  const sparseShapes: tf.Tensor[] = [];
  spec.sparseKeys.forEach((key, s) => {
    const kind = spec.sparseKinds[s]!;
    const idx: number[] = [];
    const vals: (number | Uint8Array)[] = [];
    let width = 0;
    examples.forEach((ex, i) => {
      const v = featureValues(ex.features?.feature?.[key], kind, key, i) ?? [];
      v.forEach((x, j) => {
        idx.push(i, j);
        vals.push(x);
      });
      width = Math.max(width, v.length);
    });
    sparseIndices.push(tf.tensor2d(Int32Array.from(idx), [vals.length, 2], 'int32'));
    sparseValues.push(makeTensor(vals, [vals.length], kind));
    sparseShapes.push(tf.tensor1d([n, width], 'int32'));
  });
  const dense = spec.denseKeys.map((key, d) => {
    const kind = spec.denseKinds[d]!;
    const shape = spec.denseShapes[d] ?? [];
    if (shape.some((x) => x < 0)) throw new LensError('UNSUPPORTED', `${what}: dense feature ${key} has a variable shape [${shape.join(',')}]`);
    const per = shape.reduce((a, b) => a * b, 1);
    const def = spec.denseDefaults[d];
    const defValues = def && def.size > 0 ? (Array.from(def.dataSync() as ArrayLike<number | Uint8Array>) as (number | Uint8Array)[]) : null;
    const out: (number | Uint8Array)[] = [];
    examples.forEach((ex, i) => {
      let v = featureValues(ex.features?.feature?.[key], kind, key, i);
      if (v === null) {
        if (!defValues) throw new LensError('INVALID_ARGUMENT', `Name: <unknown>, Feature: ${key} (data type: ${kind === 'int32' ? 'int64' : kind === 'float32' ? 'float' : 'string'}) is required but could not be found.`);
        v = defValues.length === 1 && per > 1 ? new Array(per).fill(defValues[0]) : defValues;
      }
      if (v.length !== per) {
        throw new LensError('INVALID_ARGUMENT', `Name: <unknown>, Key: ${key}, Index: ${i}.  Number of values != expected.  Values size: ${v.length} but output shape: [${shape.join(',')}]`);
      }
      out.push(...v);
    });
    return makeTensor(out, [n, ...shape], kind);
  });
  return [...sparseIndices, ...sparseValues, ...sparseShapes, ...dense];
}

function list<T>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}

async function parseExampleV1(node: GraphNode): Promise<tf.Tensor[]> {
  const nSparse = Number(node.attrs.Nsparse ?? 0);
  const nDense = Number(node.attrs.Ndense ?? 0);
  const [serialized, , ...rest] = node.inputs;
  const sparseKeyTensors = rest.slice(0, nSparse);
  const denseKeyTensors = rest.slice(nSparse, nSparse + nDense);
  const denseDefaults = rest.slice(nSparse + nDense, nSparse + 2 * nDense);
  const first = async (t: tf.Tensor, what: string) => (await stringsOf(t, what))[0]!;
  return parse(
    {
      serialized: await bytesOf(serialized!, 'ParseExample serialized'),
      sparseKeys: await Promise.all(sparseKeyTensors.map((t) => first(t, 'ParseExample sparse key'))),
      sparseKinds: list<unknown>(node.attrs.sparse_types).map((d) => kindOf(d, 'ParseExample')),
      denseKeys: await Promise.all(denseKeyTensors.map((t) => first(t, 'ParseExample dense key'))),
      denseKinds: list<unknown>(node.attrs.Tdense).map((d) => kindOf(d, 'ParseExample')),
      denseShapes: list<number[]>(node.attrs.dense_shapes),
      denseDefaults,
    },
    'ParseExample',
  );
}

async function parseExampleV2(node: GraphNode): Promise<tf.Tensor[]> {
  const [serialized, , sparseKeys, denseKeys, raggedKeys, ...denseDefaults] = node.inputs;
  if (raggedKeys && raggedKeys.size > 0) throw new LensError('UNSUPPORTED', 'ParseExampleV2 kernel: ragged features are not supported');
  const dense = denseKeys ? await stringsOf(denseKeys, 'ParseExampleV2 dense_keys') : [];
  return parse(
    {
      serialized: await bytesOf(serialized!, 'ParseExampleV2 serialized'),
      sparseKeys: sparseKeys ? await stringsOf(sparseKeys, 'ParseExampleV2 sparse_keys') : [],
      sparseKinds: list<unknown>(node.attrs.sparse_types).map((d) => kindOf(d, 'ParseExampleV2')),
      denseKeys: dense,
      denseKinds: list<unknown>(node.attrs.Tdense).map((d) => kindOf(d, 'ParseExampleV2')),
      denseShapes: list<number[]>(node.attrs.dense_shapes),
      denseDefaults: denseDefaults.slice(0, dense.length),
    },
    'ParseExampleV2',
  );
}

let registered = false;

/** Registers the ParseExample and ParseExampleV2 kernels for converted graphs (idempotent). */
export function registerExampleOps(): void {
  if (registered) return;
  registerGraphOp('ParseExample', parseExampleV1);
  registerGraphOp('ParseExampleV2', parseExampleV2);
  registered = true;
}
