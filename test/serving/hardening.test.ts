/**
 * Hostile requests against `lens serve` running as a user runs it, in a child process serving TF
 * Serving's saved_model_half_plus_two_cpu (issue 12): each gets a clean error, a valid request keeps
 * being answered within a second meanwhile, peak RSS stays under 512 MiB above the steady level and
 * memory comes back afterwards. Request counts are bounded; a watchdog kills the server if a test
 * hangs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, type ServingClient } from '../../src/serving/index.js';
import { encodeRaw } from '../../src/serving/grpc.js';
import { REPO_ROOT, runLens, SHARED } from '../helpers/cli.js';

const MiB = 2 ** 20;
const WATCHDOG_MS = 170_000;
/**
 * The deadline of the valid request sent throughout: a second, as issue 12 asks, on a machine with
 * a core per runnable process; stretched by the load average beyond that (shared CI runners), since
 * the test checks that the server keeps answering, not how fast the machine is.
 */
const PROBE_DEADLINE_MS = Math.round(1000 * Math.max(1, loadavg()[0]! / cpus().length));
let server: ChildProcess;
let watchdog: NodeJS.Timeout;
let grpcPort: number;
let restPort: number;
let steadyRss: number;
let stderr = '';
let probe: ServingClient;
let raw: grpc.Client;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resident and peak resident memory of the server process, in bytes (Linux /proc). */
function memory(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

const x = (values: number[]) => ({ dtype: 'float32' as const, shape: [values.length, 1], values: new Float32Array(values) });

/** Runs `work` while a valid request is sent again and again; each must be answered within PROBE_DEADLINE_MS. */
async function whileServing<T>(work: () => Promise<T>): Promise<T> {
  let done = false;
  let answered = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (!done) {
      try {
        const r = await probe.predict({ model: 'half', inputs: { x: x([1, 2]) } });
        expect(Array.from(r.outputs.y!.values as Float32Array)).toEqual([2.5, 3]);
        answered++;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await loop;
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(0);
  }
}

/** A raw gRPC Predict with a hand-built PredictRequest; resolves to the status code and message. */
function rawPredict(value: object): Promise<{ code: number; details: string }> {
  const bytes = encodeRaw('tensorflow.serving.PredictRequest', value);
  return new Promise((done) => {
    raw.makeUnaryRequest(
      '/tensorflow.serving.PredictionService/Predict',
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + 60_000 },
      (err) => done(err ? { code: err.code, details: err.details } : { code: 0, details: '' }),
    );
  });
}

/** A REST POST; the body is sent as given (string or a generator of chunks). */
function post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port: restPort, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** Opens a raw TCP connection to the REST port and resolves when the server closes it. */
function openSocket(send = ''): { socket: Socket; closed: Promise<string> } {
  const socket = connect(restPort, '127.0.0.1');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((r) => socket.on('close', () => r(received)));
  if (send) socket.write(send);
  return { socket, closed };
}

beforeAll(async () => {
  [grpcPort, restPort] = [await freePort(), await freePort()];
  server = spawn(
    process.execPath,
    [
      '--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'serve',
      '--port', String(grpcPort), '--rest_api_port', String(restPort),
      '--model_name', 'half', '--model_base_path', resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu'),
      '--file_system_poll_wait_seconds', '0',
      '--max_broadcast_elements', '1000000', '--max_string_elements', '100000', '--max_string_bytes', '1000000',
      '--rest_api_max_json_nodes', '2000000', '--rest_api_max_body_bytes', String(64 * MiB),
      '--rest_api_header_timeout_in_ms', '1500', '--rest_api_body_timeout_in_ms', '3000', '--rest_api_idle_timeout_in_ms', '1500',
      '--rest_api_max_connections', '24',
      '--grpc_channel_arguments', 'grpc.max_concurrent_streams=64',
      '--json',
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  watchdog = setTimeout(() => server.kill('SIGKILL'), WATCHDOG_MS);
  server.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((ready, fail) => {
    server.stdout!.once('data', () => ready());
    server.once('exit', (code) => fail(new Error(`lens serve exited with ${code}: ${stderr}`)));
  });
  probe = createClient({ target: `127.0.0.1:${grpcPort}`, timeoutMs: PROBE_DEADLINE_MS, retry: { retries: 0 } });
  raw = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
  for (let i = 0; i < 5; i++) await probe.predict({ model: 'half', inputs: { x: x([1, 2]) } });
  steadyRss = memory().rss;
}, 120_000);

afterAll(async () => {
  probe?.close();
  raw?.close();
  clearTimeout(watchdog);
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
});

describe('hostile gRPC requests', () => {
  it('a broadcast larger than --max_broadcast_elements is INVALID_ARGUMENT before anything is allocated', async () => {
    const shape = (n: number) => ({ dim: [{ size: n }, { size: 1 }] });
    const r = await whileServing(() => rawPredict({ model_spec: { name: 'half' }, inputs: { x: { dtype: 1, tensor_shape: shape(300_000_000), float_val: [1] } } }));
    expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.details).toMatch(/^tensor parsing error: x \(input "x": shape \[300000000,1\] claims 300000000 elements but 1 values were sent; broadcasting is limited to 1000000 elements \(--max_broadcast_elements\)\)$/);
    // Zeros (no value at all) are a broadcast too; tensor_content must be exactly the shape's bytes.
    expect((await rawPredict({ model_spec: { name: 'half' }, inputs: { x: { dtype: 1, tensor_shape: shape(50_000_000) } } })).code).toBe(grpc.status.INVALID_ARGUMENT);
    const short = await rawPredict({ model_spec: { name: 'half' }, inputs: { x: { dtype: 1, tensor_shape: shape(50_000_000), tensor_content: Buffer.alloc(8) } } });
    expect(short.details).toContain('8 bytes of float32 content do not fill shape [50000000,1]');
    // Within the bound a broadcast is served, as TensorFlow fills it.
    expect((await rawPredict({ model_spec: { name: 'half' }, inputs: { x: { dtype: 1, tensor_shape: shape(1000), float_val: [2] } } })).code).toBe(0);
  });

  it('a DT_STRING broadcast is refused by the limit, and a wrong dtype before decoding', async () => {
    const strings = { dtype: 7, tensor_shape: { dim: [{ size: 50_000_000 }, { size: 1 }] }, string_val: [Buffer.from('x')] };
    const toStringInput = await whileServing(() => rawPredict({ model_spec: { name: 'half', signature_name: 'classify_x_to_y' }, inputs: { inputs: strings } }));
    expect(toStringInput.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(toStringInput.details).toContain('broadcasting is limited to 1000000 elements');
    const toFloatInput = await rawPredict({ model_spec: { name: 'half' }, inputs: { x: strings } });
    expect(toFloatInput).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'Expects arg[0] to be float but string is provided' });
  });
});

describe('hostile REST requests', () => {
  it('60 MiB of empty strings to the string signature: 400 from the JSON node bound, not a heap overflow', async () => {
    const n = Math.floor((60 * MiB) / 3);
    const body = `{"signature_name": "classify_x_to_y", "inputs": {"inputs": [${'"",'.repeat(n - 1)}""]}}`;
    const r = await whileServing(() => post('/v1/models/half:predict', body));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).error).toMatch(/^JSON Parse error: more than 2000000 strings, objects and lists \(--rest_api_max_json_nodes\) at offset: \d+$/);
    // Fewer strings than the parser admits still meet the bound of one tensor.
    const some = await post('/v1/models/half:predict', `{"signature_name": "classify_x_to_y", "inputs": [${'"",'.repeat(150_000)}""]}`);
    expect(some).toMatchObject({ status: 400 });
    expect(JSON.parse(some.text).error).toBe('more than 100000 strings in one tensor (--max_string_elements)');
  });

  it('string bytes are bounded per tensor over gRPC too (--max_string_bytes)', async () => {
    const big = Buffer.alloc(600_000, 97);
    const r = await rawPredict({ model_spec: { name: 'half', signature_name: 'classify_x_to_y' }, inputs: { inputs: { dtype: 7, tensor_shape: { dim: [{ size: 2 }, { size: 1 }] }, string_val: [big, big] } } });
    expect(r).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'tensor parsing error: inputs (input "inputs": 1200000 bytes of strings exceed the limit of 1000000 per tensor (--max_string_bytes))' });
  });

  it('a body over --rest_api_max_body_bytes answers 413 from its Content-Length, without reading it', async () => {
    const r = await whileServing(
      () =>
        new Promise<{ status: number; text: string }>((done) => {
          const req = request({ host: '127.0.0.1', port: restPort, path: '/v1/models/half:predict', method: 'POST', headers: { 'content-length': String(200 * MiB) } }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => done({ status: res.statusCode!, text }));
          });
          req.on('error', () => undefined);
          req.write('{"instances": [[1.0],');
        }),
    );
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text).error).toBe(`Request body larger than max (${200 * MiB} vs. ${64 * MiB}; --rest_api_max_body_bytes)`);
  });

  it('a large body of [1.0] rows is served while other clients are answered', async () => {
    // 16 MiB keeps the test short on a shared machine; bench/serving.bench.ts measures a 64 MiB one.
    const rows = Math.floor((16 * MiB) / 6);
    const body = `{"instances": [${'[1.0],'.repeat(rows - 1)}[1.0]]}`;
    const r = await whileServing(() => post('/v1/models/half:predict', body));
    expect(r.status).toBe(200);
    expect(r.text.length).toBeGreaterThan(rows * 5);
    expect(r.text.startsWith('{\n    "predictions": [[2.5], [2.5], ')).toBe(true);
  });

  it('nesting 9,999 deep with NaN inside is 400 on :predict, :classify and :regress, never 500', async () => {
    const deep = `${'['.repeat(9999)}NaN${']'.repeat(9999)}`;
    const predict = await post('/v1/models/half:predict', `{"instances": ${deep}}`);
    expect(predict).toMatchObject({ status: 400 });
    expect(JSON.parse(predict.text).error).toBe("Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Too many dimensions in tensor: 9998 (at most 254)");
    for (const api of ['classify', 'regress']) {
      const r = await post(`/v1/models/half:${api}`, `{"signature_name": "${api}_x_to_y", "examples": ${deep}}`);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text).error).toBe('Example must be JSON object but got JSON Array');
    }
    const tooDeep = await post('/v1/models/half:predict', `{"instances": ${'['.repeat(10_001)}}`);
    expect(JSON.parse(tooDeep.text).error).toBe('JSON Parse error: Terminate parsing due to Handler error. at offset: 10013');
  });

  it('error replies quote at most a few hundred bytes of the request', async () => {
    const big = 'a'.repeat(30 * MiB);
    const r = await whileServing(() => post('/v1/models/half:predict', `{"instances": ["${big}"]}`));
    expect(r.status).toBe(400);
    expect(r.text.length).toBeLessThan(1200);
    expect(JSON.parse(r.text).error).toMatch(/^Failed to process element: 0 of 'instances' list\. Error: INVALID_ARGUMENT: JSON Value: "a{255}\.\.\. Type: String is not of expected type: float$/);
  });
});

