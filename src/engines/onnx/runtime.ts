/**
 * onnxruntime-node, loaded on demand. It is an optional dependency whose CPU kernels ship inside
 * the npm package (no download at install), so a fresh `npm ci` has it on Linux, macOS and
 * Windows (x64 and arm64). Where it is missing, models stay on TensorFlow.js.
 *
 * @example
 * const runtime = await loadOnnxRuntime();
 * if (runtime.available) console.log(runtime.version, onnxThreads());
 * else console.log('onnxruntime unavailable:', runtime.reason);
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { LensError, errorMessage } from '../../core/errors.js';

/** An onnxruntime tensor, as far as serving-lens reads and builds them. */
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}

export interface OrtSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode?: 'sequential' | 'parallel';
  /** 0 verbose ... 3 error, 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/**
 * The part of onnxruntime-node's API that serving-lens uses. Declared here rather than imported:
 * the package is optional, so the build must not need its type declarations.
 */
export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

/** Held in a variable so that TypeScript does not look for the optional package's types. */
const PACKAGE = 'onnxruntime-node';

export type OnnxRuntime =
  | { available: true; ort: OrtModule; version: string }
  | { available: false; reason: string };

let loading: Promise<OnnxRuntime> | undefined;

/**
 * Intra-op threads: LENS_ORT_THREADS, else one per core.
 *
 * @example
 * onnxThreads({ LENS_ORT_THREADS: '1' }); // 1
 */
export function onnxThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LENS_ORT_THREADS;
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new LensError('INVALID_ARGUMENT', `LENS_ORT_THREADS must be a whole number of at least 1, got "${raw}"`);
  return n;
}

/** Loads onnxruntime-node once; never throws (the reason says why it is unavailable). */
export function loadOnnxRuntime(): Promise<OnnxRuntime> {
  loading ??= (async (): Promise<OnnxRuntime> => {
    const require = createRequire(import.meta.url);
    let version = 'unknown';
    try {
      version = (require(`${PACKAGE}/package.json`) as { version: string }).version;
    } catch {
      return { available: false, reason: 'onnxruntime-node is not installed (it is an optional dependency: npm install onnxruntime-node)' };
    }
    try {
      const mod = (await import(PACKAGE)) as Partial<OrtModule> & { default?: OrtModule };
      const ort = (mod.InferenceSession ? mod : mod.default) as OrtModule | undefined;
      if (!ort?.InferenceSession) return { available: false, reason: 'onnxruntime-node loaded without an InferenceSession export' };
      return { available: true, ort, version };
    } catch (e) {
      return { available: false, reason: `onnxruntime-node ${version} is installed but its native binding failed to load: ${errorMessage(e)}` };
    }
  })();
  return loading;
}
