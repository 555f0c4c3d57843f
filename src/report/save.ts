/**
 * Writing an attribution the way `lens explain` does: a PNG carrying the method, baseline, steps,
 * target and delta in PNG text chunks; the raw attributions as a float32 `.npy` of shape (H, W, C)
 * at the model input's size; and a JSON summary with the geometry that maps the `.npy` onto the
 * photo. All files are written atomically.
 *
 * The PNG is either the attribution drawn on the user's photo at the photo's own size (canvas
 * `photo`, default when the photo is given: the map is brought back through the `--resize`
 * geometry, padding dropped, the legend inset) or the model-size panel of the input beside the
 * visualization (canvas `model`).
 */
import { join } from 'node:path';
import { hasPadding, mapToPhoto } from '../image/geometry.js';
import {
  DEFAULT_VIEW,
  attributionPngText,
  formatProbability,
  quietestCorner,
  renderOnPhoto,
  attributionTitle,
  renderGrid,
  rgbaFromImage,
  visualize,
  writeJsonAtomic,
  writeNpy,
  writePngAtomic,
  type AttributionSign,
  type PngText,
  type VisualizationMethod,
} from '../render/index.js';
import { channelSum, gaussianBlur } from '../attribution/image-ops.js';
import { LensError } from '../core/errors.js';
import type { Attribution, Completeness, ImageInput } from '../attribution/types.js';

export const CANVASES = ['photo', 'model'] as const;
/** `photo`: on the user's photo at its own size; `model`: the model input beside the map, at the model's size. */
export type Canvas = (typeof CANVASES)[number];

/** Default Gaussian smoothing of the picture (not of the `.npy`), in model-input pixels, for the views that are lens's own. */
export const DEFAULT_SMOOTHING = 1.5;

export interface SaveOptions {
  /** Folder for the files (created when missing). */
  dir: string;
  /** File name stem: files are STEM.png, STEM.npy, STEM.json. */
  stem: string;
  /** Visualization convention. Default `overlay` (DEFAULT_VIEW). */
  viz?: VisualizationMethod;
  /** Captum sign. Default 'absolute_value'. */
  sign?: AttributionSign;
  /** The user's photo at its own size (`loadPixels(path)` without a size); enables canvas `photo`. */
  photo?: ImageInput;
  /** Default `photo` when `photo` is given and the attribution has a geometry, else `model`. */
  canvas?: Canvas;
  /**
   * Gaussian smoothing of the picture in model-input pixels (0: none), named in the legend; the
   * `.npy` is never smoothed. Default {@link defaultSmoothing} of the view.
   */
  smooth?: number;
  /** Name of the image, shown in the panel and stored in the files. */
  imageName?: string;
  /** Extra fields for the JSON summary and the PNG text (e.g. the model name). */
  extra?: Record<string, string | number | boolean>;
}

/** Paths of the files written. */
export interface SavedFiles {
  png: string;
  npy: string;
  json: string;
}

/** STEM.png, STEM.npy and STEM.json in the folder. */
export function savedFiles(options: Pick<SaveOptions, 'dir' | 'stem'>): SavedFiles {
  return { png: join(options.dir, `${options.stem}.png`), npy: join(options.dir, `${options.stem}.npy`), json: join(options.dir, `${options.stem}.json`) };
}

/** PNG text naming the image, with the caller's extra fields. */
export const nameText = (options: Pick<SaveOptions, 'imageName' | 'extra'>): PngText => ({ ...(options.imageName !== undefined ? { image: options.imageName } : {}), ...(options.extra ?? {}) });

/** A flat row-major array as `count` rows. */
function splitRows(flat: Float32Array, count: number): number[][] {
  const width = flat.length / count;
  return Array.from({ length: count }, (_, i) => Array.from(flat.subarray(i * width, (i + 1) * width)));
}

/** What an explanation found and what it cost, as JSON; settings a method does not have are null. */
// A type (not an interface) so that it is a JSON value for the batch store.
export type ExplanationSummary = {
  target: { index: number; label?: string; probability: number; score: number };
  output: Attribution['output'];
  method: string;
  baseline: string | null;
  steps: number | null;
  rule: string | null;
  completeness: Pick<Completeness, 'delta' | 'relative' | 'sum' | 'inputScore' | 'baselineScore'> | null;
  gradientEvaluations: number;
  forwardEvaluations: number;
  mapErrorEstimate: number | null;
};

