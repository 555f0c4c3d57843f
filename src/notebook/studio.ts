/**
 * `studio()`: opens `lens studio` from a notebook for the model the notebook uses. The studio runs
 * as its own `lens` process (so long explanations never block the kernel), bound to 127.0.0.1;
 * inside Jupyter the link goes through jupyter-server-proxy (`<base>/proxy/<port>/`, which the
 * workbench image installs), so it opens from the browser that shows the notebook, also in
 * KubeFlow and JupyterHub.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LensError } from '../core/errors.js';
import type { LoadedModelInfo } from '../models/load.js';
import { showMarkdown } from './display.js';

/** Where `lens` lives in this package (bin/lens.js runs the compiled CLI). */
const LENS_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/lens.js');

export interface StudioLaunchOptions {
  /** A model spec (as `--model` takes it) or a loaded model; default `LENS_MODEL`, else `default`. */
  model?: string | { info: Pick<LoadedModelInfo, 'spec' | 'path'> };
  /** Images, folders or URLs to open. */
  images?: readonly string[];
  /** TF Serving HOST:PORT and served model name, for served vs local. */
  server?: string;
  servedModel?: string;
  /** Port on 127.0.0.1 (default: any free port). */
  port?: number;
  /** Environment to read the Jupyter base URL from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds to wait for the studio to load its model. Default 120000. */
  timeoutMs?: number;
}

export interface StudioHandle {
  /** The address to open: through jupyter-server-proxy inside Jupyter, else the studio's own URL. */
  url: string;
  /** The studio's own address on 127.0.0.1. */
  localUrl: string;
  port: number;
  /** Stops the studio process. */
  stop(): Promise<void>;
}

/**
 * The link a browser showing this notebook server can open for a local port: JupyterHub's
 * `JUPYTERHUB_SERVICE_PREFIX` or KubeFlow's `NB_PREFIX`, then `proxy/PORT/`; undefined outside them.
 *
 * @example
 * proxiedStudioUrl(41234, { NB_PREFIX: '/notebook/team/alice' }); // '/notebook/team/alice/proxy/41234/'
 */
export function proxiedStudioUrl(port: number, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const prefix = env.JUPYTERHUB_SERVICE_PREFIX ?? env.NB_PREFIX;
  if (prefix === undefined) return undefined;
  return `${prefix.replace(/\/+$/, '')}/proxy/${port}/`;
}

/**
 * Starts `lens studio` for a model and shows a link to it in the notebook.
 *
 * @example
 * const model = await loadImageModel(notebookModelSpec());
 * const s = await studio({ model, images: ['../shared/images'] });   // shows "Open lens studio"
 * // ... later
 * await s.stop();
 */
export async function studio(options: StudioLaunchOptions = {}): Promise<StudioHandle> {
  const env = options.env ?? process.env;
  const model = typeof options.model === 'object' ? (options.model.info.path ?? options.model.info.spec) : options.model;
  const args = [LENS_BIN, 'studio', '--host', '127.0.0.1', '--port', String(options.port ?? 0)];
  if (model) args.push('--model', model);
  if (options.server) args.push('--server', options.server);
  if (options.servedModel) args.push('--served-model', options.servedModel);
  args.push(...(options.images ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const localUrl = await new Promise<string>((resolveUrl, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new LensError('INTERNAL', `lens studio did not start within ${options.timeoutMs ?? 120_000} ms: ${stderr.trim()}`));
    }, options.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const url = /lens studio: (\S+)/.exec(stdout)?.[1];
      if (url) {
        clearTimeout(timer);
        resolveUrl(url);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new LensError('INVALID_ARGUMENT', `lens studio exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
  child.removeAllListeners('exit');
  const port = Number(new URL(localUrl).port);
  const url = proxiedStudioUrl(port, env) ?? localUrl;
  showMarkdown(`[Open lens studio](${url}) (model ${model ?? 'default'}, port ${port})`);
  return {
    url,
    localUrl,
    port,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}
