/**
 * Pictures that notebooks and the demo show: rows of images, attributions side by side on one
 * colour scale, one attribution under several visualization conventions, and the images and
 * gradients along an Integrated Gradients path. Everything returns PNG bytes (drawn by
 * src/render), so a cell can `show()` it and a script can write it.
 *
 * @example
 * const ig = await integratedGradients(model, image, { baseline: 'black', returnPath: 'gradients' });
 * show(await attributionGridPng([{ image, title: 'disc', attributions: [ig] }]));
 * show(await visualizationsPng(ig, image));
 */
import { pathImage } from '../attribution/adaptive-rules.js';
import { LensError } from '../core/errors.js';
import type { Attribution, ImageInput, PathTrace } from '../attribution/types.js';
import { attributionTitle, renderGrid, rgbaFromImage, sharedScale, visualize, type AttributionSign, type GridCell, type VisualizationMethod } from '../render/index.js';

/** Titles of grid cells: one line or several. */
export type CellTitle = string | readonly string[];

export interface ImageRowOptions {
  /** One title per image. */
  titles?: readonly CellTitle[];
  /** Title above the row. */
  title?: string;
  /** Longest edge of each drawn image in pixels. Default: the image size, between 96 and 200. */
  cellSize?: number;
}

function cellSizeFor(image: { height: number; width: number }, given?: number): number {
  return given ?? Math.max(96, Math.min(200, Math.max(image.height, image.width)));
}

/**
 * A row of images (0..255 HWC) as one PNG, each with an optional title.
 *
 * @example
 * show(await imageRowPng(samples.map((s) => s.pixels), { titles: samples.map((s) => s.name) }));
 */
export async function imageRowPng(images: readonly ImageInput[], options: ImageRowOptions = {}): Promise<Buffer> {
  const first = images[0];
  if (!first) throw new LensError('INVALID_ARGUMENT', 'an image row needs at least one image');
  if (options.titles && options.titles.length !== images.length) {
    throw new LensError('INVALID_ARGUMENT', `an image row of ${images.length} images got ${options.titles.length} titles`);
  }
  const cells: GridCell[] = images.map((image, i) => {
    const title = options.titles?.[i];
    return { image: rgbaFromImage(image), ...(title !== undefined ? { title } : {}) };
  });
  return renderGrid({ cells: [cells], ...(options.title ? { title: options.title } : {}), cellSize: cellSizeFor(first, options.cellSize) });
}

/**
 * A constant image (e.g. a grey baseline: value 127.5).
 *
 * @example
 * const grey = constantImage(model.inputShape, 127.5);
 * await integratedGradients(model, image, { baseline: { kind: 'image', image: grey, name: 'grey' } });
 */
export function constantImage(shape: readonly [number, number, number], value: number): ImageInput {
  const [height, width, channels] = shape;
  if (!(value >= 0 && value <= 255)) throw new LensError('INVALID_ARGUMENT', `pixel value ${value} is outside 0..255`);
  return { data: new Float32Array(height * width * channels).fill(value), height, width, channels };
}

/**
 * The images on the straight path from `baseline` to `image`: x' + alpha (x - x') for each alpha,
 * the inputs whose gradients Integrated Gradients sums.
 *
 * @example
 * show(await imageRowPng(pathImages(image, grey, [0, 0.25, 0.5, 0.75, 1])));
 */
export function pathImages(image: ImageInput, baseline: ImageInput, alphas: readonly number[]): ImageInput[] {
  if (baseline.data.length !== image.data.length) {
    throw new LensError('SHAPE_MISMATCH', `baseline has ${baseline.data.length} values but the image has ${image.data.length}`);
  }
  return alphas.map((alpha) => ({ data: pathImage(baseline.data, image.data, alpha), height: image.height, width: image.width, channels: image.channels }));
}

/**
 * Indices of `count` points spread evenly over a path of `points` points (first and last included).
 *
 * @example
 * spreadIndices(64, 5); // [0, 16, 32, 47, 63]
 */
