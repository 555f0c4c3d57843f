/**
 * What the studio hands back as files: the explanation and its views written by the CLI's own
 * writers (`saveAttribution`: PNG panel with text chunks, `.npy`, JSON; `savePathView` and
 * `saveCurvesView` for the path explorer and the deletion/insertion curves), a grid of panels as
 * SVG, and the `lens` command line that reproduces a view.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { methodLabel, parseMethod } from '../attribution/index.js';
import { defaultSmoothing, saveAttribution, saveCurvesView, savePathView, smoothedMap, type NamedCurves, type SavedFiles } from '../report/index.js';
import { loadPixels } from '../image/index.js';
import { imageStem } from '../image/files.js';
import { attributionTitle, encodeRgbaPng, rgbaFromImage, visualize, type AttributionSign, type Visualization, type VisualizationMethod } from '../render/index.js';
import type { Attribution, ImageInput } from '../attribution/types.js';
import type { SessionOptions, StudioAttribution, StudioImage } from './session.js';

/** The files `lens explain` writes for one attribution, in memory. */
export interface ExportedFiles {
  stem: string;
  png: Buffer;
  npy: Buffer;
  json: Buffer;
}

/** Runs one of the CLI's writers into a throwaway folder and reads the files back. */
async function inMemory(stem: string, write: (dir: string) => Promise<SavedFiles>): Promise<ExportedFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'lens-studio-export-'));
  try {
    const files = await write(dir);
    const [png, npy, json] = await Promise.all([readFile(files.png), readFile(files.npy), readFile(files.json)]);
    return { stem, png, npy, json };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The file stem `lens explain` gives one attribution of an image (one baseline). */
const explainStem = (entry: StudioAttribution, image: StudioImage) => `${imageStem(image.name)}.${methodLabel(parseMethod(entry.request.method)).replace(':', '-')}`;

/**
 * Writes an attribution with `lens explain`'s writer into a throwaway folder and reads the files back.
 *
 * @example
 * const { png } = await exportAttribution(entry, image, { viz: 'heat_map', sign: 'positive', model: 'shapes' });
 */
export async function exportAttribution(entry: StudioAttribution, image: StudioImage, options: { viz: VisualizationMethod; sign: AttributionSign; model: string }): Promise<ExportedFiles> {
  const stem = explainStem(entry, image);
  // As lens explain: the picture is drawn on the photo at its own size when the image came from a file.
  const photo = image.path && image.pixels.geometry ? await loadPixels(image.path, { channels: image.pixels.channels === 1 ? 1 : 3 }) : undefined;
  return inMemory(stem, (dir) => saveAttribution(entry.attribution, image.pixels, { dir, stem, viz: options.viz, sign: options.sign, imageName: image.name, extra: { model: options.model }, ...(photo ? { photo } : {}) }));
}

/**
 * The path explorer at one alpha as `lens explain --path-view ALPHA` writes it (STEM.path.png, .npy, .json).
 *
 * @example
 * const { png } = await exportPathView(entry, image, await session.baselineImages(entry.request), { alpha: 0.5, model: 'shapes' });
 */
export function exportPathView(entry: StudioAttribution, image: StudioImage, baselines: readonly Float32Array[], options: { alpha: number; model: string }): Promise<ExportedFiles> {
  const stem = `${explainStem(entry, image)}.path`;
  return inMemory(stem, (dir) => savePathView(entry.attribution, image.pixels, baselines, { dir, stem, alpha: options.alpha, imageName: image.name, extra: { model: options.model } }));
}

/**
 * The deletion/insertion curves of panels (one image, one method, several baselines) as
 * `lens explain --baseline A,B --curves N` writes them (STEM.curves.png, .npy, .json).
 *
 * @example
 * const { png } = await exportCurvesView(entries, image, curves, { model: 'shapes' });
 */
export function exportCurvesView(entries: readonly StudioAttribution[], image: StudioImage, curves: readonly NamedCurves[], options: { model: string }): Promise<ExportedFiles> {
  const method = methodLabel(parseMethod(entries[0]!.request.method));
  const stem = `${explainStem(entries[0]!, image)}.curves`;
  return inMemory(stem, (dir) => saveCurvesView(curves, { dir, stem, title: `${imageStem(image.name)}: ${method}`, imageName: image.name, extra: { model: options.model, method } }));
}

/** The map a panel draws: smoothed as `lens explain` smooths its picture in this view (the `.npy` never is). */
export function shownMap(attribution: Attribution, viz: VisualizationMethod): Attribution {
  return smoothedMap(attribution, defaultSmoothing(viz));
}

/**
 * A panel's picture at the model input's size, drawn as `lens explain` draws the view (same smoothing).
 *
 * @example
 * const picture = panelPicture(entry.attribution, image.pixels, { viz: 'overlay', sign: 'absolute_value' });
 */
export function panelPicture(attribution: Attribution, image: ImageInput, view: { viz: VisualizationMethod; sign: AttributionSign; scale?: number }): Visualization {
  return visualize(shownMap(attribution, view.viz), { method: view.viz, sign: view.sign, image, ...(view.scale !== undefined ? { scale: view.scale } : {}) });
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A grid of panels as SVG: the image, then each attribution drawn on one colour scale (unless
 * `ownScale` says otherwise for a panel), with the CLI's cell titles. Pictures are embedded PNGs.
 */
export async function gridSvg(image: StudioImage, entries: readonly StudioAttribution[], options: { viz: VisualizationMethod; sign: AttributionSign; scale?: number; ownScale?: ReadonlySet<string>; title: string }): Promise<string> {
  const cell = Math.max(160, Math.min(256, image.pixels.width * 2));
  const titleLines = 3;
  const lineHeight = 16;
  const head = 28;
  const cellHeight = cell + titleLines * lineHeight + 12;
  const panels: { png: Buffer; lines: string[] }[] = [{ png: await encodeRgbaPng(rgbaFromImage(image.pixels)), lines: [image.name] }];
  for (const e of entries) {
    const scale = options.ownScale?.has(e.key) ? undefined : options.scale;
    const picture = panelPicture(e.attribution, image.pixels, { viz: options.viz, sign: options.sign, ...(scale !== undefined ? { scale } : {}) });
    panels.push({ png: await encodeRgbaPng(picture), lines: [e.attribution.method, ...attributionTitle(e.attribution)].slice(0, titleLines) });
  }
  const width = panels.length * (cell + 8) + 8;
  const height = head + cellHeight + 8;
  const body = panels
    .map((p, i) => {
      const x = 8 + i * (cell + 8);
      const text = p.lines.map((l, k) => `<text x="${x + cell / 2}" y="${head + 14 + k * lineHeight}" text-anchor="middle">${escapeXml(l)}</text>`).join('');
      return `${text}<image x="${x}" y="${head + titleLines * lineHeight + 8}" width="${cell}" height="${cell}" style="image-rendering:pixelated" href="data:image/png;base64,${p.png.toString('base64')}"/>`;
    })
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(options.title)}</text>
${body}
</svg>
`;
}

/** Quotes a shell word when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=+,@%-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `lens explain` command line that writes the same files as the studio's export of this view:
 * one panel, its path view (`pathView`: the alpha) or the curves of several panels of one request
 * (`curves`: the points; the panels' baselines go in one list).
 *
 * @example
 * explainCommandLine(entry, image, { model: 'default', viz: 'heat_map', sign: 'all' });
 * // lens explain shapes/0.png --model default --method ig --baseline black --steps 50 --rule gausslegendre --target top1 --viz heat_map --sign all --seed 0
 */
export function explainCommandLine(
  entries: StudioAttribution | readonly StudioAttribution[],
  image: StudioImage,
  options: Pick<SessionOptions, 'model' | 'server' | 'servedModel' | 'connection' | 'preprocess' | 'labels' | 'resize'> & { viz: string; sign: string; pathView?: number; curves?: number },
): string {
  const all = Array.isArray(entries) ? entries : [entries as StudioAttribution];
  const r = all[0]!.request;
  const words = ['lens', 'explain', image.path ?? image.name];
  if (r.model === 'local' && options.model) words.push('--model', options.model);
  if (r.model === 'served' && options.server) {
    words.push('--server', options.server);
    if (options.servedModel) words.push('--served-model', options.servedModel);
    const c = options.connection ?? {};
    if (c.transport === 'rest' || c.rest) words.push('--transport', 'rest');
    if (c.hostHeader) words.push('--host-header', c.hostHeader);
    if (c.tls) words.push('--tls');
  }
  words.push('--method', r.method, '--baseline', all.map((e) => e.request.baseline).join(','));
  if (r.steps !== undefined) words.push('--steps', String(r.steps));
  words.push('--rule', r.rule, '--target', r.target, '--viz', options.viz, '--sign', options.sign, '--seed', String(r.seed));
  if (options.preprocess) words.push('--preprocess', options.preprocess);
  if (options.labels) words.push('--labels', options.labels);
  if (options.resize && options.resize !== 'pad') words.push('--resize', options.resize);
  if (options.pathView !== undefined) words.push('--path-view', String(options.pathView));
  if (options.curves !== undefined) words.push('--curves', String(options.curves));
  return words.map(shellWord).join(' ');
}

/**
 * The `lens compare` command line that computes the metrics view over the same images and baselines
 * (generated images, which have no file, are left out and counted in `generated`).
 *
 * @example
 * compareCommandLine(images, ['black', 'blur'], { model: 'default', steps: 32, rule: 'gausslegendre', target: 'top1', seed: 0, curveSteps: 16, viz: 'heat_map', sign: 'positive' });
 */
export function compareCommandLine(
  images: readonly StudioImage[],
  baselines: readonly string[],
  options: Pick<SessionOptions, 'model' | 'preprocess' | 'labels' | 'resize'> & { steps: number; rule: string; target: string; seed: number; curveSteps: number; viz: string; sign: string },
): { command: string; generated: number } {
  const files = images.filter((i) => i.path !== undefined).map((i) => i.path!);
  const words = ['lens', 'compare', '--model', options.model ?? 'default', '--images', ...files, '--baselines', baselines.join(','), '--steps', String(options.steps), '--rule', options.rule, '--target', options.target];
  words.push('--curve-steps', String(options.curveSteps), '--viz', options.viz, '--sign', options.sign, '--seed', String(options.seed));
  if (options.preprocess) words.push('--preprocess', options.preprocess);
  if (options.labels) words.push('--labels', options.labels);
  if (options.resize && options.resize !== 'pad') words.push('--resize', options.resize);
  return { command: words.map(shellWord).join(' '), generated: images.length - files.length };
}
