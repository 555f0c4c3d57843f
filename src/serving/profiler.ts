/**
 * `lens profile`: latency and throughput of a served model against batch size, done properly.
 * After a warm-up, every (batch size, concurrency) cell sends `trials` Predict requests (gRPC or
 * REST) with `concurrency` in flight at once, and records each latency in an HDR histogram:
 * p50/p90/p95/p99/mean/min/max, throughput in images/s, request and reply sizes, errors counted.
 * Results go to JSON and CSV, and a latency-and-throughput chart (PNG).
 *
 * @example
 * const result = await profile({ target: 'localhost:8500', model: 'resnet', batchSizes: [1, 8, 32], trials: 20 },
 *   (p) => console.error(`${p.done}/${p.total}`));
 * await writeFile('profile.csv', profileCsv(result));
 */
import { build as buildHistogram } from 'hdr-histogram-js';
import { LensError, errorMessage } from '../core/errors.js';
import sharp from 'sharp';
import { bytesForDecodeJpeg } from '../image/format.js';
import { decodePixels, encodeJpeg, readImageBytes, type Pixels } from '../image/index.js';
import type { HostTensor } from '../tensor/index.js';
import { createClient } from './client.js';
import type { ModelRef, ServingClient, TlsOptions, Transport } from './client-api.js';
import { describeImageInput } from './image-input.js';

export const DEFAULT_BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface ProfileOptions extends ModelRef {
  /** host:port of the server (ignored when `client` is given). */
  target?: string;
  transport?: Transport;
  tls?: boolean | TlsOptions;
  metadata?: Record<string, string>;
  /** Host header / :authority for a server behind a host-routing ingress (KServe); see ClientOptions.hostHeader. */
  hostHeader?: string;
  /** An existing client to use instead of creating one. */
  client?: ServingClient;
  /** Input alias (default: the image input of the signature). */
  input?: string;
  /** [H, W, C] when the signature does not say (encoded-image inputs). */
  inputShape?: readonly [number, number, number];
  /** Batch sizes to measure (default 1, 2, 4, ..., 256). */
  batchSizes?: number[];
  /** Requests in flight at once (default [1]). */
  concurrency?: number[];
  /** Measured requests per (batch size, concurrency) cell (default 20). */
  trials?: number;
  /** Unmeasured requests before each batch size (default 3). */
  warmup?: number;
  /** Image to send (path or URL; default: deterministic noise). */
  image?: string;
  /** Deadline per request in ms (default 60000). */
  timeoutMs?: number;
  /** Stop measuring a cell after this many errors (default: trials, i.e. never early). */
  maxErrors?: number;
}

export interface ProfileRow {
  batchSize: number;
  concurrency: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** Images per second over the cell's wall time (successful requests only). */
  imagesPerSec: number;
  requestsPerSec: number;
  /** Bytes of one request and one reply body. */
  requestBytes: number;
  responseBytes: number;
  wallMs: number;
}

export interface ProfileResult {
  target: string;
  /** The Host header / :authority the requests carried, when one was set (a KServe predictor's host name). */
  hostHeader?: string;
  transport: Transport;
  model: string;
  version: number | null;
  signature: string;
  inputAlias: string;
  inputKind: string;
  inputShape: [number, number, number];
  trials: number;
  warmup: number;
  startedAt: string;
  rows: ProfileRow[];
  /** First error messages seen (at most 5). */
  errorSamples: string[];
  /** Median time the profiler's own bookkeeping took per request (ms). */
  overheadMsPerRequest: number;
  /** The class the model gave the image sent, by the name its reply carries (`classes` of `lens export`), when it does. */
  predictedClass?: string;
}

export interface ProfileProgress {
  done: number;
  total: number;
  batchSize: number;
  concurrency: number;
  /** 'warmup' or 'measure'. */
  phase: 'warmup' | 'measure';
}

function noisePixels(h: number, w: number, c: number): Pixels {
  const data = new Float32Array(h * w * c);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s >>> 16) & 0xff;
  }
  return { data, height: h, width: w, channels: c, source: '<noise>' };
}

/** The first string of a DT_STRING output (a class name), if the reply has one. */
function firstName(t: HostTensor | undefined): string | undefined {
  return t?.dtype === 'string' && t.values.length ? new TextDecoder().decode(t.values[0]) : undefined;
}

/**
 * Profiles a served model. `onProgress` is called after every request (warm-up and measured).
 */
