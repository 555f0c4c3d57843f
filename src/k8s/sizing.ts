/**
 * Serving sizes from measurements: given a `lens profile` result taken against one TF Serving pod
 * (port-forwarded to the pod, not the Service), pick the batching limit and the replica counts
 * that meet a p99 latency target at an expected load.
 */
import { readFile } from 'node:fs/promises';
import { LensError, errorMessage } from '../core/errors.js';
import type { ProfileResult, ProfileRow } from '../serving/profiler.js';
import type { BatchingParameters } from './options.js';

export interface SizingOptions {
  /** p99 latency every request must meet, in ms. */
  latencySloMs: number;
  /** Expected peak load in images per second; sets the replica counts. */
  targetImagesPerSec?: number;
  /** HPA target utilisation the replica count leaves room for (percent). Default 70. */
  targetUtilization?: number;
}

/** What the profile says the deployment should look like. */
export interface Sizing {
  /** The measured cell chosen: the highest throughput whose p99 meets the target. */
  row: ProfileRow;
  batching?: Pick<BatchingParameters, 'maxBatchSize' | 'batchTimeoutMicros'>;
  /** Images per second one pod sustains at the chosen batch size. */
  podImagesPerSec: number;
  minReplicas?: number;
  maxReplicas?: number;
  /** Measured cells left out because requests failed (or nothing was measured), e.g. a batch too large for the server. */
  failed: ProfileRow[];
  /** One line for the Deployment annotation and the CLI. */
  summary: string;
}

/** A row in which every request succeeded and latencies were measured. */
function succeeded(r: ProfileRow): boolean {
  return r.requests > 0 && r.errors === 0 && Number.isFinite(r.p99Ms) && Number.isFinite(r.imagesPerSec);
}

/** `batch 256 x concurrency 1 (20 of 20 requests failed)` for each failed row. */
export function describeFailedRows(rows: readonly ProfileRow[]): string {
  return rows.map((r) => `batch ${r.batchSize} x concurrency ${r.concurrency} (${r.errors > 0 ? `${r.errors} of ${r.requests + r.errors} requests failed` : 'nothing measured'})`).join(', ');
}

/**
 * Chooses batching and replicas from profile rows.
 *
 * @example
 * const sizing = sizeFromProfile(JSON.parse(readFileSync('profile.json', 'utf8')), { latencySloMs: 100, targetImagesPerSec: 800 });
 * sizing.batching?.maxBatchSize; // e.g. 32
 */
export function sizeFromProfile(profile: Pick<ProfileResult, 'rows' | 'model'>, options: SizingOptions): Sizing {
  const slo = options.latencySloMs;
  if (!(slo > 0)) throw new LensError('INVALID_ARGUMENT', `--latency-slo-ms must be positive, got ${slo}`);
  const rows = (profile.rows ?? []).filter(succeeded);
  const failed = (profile.rows ?? []).filter((r) => !succeeded(r));
  if (rows.length === 0) throw new LensError('INVALID_ARGUMENT', `the profile of ${profile.model} has no error-free measurements: ${describeFailedRows(failed)}`);
  const meeting = rows.filter((r) => r.p99Ms <= slo);
  if (meeting.length === 0) {
    const best = rows.reduce((a, b) => (b.p99Ms < a.p99Ms ? b : a));
    throw new LensError('INVALID_ARGUMENT', `no measured batch size meets p99 <= ${slo} ms for ${profile.model}: the lowest p99 was ${best.p99Ms.toFixed(1)} ms (batch ${best.batchSize}); give the pod more CPU or a GPU, or relax --latency-slo-ms`);
  }
  const row = meeting.reduce((a, b) => (b.imagesPerSec > a.imagesPerSec || (b.imagesPerSec === a.imagesPerSec && b.batchSize < a.batchSize) ? b : a));
  const podImagesPerSec = row.imagesPerSec;
  // Wait for a batch to fill at most half the latency headroom, between 0.5 and 10 ms.
  const timeoutMs = Math.min(10, Math.max(0.5, (slo - row.p99Ms) / 2));
  const batching = row.batchSize > 1 ? { maxBatchSize: row.batchSize, batchTimeoutMicros: Math.round(timeoutMs * 1000) } : undefined;
  let minReplicas: number | undefined;
  let maxReplicas: number | undefined;
  if (options.targetImagesPerSec !== undefined) {
    if (!(options.targetImagesPerSec > 0)) throw new LensError('INVALID_ARGUMENT', `--target-images-per-sec must be positive, got ${options.targetImagesPerSec}`);
    const utilization = (options.targetUtilization ?? 70) / 100;
    maxReplicas = Math.max(1, Math.ceil(options.targetImagesPerSec / (podImagesPerSec * utilization)));
    // Half the peak on standing pods: scale-ups then only cover the other half while models load.
    minReplicas = Math.max(1, Math.min(maxReplicas, Math.ceil(options.targetImagesPerSec / 2 / (podImagesPerSec * utilization))));
  }
  const summary =
    `batch ${row.batchSize} x concurrency ${row.concurrency}: p99 ${row.p99Ms.toFixed(1)} ms <= ${slo} ms, ${podImagesPerSec.toFixed(0)} images/s per pod` +
    (maxReplicas !== undefined ? `; ${options.targetImagesPerSec} images/s -> ${minReplicas}..${maxReplicas} replicas` : '') +
    (failed.length > 0 ? `; left out failed ${describeFailedRows(failed)}` : '');
  return { row, ...(batching ? { batching } : {}), podImagesPerSec, ...(minReplicas !== undefined ? { minReplicas, maxReplicas } : {}), failed, summary };
}

/**
 * Reads a `lens profile` JSON file (profile.json).
 *
 * @example
 * const profile = await readProfile('profile.json');
 */
export async function readProfile(path: string): Promise<Pick<ProfileResult, 'rows' | 'model'>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', `cannot read the profile ${path}: ${errorMessage(e)}`);
  }
  const p = parsed as Partial<ProfileResult>;
  // Latencies of a cell whose requests all failed are NaN, written as null in JSON.
  const rowOk = (r: unknown) => {
    const x = r as Record<string, unknown>;
    return (
      typeof x === 'object' && x !== null && [x.batchSize, x.concurrency, x.requests, x.errors].every((v) => typeof v === 'number') && [x.p99Ms, x.imagesPerSec].every((v) => typeof v === 'number' || v === null)
    );
  };
  if (!Array.isArray(p.rows) || !p.rows.every(rowOk)) throw new LensError('INVALID_ARGUMENT', `${path} is not a lens profile result (expected rows with batchSize, concurrency, requests, errors, p99Ms, imagesPerSec)`);
  const rows = (p.rows as unknown as Record<string, unknown>[]).map((r) => ({ ...r, p99Ms: r.p99Ms ?? Number.NaN, imagesPerSec: r.imagesPerSec ?? Number.NaN }) as ProfileRow);
  return { rows, model: typeof p.model === 'string' ? p.model : path };
}
