/**
 * Choosing and initialising the TensorFlow.js engine, in one place: importing a module of the
 * engine registers nothing; `initBackend()` loads the backend package it picks, patches its
 * kernels and, unless told not to, installs the gradients attribution needs (gradients/).
 *
 * Order of preference: `tensorflow` through `@tensorflow/tfjs-node-gpu` (CUDA), then
 * `@tensorflow/tfjs-node` (libtensorflow on the CPU), then `wasm` (XNNPACK with SIMD), then the
 * pure-JS `cpu` backend. The two native packages are optional: they download libtensorflow in
 * their install script, so they are left to users whose machines can run it.
 *
 * @example
 * import { initBackend } from 'serving-lens';
 * const info = await initBackend();            // or initBackend({ backend: 'cpu' }), or LENS_BACKEND=cpu
 * console.log(info.name, info.simd);           // 'wasm' true
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { LensError, errorMessage } from '../../core/errors.js';
import { installGradients, patchWasmKernels } from './gradients/index.js';
import type { WasmThreadsResult } from './wasm-threads.js';

/** What the user may ask for. `tensorflow-gpu`/`tensorflow` need the optional native packages. */
export type BackendChoice = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
/** The tfjs backend names these map to. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name in use. */
  name: BackendName;
  /** Package that provides it. */
  package: string;
  /** True when the tensorflow backend came from tfjs-node-gpu (CUDA kernels available). */
  gpu: boolean;
  /** WebAssembly SIMD in use (wasm backend only). */
  simd: boolean;
  /**
   * WebAssembly threads in use: the main thread runs tfjs's threaded SIMD build (wasm-threads.ts;
   * LENS_WASM_THREADS sets the count, 1 turns it off); pool workers stay single-threaded.
   */
  threads: boolean;
  /** XNNPACK threads of the wasm backend (1 for other backends). */
  threadCount: number;
  /** Why the wasm backend runs single-threaded, when it does. */
  threadsReason?: string;
  tfjsVersion: string;
  /** Why better backends were skipped, for `lens doctor`. */
  skipped: { choice: BackendChoice; reason: string }[];
}

/** The command that adds GPU support, printed by `lens doctor`. */
export const GPU_INSTALL_COMMAND = `npm install @tensorflow/tfjs-node-gpu@${tf.version_core}`;
export const NATIVE_CPU_INSTALL_COMMAND = `npm install @tensorflow/tfjs-node@${tf.version_core}`;

const NATIVE_PACKAGES: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

const require = createRequire(import.meta.url);

function parseChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  const allowed: BackendChoice[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
  if ((allowed as string[]).includes(v)) return v as BackendChoice;
  throw new LensError(
    'INVALID_ARGUMENT',
    `unknown backend "${value}" (from LENS_BACKEND or --backend): expected one of ${allowed.join(', ')}`,
  );
}

