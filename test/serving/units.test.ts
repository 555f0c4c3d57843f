/**
 * The serving building blocks on their own: text format, JSON, batching, the model manager's
 * version lifecycle, retries, labels.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { imagenetLabels, labelsForClassCount, readLabelsFile, resolveLabels } from '../../src/models/labels.js';
import {
  batchingServable,
  createServable,
  formatFloat,
  ModelManager,
  parseBatchingParameters,
  parseModelConfig,
  parseMonitoringConfig,
  parseServingJson,
  parseServingJsonAsync,
  NumberBlock,
  ServingError,
  withRetries,
  type Servable,
} from '../../src/serving/index.js';
import { encodeRaw, predictResponseMessage } from '../../src/serving/grpc.js';
import { encodeTensorProto, type HostTensor } from '../../src/tensor/index.js';
import { SHARED } from '../helpers/cli.js';

const SIG = {
  serving_default: {
    methodName: 'tensorflow/serving/predict',
    inputs: { x: { name: 'x:0', dtype: 'DT_FLOAT', shape: [-1] } },
    outputs: { y: { name: 'y:0', dtype: 'DT_FLOAT', shape: [-1] } },
  },
};
const f32 = (values: number[]): HostTensor => ({ dtype: 'float32', shape: [values.length], values: new Float32Array(values) });

describe('text format (model config, batching, monitoring files)', () => {
  it('parses a ModelServerConfig with policies and labels', () => {
    const models = parseModelConfig(
      `model_config_list {
        config { name: 'a' base_path: "/m/a" model_platform: "tensorflow"
                 model_version_policy { specific { versions: 1 versions: 2 } }
                 version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 } }
        config: < name: 'b' base_path: 'rel/b' model_version_policy: { latest { num_versions: 2 } } >
        config { name: "c" base_path: "/m/c" model_version_policy { all: {} } }  # comment
      }`,
      'models.config',
      '/root',
    );
    expect(models).toEqual([
      { name: 'a', basePath: '/m/a', policy: { specific: [1, 2] }, labels: { stable: 1, canary: 2 } },
      { name: 'b', basePath: '/root/rel/b', policy: { latest: 2 }, labels: {} },
      { name: 'c', basePath: '/m/c', policy: { all: true }, labels: {} },
    ]);
  });

  it('reports the file, line and column of mistakes', () => {
    expect(() => parseModelConfig("model_config_list { config { nmae: 'x' } }", 'models.config')).toThrow(
      'models.config:1:30: Message type "tensorflow.serving.ModelConfig" has no field named "nmae".',
    );
    expect(() => parseModelConfig("model_config_list {\n  config { name: 'x' base_path: '/x' }", 'm.config')).toThrow(/^m\.config:2:\d+: expected "}"/);
    expect(() => parseModelConfig("model_config_list { config { name: 'x' } }", 'm.config')).toThrow('m.config: model x has no base_path');
  });

  it('parses BatchingParameters and MonitoringConfig', () => {
    expect(parseBatchingParameters('max_batch_size { value: 32 } batch_timeout_micros { value: 1000 } max_enqueued_batches { value: 4 } num_batch_threads { value: 2 } allowed_batch_sizes: [8, 16, 32]', 'b')).toEqual({
      maxBatchSize: 32,
      batchTimeoutMicros: 1000,
      maxEnqueuedBatches: 4,
      numBatchThreads: 2,
      allowedBatchSizes: [8, 16, 32],
    });
    expect(parseMonitoringConfig('prometheus_config { enable: true }', 'm')).toEqual({ path: '/monitoring/prometheus/metrics' });
    expect(parseMonitoringConfig('prometheus_config { enable: false path: "/x" }', 'm')).toBeNull();
  });
});

describe('REST JSON', () => {
  it('accepts NaN and Infinity and reports rapidjson errors with offsets', () => {
    expect(parseServingJson('{"a": [NaN, -Infinity, 1e3]}')).toEqual({ a: [NaN, -Infinity, 1000] });
    expect(() => parseServingJson('{"a": 1,}')).toThrow('JSON Parse error: Missing a name for object member. at offset: 8');
    expect(() => parseServingJson('{"a": 1} 2')).toThrow('JSON Parse error: The document root must not be followed by other values. at offset: 9');
  });

  it('keeps rectangular number lists as compact blocks, parses numbers exactly, and bounds what a body may create', async () => {
    const doc = parseServingJson('{"a": [[1, 2.5], [-3e2, 0.1]], "b": [[1], [1, 2]], "c": [1, "x"]}', { compact: true }) as Record<string, unknown>;
    const a = doc.a as NumberBlock;
    expect(a).toBeInstanceOf(NumberBlock);
    expect([a.shape, [0, 1, 2, 3].map((i) => a.value(i))]).toEqual([[2, 2], [1, 2.5, -300, 0.1]]);
    expect((doc.b as NumberBlock[]).map((x) => x.shape)).toEqual([[1], [2]]);
    expect(doc.c).toEqual([1, 'x']);
    // The fast path and Number() agree on the digits that decide rounding.
    for (const text of ['0.1', '123456.789e-3', '9007199254740993', '1.7976931348623157e308', '5e-324', '-0.0', '0.30000000000000004']) {
      expect(Object.is((parseServingJson(`[${text}]`, { compact: true }) as NumberBlock).value(0), Number(text))).toBe(true);
    }
    expect(() => parseServingJson('[[], {}, "a", "b"]', { maxNodes: 4 })).toThrow('JSON Parse error: more than 4 strings, objects and lists (--rest_api_max_json_nodes) at offset: 18');
    expect(await parseServingJsonAsync(`[${'1,'.repeat(3_000_000)}1]`, { compact: true })).toMatchObject({ shape: [3_000_001] });
    expect(() => parseServingJson(`${'['.repeat(10_001)}`)).toThrow('JSON Parse error: Terminate parsing due to Handler error. at offset: 10000');
  });

  it('writes floats like the server: shortest round-trip, .0 on whole numbers', () => {
    expect([2.5, 3, 4.5, Math.fround(0.1), 9e6, 1e-5, NaN, -Infinity].map((v) => formatFloat(v, 'float32'))).toEqual(['2.5', '3.0', '4.5', '0.1', '9e+06', '1e-05', 'NaN', '-Infinity']);
    expect(formatFloat(Math.fround(1 / 3), 'float32')).toBe('0.333333343');
    expect(formatFloat(1 / 3, 'float64')).toBe('0.33333333333333331');
  });
});

describe('gRPC reply encoding', () => {
  it('float replies written from typed arrays are byte-identical to a protobufjs PredictResponse with *_val fields', () => {
    const outputs: Record<string, HostTensor> = {
      y: { dtype: 'float32', shape: [2, 2], values: new Float32Array([1.5, 2, -3, NaN]) },
      z: { dtype: 'float64', shape: [1], values: new Float64Array([0.1]) },
      w: { dtype: 'string', shape: [1], values: [new Uint8Array([65])] },
      i: { dtype: 'int64', shape: [2], values: new BigInt64Array([1n, -2n]) },
    };
    const packed = predictResponseMessage({ name: 'm', version: 1, signature_name: 's' }, outputs, false);
    const reference = encodeRaw('tensorflow.serving.PredictResponse', {
      model_spec: { name: 'm', version: { value: 1 }, signature_name: 's' },
      outputs: Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, encodeTensorProto(t, { tensorContent: false })])),
    });
    expect(encodeRaw(packed.type, packed.value).equals(reference)).toBe(true);
  });
});

describe('batching', () => {
  /** A doubling servable that records each batch size; with `gate`, every run waits until the test opens it. */
  const counting = (gate?: Promise<void>) => {
    const sizes: number[] = [];
    const servable = createServable({
      signatures: SIG,
      run: async (_s, inputs) => {
        sizes.push(inputs.x!.shape[0]!);
        if (gate) await gate;
        const x = inputs.x!.values as Float32Array;
        return { y: { dtype: 'float32', shape: [...inputs.x!.shape], values: x.map((v) => v * 2) } };
      },
    });
    return { servable, sizes };
  };

  it('merges concurrent requests into one batch and splits the outputs back', async () => {
    const { servable, sizes } = counting();
    // The batch closes when the third request fills it (6 rows), not on a clock: its timeout is a
    // minute, so the batch can only run early by reaching maxBatchSize with all three merged.
    const b = batchingServable(servable, { maxBatchSize: 6, batchTimeoutMicros: 60_000_000, numBatchThreads: 1 });
    const outs = await Promise.all([b.run('serving_default', { x: f32([1, 2]) }, ['y']), b.run('serving_default', { x: f32([3]) }, ['y']), b.run('serving_default', { x: f32([4, 5, 6]) }, ['y'])]);
    expect(outs.map((o) => Array.from(o.y!.values as Float32Array))).toEqual([[2, 4], [6], [8, 10, 12]]);
    expect(sizes).toEqual([6]);
  });

  it('pads to allowed batch sizes and refuses oversize tasks', async () => {
    const { servable, sizes } = counting();
    const b = batchingServable(servable, { maxBatchSize: 4, allowedBatchSizes: [2, 4], batchTimeoutMicros: 0 });
    expect(Array.from((await b.run('serving_default', { x: f32([7, 8, 9]) }, ['y'])).y!.values as Float32Array)).toEqual([14, 16, 18]);
    expect(sizes).toEqual([4]);
    await expect(b.run('serving_default', { x: f32([1, 2, 3, 4, 5]) }, ['y'])).rejects.toThrow('Task size 5 is larger than maximum batch size 4');
  });

  it('a full queue answers UNAVAILABLE', async () => {
    // The first batch runs and holds the only batch thread until the gate opens: two more batches
    // wait (maxEnqueuedBatches), and the other three requests find the queue full.
    let open!: () => void;
    const { servable, sizes } = counting(new Promise<void>((r) => (open = r)));
    const b = batchingServable(servable, { maxBatchSize: 1, maxEnqueuedBatches: 2, numBatchThreads: 1 });
    const settled = Promise.allSettled(Array.from({ length: 6 }, (_, i) => b.run('serving_default', { x: f32([i]) }, ['y'])));
    await vi.waitFor(() => expect(sizes).toEqual([1]));
    open();
    const results = await settled;
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(ServingError);
      expect((r.reason as ServingError).status).toBe('UNAVAILABLE');
      expect((r.reason as ServingError).message).toBe('The batch scheduling queue to which this task was submitted is full');
    }
    expect(sizes).toEqual([1, 1, 1]);
  });
});

