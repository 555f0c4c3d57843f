/**
 * The text-format files `lens serve` reads, as tensorflow_model_server does:
 * `--model_config_file` (ModelServerConfig), `--batching_parameters_file` (BatchingParameters) and
 * `--monitoring_config_file` (MonitoringConfig).
 *
 * @example
 * const models = await readModelConfigFile('models.config');
 * // [{ name: 'half', basePath: '/models/half', policy: { all: true }, labels: { stable: 123 } }]
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { LensError, errorMessage } from '../core/errors.js';
import type { BatchingOptions } from './batching.js';
import { modelSourcesOf, type ModelServerConfigMessage } from './core.js';
import type { ModelSource } from './manager.js';
import { DEFAULT_METRICS_PATH } from './metrics.js';
import { parseTextFormat } from './text-format.js';

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new LensError('NOT_FOUND', `${flag} ${path}: cannot read the file: ${errorMessage(e)}`);
  }
}

/** Parses ModelServerConfig text; relative base paths resolve against `relativeTo`. */
export function parseModelConfig(text: string, what: string, relativeTo = process.cwd()): ModelSource[] {
  const msg = parseTextFormat<ModelServerConfigMessage>('tensorflow.serving.ModelServerConfig', text, what);
  try {
    return modelSourcesOf(msg, what).map((s) => ({ ...s, basePath: isAbsolute(s.basePath) ? s.basePath : resolve(relativeTo, s.basePath) }));
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', errorMessage(e));
  }
}

/**
 * Reads a `--model_config_file`. Relative base paths are taken from the current directory, as
 * the real server does.
 */
export async function readModelConfigFile(path: string): Promise<ModelSource[]> {
  return parseModelConfig(await readText(path, '--model_config_file'), path);
}

interface BatchingParametersMessage {
  max_batch_size?: { value?: number };
  batch_timeout_micros?: { value?: number };
  max_enqueued_batches?: { value?: number };
  num_batch_threads?: { value?: number };
  allowed_batch_sizes?: number[];
}

/** Parses BatchingParameters text into batching options. */
export function parseBatchingParameters(text: string, what: string): BatchingOptions {
  const m = parseTextFormat<BatchingParametersMessage>('tensorflow.serving.BatchingParameters', text, what);
  const o: BatchingOptions = {};
  if (m.max_batch_size) o.maxBatchSize = Number(m.max_batch_size.value ?? 0);
  if (m.batch_timeout_micros) o.batchTimeoutMicros = Number(m.batch_timeout_micros.value ?? 0);
  if (m.max_enqueued_batches) o.maxEnqueuedBatches = Number(m.max_enqueued_batches.value ?? 0);
  if (m.num_batch_threads) o.numBatchThreads = Number(m.num_batch_threads.value ?? 0);
  if (m.allowed_batch_sizes?.length) o.allowedBatchSizes = m.allowed_batch_sizes.map(Number);
  return o;
}

/** Reads a `--batching_parameters_file`. */
export async function readBatchingParametersFile(path: string): Promise<BatchingOptions> {
  return parseBatchingParameters(await readText(path, '--batching_parameters_file'), path);
}

/** Prometheus settings of a MonitoringConfig: null when disabled. */
export function parseMonitoringConfig(text: string, what: string): { path: string } | null {
  const m = parseTextFormat<{ prometheus_config?: { enable?: boolean; path?: string } }>('tensorflow.serving.MonitoringConfig', text, what);
  if (!m.prometheus_config?.enable) return null;
  const path = m.prometheus_config.path || DEFAULT_METRICS_PATH;
  if (!path.startsWith('/')) throw new LensError('INVALID_ARGUMENT', `${what}: prometheus_config.path must start with "/", got "${path}"`);
  return { path };
}

/** Reads a `--monitoring_config_file`. */
export async function readMonitoringConfigFile(path: string): Promise<{ path: string } | null> {
  return parseMonitoringConfig(await readText(path, '--monitoring_config_file'), path);
}

