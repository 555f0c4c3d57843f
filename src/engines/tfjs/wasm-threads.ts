/**
 * Multithreaded WebAssembly for the tfjs `wasm` backend in Node.
 *
 * tfjs-backend-wasm 4.22 ships a threaded SIMD build (XNNPACK on an Emscripten pthread pool) but
 * never uses it in Node: its WASM_HAS_MULTITHREAD_SUPPORT flag answers false there (tfjs issue
 * 3830), and forcing the flag on does not help, because its loader gives Node's worker_threads a
 * `blob:` URL for the pthread worker script, which Node refuses (ERR_WORKER_PATH).
 *
 * The package also ships that build unbundled in `wasm-out/`: a CommonJS Emscripten factory, which
 * pthread workers can load by path, and the pthread worker glue as an exported string. This module
 * starts that build with the package's own files, wraps it in the package's exported `BackendWasm`
 * class and registers it as the `wasm` backend, so kernels and gradients stay the same. XNNPACK
 * gives each output tile to one thread, so sums keep their order: ResNet50 logits and input
 * gradients came out bitwise equal to the single-threaded build's (bench/wasm-threads.bench.ts;
 * test/perf/wasm-threads.test.ts checks a small conv net).
 *
 * Three details need a hand, none of them by editing the package:
 * - The worker glue runs as an ES module from a `data:` URL (Node accepts those for workers), with
 *   `require` and `__filename` defined for it the way a CommonJS worker would have them.
 * - backend.cc caps the XNNPACK pool at logical cores / 2 (it assumes two hyperthreads per core),
 *   which leaves one thread on a 2-vCPU machine. The core count the module reads when it starts is
 *   answered as twice the requested threads, so that the cap is the request.
 * - A running pthread keeps Node's event loop alive. The pool's threads only work while the main
 *   thread blocks inside a kernel, so they are unreferenced and a process exits when its work is done.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { BackendWasm, getThreadsCount, setThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { LensError, errorMessage } from '../../core/errors.js';

/** The tfjs-backend-wasm version whose internal files and module contract this was verified against. */
export const VERIFIED_WASM_VERSION = '4.22.0';

/** Most threads the build can use: its pre-started pthread pool and backend.cc's own cap are both 8. */
export const MAX_WASM_THREADS = 8;

/** What {@link enableWasmThreads} did. */
export interface WasmThreadsResult {
  /** The `wasm` backend will run the threaded build. */
  enabled: boolean;
  /** Threads the `wasm` backend will use (1 when not enabled). */
  threads: number;
  /** Why threads are off, or why fewer threads than asked for. */
  reason?: string;
}

interface PthreadWorker {
  unref(): void;
}

// Node's type declarations leave out the WebAssembly JS API (it comes with lib.dom); the few parts used here.
type ImportTable = Record<string, unknown>;
type Imports = Record<string, ImportTable>;
interface WebAssemblyApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: ArrayBufferLike };
  instantiate(binary: Uint8Array, imports: Imports): Promise<{ instance: object; module: object }>;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

type CFunction = (...args: number[]) => number;

/** The parts of the Emscripten module used here (see wasm-out/tfjs-backend-wasm-threaded-simd.d.ts). */
interface ThreadedModule {
  cwrap(name: string, returnType: 'number' | null, argTypes: 'number'[]): CFunction;
  PThread: { runningWorkers: PthreadWorker[]; terminateAllThreads(): void };
  tfjs?: Record<'init' | 'initWithThreadsCount' | 'getThreadsCount' | 'registerTensor' | 'disposeData' | 'dispose', CFunction>;
}

/** Emscripten module settings; the factory fills this same object in as the module. */
interface FactoryConfig {
  locateFile(path: string, prefix: string): string | URL;
  instantiateWasm(imports: Imports, receive: (instance: object, module: object) => void): object;
  onAbort(what: unknown): void;
  PThread?: ThreadedModule['PThread'];
}

type ModuleFactory = (config: FactoryConfig) => Promise<ThreadedModule>;

const require = createRequire(import.meta.url);
const WASM_OUT = '@tensorflow/tfjs-backend-wasm/wasm-out/';
const START_TIMEOUT_MS = 60_000;
/** The JS import through which the module asks for the number of logical cores. */
const CORE_COUNT_IMPORT = '_emscripten_num_logical_cores';