describe('model manager', () => {
  let dir: string;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const loaderLog = () => {
    const events: string[] = [];
    const loader = async (path: string, id: { version: number }): Promise<Servable> => {
      events.push(`load ${id.version}`);
      if (path.endsWith('broken')) throw new Error('no saved_model.pb');
      return createServable({ signatures: SIG, run: async () => ({ y: f32([id.version]) }), dispose: () => void events.push(`dispose ${id.version}`) });
    };
    return { events, loader };
  };

  it('polls for new versions: loads the new one, then unloads the old one once its requests finish', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lens-manager-'));
    await mkdir(join(dir, '1'));
    await mkdir(join(dir, 'not-a-version'));
    const { events, loader } = loaderLog();
    const m = new ModelManager({ loader, pollWaitSeconds: 0 });
    await m.configure([{ name: 'm', basePath: dir }]);
    expect(m.status('m')).toEqual([{ version: 1, state: 'AVAILABLE', status: { code: 'OK', message: '' } }]);
    const inFlight = m.acquire({ name: 'm' });
    await mkdir(join(dir, '00002'));
    const polled = m.poll();
    // Version 1 waits in UNLOADING for the request that holds it.
    await vi.waitFor(() =>
      expect(m.status('m').map((v) => [v.version, v.state])).toEqual([
        [1, 'UNLOADING'],
        [2, 'AVAILABLE'],
      ]),
    );
    const latest = m.acquire({ name: 'm' });
    expect(latest.version).toBe(2);
    latest.release();
    expect(await inFlight.servable.run('serving_default', {}, ['y'])).toEqual({ y: f32([1]) });
    expect(events).toEqual(['load 1', 'load 2']);
    inFlight.release();
    await polled;
    expect(events).toEqual(['load 1', 'load 2', 'dispose 1']);
    expect(m.status('m', 1)).toEqual([{ version: 1, state: 'END', status: { code: 'OK', message: '' } }]);
    expect(() => m.acquire({ name: 'm', version: 1 })).toThrow('Servable not found for request: Specific(m, 1)');
    await m.close();
  });

  it('version policies, labels and load failures', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lens-manager-'));
    for (const v of ['1', '2', '3']) await mkdir(join(dir, v));
    const { loader } = loaderLog();
    const m = new ModelManager({ loader, pollWaitSeconds: 0 });
    await m.configure([{ name: 'm', basePath: dir, policy: { specific: [1, 3] }, labels: { stable: 1 } }]);
    expect(m.status('m').map((v) => v.version)).toEqual([1, 3]);
    const stable = m.acquire({ name: 'm', label: 'stable' });
    expect(stable.version).toBe(1);
    stable.release();
    expect(() => m.acquire({ name: 'm', label: 'canary' })).toThrow('Unrecognized servable version label: canary');
    await expect(m.configure([{ name: 'm', basePath: dir, labels: { stable: 1 } }])).rejects.toThrow(
      'Request to assign label to version 1 of model m, which is not currently available for inference.',
    );
    await expect(m.configure([{ name: 'x', basePath: join(dir, 'missing') }])).rejects.toThrow(/^Could not find base path .*missing for servable x$/);
    await m.close();
  });

  it('a version that fails to load is END with its error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lens-manager-'));
    await mkdir(join(dir, '5'));
    const m = new ModelManager({
      loader: async () => {
        throw new ServingError('NOT_FOUND', 'no saved_model.pb');
      },
      pollWaitSeconds: 0,
    });
    await expect(m.configure([{ name: 'm', basePath: dir }])).rejects.toThrow('Loading servable: {name: m version: 5} failed: no saved_model.pb');
    expect(m.status('m')).toEqual([{ version: 5, state: 'END', status: { code: 'NOT_FOUND', message: 'Loading servable: {name: m version: 5} failed: no saved_model.pb' } }]);
    await m.close();
  });
});

