/**
 * Baselines for path methods, the set compared by Sturmfels, Lundberg and Lee ("Visualizing the
 * Impact of Feature Attribution Baselines", Distill 2020): constant images, the model-space zero,
 * noise, blurred input, the maximum-distance image, a user image, and averages of several.
 * Every baseline is an image in pixel space (0..255, HWC) like the input.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { affineOf } from '../core/preprocess.js';
import { gaussianBlur, keepPadding } from './image-ops.js';
import type { Random } from '../core/random.js';
import type { ImageInput } from './types.js';

/** Names accepted in strings (CLI `--baseline`, `--baselines`). */
export const BASELINE_NAMES = ['black', 'white', 'zero', 'uniform', 'gaussian', 'blur', 'maxdist'] as const;
export type BaselineName = (typeof BASELINE_NAMES)[number];

/** Defaults for the parametrised baselines. */
export const BASELINE_DEFAULTS = {
  /** Gaussian noise around the input: standard deviation as a fraction of the 0..255 range. */
  gaussianSigma: 0.1,
  /** Blurred input: standard deviation in pixels. */
  blurSigma: 5,
} as const;

/**
 * A baseline: a name, a parametrised kind, a user image, or several averaged (IG is then the
 * mean of the IG maps over the baselines, and completeness holds against the mean baseline score).
 * Random kinds (`uniform`, `gaussian`) draw `samples` images and average over them.
 */
export type BaselineSpec =
  | BaselineName
  | { kind: 'black' | 'white' | 'zero' | 'maxdist' }
  | { kind: 'uniform'; samples?: number }
  | { kind: 'gaussian'; sigma?: number; samples?: number }
  | { kind: 'blur'; sigma?: number }
  | { kind: 'image'; image: ImageInput; name?: string }
  | { kind: 'average'; of: readonly BaselineSpec[] };

/** Baseline images for one input, with a description for reports. */
export interface BaselineImages {
  images: Float32Array[];
  description: string;
}