export function spreadIndices(points: number, count: number): number[] {
  if (!Number.isInteger(points) || points < 1) throw new LensError('INVALID_ARGUMENT', `a path needs at least one point, got ${points}`);
  const n = Math.min(points, Math.max(1, Math.floor(count)));
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, i) => Math.round((i * (points - 1)) / (n - 1)));
}

function pathGradients(path: PathTrace): Float32Array[] {
  if (!path.gradients || path.gradients.length === 0) {
    throw new LensError('INVALID_ARGUMENT', "the attribution's path has no gradients: run integrated gradients with returnPath: 'gradients'");
  }
  return path.gradients;
}

export interface PathPicturesOptions {
  /** Points of the path shown. Default 8. */
  count?: number;
  /** Longest edge of each drawn image. */
  cellSize?: number;
}

/**
 * Two rows over the integration path of an attribution computed with `returnPath: 'gradients'`:
 * the scaled images x' + alpha (x - x') and their input gradients (PAIR's grayscale, one shared
 * scale so that saturation shows: gradients fade where the model's output stops changing).
 *
 * @example
 * const ig = await integratedGradients(model, image, { baseline: { kind: 'image', image: grey }, returnPath: 'gradients' });
 * show(await pathPicturesPng(ig, image, grey));
 */
export async function pathPicturesPng(attribution: Attribution, image: ImageInput, baseline: ImageInput, options: PathPicturesOptions = {}): Promise<Buffer> {
  const path = attribution.path;
  if (!path) throw new LensError('INVALID_ARGUMENT', `attribution ${attribution.method} carries no path: run it with returnPath: 'gradients'`);
  const gradients = pathGradients(path);
  const picks = spreadIndices(gradients.length, options.count ?? 8).filter((i) => i < path.alphas.length);
  const alphas = picks.map((i) => path.alphas[i]!);
  const maps = picks.map((i) => ({ data: gradients[i]!, height: image.height, width: image.width, channels: image.channels }));
  const scale = sharedScale(maps, { method: 'saliency_grayscale' });
  const label = (i: number) => `α=${alphas[i]!.toFixed(3)}`;
  const scoreOf = (i: number) => `F=${path.scores[picks[i]!]!.toPrecision(3)}`;
  const imagesRow = pathImages(image, baseline, alphas).map((p, i): GridCell => ({ image: rgbaFromImage(p), title: [label(i), scoreOf(i)] }));
  const gradientRow = maps.map((m, i): GridCell => ({ image: visualize(m, { method: 'saliency_grayscale', scale }), title: [label(i), ''] }));
  return renderGrid({
    title: `path from ${attribution.baseline ?? 'baseline'} to the image: inputs and gradients`,
    rowTitles: ['path images', 'gradients'],
    cells: [imagesRow, gradientRow],
    cellSize: cellSizeFor(image, options.cellSize),
    colorbar: 'none',
  });
}

export interface AttributionGridRow {
  /** The explained image, 0..255 HWC. */
  image: ImageInput;
  /** Title of the image cell (e.g. the image name and the served prediction), one line or several. */
  title?: CellTitle;
  /** One attribution per column, all of `image`. */
  attributions: readonly Attribution[];
}

export interface AttributionGridOptions {
  title?: string;
  /** Titles of the attribution columns (an "image" column comes first when the image is shown). */
  columnTitles?: readonly string[];
  /**
   * Default 'saliency_grayscale' (PAIR's |attribution| summed over channels, clipped at the 99th
   * percentile): it reads best on the speckled maps gradients give; Captum's methods need `sign`.
   */
  method?: VisualizationMethod;
  /** Captum sign. Default 'positive'. */
  sign?: AttributionSign;
  /** Show the image in a first column. Default true. */
  showImage?: boolean;
  /**
   * 'shared' (default): one colour scale for every map, for maps in the same units (IG with
   * different baselines). 'per-map': each map scaled on its own, for methods whose values are not
   * comparable (Grad-CAM, occlusion, RISE); each cell then gets its own colour bar.
   */
  scale?: 'shared' | 'per-map';
  cellSize?: number;
  /** `png` (default) or `svg`. */
  format?: 'png' | 'svg';
}

