/**
 * The remote ImageModel adapter and the profiler against a loopback server with small models.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { SHARED } from '../helpers/cli.js';
import { decodeImageBytes } from '../../src/engines/tfjs/image-ops.js';
import {
  createClient,
  createServable,
  profile,
  profileCsv,
  profileTable,
  startServer,
  type RunningServer,
  type ServingClient,
} from '../../src/serving/index.js';
import { createRemoteModel } from '../../src/models/remote.js';
import { profileChart } from '../../src/render/profile-chart.js';

let server: RunningServer;
let dir: string;
const clients: ServingClient[] = [];

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'lens-tools-'));
  for (const m of ['pixels', 'jpeg']) await mkdir(join(dir, m, '1'), { recursive: true });
  server = await startServer({
    port: 0,
    restApiPort: 0,
    models: [
      { name: 'pixels', basePath: join(dir, 'pixels') },
      { name: 'jpeg', basePath: join(dir, 'jpeg') },
    ],
    fileSystemPollWaitSeconds: 0,
    monitoring: {},
    // pixels: [N,4,4,3] floats -> 3 "probabilities" = mean of each channel / 255.
    // jpeg: [N] encoded images -> 2 scores = [first, last] value of the image as DecodeJpeg decodes it.
    loader: async (_dir, id) =>
      id.name === 'pixels'
        ? createServable({
            signatures: {
              serving_default: {
                methodName: 'tensorflow/serving/predict',
                inputs: { images: { name: 'images:0', dtype: 'DT_FLOAT', shape: [-1, 4, 4, 3] } },
                outputs: { probabilities: { name: 'p:0', dtype: 'DT_FLOAT', shape: [-1, 3] }, classes: { name: 'c:0', dtype: 'DT_INT64', shape: [-1] } },
              },
            },
            run: async (_s, { images }, outputs) => {
              const n = images!.shape[0]!;
              const v = images!.values as Float32Array;
              const p = new Float32Array(n * 3);
              for (let i = 0; i < v.length; i++) p[Math.floor(i / 48) * 3 + (i % 3)]! += v[i]! / 255 / 16;
              const all = { probabilities: { dtype: 'float32' as const, shape: [n, 3], values: p }, classes: { dtype: 'int64' as const, shape: [n], values: new BigInt64Array(n) } };
              return Object.fromEntries(outputs.map((o) => [o, all[o as keyof typeof all]]));
            },
          })
        : createServable({
            signatures: {
              serving_default: {
                methodName: 'tensorflow/serving/predict',
                inputs: { image_bytes: { name: 'b:0', dtype: 'DT_STRING', shape: [-1] } },
                outputs: { scores: { name: 's:0', dtype: 'DT_FLOAT', shape: [-1, 2] } },
              },
            },
            run: async (_s, { image_bytes }) => {
              const imgs = image_bytes!.values as Uint8Array[];
              const values = new Float32Array(imgs.length * 2);
              for (const [i, b] of imgs.entries()) {
                const { data } = await decodeImageBytes(b, 3, 'DecodeJpeg');
                values[2 * i] = data[0]!;
                values[2 * i + 1] = data[data.length - 1]!;
              }
              return { scores: { dtype: 'float32', shape: [imgs.length, 2], values } };
            },
          }),
  });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('remote ImageModel', () => {
  for (const transport of ['grpc', 'rest'] as const) {
    it(`sends float pixels and returns scores over ${transport}`, async () => {
      const client = createClient({ target: `127.0.0.1:${transport === 'grpc' ? server.grpcPort : server.restPort}`, transport });
      clients.push(client);
      const model = await createRemoteModel({ client, model: 'pixels', maxBatch: 2 });
      expect(model).toMatchObject({ inputShape: [4, 4, 3], classes: 3, inputKind: 'float', inputAlias: 'images', outputAlias: 'probabilities', output: 'probability' });
      expect(model.gradient).toBeUndefined();
      const pixels = tf.tidy(() => tf.concat([tf.fill([2, 4, 4, 3], 51), tf.fill([1, 4, 4, 3], 255)]) as tf.Tensor4D);
      const scores = await model.forward(pixels);
      expect(scores.shape).toEqual([3, 3]);
      const rows = (await scores.array()) as number[][];
      expect(rows[0]![0]).toBeCloseTo(0.2, 5);
      expect(rows[2]![2]).toBeCloseTo(1, 5);
      tf.dispose([pixels, scores]);
    });
  }

  it('sends pixels losslessly (PNG) to a model whose input is DT_STRING, and files as they are', async () => {
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    clients.push(client);
    // A DT_STRING input of unknown size and no pixel signature beside it: the size must be given.
    await expect(createRemoteModel({ client, model: 'jpeg' })).rejects.toThrow(/takes encoded images .* give the image size/);
    const model = await createRemoteModel({ client, model: 'jpeg', inputShape: [8, 8, 3] });
    expect(model.inputKind).toBe('jpeg');
    expect(model.classes).toBe(2);
    // Values a JPEG would blur: the server decodes exactly these.
    const values = new Float32Array(2 * 8 * 8 * 3).fill(128);
    values[0] = 17;
    values[8 * 8 * 3 - 1] = 201;
    values[8 * 8 * 3] = 3;
    values[values.length - 1] = 254;
    const pixels = tf.tensor4d(values, [2, 8, 8, 3]);
    const scores = await model.forward(pixels);
    expect(await scores.array()).toEqual([
      [17, 201],
      [3, 254],
    ]);
    tf.dispose([pixels, scores]);
    const file = readFileSync(join(SHARED, 'images/parrot.jpg'));
    const fromFile = await model.forwardEncoded([new Uint8Array(file)]);
    const decoded = await decodeImageBytes(file, 3, 'DecodeJpeg');
    expect(await fromFile.array()).toEqual([[decoded.data[0], decoded.data[decoded.data.length - 1]]]);
    fromFile.dispose();
    await expect(model.forward(tf.zeros([1, 4, 4, 3]) as tf.Tensor4D)).rejects.toThrow('model jpeg takes pixels [N,8,8,3], got [1,4,4,3]');
  });
});

describe('profiler', () => {
  it('measures every batch size and concurrency, with progress, CSV and a PNG chart', async () => {
    const seen: number[] = [];
    const result = await profile(
      { target: `127.0.0.1:${server.grpcPort}`, model: 'pixels', batchSizes: [1, 4], concurrency: [1, 2], trials: 4, warmup: 1 },
      (p) => seen.push(p.done),
    );
    expect(result.rows.map((r) => [r.batchSize, r.concurrency, r.requests, r.errors])).toEqual([
      [1, 1, 4, 0],
      [1, 2, 4, 0],
      [4, 1, 4, 0],
      [4, 2, 4, 0],
    ]);
    for (const r of result.rows) {
      expect(r.minMs).toBeLessThanOrEqual(r.p50Ms + 0.01);
      expect(r.p50Ms).toBeLessThanOrEqual(r.p99Ms);
      expect(r.p99Ms).toBeLessThanOrEqual(r.maxMs + 0.01);
      expect(r.imagesPerSec).toBeGreaterThan(0);
      expect(r.requestBytes).toBeGreaterThan(r.batchSize * 48 * 4);
      expect(r.responseBytes).toBeGreaterThan(0);
    }
    expect(seen[seen.length - 1]).toBe(2 * (1 + 2 * 4));
    const csv = profileCsv(result).trim().split('\n');
    expect(csv[0]).toBe('batchSize,concurrency,requests,errors,p50Ms,p90Ms,p95Ms,p99Ms,meanMs,minMs,maxMs,imagesPerSec,requestsPerSec,requestBytes,responseBytes,wallMs');
    expect(csv).toHaveLength(5);
    // The printed table stays aligned when a latency runs to seconds and throughput to thousands.
    const slow = { ...result, rows: result.rows.map((r, i) => (i === 1 ? { ...r, p50Ms: 12345.678, p99Ms: 23456.7, imagesPerSec: 1234.5, requestBytes: 103860012 } : r)) };
    const table = profileTable(slow);
    expect(table).toHaveLength(5);
    expect(table[0]).toMatch(/^batch {2}conc +p50ms +p90ms/);
    for (const line of table) expect(line.length).toBe(table[0]!.length);
    // Every cell ends where its column's header ends.
    const ends = [...table[0]!.matchAll(/\S+(?: bytes)?/g)].map((m) => m.index! + m[0].length);
    for (const line of table.slice(1)) expect([...line.matchAll(/\S+/g)].map((m) => m.index! + m[0].length)).toEqual(ends);
    expect(table[2]).toContain('12345.68');
    const png = await profileChart(result);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 960, 540]);
  });

  it('counts errors instead of failing, over REST', async () => {
    const result = await profile({ target: `127.0.0.1:${server.restPort}`, transport: 'rest', model: 'pixels', version: 1, batchSizes: [2], trials: 2, warmup: 0 });
    expect(result.rows[0]).toMatchObject({ batchSize: 2, requests: 2, errors: 0 });
    await expect(profile({ target: `127.0.0.1:${server.grpcPort}`, model: 'nope', batchSizes: [1], trials: 1 })).rejects.toThrow('Servable not found for request: Latest(nope)');
  });
});

describe('server features', () => {
  it('exports Prometheus metrics on the REST port', async () => {
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    clients.push(client);
    await client.getModelStatus({ model: 'pixels' });
    await client.predict({ model: 'pixels', inputs: { images: { dtype: 'float32', shape: [1, 4, 4, 3], values: new Float32Array(48) } } });
    await client.predict({ model: 'nope', inputs: {} }).catch(() => undefined);
    const res = await fetch(`http://127.0.0.1:${server.restPort}/monitoring/prometheus/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^:tensorflow:serving:request_count\{model_name="pixels",status="OK"\} \d+$/m);
    expect(text).toMatch(/^:tensorflow:serving:request_count\{model_name="nope",status="NOT_FOUND"\} \d+$/m);
    expect(text).toMatch(/^:tensorflow:serving:request_latency_bucket\{le="10",model_name="pixels",API="Predict",entrypoint="GRPC"\} \d+$/m);
  });

  it('reloads the model config over gRPC (HandleReloadConfigRequest)', async () => {
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    clients.push(client);
    await client.reloadConfig([{ name: 'pixels', basePath: join(dir, 'pixels') }]);
    expect(await client.getModelStatus({ model: 'jpeg' })).toEqual([{ version: '1', state: 'END', status: { error_code: 'OK', error_message: '' } }]);
    await expect(client.getModelMetadata({ model: 'jpeg' })).rejects.toThrow('Servable not found for request: Latest(jpeg)');
    await expect(client.reloadConfig([{ name: 'x', basePath: join(dir, 'missing') }])).rejects.toThrow(/Could not find base path/);
    await client.reloadConfig([
      { name: 'pixels', basePath: join(dir, 'pixels') },
      { name: 'jpeg', basePath: join(dir, 'jpeg') },
    ]);
    expect((await client.getModelStatus({ model: 'jpeg' }))[0]!.state).toBe('AVAILABLE');
  });

  it('batches concurrent requests with --enable_batching and a batching parameters file', async () => {
    const file = join(dir, 'batching.config');
    // A batch runs when full (4 rows) long before its one-minute timeout: no timing window involved.
    await writeFile(file, 'max_batch_size { value: 4 } batch_timeout_micros { value: 60000000 } num_batch_threads { value: 1 }');
    const sizes: number[] = [];
    const batched = await startServer({
      port: 0,
      restApiPort: false,
      modelName: 'double',
      modelBasePath: join(dir, 'pixels'),
      fileSystemPollWaitSeconds: 0,
      enableBatching: true,
      batchingParametersFile: file,
      loader: async () =>
        createServable({
          signatures: { serving_default: { methodName: 'tensorflow/serving/predict', inputs: { x: { name: 'x', dtype: 'DT_FLOAT', shape: [-1] } }, outputs: { y: { name: 'y', dtype: 'DT_FLOAT', shape: [-1] } } } },
          run: async (_s, { x }) => {
            sizes.push(x!.shape[0]!);
            return { y: { dtype: 'float32', shape: x!.shape, values: (x!.values as Float32Array).map((v) => 2 * v) } };
          },
        }),
    });
    const client = createClient({ target: `127.0.0.1:${batched.grpcPort}` });
    const replies = await Promise.all([1, 2, 3, 4].map((v) => client.predict({ model: 'double', inputs: { x: { dtype: 'float32', shape: [1], values: new Float32Array([v]) } } })));
    expect(replies.map((r) => r.outputs.y!.values[0])).toEqual([2, 4, 6, 8]);
    expect(sizes).toEqual([4]);
    client.close();
    await batched.close();
  });

  it('serves gRPC over TLS', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    const pem = { cert: await readFile(cert), key: await readFile(key) };
    const secure = await startServer({ port: 0, restApiPort: false, modelName: 'pixels', modelBasePath: join(dir, 'pixels'), fileSystemPollWaitSeconds: 0, ssl: pem, loader: async () => createServable({ signatures: {}, run: async () => ({}) }) });
    const client = createClient({ target: `localhost:${secure.grpcPort}`, tls: { ca: pem.cert }, metadata: { authorization: 'Bearer test' } });
    expect((await client.getModelStatus({ model: 'pixels' }))[0]!.state).toBe('AVAILABLE');
    client.close();
    const plain = createClient({ target: `localhost:${secure.grpcPort}`, retry: { retries: 0 }, timeoutMs: 2000 });
    await expect(plain.getModelStatus({ model: 'pixels' })).rejects.toMatchObject({ status: 'UNAVAILABLE' });
    plain.close();
    await secure.close();
  });

  it('close() lets in-flight requests finish before stopping (what SIGTERM does)', async () => {
    // The model answers only once both requests are inside it and close() has begun.
    let started = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = await startServer({
      port: 0,
      restApiPort: 0,
      modelName: 'slow',
      modelBasePath: join(dir, 'pixels'),
      fileSystemPollWaitSeconds: 0,
      loader: async () =>
        createServable({
          signatures: { serving_default: { methodName: 'tensorflow/serving/predict', inputs: { x: { name: 'x', dtype: 'DT_FLOAT', shape: [-1] } }, outputs: { y: { name: 'y', dtype: 'DT_FLOAT', shape: [-1] } } } },
          run: async (_s, { x }) => {
            started++;
            await gate;
            return { y: x! };
          },
        }),
    });
    const grpcClient = createClient({ target: `127.0.0.1:${slow.grpcPort}`, retry: { retries: 0 } });
    const restClient = createClient({ target: `127.0.0.1:${slow.restPort}`, transport: 'rest', retry: { retries: 0 } });
    const x = { dtype: 'float32' as const, shape: [1], values: new Float32Array([7]) };
    const inFlight = [grpcClient.predict({ model: 'slow', inputs: { x } }), restClient.predict({ model: 'slow', inputs: { x } })];
    await vi.waitFor(() => expect(started).toBe(2));
    const closed = slow.close();
    release();
    await closed;
    for (const r of await Promise.all(inFlight)) expect(Array.from(r.outputs.y!.values as Float32Array)).toEqual([7]);
    await expect(grpcClient.predict({ model: 'slow', inputs: { x } })).rejects.toMatchObject({ status: 'UNAVAILABLE' });
    grpcClient.close();
    restClient.close();
  });
});