function normalise(spec: BaselineSpec): Exclude<BaselineSpec, BaselineName> {
  return typeof spec === 'string' ? ({ kind: spec } as Exclude<BaselineSpec, BaselineName>) : spec;
}

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new LensError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${v}`);
  return v;
}

/**
 * The pixels that the model's preprocessing maps to 0: black for raw/unit models, grey (127.5)
 * for [-1,1] models, the ImageNet mean colour for caffe/torch models.
 *
 * @example
 * modelZeroPixel(model); // [127.5, 127.5, 127.5] for a 'symmetric' model
 */
export function modelZeroPixel(model: Pick<ImageModel, 'preprocessing' | 'inputShape'>): number[] {
  const affine = affineOf(model.preprocessing);
  const channels = model.inputShape[2];
  const pixel = new Array<number>(channels).fill(0);
  // Model channel m reads pixel channel channelOrder[m]: input_m = pixel[order[m]] * scale[m] + offset[m].
  affine.channelOrder.forEach((source, m) => {
    if (source < channels && m < affine.scale.length) {
      pixel[source] = Math.min(255, Math.max(0, -affine.offset[m]! / affine.scale[m]!));
    }
  });
  return pixel;
}

function constant(image: ImageInput, perChannel: readonly number[]): Float32Array {
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = perChannel[i % image.channels]!;
  return out;
}

function describe(spec: Exclude<BaselineSpec, BaselineName>): string {
  switch (spec.kind) {
    case 'uniform':
      return spec.samples && spec.samples > 1 ? `uniform(samples=${spec.samples})` : 'uniform';
    case 'gaussian':
      return `gaussian(sigma=${spec.sigma ?? BASELINE_DEFAULTS.gaussianSigma}${spec.samples && spec.samples > 1 ? `,samples=${spec.samples}` : ''})`;
    case 'blur':
      return `blur(sigma=${spec.sigma ?? BASELINE_DEFAULTS.blurSigma})`;
    case 'image':
      return spec.name ?? 'image';
    case 'average':
      return spec.of.map((s) => describe(normalise(s))).join('+');
    default:
      return spec.kind;
  }
}

/** A one-line description of a baseline, as reports and PNG text chunks show it. */
export function describeBaseline(spec: BaselineSpec): string {
  return describe(normalise(spec));
}

/**
 * Builds the baseline image(s) for `image`. Random kinds draw from `rng`.
 *
 * @example
 * const { images } = makeBaselines(model, image, { kind: 'blur', sigma: 8 }, seededRandom(0));
 */
export function makeBaselines(model: Pick<ImageModel, 'preprocessing' | 'inputShape'>, image: ImageInput, spec: BaselineSpec, rng: Random): BaselineImages {
  // Padding is not image: every baseline equals the input there, so no path moves it and it gets no attribution.
  const made = baselineImages(model, image, spec, rng);
  made.images.forEach((b) => keepPadding(image, b));
  return made;
}

function baselineImages(model: Pick<ImageModel, 'preprocessing' | 'inputShape'>, image: ImageInput, spec: BaselineSpec, rng: Random): BaselineImages {
  const s = normalise(spec);
  const n = image.data.length;
  switch (s.kind) {
    case 'black':
      return { images: [new Float32Array(n)], description: 'black' };
    case 'white':
      return { images: [new Float32Array(n).fill(255)], description: 'white' };
    case 'zero':
      return { images: [constant(image, modelZeroPixel(model))], description: 'zero' };
    case 'maxdist': {
      // The farthest image within 0..255, pixel by pixel (L1 and L-infinity alike).
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = image.data[i]! < 127.5 ? 255 : 0;
      return { images: [out], description: 'maxdist' };
    }
    case 'uniform': {
      const samples = positiveInt(s.samples, 1, 'uniform baseline samples');
      const images = Array.from({ length: samples }, () => {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = rng.uniform() * 255;
        return out;
      });
      return { images, description: describe(s) };
    }
    case 'gaussian': {
      const samples = positiveInt(s.samples, 1, 'gaussian baseline samples');
      const sigma = s.sigma ?? BASELINE_DEFAULTS.gaussianSigma;
      if (!(sigma >= 0)) throw new LensError('INVALID_ARGUMENT', `gaussian baseline sigma must be >= 0, got ${sigma}`);
      const images = Array.from({ length: samples }, () => {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = Math.min(255, Math.max(0, image.data[i]! + rng.normal() * sigma * 255));
        return out;
      });
      return { images, description: describe(s) };
    }
    case 'blur': {
      const sigma = s.sigma ?? BASELINE_DEFAULTS.blurSigma;
      if (!(sigma >= 0)) throw new LensError('INVALID_ARGUMENT', `blur baseline sigma must be >= 0, got ${sigma}`);
      return { images: [gaussianBlur(image, sigma).data], description: describe(s) };
    }
    case 'image': {
      const b = s.image;
      if (b.height !== image.height || b.width !== image.width || b.channels !== image.channels) {
        throw new LensError(
          'SHAPE_MISMATCH',
          `baseline image ${s.name ?? ''} is ${b.height}x${b.width}x${b.channels}, the input is ${image.height}x${image.width}x${image.channels}`.replace('  ', ' '),
        );
      }
      return { images: [new Float32Array(b.data)], description: describe(s) };
    }
    case 'average': {
      if (s.of.length === 0) throw new LensError('INVALID_ARGUMENT', 'an averaged baseline needs at least one baseline');
      const images = s.of.flatMap((part) => makeBaselines(model, image, part, rng).images);
      return { images, description: describe(s) };
    }
  }
}

/** A baseline as parsed from text: image paths are still to be loaded (`resolveBaseline`). */
export type ParsedBaseline =
  | Exclude<BaselineSpec, { kind: 'average' }>
  | { kind: 'file'; path: string }
  | { kind: 'average'; of: readonly ParsedBaseline[] };

/**
 * Parses a baseline as the CLI gives it: a name, `name:key=value,...` for parameters, `image:PATH`
 * (or a path) for a user image, and `+` between baselines to average them.
 *
 * @example
 * parseBaseline('black+white');             // averaged black and white
 * parseBaseline('gaussian:sigma=0.2,samples=4');
 * parseBaseline('image:gray.png');
 */
export function parseBaseline(value: string): ParsedBaseline {
  const parts = value.split('+').map((p) => p.trim());
  if (parts.length > 1) return { kind: 'average', of: parts.map(parseOne) };
  return parseOne(value.trim());
}

/**
 * Loads the image files a parsed baseline names, giving a `BaselineSpec`.
 *
 * @example
 * const spec = await resolveBaseline(parseBaseline('image:grey.png'), (p) => loadPixels(p, { size: [32, 32] }));
 */
export async function resolveBaseline(parsed: ParsedBaseline, load: (path: string) => Promise<ImageInput>): Promise<BaselineSpec> {
  if (typeof parsed === 'string') return parsed;
  if (parsed.kind === 'file') return { kind: 'image', image: await load(parsed.path), name: parsed.path };
  if (parsed.kind === 'average') return { kind: 'average', of: await Promise.all(parsed.of.map((p) => resolveBaseline(p, load))) };
  return parsed;
}

function parseOne(text: string): ParsedBaseline {
  if (text === '') throw new LensError('INVALID_ARGUMENT', 'empty baseline name');
  const colon = text.indexOf(':');
  const name = (colon < 0 ? text : text.slice(0, colon)).toLowerCase();
  if (name === 'image' || name === 'file') return { kind: 'file', path: text.slice(colon + 1) };
  if (!(BASELINE_NAMES as readonly string[]).includes(name)) {
    if (colon < 0 && /[./\\]/.test(text)) return { kind: 'file', path: text };
    throw new LensError('INVALID_ARGUMENT', `unknown baseline "${text}": expected ${BASELINE_NAMES.join(', ')}, image:PATH, or several joined with +`);
  }
  const params: Record<string, number> = {};
  if (colon >= 0) {
    for (const kv of text.slice(colon + 1).split(',')) {
      const [k, v] = kv.split('=').map((s) => s.trim());
      const num = Number(v);
      if (!k || v === undefined || v === '' || !Number.isFinite(num)) throw new LensError('INVALID_ARGUMENT', `baseline "${text}": parameter "${kv}" is not key=number`);
      params[k] = num;
    }
  }
  const allowed: Record<BaselineName, string[]> = {
    black: [],
    white: [],
    zero: [],
    maxdist: [],
    uniform: ['samples'],
    gaussian: ['sigma', 'samples'],
    blur: ['sigma'],
  };
  const accepted = allowed[name as BaselineName];
  for (const k of Object.keys(params)) {
    if (!accepted.includes(k)) {
      throw new LensError('INVALID_ARGUMENT', `baseline ${name} takes no parameter "${k}"${accepted.length ? ` (it takes ${accepted.join(', ')})` : ''}`);
    }
  }
  return Object.keys(params).length === 0 ? (name as BaselineName) : ({ kind: name, ...params } as ParsedBaseline);
}

/**
 * Splits a comma-separated baseline list, keeping `key=value` parameters with their baseline.
 *
 * @example
 * splitBaselineList('black,gaussian:sigma=0.2,samples=4,blur'); // ['black', 'gaussian:sigma=0.2,samples=4', 'blur']
 */
export function splitBaselineList(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    if (/^[a-z_]+=/i.test(part) && out.length > 0 && out[out.length - 1]!.includes(':')) out[out.length - 1] += `,${part}`;
    else out.push(part);
  }
  return out;
}
