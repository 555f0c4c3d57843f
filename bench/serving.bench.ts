/**
 * Serving benchmarks (issue 3):
 * 1. encode + decode of a [256,224,224,3] float32 batch through a PredictRequest TensorProto
 *    (goal >= 1 GB/s of tensor bytes);
 * 2. Predict round-trip overhead on loopback for [1,224,224,3], client + server, with an identity
 *    model (so no model time): p50 goal < 5 ms; gRPC with the real server's *_val replies and with
 *    tensor_content replies, and REST for comparison;
 * 3. the profiler's own bookkeeping per request, as a share of the measured latency (goal < 1%);
 * 4. `lens serve` as users run it (a child process serving half_plus_two) under hostile and heavy
 *    load (issues 12 and 14): RSS at start-up and after the first requests, the longest wait of a
 *    small gRPC request while a maximal REST request (64 MiB of [1.0] rows) is served, peak RSS,
 *    and RSS a few seconds after the load ends (goal: within 50 MiB of the post-start level).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage } from '../src/proto/index.js';
import { createClient, createServable, profile, startServer, type ServingClient } from '../src/serving/index.js';
import { encodeRaw } from '../src/serving/grpc.js';
import { decodeTensorProto, encodeTensorProto, type HostTensor, type TensorProtoMessage } from '../src/tensor/index.js';
import { median, timeRuns, withPeakRss, writeBenchResult, type Cell } from './lib.js';

const rows: Record<string, Cell>[] = [];
const notes: string[] = [`Load average when the run started: ${loadavg().map((l) => l.toFixed(1)).join(', ')} (other work shares the cores; latencies scale with it).`];

// 1. codec ------------------------------------------------------------------------------------
{
  const shape = [256, 224, 224, 3];
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i += 997) values[i] = i % 255;
  const host: HostTensor = { dtype: 'float32', shape, values };
  const bytes = values.byteLength;
  const encodeOnly: number[] = [];
  let encoded: Buffer = Buffer.alloc(0);
  const { result: times, peakRssMiB, baseRssMiB } = await withPeakRss(async () => {
    // Drop the previous 147 MiB message first, so two never live at once.
    const encode = await timeRuns(() => {
      encoded = Buffer.alloc(0);
      const t0 = performance.now();
      encoded = encodeRaw('tensorflow.serving.PredictRequest', { model_spec: { name: 'resnet' }, inputs: { images: encodeTensorProto(host) } });
      encodeOnly.push(performance.now() - t0);
    }, 7, 1);
    const decode = await timeRuns(() => {
      const req = decodeMessage<{ inputs: Record<string, TensorProtoMessage> }>('tensorflow.serving.PredictRequest', encoded, 'bench');
      const t = decodeTensorProto(req.inputs.images!, 'images');
      if (t.values.length !== n) throw new Error('decode lost values');
    }, 5, 1);
    return { encode, decode };
  });
  void times.encode;
  const enc = median(encodeOnly.slice(1));
  const dec = median(times.decode);
  rows.push({
    workload: 'TensorProto encode+decode [256,224,224,3] f32',
    tensorMiB: +(bytes / 2 ** 20).toFixed(1),
    encodeMs: +enc.toFixed(1),
    decodeMs: +dec.toFixed(1),
    'GB/s': +(bytes / ((enc + dec) / 1000) / 1e9).toFixed(2),
    goal: '>= 1 GB/s',
    peakRssMiB: Math.round(peakRssMiB - baseRssMiB),
  });
  notes.push('Codec: PredictRequest with tensor_content, protobufjs encode (one copy into a fresh buffer: memory-bound, the same as Buffer.allocUnsafe + copy) and decode (zero-copy slice, float view without copy when aligned). GB/s = tensor bytes / (encode + decode), medians of 7 runs; the machine is shared, so figures move with its load.');
}

// 2. Predict round trip ----------------------------------------------------------------------
const dir = await mkdtemp(join(tmpdir(), 'lens-bench-'));
await mkdir(join(dir, 'identity', '1'), { recursive: true });
const identity = async () =>
  createServable({
    signatures: {
      serving_default: {
        methodName: 'tensorflow/serving/predict',
        inputs: { images: { name: 'images:0', dtype: 'DT_FLOAT', shape: [-1, 224, 224, 3] } },
        outputs: { out: { name: 'out:0', dtype: 'DT_FLOAT', shape: [-1, 224, 224, 3] } },
      },
    },
    run: async (_s, inputs) => ({ out: inputs.images! }),
  });
const image: HostTensor = { dtype: 'float32', shape: [1, 224, 224, 3], values: new Float32Array(224 * 224 * 3).map((_, i) => i % 255) };

async function roundTrip(label: string, tensorContent: boolean, transport: 'grpc' | 'rest'): Promise<number> {
  const server = await startServer({ port: 0, restApiPort: 0, models: [{ name: 'identity', basePath: join(dir, 'identity') }], loader: identity, fileSystemPollWaitSeconds: 0, tensorContent });
  const client: ServingClient = createClient({ target: `127.0.0.1:${transport === 'grpc' ? server.grpcPort : server.restPort}`, transport });
  try {
    const times = await timeRuns(() => client.predict({ model: 'identity', inputs: { images: image } }), transport === 'grpc' ? 300 : 40, 20);
    const sorted = [...times].sort((a, b) => a - b);
    const p50 = median(times);
    rows.push({
      workload: `Predict round trip [1,224,224,3] identity model, ${label}`,
      p50Ms: +p50.toFixed(2),
      p90Ms: +sorted[Math.floor(sorted.length * 0.9)]!.toFixed(2),
      goal: transport === 'grpc' ? 'p50 < 5 ms' : 'reference',
      requests: times.length,
    });
    return p50;
  } finally {
    client.close();
    await server.close();
  }
}

const grpcP50 = await roundTrip('gRPC, *_val replies (real server default)', false, 'grpc');
await roundTrip('gRPC, tensor_content replies', true, 'grpc');
await roundTrip('REST columnar JSON', false, 'rest');
notes.push('Round trip: client encode + loopback gRPC + server decode, validation, identity run, encode + client decode; the model itself costs nothing, so this is the whole serving overhead.');

// 3. profiler overhead ----------------------------------------------------------------------
{
  const server = await startServer({ port: 0, restApiPort: false, models: [{ name: 'identity', basePath: join(dir, 'identity') }], loader: identity, fileSystemPollWaitSeconds: 0 });
  try {
    const result = await profile({ target: `127.0.0.1:${server.grpcPort}`, model: 'identity', batchSizes: [1, 8], trials: 100, warmup: 10 });
    for (const r of result.rows) {
      rows.push({
        workload: `profiler bookkeeping per request, batch ${r.batchSize}`,
        overheadMs: +result.overheadMsPerRequest.toFixed(4),
        p50Ms: +r.p50Ms.toFixed(2),
        'overhead %': +((100 * result.overheadMsPerRequest) / r.p50Ms).toFixed(3),
        goal: '< 1%',
      });
    }
    notes.push(`Profiler: median time spent recording each latency (HDR histogram, counters, progress) after the reply, against the p50 it measures. gRPC p50 of the bare round trip above: ${grpcP50.toFixed(2)} ms.`);
  } finally {
    await server.close();
  }
}
await rm(dir, { recursive: true, force: true });

// 4. lens serve under hostile and heavy load -------------------------------------------------
{
  const MiB = 2 ** 20;
  const freePort = async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  };
  const [grpcPort, restPort] = [await freePort(), await freePort()];
  const root = new URL('..', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'serve', '--port', String(grpcPort), '--rest_api_port', String(restPort), '--model_name', 'half',
      '--model_base_path', join(root, '../shared/testdata/savedmodels/saved_model_half_plus_two_cpu'), '--file_system_poll_wait_seconds', '0', '--json'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
  const mem = () => {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kib = (f: string) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(status)![1]) / 1024;
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  };
  const startUp = mem().rss;
  const client = createClient({ target: `127.0.0.1:${grpcPort}`, retry: { retries: 0 } });
  const small: HostTensor = { dtype: 'float32', shape: [2, 1], values: new Float32Array([1, 2]) };
  for (let i = 0; i < 20; i++) await client.predict({ model: 'half', inputs: { x: small } });
  const postStart = mem().rss;
  const post = (body: string) =>
    new Promise<number>((done, fail) => {
      const req = request({ host: '127.0.0.1', port: restPort, path: '/v1/models/half:predict', method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode!));
      });
      req.on('error', fail);
      req.end(body);
    });
  /** Runs `work` while small gRPC requests go one after another; returns their longest latency. */
  const longestWait = async (work: () => Promise<unknown>): Promise<{ maxMs: number; requests: number; seconds: number }> => {
    let done = false;
    let maxMs = 0;
    let requests = 0;
    const t0 = performance.now();
    const loop = (async () => {
      while (!done) {
        const t = performance.now();
        await client.predict({ model: 'half', inputs: { x: small } });
        maxMs = Math.max(maxMs, performance.now() - t);
        requests++;
      }
    })();
    await work();
    const seconds = (performance.now() - t0) / 1000;
    done = true;
    await loop;
    return { maxMs, requests, seconds };
  };
  const rows64 = Math.floor((64 * MiB - 64) / 6);
  const maximal = `{"instances": [${'[1.0],'.repeat(rows64 - 1)}[1.0]]}`;
  const served = await longestWait(async () => {
    if ((await post(maximal)) !== 200) throw new Error('the maximal request failed');
  });
  const peakMaximal = mem().peak;
  rows.push({
    workload: 'lens serve: maximal REST :predict, 64 MiB of [1.0] rows (11.2 M rows), while a small gRPC Predict repeats',
    seconds: +served.seconds.toFixed(1),
    'longest small-request wait ms': Math.round(served.maxMs),
    'small requests answered': served.requests,
    goal: 'wait < 1000 ms',
    'peak RSS above post-start MiB': Math.round(peakMaximal - postStart),
  });
  const strings = `{"signature_name": "classify_x_to_y", "inputs": {"inputs": [${'"",'.repeat(20 * MiB - 1)}""]}}`;
  const deep = `{"instances": ${'['.repeat(9999)}NaN${']'.repeat(9999)}}`;
  const hostile = await longestWait(async () => {
    if ((await post(strings)) !== 400 || (await post(deep)) !== 400) throw new Error('a hostile request was not answered 400');
  });
  rows.push({
    workload: 'lens serve: hostile REST bodies (60 MiB of "" strings; 9,999-deep nesting), answered 400',
    seconds: +hostile.seconds.toFixed(1),
    'longest small-request wait ms': Math.round(hostile.maxMs),
    'small requests answered': hostile.requests,
    goal: 'wait < 1000 ms',
    'peak RSS above post-start MiB': Math.round(mem().peak - postStart),
  });
  const burst = await longestWait(async () => {
    const c = createClient({ target: `127.0.0.1:${grpcPort}`, retry: { retries: 0 } });
    await Promise.all(Array.from({ length: 1600 }, () => c.predict({ model: 'half', inputs: { x: small } })));
    c.close();
  });
  rows.push({
    workload: 'lens serve: 1,600 concurrent small gRPC Predicts',
    seconds: +burst.seconds.toFixed(1),
    'longest small-request wait ms': Math.round(burst.maxMs),
    'small requests answered': burst.requests + 1600,
    note: 'the repeated request queues behind the 1,600 on the same client',
  });
  const after: Record<string, Cell> = {
    workload: 'lens serve RSS: at start-up, after 20 small requests, then seconds after the load ends',
    'start-up MiB': Math.round(startUp),
    'post-start MiB': Math.round(postStart),
  };
  const ended = performance.now();
  for (const at of [1, 3, 5, 10, 20]) {
    await new Promise((r) => setTimeout(r, Math.max(0, ended + at * 1000 - performance.now())));
    after[`+${at} s MiB`] = Math.round(mem().rss);
  }
  after.goal = 'within 50 MiB of post-start a few seconds after';
  rows.push(after);
  client.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  notes.push(
    'lens serve: a child process (node --import tsx src/cli/main.ts serve, default limits) serving saved_model_half_plus_two_cpu; RSS and peak RSS (VmHWM) from /proc. ' +
      '"Longest small-request wait" is the stall another client sees: the slowest of back-to-back 2-row gRPC Predicts sent while the load runs. ' +
      'The REST parser works a megabyte at a time and replies are written a few milliseconds at a time, yielding to other requests in between.',
  );
  notes.push(
    'Memory after the load: requests whose inputs reach 4 MiB run in a worker thread that loads the same SavedModel and ends 2 s after the last ' +
      'large request (src/serving/large-requests.ts), taking its WebAssembly memory with it; the main thread\'s wasm memory, which can never shrink, ' +
      'only ever holds small requests. Start-up: the image codecs (sharp) load only for graphs with decode ops, onnxruntime only for the ONNX engine. ' +
      '"start-up" is RSS when the server prints its ports, "post-start" after 20 small requests.',
  );
}

writeBenchResult('serving', 'TF Serving codec, round trip and profiler overhead', rows, notes);
