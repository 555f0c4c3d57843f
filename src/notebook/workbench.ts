/**
 * What notebooks (and the demo) need around the library: which model and images to use (from
 * `LENS_MODEL` / `LENS_DATA`, with offline defaults), which server to talk to (`LENS_SERVER`, or a
 * local one started in-process), top-k classes of a batch, and a loopback file server so that
 * "predict from a URL" also runs offline.
 *
 * Environment variables (all optional; the defaults run offline on a fresh clone):
 * - `LENS_MODEL`: the model spec notebooks load (default: the bundled `default` model).
 * - `LENS_DATA`: a folder of images to use instead of generated shapes.
 * - `LENS_OUT`: where notebooks write files (default `../out/notebooks`, i.e. the repository's out/).
 * - `LENS_SERVER`: gRPC host:port of a running TF Serving (e.g. in a KubeFlow namespace);
 *   `LENS_SERVER_REST` its REST host:port, `LENS_SERVER_MODEL` the served model name.
 *
 * @example
 * const model = await loadImageModel(notebookModelSpec({ prefer: 'resnet50' }));
 * const images = await sampleImages({ dir: 'out/samples', size: model.inputShape[0] });
 * const top = await topClasses(model, await Promise.all(images.map((i) => loadPixels(i.path, { size: [64, 64] }))));
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, resolve, sep } from 'node:path';
import express from 'express';
import { forwardRows, toProbabilities } from '../attribution/engine.js';
import type { ImageInput } from '../attribution/types.js';
import { expandImagePaths, loadMask, maskBeside } from '../image/files.js';
import { LensError, errorMessage } from '../core/errors.js';
import { encodeJpeg, encodePng } from '../image/index.js';
import { encodeMask, generateShape } from '../datasets/shapes.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { LoadedModelInfo } from '../models/load.js';
import { topK, type ImageModel } from '../core/model.js';
import { zooStatus } from '../models/zoo/index.js';
import { startServer, type RunningServer } from '../serving/server.js';

/**
 * The model spec a notebook loads: `LENS_MODEL` when set; else `prefer` (a zoo id such as
 * 'resnet50') when its files are already in the cache; else the bundled `default` model. Nothing
 * is downloaded, so notebooks run offline.
 *
 * @example
 * notebookModelSpec({ prefer: 'resnet50' }); // 'resnet50' after `lens models download resnet50`, else 'default'
 */
export function notebookModelSpec(options: { prefer?: string; cacheDir?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const env = options.env ?? process.env;
  if (env.LENS_MODEL) return env.LENS_MODEL;
  if (options.prefer) {
    const status = zooStatus(options.cacheDir ? { cacheDir: options.cacheDir } : {}).find((z) => z.id === options.prefer);
    if (status?.cached) return options.prefer;
  }
  return 'default';
}

/**
 * Where a notebook writes its files: `LENS_OUT/<name>` when `LENS_OUT` is set (tests point it at a
 * temporary folder), else `../out/notebooks/<name>` (the repository's `out/`, from `notebooks/`).
 *
 * @example
 * const out = notebookOutDir('04-comparing-baselines');
 */
export function notebookOutDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.LENS_OUT ?? join('..', 'out', 'notebooks'), name);
}

/**
 * Writes a notebook's output file atomically (temporary file, then rename; parent folders created).
 *
 * @example
 * await saveFile(join(out, 'metrics.csv'), csvTable(rows));
 */
export const saveFile: (path: string, data: string | Uint8Array) => Promise<void> = writeFileAtomic;

/** An image file for a notebook, with its object mask when it has one. */
export interface SampleImage {
  name: string;
  path: string;
  /** H*W, 1 inside the object (generated shapes; or an IMAGE.mask.png beside a LENS_DATA image). */
  mask?: Uint8Array;
  /** True class name of a generated shape. */
  className?: string;
}

export interface ShapeImagesOptions {
  count: number;
  /** Image side in pixels (the model's input size). */
  size: number;
  seed?: number;
  /** Default 'jpeg' (what TF Serving clients send). */
  format?: 'jpeg' | 'png';
}

/**
 * Writes generated shapes (src/datasets) to `dir` as `NNNNN-class.jpg` (or .png) with their object
 * masks beside them as `NNNNN-class.mask.png` (255 inside), the layout `lens compare --images`
 * reads. Every file is written atomically.
 *
 * @example
 * const files = await writeShapeImages('out/samples', { count: 4, size: 64, seed: 7 });
 * files[0].path; // 'out/samples/00000-star.jpg'
 */