/**
 * The short summary of an attribution: target, method settings, completeness and cost. It is the
 * `lens explain --json` line, each batch record, and the start of the saved JSON
 * ({@link attributionSummary}).
 *
 * @example
 * console.log(JSON.stringify({ image: 'cat.jpg', ...explanationSummary(attr) }));
 */
export function explanationSummary(attribution: Attribution): ExplanationSummary {
  const { target, completeness } = attribution;
  return {
    target: { index: target.index, ...(target.label !== undefined ? { label: target.label } : {}), probability: target.probability, score: target.score },
    output: attribution.output,
    method: attribution.method,
    baseline: attribution.baseline ?? null,
    steps: attribution.steps ?? null,
    rule: attribution.rule ?? null,
    completeness: completeness
      ? { delta: completeness.delta, relative: completeness.relative, sum: completeness.sum, inputScore: completeness.inputScore, baselineScore: completeness.baselineScore }
      : null,
    gradientEvaluations: attribution.gradientEvaluations,
    forwardEvaluations: attribution.forwardEvaluations,
    mapErrorEstimate: attribution.mapErrorEstimate ?? null,
  };
}

/**
 * The JSON summary of an attribution as saved beside its maps: {@link explanationSummary}, the
 * map's shape and geometry, method details and the path when kept (no pixel data; the `.npy`
 * holds that).
 */
export function attributionSummary(attribution: Attribution, imageName?: string): Record<string, unknown> {
  const { data: _data, path, ...meta } = attribution;
  return {
    ...(imageName !== undefined ? { image: imageName } : {}),
    ...meta,
    ...explanationSummary(attribution),
    shape: [attribution.height, attribution.width, attribution.channels],
    ...(path
      ? {
          path: {
            alphas: path.alphas,
            weights: path.weights,
            scores: path.scores,
            ...(path.classScores ? { classScores: splitRows(path.classScores, path.alphas.length) } : {}),
            // Per-step gradients are summarised by their mean over pixels (the tutorial's plot); the full arrays stay in memory.
            ...(path.gradients ? { meanGradient: path.gradients.map((g) => g.reduce((s, v) => s + v, 0) / g.length) } : {}),
          },
        }
      : {}),
  };
}

/**
 * Writes the PNG panel, the `.npy` and the JSON summary of one attribution.
 *
 * @example
 * const files = await saveAttribution(attr, image, { dir: 'out', stem: 'cat.ig', viz: 'blended_heat_map', imageName: 'cat.jpg' });
 */
export async function saveAttribution(attribution: Attribution, image: ImageInput, options: SaveOptions): Promise<SavedFiles> {
  const files = savedFiles(options);
  const png = await attributionPicture(attribution, image, options);
  await writePngAtomic(files.png, png.bytes, { ...attributionPngText(attribution, nameText(options)), ...pictureText(png.settings) });
  await writeNpy(files.npy, attribution.data, [attribution.height, attribution.width, attribution.channels]);
  await writeJsonAtomic(files.json, { ...attributionSummary(attribution, options.imageName), picture: png.settings, ...(options.extra ?? {}), files });
  return files;
}

/**
 * The smoothing a picture gets when none is asked for: DEFAULT_SMOOTHING for the views that are
 * lens's own (`overlay`, `outline`), 0 for the named Captum and PAIR conventions (so they stay theirs).
 *
 * @example
 * defaultSmoothing('overlay'); // 1.5
 */
export function defaultSmoothing(viz: VisualizationMethod): number {
  return viz === 'overlay' || viz === 'outline' ? DEFAULT_SMOOTHING : 0;
}

/**
 * The map a picture draws: Gaussian-smoothed by `smooth` model-input pixels (0: the map itself),
 * padding kept out through the geometry. Only pictures are smoothed, never the saved `.npy`.
 *
 * @example
 * visualize(smoothedMap(attr, defaultSmoothing('overlay')), { method: 'overlay', image: pixels });
 */
export function smoothedMap(attribution: Attribution, smooth: number, geometry = attribution.geometry): Attribution {
  if (!(smooth >= 0)) throw new LensError('INVALID_ARGUMENT', `smoothing must be >= 0 pixels, got ${smooth}`);
  return smooth > 0 ? { ...attribution, data: gaussianBlur({ ...attribution, ...(geometry ? { geometry } : {}) }, smooth).data } : attribution;
}