describe('connections', () => {
  it('a request that never finishes its headers or body is closed after the timeouts (408)', async () => {
    const headers = openSocket('POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n');
    const body = openSocket('POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"inst');
    expect(await headers.closed).toMatch(/^HTTP\/1\.1 408 /);
    expect(await body.closed).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('an idle keep-alive connection is closed after --rest_api_idle_timeout_in_ms', async () => {
    const idle = openSocket('GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await idle.closed).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*"state": "AVAILABLE"/);
  });

  it('connections beyond --rest_api_max_connections are refused while the others are served', async () => {
    const held = Array.from({ length: 24 }, () => openSocket());
    await vi.waitFor(() => expect(held.every((h) => h.socket.readyState === 'open')).toBe(true));
    const extra = openSocket('GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await extra.closed).toBe('');
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await vi.waitFor(async () => expect((await post('/v1/models/half:predict', '{"instances": [[1.0]]}')).status).toBe(200));
  });
});

describe('flags', () => {
  it('--grpc_channel_arguments takes key=value pairs as TF Serving does, and a bad one is a one-line error', async () => {
    const r = await runLens(['serve', '--model_base_path', resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu'), '--grpc_channel_arguments', 'grpc.max_concurrent_streams=8,bogus']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--grpc_channel_arguments: "bogus" is not key=value');
    const limits = await runLens(['serve', '--model_base_path', resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu'), '--rest_api_max_body_bytes', '0']);
    expect(limits.stderr).toContain('--rest_api_max_body_bytes must be an integer >= 1, got "0"');
  });
});

describe('memory', () => {
  it('peak RSS stayed under 512 MiB above the steady level, and RSS comes back near it', async () => {
    expect(memory().peak - steadyRss).toBeLessThan(512 * MiB);
    // No heap of the requests' size is kept (bench/serving.bench.ts records the figures over time).
    await vi.waitFor(() => expect(memory().rss - steadyRss).toBeLessThan(256 * MiB), { timeout: 30_000, interval: 500 });
    expect(server.exitCode).toBe(null);
  });
});