let enabled: Promise<WasmThreadsResult> | undefined;

/** The thread count asked for, and where it came from (for messages). */
function requestedThreads(threads: number | undefined): { count: number; from: string } {
  const fromEnv = process.env.LENS_WASM_THREADS;
  let count: number;
  let from: string;
  if (threads !== undefined) [count, from] = [threads, `threads ${threads}`];
  else if (fromEnv !== undefined && fromEnv.trim() !== '') [count, from] = [Number(fromEnv), `LENS_WASM_THREADS="${fromEnv}"`];
  else [count, from] = [Math.min(availableParallelism(), MAX_WASM_THREADS), `${availableParallelism()} core(s)`];
  if (!Number.isInteger(count) || count < 1) {
    throw new LensError('INVALID_ARGUMENT', `wasm threads: ${from} is not a whole number of at least 1`);
  }
  return { count, from };
}

function sharedMemoryWorks(): boolean {
  try {
    return new wasmApi.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/** The pthread worker glue as an ES module, with the CommonJS names it expects. */
function pthreadWorkerUrl(factoryPath: string, glue: string): URL {
  const prelude =
    `import { createRequire } from 'node:module';\n` +
    `const require = createRequire(${JSON.stringify(pathToFileURL(factoryPath).href)});\n` +
    `const __filename = ${JSON.stringify(factoryPath)};\n`;
  // The exported string holds raw newlines inside its string literals; escape them back (tfjs's
  // own loader does the same before making its Blob).
  return new URL(`data:text/javascript,${encodeURIComponent(prelude + glue.replace(/\n/g, '\\n'))}`);
}

/** The module's imports with the logical core count answered as `cores`, or undefined when the import is missing. */
function withCoreCount(imports: Imports, cores: number): Imports | undefined {
  let found = false;
  const out: Imports = {};
  for (const [namespace, table] of Object.entries(imports)) {
    const copy: ImportTable = { ...table };
    for (const [name, value] of Object.entries(copy)) {
      if (typeof value === 'function' && value.name === CORE_COUNT_IMPORT) {
        copy[name] = () => cores;
        found = true;
      }
    }
    out[namespace] = copy;
  }
  return found ? out : undefined;
}

/** Starts the threaded Emscripten module from the package's wasm-out/ files. */
async function startThreadedModule(threads: number): Promise<ThreadedModule> {
  const factoryPath = require.resolve(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.js`);
  const factory = require(factoryPath) as ModuleFactory;
  const glue = (require(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.worker.js`) as { wasmWorkerContents?: unknown }).wasmWorkerContents;
  if (typeof glue !== 'string') throw new Error(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.worker.js exports no wasmWorkerContents string`);
  const binary = await readFile(join(dirname(factoryPath), 'tfjs-backend-wasm-threaded-simd.wasm'));
  const workerUrl = pthreadWorkerUrl(factoryPath, glue);

  return new Promise<ThreadedModule>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      config.PThread?.terminateAllThreads();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const timer = setTimeout(() => fail(new Error(`its pthread workers did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const config: FactoryConfig = {
      locateFile: (path, prefix) => (path.endsWith('.worker.js') ? workerUrl : prefix + path),
      instantiateWasm(imports, receive) {
        const patched = withCoreCount(imports, 2 * threads);
        if (!patched) {
          fail(new Error(`the module has no ${CORE_COUNT_IMPORT} import, so its thread cap cannot be set`));
          return {};
        }
        wasmApi.instantiate(binary, patched).then((r) => receive(r.instance, r.module), fail);
        return {};
      },
      onAbort: (what) => fail(new Error(`the module aborted: ${String(what)}`)),
    };
    try {
      factory(config).then((module) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(module);
      }, fail);
    } catch (e) {
      fail(e);
    }
  });
}

