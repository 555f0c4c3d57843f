/**
 * What `lens explain`, `lens batch`, `lens compare` and `lens verify` share: the attribution flags
 * (defined once, with their parsing), a progress bar on stderr, and number flag parsing. The
 * library parts the studio and notebooks use too live below: image files in image/files.ts,
 * model loading settings in models/load-settings.ts, served models in models/remote.ts.
 * Commands add the shared flags when they register, so this module loads only light modules at
 * the top (the progress bar is imported when it is drawn), which keeps `lens --help` fast.
 */
import type { Command } from 'commander';
import { LensError } from '../core/errors.js';
import type { Progress, ProgressCallback } from '../attribution/types.js';
import { DEFAULT_VIEW } from '../render/default-view.js';

const ATTRIBUTION_FLAGS = {
  method: { flags: '--method <name>', description: 'ig, eg, gradient, gradient_x_input, smoothgrad[:METHOD], vargrad[:METHOD], blur_ig, guided_ig, xrai, gradcam, occlusion, rise', defaultValue: 'ig' },
  baseline: { flags: '--baseline <spec>', description: 'black, white, zero, uniform, gaussian[:sigma=S], blur[:sigma=S], maxdist, image:PATH; join with + to average', defaultValue: 'black' },
  steps: { flags: '--steps <n>', description: 'path steps (IG 50, Blur IG 100, Guided IG 128); Expected Gradients samples' },
  rule: { flags: '--rule <rule>', description: 'riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gausslegendre, nonuniform, adaptive', defaultValue: 'gausslegendre' },
  target: { flags: '--target <target>', description: 'top1, topK (each of the k best), a class index, or a label', defaultValue: 'top1' },
  // For commands that write one explanation per image.
  singleTarget: { flags: '--target <target>', description: 'top1, a class index or a label', defaultValue: 'top1' },
  viz: { flags: '--viz <method>', description: 'overlay (colour by |attribution| over the dimmed photo), outline, or the named conventions heat_map, blended_heat_map, masked_image, alpha_scaling, saliency_grayscale, saliency_diverging', defaultValue: DEFAULT_VIEW.viz },
  sign: { flags: '--sign <sign>', description: 'all, positive, negative, absolute_value', defaultValue: DEFAULT_VIEW.sign },
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
} satisfies Record<string, { flags: string; description: string; defaultValue?: string }>;

/** Flags that more than one attribution command takes; see {@link addAttributionFlags}. */
export type AttributionFlag = keyof typeof ATTRIBUTION_FLAGS;

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
    const { flags, description, defaultValue }: { flags: string; description: string; defaultValue?: string } = ATTRIBUTION_FLAGS[name];
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
  return {
    seed: integerFlag(flags.seed, '--seed'),
    ...(flags.steps !== undefined ? { steps: positiveInt(flags.steps, '--steps') } : {}),
    ...(flags.batchSize !== undefined ? { batchSize: positiveInt(flags.batchSize, '--batch-size') } : {}),
  };
}

/** Whether to draw a progress bar: not with --no-progress or --json, and only on a terminal. */
export function wantsProgressBar(flags: Pick<AttributionFlagValues, 'progress' | 'json'>): boolean {
  return flags.progress && !flags.json && process.stderr.isTTY === true;
}

/** A cli-progress bar on stderr that starts at its first update and, once stopped, starts again at the next. */
export interface StderrProgressBar {
  /** Moves the bar to `done` (of `total`, when given: it may change between updates). */
  update(done: number, payload: Record<string, unknown>, total?: number): void;
  stop(): void;
}

/**
 * Makes a {@link StderrProgressBar} with cli-progress's `options` (format and the like).
 *
 * @example
 * const bar = await stderrProgressBar({ format: '{bar} {value}/{total}' });
 * bar.update(3, {}, 10);
 * bar.stop();
 */
export async function stderrProgressBar(options: import('cli-progress').Options): Promise<StderrProgressBar> {
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar({ stream: process.stderr, hideCursor: true, ...options }, Presets.shades_classic);
  let started = false;
  return {
    update(done, payload, total) {
      if (!started) {
        bar.start(total ?? 0, done, payload);
        started = true;
      } else {
        if (total !== undefined) bar.setTotal(total);
        bar.update(done, payload);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** A progress bar on stderr (when it is a terminal, or forced), as a progress callback. */
export async function progressBar(enabled: boolean): Promise<{ onProgress?: ProgressCallback; stop(): void }> {
  if (!enabled) return { stop() {} };
  const bar = await stderrProgressBar({ format: '{bar} {value}/{total} {stage}', clearOnComplete: true, noTTYOutput: false, etaBuffer: 20 });
  return {
    onProgress: (p: Progress) => bar.update(p.done, { stage: p.stage ?? '' }, p.total),
    stop: () => bar.stop(),
  };
}

/** Parses a positive integer flag. */
export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new LensError('INVALID_ARGUMENT', `${flag} must be a positive integer, got "${value}"`);
  return n;
}

/**
 * Parses an integer flag, of at least `min` when given; `noun` words the error ("an integer", "a whole number").
 *
 * @example
 * integerFlag('8500', '--port', 0); // 8500
 */
export function integerFlag(value: string, flag: string, min?: number, noun = 'an integer'): number {
  const n = Number(value);
  if (!Number.isInteger(n) || (min !== undefined && n < min)) throw new LensError('INVALID_ARGUMENT', `${flag} must be ${noun}${min === undefined ? '' : ` >= ${min}`}, got "${value}"`);
  return n;
}

/** Parses a number flag. */
export function finiteNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new LensError('INVALID_ARGUMENT', `${flag} must be a number, got "${value}"`);
  return n;
}