/**
 * Attributions side by side (rows of images, columns of methods or baselines), by default on one
 * shared colour scale so that columns compare by eye; each cell is titled with class, baseline,
 * steps and completeness delta, with one colour bar under the grid.
 *
 * @example
 * const png = await attributionGridPng(rows, { title: 'IG baselines', columnTitles: ['black', 'blur', 'uniform'] });
 * await writePngAtomic('out/grid.png', png, { method: 'integrated_gradients' });
 */
export async function attributionGridPng(rows: readonly AttributionGridRow[], options: AttributionGridOptions = {}): Promise<Buffer> {
  const first = rows[0];
  if (!first) throw new LensError('INVALID_ARGUMENT', 'an attribution grid needs at least one row');
  const method = options.method ?? 'saliency_grayscale';
  const sign = options.sign ?? 'positive';
  const showImage = options.showImage ?? true;
  const all = rows.flatMap((r) => r.attributions);
  if (all.length === 0) throw new LensError('INVALID_ARGUMENT', 'an attribution grid needs at least one attribution');
  const scale = (options.scale ?? 'shared') === 'shared' ? sharedScale(all, { method, sign }) : undefined;
  const cells = rows.map((row) => [
    ...(showImage ? [{ image: rgbaFromImage(row.image), title: row.title ?? '' }] : []),
    ...row.attributions.map((a): GridCell => ({ image: visualize(a, { method, sign, image: row.image, ...(scale !== undefined ? { scale } : {}) }), title: attributionTitle(a) })),
  ]);
  const columnTitles = options.columnTitles ? [...(showImage ? ['image'] : []), ...options.columnTitles] : undefined;
  const caption = scale !== undefined
    ? `One colour scale for every panel (${method}, sign ${sign}): equal colours mean equal attribution.`
    : `Each panel on its own colour scale (${method}, sign ${sign}): colours compare within a panel only.`;
  return renderGrid({
    cells,
    caption,
    ...(options.format ? { format: options.format } : {}),
    ...(options.title ? { title: options.title } : {}),
    ...(columnTitles ? { columnTitles } : {}),
    cellSize: cellSizeFor(first.image, options.cellSize),
  });
}

/** The visualizations `visualizationsPng` shows by default. */
export const NOTEBOOK_VISUALIZATIONS: readonly VisualizationMethod[] = ['heat_map', 'blended_heat_map', 'masked_image', 'alpha_scaling', 'saliency_grayscale', 'outline'];

export interface VisualizationsOptions {
  methods?: readonly VisualizationMethod[];
  /** Captum sign for the Captum methods. Default 'positive'. */
  sign?: AttributionSign;
  title?: string;
  cellSize?: number;
}

/**
 * One attribution under several visualization conventions (Captum's heat maps, masked image and
 * alpha scaling, PAIR's grayscale, the outline of the top-mass region), in one row after the image.
 *
 * @example
 * show(await visualizationsPng(ig, image, { methods: ['heat_map', 'saliency_diverging', 'outline'] }));
 */
export async function visualizationsPng(attribution: Attribution, image: ImageInput, options: VisualizationsOptions = {}): Promise<Buffer> {
  const methods = options.methods ?? NOTEBOOK_VISUALIZATIONS;
  const sign = options.sign ?? 'positive';
  const cells: GridCell[] = [
    { image: rgbaFromImage(image), title: 'image' },
    ...methods.map((method): GridCell => ({ image: visualize(attribution, { method, sign, image }), title: method })),
  ];
  return renderGrid({
    cells: [cells],
    title: options.title ?? attributionTitle(attribution).join('  ·  '),
    cellSize: cellSizeFor(image, options.cellSize),
  });
}