export async function writeShapeImages(dir: string, options: ShapeImagesOptions): Promise<SampleImage[]> {
  const { count, size } = options;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(count) || count < 1) throw new LensError('INVALID_ARGUMENT', `image count must be a positive integer, got ${count}`);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new LensError('WRITE_FAILED', `cannot create image folder ${dir}: ${errorMessage(e)}`);
  }
  const ext = options.format === 'png' ? 'png' : 'jpg';
  const out: SampleImage[] = [];
  for (let i = 0; i < count; i++) {
    const s = generateShape(seed, i, size);
    const stem = `${String(i).padStart(5, '0')}-${s.className}`;
    const pixels = { data: s.pixels, height: size, width: size, channels: 3 };
    const path = join(dir, `${stem}.${ext}`);
    await writeFileAtomic(path, ext === 'png' ? await encodePng(pixels) : await encodeJpeg(pixels));
    await writeFileAtomic(join(dir, `${stem}.mask.png`), await encodeMask(s.mask, size, size));
    out.push({ name: stem, path, mask: s.mask, className: s.className });
  }
  return out;
}

export interface SampleImagesOptions extends Partial<ShapeImagesOptions> {
  /** Where generated images go (ignored when images come from `LENS_DATA`). */
  dir: string;
  /** A folder of images; default `LENS_DATA`, else generated shapes. */
  data?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Images for a notebook: the first `count` images of `LENS_DATA` (masks from `IMAGE.mask.png`
 * beside them, at the `size` given), or `count` generated shapes written to `dir` (default 4, 64 px).
 *
 * @example
 * const images = await sampleImages({ dir: '/tmp/samples', size: 64, count: 6 });
 */
export async function sampleImages(options: SampleImagesOptions): Promise<SampleImage[]> {
  const count = options.count ?? 4;
  const size = options.size ?? 64;
  const data = options.data ?? (options.env ?? process.env).LENS_DATA;
  if (!data) return writeShapeImages(options.dir, { count, size, ...(options.seed !== undefined ? { seed: options.seed } : {}), ...(options.format ? { format: options.format } : {}) });
  const paths = expandImagePaths([data]).slice(0, count);
  const out: SampleImage[] = [];
  for (const path of paths) {
    const name = relative(data, path) || path;
    const maskPath = maskBeside(path);
    const mask = maskPath ? await loadMask(maskPath, [size, size]) : undefined;
    out.push({ name, path, ...(mask ? { mask } : {}) });
  }
  return out;
}

/** One class of a top-k answer. */
export interface ClassScore {
  index: number;
  label?: string;
  /** Softmax of the logits (or the model's probability). */
  probability: number;
  /** The model's own output for the class (logit or probability). */
  score: number;
}

/**
 * The top-k classes of each image with probabilities, for any ImageModel (local, converted, or
 * a remote TF Serving model).
 *
 * @example
 * const [top] = await topClasses(model, [pixels], 5);
 * top[0]; // { index: 3, label: 'star', probability: 0.98, score: 7.1 }
 */
export async function topClasses(model: ImageModel, images: readonly ImageInput[], k = 5): Promise<ClassScore[][]> {
  if (!Number.isInteger(k) || k < 1) throw new LensError('INVALID_ARGUMENT', `top-k must be a positive integer, got ${k}`);
  const rows = await forwardRows(model, images.map((i) => i.data), 32);
  return rows.map((row) => topK(toProbabilities(row, model.output), k, model.labels).map(({ index, label, score }) => ({ index, ...(label !== undefined ? { label } : {}), probability: score, score: row[index]! })));
}

/** A running TF Serving endpoint for a notebook: a real one from `LENS_SERVER`, or a local one. */
export interface NotebookServing {
  /** gRPC host:port. */
  grpc: string;
  /** REST host:port, when known. */
  rest?: string;
  /** Served model name. */
  model: string;
  /** The in-process server, when one was started. */
  local?: RunningServer;
  /** One line for the notebook: where predictions go. */
  description: string;
  /** Stops the local server (no-op for a remote one). */
  close(): Promise<void>;
}

/**
 * Connects to `LENS_SERVER` (gRPC host:port; `LENS_SERVER_REST` and `LENS_SERVER_MODEL` optional)
 * or else starts `lens serve`'s server in-process on 127.0.0.1 with free ports, serving
 * `modelBasePath` as `modelName`.
 *
 * @example
 * const serving = await notebookServer({ modelName: 'shapes', modelBasePath: 'out/servable' });
 * const client = createClient({ target: serving.grpc });
 * // ...
 * await serving.close();
 */
export async function notebookServer(options: { modelName: string; modelBasePath: string; env?: NodeJS.ProcessEnv; log?: (line: string) => void }): Promise<NotebookServing> {
  const env = options.env ?? process.env;
  if (env.LENS_SERVER) {
    const model = env.LENS_SERVER_MODEL ?? options.modelName;
    return {
      grpc: env.LENS_SERVER,
      ...(env.LENS_SERVER_REST ? { rest: env.LENS_SERVER_REST } : {}),
      model,
      description: `TF Serving at ${env.LENS_SERVER} (gRPC${env.LENS_SERVER_REST ? `, REST ${env.LENS_SERVER_REST}` : ''}), model "${model}" (from LENS_SERVER)`,
      close: async () => undefined,
    };
  }
  const local = await startServer({
    host: '127.0.0.1',
    port: 0,
    restApiPort: 0,
    modelName: options.modelName,
    modelBasePath: resolve(options.modelBasePath),
    ...(options.log ? { log: options.log } : {}),
  });
  const grpc = `${local.host}:${local.grpcPort}`;
  const rest = local.restPort !== null ? `${local.host}:${local.restPort}` : undefined;
  return {
    grpc,
    ...(rest ? { rest } : {}),
    model: options.modelName,
    local,
    description: `local server (lens serve, in this process) at gRPC ${grpc}${rest ? `, REST ${rest}` : ''}, model "${options.modelName}" from ${options.modelBasePath}`,
    close: () => local.close(),
  };
}

/** A static file server on loopback. */
export interface FileServer {
  /** http://127.0.0.1:PORT */
  baseUrl: string;
  /** URL of a file under the served folder (path relative to it, or absolute inside it). */
  url(path: string): string;
  close(): Promise<void>;
}

/**
 * Serves the files of `dir` over HTTP on 127.0.0.1 (a free port), read-only, so that code taking
 * image URLs can be shown working offline. Paths outside `dir` answer 404.
 *
 * @example
 * const files = await serveFiles('out/samples');
 * await loadPixels(files.url('00000-star.jpg'));
 * await files.close();
 */
export async function serveFiles(dir: string): Promise<FileServer> {
  const root = resolve(dir);
  const app = express();
  app.use(express.static(root, { index: false, fallthrough: true }));
  app.use((_req, res) => void res.status(404).end());
  const server: Server = createServer(app);
  const port = await new Promise<number>((resolvePort, reject) => {
    server.once('error', (e) => reject(new LensError('INVALID_ARGUMENT', `cannot serve ${dir} on 127.0.0.1: ${errorMessage(e)}`)));
    server.listen(0, '127.0.0.1', () => resolvePort((server.address() as AddressInfo).port));
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    url(path: string) {
      const rel = relative(root, resolve(root, path));
      if (rel.startsWith('..')) throw new LensError('INVALID_ARGUMENT', `${path} is outside the served folder ${dir}`);
      return `${baseUrl}/${rel.split(sep).map(encodeURIComponent).join('/')}`;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/**
 * Facts about a loaded model, as table rows (property, value): format, file, input, preprocessing
 * and where it came from, classes, labels, output kind, gradients, and layer and parameter counts.
 *
 * @example
 * showTable(modelFacts(await loadImageModel('default')));
 */
export function modelFacts(model: ImageModel & { info?: LoadedModelInfo }): { property: string; value: string }[] {
  const info = model.info;
  const rows: [string, string][] = [
    ['name', model.name],
    ['input', `${model.inputShape.join(' x ')} (H x W x C), pixels 0..255`],
    ['preprocessing', `${model.preprocessing}${info ? ` (from ${info.preprocessingSource})` : ''}`],
    ['classes', String(model.classes)],
    ['labels', model.labels ? `${model.labels.slice(0, 5).join(', ')}${model.labels.length > 5 ? ', ...' : ''}` : '(none)'],
    ['output', `${model.output}s${info?.finalSoftmax ? ' (the model ends in a softmax; scores are taken before it where possible)' : ''}`],
    ['gradients', model.gradient ? 'yes (local model: every attribution method works)' : 'no (forward only: occlusion and RISE)'],
  ];
  if (info) {
    rows.splice(1, 0, ['format', info.format], ['file', info.path ?? '(zoo cache)']);
    const structure = info.structure;
    if (structure?.kind === 'layers') {
      rows.push(['layers', String(structure.model.layers.length)], ['parameters', structure.model.countParams().toLocaleString('en-US')]);
    }
  }
  return rows.map(([property, value]) => ({ property, value }));
}

/**
 * The layers of a tfjs LayersModel behind a loaded model (name, type, output shape, parameters),
 * or an empty list for models built from graphs (SavedModel, TFLite).
 *
 * @example
 * showTable(layerRows(model).slice(0, 12));
 */
export function layerRows(model: ImageModel & { info?: LoadedModelInfo }): { layer: string; type: string; output: string; parameters: number }[] {
  const structure = model.info?.structure;
  if (structure?.kind !== 'layers') return [];
  return structure.model.layers.map((l) => {
    const shape = l.outputShape;
    const shapes = Array.isArray(shape[0]) || shape.length === 0 ? (shape as unknown as (number | null)[][]) : [shape as (number | null)[]];
    return {
      layer: l.name,
      type: l.getClassName(),
      output: shapes.map((s) => `[${s.map((d) => d ?? 'N').join(', ')}]`).join(' '),
      parameters: l.countParams(),
    };
  });
}
