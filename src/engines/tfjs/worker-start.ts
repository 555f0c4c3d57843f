/**
 * Starting a worker thread from a module of this package, whether it runs compiled (dist/, .js)
 * or from the TypeScript sources in development and tests (.ts through tsx).
 *
 * @example
 * const worker = startWorker(import.meta.url, './worker-entry', { source });
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { LensError } from '../../core/errors.js';

/**
 * Starts `entry` (a path relative to `caller`, without extension) as a worker with `workerData`.
 * The entry takes the caller's extension: .js beside compiled code, .ts beside the sources.
 */
export function startWorker(caller: string, entry: string, workerData: unknown): Worker {
  if (!caller.endsWith('.ts')) return new Worker(new URL(`${entry}.js`, caller), { workerData });
  // A .ts entry needs tsx's loader; a loader given on the command line does not reach a worker's
  // entry module, so the worker registers it itself before importing the entry.
  let api = '';
  try {
    api = createRequire(caller).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
  } catch {
    // reported below
  }
  if (!api || !existsSync(api)) throw new LensError('BACKEND_UNAVAILABLE', 'workers started from the TypeScript sources need the tsx package (a dev dependency); run the compiled dist/ instead');
  const url = new URL(`${entry}.ts`, caller).href;
  const code = `import(${JSON.stringify(pathToFileURL(api).href)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(code, { eval: true, workerData });
}