/** A started threaded module in tfjs's BackendWasm, as tfjs's own loader would hand it over. */
async function createThreadedBackend(threads: number): Promise<BackendWasm> {
  const module = await startThreadedModule(threads);
  const c = (name: string, returnType: 'number' | null, args: 'number'[]) => module.cwrap(name, returnType, args);
  module.tfjs = {
    init: c('init', null, []),
    initWithThreadsCount: c('init_with_threads_count', null, ['number']),
    getThreadsCount: c('get_threads_count', 'number', []),
    registerTensor: c('register_tensor', null, ['number', 'number', 'number']),
    disposeData: c('dispose_data', null, ['number']),
    dispose: c('dispose', null, []),
  };
  setThreadsCount(threads);
  // The constructor creates the XNNPACK thread pool (init_with_threads_count).
  const backend = new BackendWasm(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
  for (const worker of module.PThread.runningWorkers) worker.unref();
  return backend;
}

async function enable(threads: number): Promise<WasmThreadsResult> {
  const off = (reason: string): WasmThreadsResult => ({ enabled: false, threads: 1, reason });
  if (version_wasm !== VERIFIED_WASM_VERSION) {
    return off(`@tensorflow/tfjs-backend-wasm ${version_wasm} is installed; wasm threads were verified with ${VERIFIED_WASM_VERSION} only`);
  }
  const engine = tf.engine();
  const stock = engine.registryFactory.wasm;
  if (!stock) return off('@tensorflow/tfjs-backend-wasm registered no wasm backend');
  const initialised = 'the wasm backend is already initialised in this thread; enable threads before initBackend() or tf.setBackend()';
  if ('wasm' in engine.registry) return off(initialised);
  if (!sharedMemoryWorks()) return off('this JavaScript engine has no shared WebAssembly memory');
  let backend: BackendWasm;
  try {
    backend = await createThreadedBackend(threads);
  } catch (e) {
    return off(`the threaded wasm build did not start: ${errorMessage(e)}`);
  }
  if ('wasm' in engine.registry) {
    backend.dispose();
    return off(initialised);
  }
  // The first initialisation gets the backend verified above; a later one (after tf.engine().reset()
  // or removeBackend) starts a fresh module.
  let verified: BackendWasm | undefined = backend;
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const b = verified ?? (await createThreadedBackend(threads));
      verified = undefined;
      return b;
    },
    stock.priority,
  );
  // Read by initBackend() to report threads.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  const actual = getThreadsCount();
  return actual === threads ? { enabled: true, threads } : { enabled: true, threads: actual, reason: `the build started ${actual} threads of the ${threads} asked for` };
}

/**
 * Makes the tfjs `wasm` backend run tfjs-backend-wasm's threaded SIMD build in this thread (the
 * main thread or a worker), with `threads` XNNPACK threads. Call it before the wasm backend
 * initialises (before `initBackend()` or `tf.setBackend('wasm')`); afterwards it changes nothing
 * and says so. It never throws for an environment that cannot run threads: it returns
 * `{ enabled: false, threads: 1, reason }` and leaves the stock single-threaded backend in place.
 * Once enabled, later calls return the first answer.
 *
 * @param threads XNNPACK threads, at most {@link MAX_WASM_THREADS}. Default: `LENS_WASM_THREADS`
 *   when set, else the number of cores (capped at 8). 1 leaves the stock backend.
 * @throws LensError INVALID_ARGUMENT when `threads` (or LENS_WASM_THREADS) is not a whole number >= 1.
 *
 * @example
 * import { enableWasmThreads, initBackend } from 'serving-lens';
 * const threads = await enableWasmThreads(2);   // { enabled: true, threads: 2 }
 * if (!threads.enabled) console.warn(`wasm runs single-threaded: ${threads.reason}`);
 * await initBackend({ backend: 'wasm' });
 */
export async function enableWasmThreads(threads?: number): Promise<WasmThreadsResult> {
  const { count: asked, from } = requestedThreads(threads);
  if (enabled) return enabled;
  if (asked === 1) return { enabled: false, threads: 1, reason: `one thread requested (${from})` };
  const count = Math.min(asked, MAX_WASM_THREADS);
  const attempt = enable(count).then((r) =>
    r.enabled && asked > MAX_WASM_THREADS ? { ...r, reason: `${asked} threads requested; the build uses at most ${MAX_WASM_THREADS}` } : r,
  );
  enabled = attempt;
  const result = await attempt;
  if (!result.enabled && enabled === attempt) enabled = undefined;
  return result;
}
