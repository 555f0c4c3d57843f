/**
 * What `lens explain`, `lens batch`, `lens compare` and `lens verify` share: the attribution flags
 * (defined once, with their parsing), finding image files, loading them at the model's input
 * size, a progress bar on stderr, and option parsing helpers.
 * Commands add the shared flags when they register, so this module loads only light modules at
 * the top (images, models and the progress bar are imported inside the functions that use them),
 * which keeps `lens --help` fast.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { LensError, isLensError } from '../core/errors.js';
import type { Pixels } from '../image/index.js';
import { isUrl } from '../image/url.js';
import type { ImageModel } from '../core/model.js';
import type { Progress, ProgressCallback } from '../attribution/types.js';

/** Flags that more than one attribution command takes; see {@link addAttributionFlags}. */
export type AttributionFlag =
  | 'method'
  | 'baseline'
  | 'steps'
  | 'rule'
  | 'target'
  | 'singleTarget'
  | 'viz'
  | 'sign'
  | 'preprocess'
  | 'resize'
  | 'labels'
  | 'batchSize'
  | 'seed'
  | 'backend'
  | 'engine'
  | 'checkpoint'
  | 'inputTensor'
  | 'outputTensor'
  | 'progress';

const ATTRIBUTION_FLAGS: Record<AttributionFlag, { flags: string; description: string; defaultValue?: string }> = {
  method: { flags: '--method <name>', description: 'ig, eg, gradient, gradient_x_input, smoothgrad[:METHOD], vargrad[:METHOD], blur_ig, guided_ig, xrai, gradcam, occlusion, rise', defaultValue: 'ig' },
  baseline: { flags: '--baseline <spec>', description: 'black, white, zero, uniform, gaussian[:sigma=S], blur[:sigma=S], maxdist, image:PATH; join with + to average', defaultValue: 'black' },
  steps: { flags: '--steps <n>', description: 'path steps (IG 50, Blur IG 100, Guided IG 128); Expected Gradients samples' },
  rule: { flags: '--rule <rule>', description: 'riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gausslegendre, nonuniform, adaptive', defaultValue: 'gausslegendre' },
  target: { flags: '--target <target>', description: 'top1, topK (each of the k best), a class index, or a label', defaultValue: 'top1' },
  // For commands that write one explanation per image.
  singleTarget: { flags: '--target <target>', description: 'top1, a class index or a label', defaultValue: 'top1' },
  viz: { flags: '--viz <method>', description: 'overlay (colour by |attribution| over the dimmed photo), outline, or the named conventions heat_map, blended_heat_map, masked_image, alpha_scaling, saliency_grayscale, saliency_diverging', defaultValue: 'overlay' },
  sign: { flags: '--sign <sign>', description: 'all, positive, negative, absolute_value', defaultValue: 'absolute_value' },
  preprocess: { flags: '--preprocess <name>', description: 'raw, unit, symmetric, caffe, torch, bgr (default: what the model declares, else raw)' },
  resize: { flags: '--resize <mode>', description: 'pad, crop or squash to the model input size', defaultValue: 'pad' },
  labels: { flags: '--labels <file>', description: 'class labels, one per line (or a JSON array)' },
  batchSize: { flags: '--batch-size <n>', description: 'images per model call (memory grows with it, not with steps)' },
  seed: { flags: '--seed <n>', description: 'seed for random baselines and sampling methods', defaultValue: '0' },
  backend: { flags: '--backend <name>', description: 'tfjs backend: auto, tensorflow-gpu, tensorflow, wasm, cpu' },
  engine: { flags: '--engine <name>', description: 'runs Keras, tfjs and SavedModel models: auto (onnxruntime native CPU when available), onnxruntime, tfjs (or LENS_ENGINE)' },
  checkpoint: { flags: '--checkpoint <step>', description: 'TF1 checkpoint directory: the step to load (default: the newest in its checkpoint file)' },
  inputTensor: { flags: '--input-tensor <name>', description: 'checkpoint or frozen .pb: the image input tensor, NAME:0 (default: the one float image placeholder)' },
  outputTensor: { flags: '--output-tensor <name>', description: 'checkpoint or frozen .pb: the scores tensor, NAME:0 (default: the last Softmax\'s input)' },
  progress: { flags: '--no-progress', description: 'no progress bar on stderr' },
};

/** The flags that choose what to load from a checkpoint or a frozen graph. */
export const GRAPH_MODEL_FLAGS: readonly AttributionFlag[] = ['checkpoint', 'inputTensor', 'outputTensor'];

/**
 * Adds shared attribution flags to a command, in the order given (help lists them so).
 *
 * @example
 * addAttributionFlags(program.command('explain'), ['method', 'baseline', 'steps']);
 */