/** How a saved picture was drawn (in the JSON summary as `picture`). */
export interface PictureSettings {
  canvas: Canvas;
  viz: VisualizationMethod;
  sign: AttributionSign;
  /** Gaussian sigma in model-input pixels (0: none). */
  smooth: number;
  /** Picture size: the photo's on canvas `photo` (a photo under SMALL_PHOTO_SIDE is drawn enlarged), the model input's on `model`. */
  width: number;
  height: number;
  /** The notes under the legend's colour bar on canvas `photo` (clipping, smoothing, padding, cropping); none on `model`. */
  notes: string[];
}

function pictureText(settings: PictureSettings): Record<string, string | number> {
  return { canvas: settings.canvas, viz: settings.viz, sign: settings.sign, smooth: settings.smooth, ...(settings.notes.length > 0 ? { notes: settings.notes.join(' | ') } : {}) };
}

/**
 * Draws the PNG of one attribution as `saveAttribution` writes it.
 *
 * @example
 * const { bytes } = await attributionPicture(attr, input, { photo, imageName: 'parrot.jpg' });
 */
export async function attributionPicture(
  attribution: Attribution,
  image: ImageInput,
  options: Pick<SaveOptions, 'viz' | 'sign' | 'photo' | 'canvas' | 'smooth' | 'imageName'> = {},
): Promise<{ bytes: Buffer; settings: PictureSettings }> {
  const viz = options.viz ?? DEFAULT_VIEW.viz;
  const sign = options.sign ?? DEFAULT_VIEW.sign;
  const geometry = attribution.geometry ?? image.geometry;
  const canvas = options.canvas ?? (options.photo && geometry ? 'photo' : 'model');
  const smooth = options.smooth ?? defaultSmoothing(viz);
  const map = smoothedMap(attribution, smooth, geometry);
  const title = [attribution.method, ...attributionTitle(attribution)];
  const smoothNote = smooth > 0 ? `smoothed σ = ${smooth} model px` : undefined;
  if (canvas === 'model') {
    const picture = visualize(map, { method: viz, sign, image });
    const bytes = await renderGrid({
      cells: [
        [
          { image: rgbaFromImage(image), title: [options.imageName ?? 'image'] },
          { image: picture, title: smoothNote ? [...title, smoothNote] : title },
        ],
      ],
      cellSize: Math.max(160, Math.min(320, Math.max(image.height, image.width))),
    });
    return { bytes, settings: { canvas, viz, sign, smooth, width: image.width, height: image.height, notes: [] } };
  }
  const photo = options.photo ?? image;
  if (!geometry && (photo.height !== attribution.height || photo.width !== attribution.width)) {
    throw new LensError('INVALID_ARGUMENT', `canvas photo needs the resize geometry of the attribution (the photo is ${photo.height}x${photo.width}, the map ${attribution.height}x${attribution.width})`);
  }
  const onPhoto = geometry && options.photo ? mapToPhoto(map, geometry, { preserveSum: true }) : undefined;
  const picture = visualize(onPhoto?.map ?? map, { method: viz, sign, image: photo });
  if (onPhoto) dimUnseen(picture, onPhoto.seen);
  const target = attribution.target;
  const colourNote = picture.colorbar?.clipped ? 'colours clipped at the 99th percentile' : undefined;
  const notes = [
    ...(viz === 'outline' ? ['outline: region with 50% of the |attribution| mass'] : []),
    [colourNote, smoothNote].filter(Boolean).join('; '),
    // On the photo the padding is dropped; it shows only when the model input itself is the picture.
    ...(!onPhoto && geometry && hasPadding(geometry) ? ['padding: not image, no attribution'] : []),
    ...(onPhoto && onPhoto.seen.includes(0) ? ['darkened: cropped off, unseen by the model'] : []),
  ].filter((n) => n.length > 0);
  const view = onPhoto?.map ?? map;
  const bytes = await renderOnPhoto(picture, {
    title: [`${attribution.method}: ${target.label ?? `class ${target.index}`} ${formatProbability(target.probability)}`, attributionTitle(attribution).slice(1).join(' · ')].filter((l) => l.length > 0),
    notes,
    corner: quietestCorner(channelSum(view), view.width, view.height),
  });
  return { bytes, settings: { canvas, viz, sign, smooth, width: photo.width, height: photo.height, notes } };
}

/** Photo pixels the model never saw (cut off by a crop) are darkened. */
function dimUnseen(picture: { data: Uint8ClampedArray }, seen: Uint8Array): void {
  for (let p = 0; p < seen.length; p++) {
    if (seen[p]) continue;
    for (let c = 0; c < 3; c++) picture.data[p * 4 + c] = Math.round(picture.data[p * 4 + c]! * 0.35);
  }
}