export async function profile(options: ProfileOptions, onProgress?: (p: ProfileProgress) => void): Promise<ProfileResult> {
  const batchSizes = options.batchSizes ?? DEFAULT_BATCH_SIZES;
  const levels = options.concurrency ?? [1];
  const trials = options.trials ?? 20;
  const warmup = options.warmup ?? 3;
  for (const b of batchSizes) if (!Number.isInteger(b) || b < 1) throw new LensError('INVALID_ARGUMENT', `batch size ${b} is not a positive integer`);
  for (const c of levels) if (!Number.isInteger(c) || c < 1) throw new LensError('INVALID_ARGUMENT', `concurrency ${c} is not a positive integer`);
  if (!Number.isInteger(trials) || trials < 1) throw new LensError('INVALID_ARGUMENT', `trials must be a positive integer, got ${trials}`);
  const own = !options.client;
  if (own && !options.target) throw new LensError('INVALID_ARGUMENT', 'profile needs a target host:port or a client');
  const client =
    options.client ??
    createClient({
      target: options.target!,
      transport: options.transport ?? 'grpc',
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
      ...(options.hostHeader !== undefined ? { hostHeader: options.hostHeader } : {}),
      retry: { retries: 0 },
    });
  try {
    const ref: ModelRef = {
      model: options.model,
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(options.label !== undefined ? { label: options.label } : {}),
      ...(options.signature ? { signature: options.signature } : {}),
    };
    const remote = await describeImageInput(client, { ...ref, ...(options.input ? { input: options.input } : {}), ...(options.inputShape ? { inputShape: options.inputShape } : {}) });
    const fileBytes = options.image ? await readImageBytes(options.image) : undefined;
    // An encoded-image signature gets the file itself (the workload clients send); noise is sent
    // as a JPEG of the served model's size.
    let jpeg: Uint8Array | null = null;
    let size = remote.inputShape;
    if (remote.inputKind === 'jpeg' && fileBytes) {
      jpeg = await bytesForDecodeJpeg(fileBytes, options.image!);
      const meta = await sharp(jpeg).metadata();
      size ??= [meta.height ?? 0, meta.width ?? 0, 3];
    } else if (!size) {
      throw new LensError('MODEL_UNSUPPORTED', `${remote.what}: input "${remote.inputAlias}" takes encoded images of a size the model does not say; give --image FILE or inputShape [H,W,C]`);
    }
    const [h, w, c] = size;
    const pixels = jpeg ? undefined : fileBytes ? await decodePixels(fileBytes, { size: [h, w], resize: 'pad', channels: c === 1 ? 1 : 3, source: options.image! }) : noisePixels(h, w, c);
    if (remote.inputKind === 'jpeg' && pixels) jpeg = await encodeJpeg(pixels);
    const encoded = jpeg;
    const batchInput = (n: number): HostTensor => {
      if (encoded) return { dtype: 'string', shape: [n], values: Array.from({ length: n }, () => encoded) };
      if (!pixels) throw new LensError('INTERNAL', 'profile: no pixels to send');
      const per = pixels.data.length;
      if (remote.inputKind === 'uint8') {
        const u = new Uint8Array(per * n);
        for (let i = 0; i < n; i++) for (let j = 0; j < per; j++) u[i * per + j] = Math.round(pixels.data[j]!);
        return { dtype: 'uint8', shape: [n, h, w, c], values: u };
      }
      const f = new Float32Array(per * n);
      for (let i = 0; i < n; i++) f.set(pixels.data, i * per);
      return { dtype: 'float32', shape: [n, h, w, c], values: f };
    };
    const timeoutMs = options.timeoutMs ?? 60_000;
    let predictedClass: string | undefined;
    const total = batchSizes.length * (warmup + levels.length * trials);
    let done = 0;
    const rows: ProfileRow[] = [];
    const errorSamples: string[] = [];
    const overheads: number[] = [];
    for (const batchSize of batchSizes) {
      const inputs = { [remote.inputAlias]: batchInput(batchSize) };
      const call = { ...ref, inputs, timeoutMs };
      for (let i = 0; i < warmup; i++) {
        try {
          await client.predict(call);
        } catch (e) {
          if (errorSamples.length < 5) errorSamples.push(`batch ${batchSize} warm-up: ${errorMessage(e)}`);
        }
        onProgress?.({ done: ++done, total, batchSize, concurrency: levels[0]!, phase: 'warmup' });
      }
      for (const concurrency of levels) {
        const hist = buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
        let errors = 0;
        let ok = 0;
        let sent = 0;
        let requestBytes = 0;
        let responseBytes = 0;
        let min = Infinity;
        let max = 0;
        let sum = 0;
        const maxErrors = options.maxErrors ?? trials;
        const start = performance.now();
        const worker = async (): Promise<void> => {
          while (sent < trials && errors < maxErrors) {
            sent++;
            const t0 = performance.now();
            try {
              const r = await client.predict(call);
              const t1 = performance.now();
              predictedClass ??= firstName(r.outputs.classes);
              const ms = t1 - t0;
              hist.recordValue(Math.max(1, Math.round(ms * 1000)));
              ok++;
              sum += ms;
              if (ms < min) min = ms;
              if (ms > max) max = ms;
              requestBytes = r.requestBytes;
              responseBytes = r.responseBytes;
              overheads.push(performance.now() - t1);
            } catch (e) {
              errors++;
              if (errorSamples.length < 5) errorSamples.push(`batch ${batchSize} concurrency ${concurrency}: ${errorMessage(e)}`);
            }
            onProgress?.({ done: ++done, total, batchSize, concurrency, phase: 'measure' });
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
        const wallMs = performance.now() - start;
        done += trials - sent;
        // HDR buckets report a bucket's upper edge (3 significant digits): keep within the exact extremes.
        const pct = (p: number) => (ok ? Math.min(max, Math.max(min, hist.getValueAtPercentile(p) / 1000)) : NaN);
        rows.push({
          batchSize,
          concurrency,
          requests: ok,
          errors,
          p50Ms: pct(50),
          p90Ms: pct(90),
          p95Ms: pct(95),
          p99Ms: pct(99),
          meanMs: ok ? sum / ok : NaN,
          minMs: ok ? min : NaN,
          maxMs: ok ? max : NaN,
          imagesPerSec: (ok * batchSize) / (wallMs / 1000),
          requestsPerSec: ok / (wallMs / 1000),
          requestBytes,
          responseBytes,
          wallMs,
        });
        if (typeof (hist as { destroy?: () => void }).destroy === 'function') (hist as { destroy: () => void }).destroy();
      }
    }
    return {
      target: client.target,
      ...(options.hostHeader !== undefined && own ? { hostHeader: options.hostHeader } : {}),
      transport: client.transport,
      model: options.model,
      version: options.version ?? null,
      signature: options.signature || 'serving_default',
      inputAlias: remote.inputAlias,
      inputKind: remote.inputKind,
      inputShape: [h, w, c],
      trials,
      warmup,
      startedAt: new Date().toISOString(),
      rows,
      errorSamples,
      overheadMsPerRequest: overheads.length ? overheads.sort((a, b) => a - b)[overheads.length >> 1]! : 0,
      ...(predictedClass !== undefined ? { predictedClass } : {}),
    };
  } finally {
    if (own) client.close();
  }
}

const CSV_COLUMNS: (keyof ProfileRow)[] = [
  'batchSize', 'concurrency', 'requests', 'errors', 'p50Ms', 'p90Ms', 'p95Ms', 'p99Ms', 'meanMs', 'minMs', 'maxMs',
  'imagesPerSec', 'requestsPerSec', 'requestBytes', 'responseBytes', 'wallMs',
];

/**
 * The rows of a profile as an aligned text table (header line first), each column as wide as its
 * widest cell (latencies of large batches run to seconds), as `lens profile` prints it.
 *
 * @example
 * console.log(profileTable(result).join('\n'));   // batch  conc  p50ms ...
 */
export function profileTable(result: ProfileResult): string[] {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
  const table = [
    ['batch', 'conc', 'p50ms', 'p90ms', 'p95ms', 'p99ms', 'meanms', 'img/s', 'errors', 'req bytes', 'reply bytes'],
    ...result.rows.map((r) => [String(r.batchSize), String(r.concurrency), f(r.p50Ms), f(r.p90Ms), f(r.p95Ms), f(r.p99Ms), f(r.meanMs), f(r.imagesPerSec), String(r.errors), String(r.requestBytes), String(r.responseBytes)]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  return table.map((row) => row.map((cell, c) => cell.padStart(widths[c]!)).join('  '));
}

/** The rows of a profile as CSV (header line first). */
export function profileCsv(result: ProfileResult): string {
  const cell = (v: number) => (Number.isFinite(v) ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : '');
  return [CSV_COLUMNS.join(','), ...result.rows.map((r) => CSV_COLUMNS.map((k) => cell(r[k])).join(','))].join('\n') + '\n';
}