export function addAttributionFlags(command: Command, names: readonly AttributionFlag[]): Command {
  for (const name of names) {
    const { flags, description, defaultValue } = ATTRIBUTION_FLAGS[name];
    if (defaultValue === undefined) command.option(flags, description);
    else command.option(flags, description, defaultValue);
  }
  return command;
}

/** The shared flags as commander parses them (camelCase keys; `progress` is false with --no-progress). */
export interface AttributionFlagValues {
  method: string;
  baseline: string;
  steps?: string;
  rule: string;
  target: string;
  viz: string;
  sign: string;
  preprocess?: string;
  resize: string;
  labels?: string;
  batchSize?: string;
  seed: string;
  backend?: string;
  engine?: string;
  checkpoint?: string;
  inputTensor?: string;
  outputTensor?: string;
  progress: boolean;
  json?: boolean;
}

/**
 * The numeric shared flags, checked: --steps and --batch-size positive integers (when given),
 * --seed an integer.
 *
 * @example
 * attributionNumbers({ steps: '32', seed: '7' }); // { steps: 32, seed: 7 }
 */
export function attributionNumbers(flags: Pick<AttributionFlagValues, 'steps' | 'batchSize' | 'seed'>): { steps?: number; batchSize?: number; seed: number } {
  const seed = Number(flags.seed);
  if (!Number.isInteger(seed)) throw new LensError('INVALID_ARGUMENT', `--seed must be an integer, got "${flags.seed}"`);
  return {
    seed,
    ...(flags.steps !== undefined ? { steps: positiveInt(flags.steps, '--steps') } : {}),
    ...(flags.batchSize !== undefined ? { batchSize: positiveInt(flags.batchSize, '--batch-size') } : {}),
  };
}

/**
 * What the shared flags ask of model loading (--preprocess, --labels, --backend, --engine), as options for
 * loadImageModel.
 *
 * @example
 * await loadImageModel(flags.model, modelLoadFlags(flags));
 */
export function modelLoadFlags(
  flags: Pick<AttributionFlagValues, 'preprocess' | 'labels' | 'backend' | 'engine'> & Partial<Pick<AttributionFlagValues, 'checkpoint' | 'inputTensor' | 'outputTensor'>>,
): { preprocess?: string; labels?: string; backend?: string; engine?: string; checkpoint?: number | string; inputTensor?: string; outputTensor?: string } {
  return {
    ...(flags.preprocess ? { preprocess: flags.preprocess } : {}),
    ...(flags.labels ? { labels: flags.labels } : {}),
    ...(flags.backend ? { backend: flags.backend } : {}),
    ...(flags.engine ? { engine: flags.engine } : {}),
    ...graphModelFlags(flags),
  };
}

/**
 * --checkpoint (a step number, or a prefix name), --input-tensor and --output-tensor as loadImageModel options.
 *
 * @example
 * graphModelFlags({ checkpoint: '12000', inputTensor: 'Input:0' }); // { checkpoint: 12000, inputTensor: 'Input:0' }
 */
export function graphModelFlags(flags: Partial<Pick<AttributionFlagValues, 'checkpoint' | 'inputTensor' | 'outputTensor'>>): { checkpoint?: number | string; inputTensor?: string; outputTensor?: string } {
  return {
    ...(flags.checkpoint !== undefined ? { checkpoint: /^\d+$/.test(flags.checkpoint) ? Number(flags.checkpoint) : flags.checkpoint } : {}),
    ...(flags.inputTensor ? { inputTensor: flags.inputTensor } : {}),
    ...(flags.outputTensor ? { outputTensor: flags.outputTensor } : {}),
  };
}

/** Whether to draw a progress bar: not with --no-progress or --json, and only on a terminal. */
export function wantsProgressBar(flags: Pick<AttributionFlagValues, 'progress' | 'json'>): boolean {
  return flags.progress && !flags.json && process.stderr.isTTY === true;
}

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.gif', '.tif', '.tiff'];

/** Object masks that live beside images (`IMAGE.mask.png`), which folder expansion leaves out. */
export function isMaskFile(path: string): boolean {
  return /\.mask\.[a-z]+$/i.test(path);
}

/** Image files from arguments: files and URLs as given, folders expanded to their images (sorted, masks left out). */
export function expandImagePaths(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (isUrl(a)) {
      out.push(a);
      continue;
    }
    let isDir = false;
    try {
      isDir = statSync(a).isDirectory();
    } catch {
      throw new LensError('NOT_FOUND', `image ${a} does not exist`);
    }
    if (!isDir) {
      out.push(a);
      continue;
    }
    const files = readdirSync(a)
      .filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()))
      .sort()
      .map((f) => join(a, f))
      .filter((p) => !isMaskFile(p));
    if (files.length === 0) throw new LensError('NOT_FOUND', `folder ${a} holds no images (${IMAGE_EXTENSIONS.join(' ')})`);
    out.push(...files);
  }
  return out;
}