/** Loads one of the optional native packages; it registers the `tensorflow` backend on import. */
async function tryNative(choice: 'tensorflow-gpu' | 'tensorflow'): Promise<string> {
  const pkg = NATIVE_PACKAGES[choice];
  try {
    require.resolve(pkg);
  } catch {
    throw new Error(`${pkg} is not installed`);
  }
  try {
    await import(pkg);
  } catch (e) {
    throw new Error(`${pkg} is installed but failed to load (libtensorflow missing?): ${errorMessage(e)}`);
  }
  if (tf.findBackend('tensorflow') === undefined) {
    // The package registered its backend on another copy of tfjs-core.
    throw new Error(`${pkg} loaded a different @tensorflow/tfjs-core than serving-lens; install ${pkg}@${tf.version_core}`);
  }
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} did not initialise`);
  return pkg;
}

/** Loads a portable backend's package (it registers the backend on import) and sets the backend. */
async function tryPortable(name: 'wasm' | 'cpu'): Promise<void> {
  await (name === 'wasm' ? import('@tensorflow/tfjs-backend-wasm') : import('@tensorflow/tfjs-backend-cpu'));
  if (!(await tf.setBackend(name))) throw new Error(`tfjs backend "${name}" failed to initialise`);
}

/** XNNPACK threads for wasm, in the main thread only (each pool worker already takes a core). */
async function wasmThreads(): Promise<WasmThreadsResult | undefined> {
  if (!isMainThread) return undefined;
  const { enableWasmThreads } = await import('./wasm-threads.js');
  return enableWasmThreads();
}

async function select(choice: BackendChoice): Promise<BackendInfo> {
  const order: BackendChoice[] = choice === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [choice];
  const skipped: BackendInfo['skipped'] = [];
  for (const candidate of order) {
    // Outside the try: a bad LENS_WASM_THREADS is the user's error, not a reason to skip wasm.
    const threadsResult = candidate === 'wasm' ? await wasmThreads() : undefined;
    try {
      let pkg: string;
      let name: BackendName;
      if (candidate === 'tensorflow-gpu' || candidate === 'tensorflow') {
        pkg = await tryNative(candidate);
        name = 'tensorflow';
      } else if (candidate === 'wasm' || candidate === 'cpu') {
        await tryPortable(candidate);
        pkg = `@tensorflow/tfjs-backend-${candidate}`;
        name = candidate;
      } else {
        continue;
      }
      await tf.ready();
      patchWasmKernels();
      const simd = name === 'wasm' ? Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) : false;
      const threads = name === 'wasm' ? Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) : false;
      const threadCount = threads && threadsResult?.enabled ? threadsResult.threads : 1;
      const threadsReason = name !== 'wasm' ? undefined : !isMainThread ? 'a pool worker (one core each)' : threadsResult?.reason;
      return {
        name,
        package: pkg,
        gpu: candidate === 'tensorflow-gpu',
        simd,
        threads,
        threadCount,
        ...(threadsReason ? { threadsReason } : {}),
        tfjsVersion: tf.version_core,
        skipped,
      };
    } catch (e) {
      skipped.push({ choice: candidate, reason: errorMessage(e) });
    }
  }
  throw new LensError(
    'BACKEND_UNAVAILABLE',
    `no TensorFlow.js backend could be initialised: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`,
  );
}

/** What {@link initBackend} sets up. */
export interface InitBackendOptions {
  /** Backend to use (default LENS_BACKEND, else `auto`). */
  backend?: BackendChoice | string;
  /**
   * Install the input gradients attribution needs (gradients/), which loads tfjs' stock gradients
   * with tfjs-layers. Default true; false for forward-only work such as serving.
   */
  gradients?: boolean;
}

/**
 * Initialises the engine: the backend once per process, and the gradients once asked for. Later
 * calls return the same answer unless a different explicit backend is asked for.
 *
 * @example
 * await initBackend({ gradients: false }); // forward passes only: tfjs-layers stays unloaded
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const info = await selectBackend(parseChoice(options.backend ?? process.env.LENS_BACKEND));
  // Input gradients without filter gradients, on every backend registered so far.
  if (options.gradients ?? true) await installGradients();
  return info;
}

function selectBackend(choice: BackendChoice): Promise<BackendInfo> {
  if (current && (choice === 'auto' || matches(current, choice))) return Promise.resolve(current);
  if (pending && choice === 'auto') return pending;
  pending = select(choice).then(
    (info) => {
      current = info;
      return info;
    },
    (e: unknown) => {
      pending = undefined;
      throw e;
    },
  );
  return pending;
}

function matches(info: BackendInfo, choice: BackendChoice): boolean {
  if (choice === 'tensorflow-gpu') return info.name === 'tensorflow' && info.gpu;
  if (choice === 'tensorflow') return info.name === 'tensorflow';
  return info.name === choice;
}

/** The backend initialised so far, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** One line for logs: `wasm (SIMD, 2 threads)`. */
export function describeBackend(info: BackendInfo): string {
  if (info.name === 'tensorflow') return `tensorflow (${info.gpu ? 'GPU via' : 'CPU via'} ${info.package})`;
  if (info.name === 'wasm') return `wasm (${info.simd ? 'SIMD' : 'no SIMD'}, ${info.threadCount > 1 ? `${info.threadCount} threads` : '1 thread'})`;
  return 'cpu (pure JavaScript)';
}
