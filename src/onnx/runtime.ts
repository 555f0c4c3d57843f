/**
 * onnxruntime-node, loaded on demand. It is an optional dependency whose CPU kernels ship inside
 * the npm package (no download at install), so a fresh `npm ci` has it on Linux, macOS and
 * Windows (x64 and arm64). Where it is missing, models stay on TensorFlow.js.
 *
 * @example
 * const runtime = await loadOnnxRuntime();
 * if (runtime.available) console.log(runtime.version, runtime.threads);
 * else console.log('onnxruntime unavailable:', runtime.reason);
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { errorMessage } from '../errors.js';

type OrtModule = typeof import('onnxruntime-node');

export type OnnxRuntime =
  | { available: true; ort: OrtModule; version: string; threads: number }
  | { available: false; reason: string };

let loading: Promise<OnnxRuntime> | undefined;

/** Intra-op threads: LENS_ORT_THREADS, else one per core. */
export function onnxThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LENS_ORT_THREADS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (Number.isInteger(n) && n > 0) return n;
  }
  return availableParallelism();
}

/** Loads onnxruntime-node once; never throws (the reason says why it is unavailable). */
export function loadOnnxRuntime(): Promise<OnnxRuntime> {
  loading ??= (async (): Promise<OnnxRuntime> => {
    const require = createRequire(import.meta.url);
    let version = 'unknown';
    try {
      version = (require('onnxruntime-node/package.json') as { version: string }).version;
    } catch {
      return { available: false, reason: 'onnxruntime-node is not installed (it is an optional dependency: npm install onnxruntime-node)' };
    }
    try {
      const mod = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
      const ort = (mod.InferenceSession ? mod : mod.default) as OrtModule;
      if (!ort?.InferenceSession) return { available: false, reason: 'onnxruntime-node loaded without an InferenceSession export' };
      return { available: true, ort, version, threads: onnxThreads() };
    } catch (e) {
      return { available: false, reason: `onnxruntime-node ${version} is installed but its native binding failed to load: ${errorMessage(e)}` };
    }
  })();
  return loading;
}