/** A file name stem for outputs: the image's base name without extension. */
export function imageStem(path: string): string {
  const base = basename(path.split('?')[0] ?? path);
  const ext = extname(base);
  return (ext ? base.slice(0, -ext.length) : base) || 'image';
}

/** Loads images at the model's input size and channel count. */
export async function loadModelImages(paths: readonly string[], model: Pick<ImageModel, 'inputShape'>, resize = 'pad'): Promise<Pixels[]> {
  const { loadPixels, parseResizeMode } = await import('../image/index.js');
  const mode = parseResizeMode(resize);
  const [h, w, c] = model.inputShape;
  if (c !== 1 && c !== 3) throw new LensError('MODEL_UNSUPPORTED', `the model takes ${c}-channel images; images can be loaded with 1 or 3 channels`);
  return Promise.all(paths.map((p) => loadPixels(p, { size: [h, w], resize: mode, channels: c })));
}

/** A progress bar on stderr (when it is a terminal, or forced), as a progress callback. */
export async function progressBar(enabled: boolean): Promise<{ onProgress?: ProgressCallback; stop(): void }> {
  if (!enabled) return { stop() {} };
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { stream: process.stderr, format: '{bar} {value}/{total} {stage}', hideCursor: true, clearOnComplete: true, noTTYOutput: false, etaBuffer: 20 },
    Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress(p: Progress) {
      if (!started) {
        bar.start(p.total, p.done, { stage: p.stage ?? '' });
        started = true;
      }
      bar.setTotal(p.total);
      bar.update(p.done, { stage: p.stage ?? '' });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Parses a positive integer flag. */
export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new LensError('INVALID_ARGUMENT', `${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** Parses a number flag. */
export function finiteNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new LensError('INVALID_ARGUMENT', `${flag} must be a number, got "${value}"`);
  return n;
}

/** Parses HOST:PORT. */
export function hostPort(value: string, flag = '--server'): string {
  if (!/^[^\s:]+:\d{1,5}$/.test(value) && !/^\[[0-9a-f:]+\]:\d{1,5}$/i.test(value) && !/^https?:\/\//.test(value)) {
    throw new LensError('INVALID_ARGUMENT', `${flag} must be HOST:PORT, got "${value}"`);
  }
  return value;
}

/**
 * Opens a served model as a forward-only ImageModel. `like` (the local copy) supplies the input
 * size when the signature does not state it, and the labels.
 */
export async function openServedModel(options: {
  target: string;
  model: string;
  /** Transport, TLS, Host header and metadata from the connection flags (see server-flags.ts). */
  connection: import('./server-flags.js').ConnectionFlagValues;
  version?: number;
  signature?: string;
  output?: string;
  like?: ImageModel;
}): Promise<{ model: import('../models/remote.js').RemoteImageModel; close(): void }> {
  if (options.output !== undefined && options.output !== 'logit' && options.output !== 'probability') {
    throw new LensError('INVALID_ARGUMENT', `--served-output must be logit or probability, got "${options.output}"`);
  }
  const { connectionOptions } = await import('./server-flags.js');
  const { createClient } = await import('../serving/client.js');
  const { createRemoteModel } = await import('../models/remote.js');
  const client = createClient({ target: options.target, ...connectionOptions(options.connection) });
  try {
    const base = {
      client,
      model: options.model,
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(options.signature ? { signature: options.signature } : {}),
      ...(options.output ? { outputKind: options.output as 'logit' | 'probability' } : {}),
      ...(options.like?.labels ? { labels: options.like.labels } : {}),
    };
    // The served model's own input size wins; the local copy's size fills in only when the served
    // model does not say it (unknown dimensions, encoded images without a pixel signature).
    let model;
    try {
      model = await createRemoteModel(base);
    } catch (e) {
      if (!options.like || !isLensError(e, 'MODEL_UNSUPPORTED') || !/size|shape/.test(e.message)) throw e;
      model = await createRemoteModel({ ...base, inputShape: options.like.inputShape });
    }
    return { model, close: () => client.close() };
  } catch (e) {
    client.close();
    throw e;
  }
}

/**
 * Splits a comma-separated baseline list, keeping `key=value` parameters with their baseline
 * (`black,gaussian:sigma=0.2,samples=4,blur` is three baselines).
 */
export function splitBaselineList(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    if (/^[a-z_]+=/i.test(part) && out.length > 0 && out[out.length - 1]!.includes(':')) out[out.length - 1] += `,${part}`;
    else out.push(part);
  }
  return out;
}