describe('retries', () => {
  it('retries only UNAVAILABLE, with backoff', async () => {
    let calls = 0;
    const flaky = async () => {
      calls++;
      if (calls < 3) throw new ServingError('UNAVAILABLE', 'down');
      return 'ok';
    };
    expect(await withRetries({ retries: 3, initialBackoffMs: 1 }, flaky)).toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    const bad = async () => {
      calls++;
      throw new ServingError('INVALID_ARGUMENT', 'no');
    };
    await expect(withRetries({ retries: 3, initialBackoffMs: 1 }, bad)).rejects.toThrow('no');
    expect(calls).toBe(1);
  });
});

describe('labels', () => {
  it('ImageNet 1000 and 1001-with-background agree with the MobileNet label file', async () => {
    const l1000 = imagenetLabels(1000);
    const l1001 = imagenetLabels(1001);
    expect(l1000).toHaveLength(1000);
    expect(l1001).toHaveLength(1001);
    expect(l1001[0]).toBe('background');
    expect(l1001[286]).toBe(l1000[285]);
    expect(l1000[285]).toMatch(/^Egyptian cat/);
    const file = await readLabelsFile(resolve(SHARED, 'models-external/mobilenet_v2_1.0_224_quant/imagenet_labels.txt'));
    expect(file).toHaveLength(1001);
    // Same classes in the same order (the file writes a few names differently, e.g. "crane").
    const same = file.filter((name, i) => name === l1001[i]).length;
    expect(same).toBeGreaterThan(990);
    expect(labelsForClassCount(10)).toBeUndefined();
    expect(() => resolveLabels(10, ['a'], 'labels.txt')).toThrow('labels.txt has 1 labels but the model scores 10 classes');
  });

  it('reads JSON label files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lens-labels-'));
    await writeFile(join(dir, 'l.json'), '["cat", "dog"]');
    expect(await readLabelsFile(join(dir, 'l.json'))).toEqual(['cat', 'dog']);
    await rm(dir, { recursive: true, force: true });
  });
});
