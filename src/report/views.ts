/**
 * Saving the views around an explanation, as `lens explain --path-view ALPHA --curves N` writes
 * them and the studio exports them: the Integrated Gradients path (the interpolated image at one
 * alpha beside F(alpha) at the rule's points and the integrand dF/dalpha per point) and the
 * deletion/insertion curves of one or more attributions on the same axes. Each view is a PNG
 * (drawn by src/render's line chart, with PNG text chunks), a float32 `.npy` of the numbers drawn
 * and a JSON summary saying what the `.npy` columns are. All files are written atomically.
 *
 * @example
 * const ig = await integratedGradients(model, image, { baseline: 'black', returnPath: 'gradients' });
 * const { images } = makeBaselines(model, image, parseBaseline('black'), seededRandom(0));
 * await savePathView(ig, image, images, { dir: 'out', stem: 'cat.ig.path', alpha: 0.5 });
 * const curves = [{ name: 'black', deletion: await attributionCurve(model, image, ig, 'deletion'), insertion: await attributionCurve(model, image, ig, 'insertion') }];
 * await saveCurvesView(curves, { dir: 'out', stem: 'cat.ig.curves', title: 'cat.jpg' });
 */
import { pathImage } from '../attribution/adaptive-rules.js';
import type { Curve } from '../attribution/metrics.js';
import type { Attribution, ImageInput } from '../attribution/types.js';
import { LensError } from '../core/errors.js';
import { attributionPngText, drawLineChart, rgbaFromImage, writeJsonAtomic, writeNpy, writePngAtomic } from '../render/index.js';
import { nameText, savedFiles, type SavedFiles } from './save.js';

/** An IG path reduced to one row per point: what the path view draws. */
export interface PathProfile {
  alphas: number[];
  weights: number[];
  /** F at each point. */
  scores: number[];
  /** dF/dalpha at each point: sum over pixels of (x - x') * gradient (NaN without gradients). */
  integrand: number[];
  /** Mean |gradient| over pixels at each point, the saturation picture of the IG paper (NaN without gradients). */
  gradientMagnitude: number[];
  /** Baseline images the path was integrated from; fixed rules lay their points out baseline by baseline. */
  baselines: number;
  /** Points of each baseline (all points when the rule integrates from the first baseline only). */
  pointsPerBaseline: number;
}

/** Columns of the path view's `.npy` (one row per point), as its JSON names them. */
export const PATH_COLUMNS = ['alpha', 'weight', 'F', 'integrand', 'mean_abs_gradient'] as const;

/**
 * The per-point profile of an IG path: F, the integrand (x - x') . gradient and the mean |gradient|.
 * `baselines` are the baseline images IG integrated from (`makeBaselines` with the same seed).
 *
 * @example
 * const profile = pathProfile(ig, image, makeBaselines(model, image, spec, seededRandom(0)).images);
 */
export function pathProfile(attribution: Attribution, image: ImageInput, baselines: readonly Float32Array[]): PathProfile {
  const trace = attribution.path;
  if (!trace) throw new LensError('INVALID_ARGUMENT', `the path view needs Integrated Gradients with its path; this is ${attribution.method}`);
  if (baselines.length === 0) throw new LensError('INVALID_ARGUMENT', 'the path view needs the baseline images the path started from');
  const points = trace.alphas.length;
  const pointsPerBaseline = points % baselines.length === 0 ? points / baselines.length : points;
  const integrand: number[] = [];
  const gradientMagnitude: number[] = [];
  for (let p = 0; p < points; p++) {
    const g = trace.gradients?.[p];
    const base = baselines[Math.min(baselines.length - 1, Math.floor(p / pointsPerBaseline))]!;
    if (g && base.length !== g.length) throw new LensError('SHAPE_MISMATCH', `baseline has ${base.length} values but the gradients have ${g.length}`);
    let dot = g ? 0 : Number.NaN;
    let abs = g ? 0 : Number.NaN;
    for (let i = 0; g && i < g.length; i++) {
      dot += (image.data[i]! - base[i]!) * g[i]!;
      abs += Math.abs(g[i]!);
    }
    integrand.push(dot);
    gradientMagnitude.push(g ? abs / g.length : Number.NaN);
  }
  return { alphas: Array.from(trace.alphas), weights: Array.from(trace.weights), scores: Array.from(trace.scores), integrand, gradientMagnitude, baselines: baselines.length, pointsPerBaseline };
}

/** F(alpha) between the first baseline's points: linear, with F(x') at 0 and F(x) at 1. */
function firstBaselineCurve(attribution: Attribution, profile: PathProfile): { order: number[]; xs: number[]; fs: number[] } {
  const c = attribution.completeness;
  const order = profile.alphas
    .slice(0, profile.pointsPerBaseline)
    .map((_, i) => i)
    .sort((a, b) => profile.alphas[a]! - profile.alphas[b]!);
  const xs = [0, ...order.map((i) => profile.alphas[i]!), 1];
  const fs = [c?.baselineScore ?? Number.NaN, ...order.map((i) => profile.scores[i]!), c?.inputScore ?? Number.NaN];
  return { order, xs, fs };
}

/** F at `alpha` on the path, interpolated linearly between the rule's points. */
export function scoreAt(attribution: Attribution, profile: PathProfile, alpha: number): number {
  const { xs, fs } = firstBaselineCurve(attribution, profile);
  let k = 0;
  while (k < xs.length - 2 && xs[k + 1]! < alpha) k++;
  const t = xs[k + 1]! === xs[k]! ? 0 : Math.min(1, Math.max(0, (alpha - xs[k]!) / (xs[k + 1]! - xs[k]!)));
  return fs[k]! + t * (fs[k + 1]! - fs[k]!);
}

function checkAlpha(alpha: number): void {
  if (!(alpha >= 0 && alpha <= 1)) throw new LensError('INVALID_ARGUMENT', `alpha must be between 0 and 1, got ${alpha}`);
}

/**
 * The path view as PNG bytes: the interpolated image x' + alpha (x - x') from the first baseline,
 * and F(alpha) at the rule's points (dots) with the integrand dF/dalpha per point on the right axis.
 *
 * @example
 * await writeFile('path.png', await pathViewPng(ig, image, baselines, 0.5));
 */
export async function pathViewPng(attribution: Attribution, image: ImageInput, baselines: readonly Float32Array[], alpha: number, profile = pathProfile(attribution, image, baselines)): Promise<Buffer> {
  checkAlpha(alpha);
  const { order, xs, fs } = firstBaselineCurve(attribution, profile);
  const interpolated = { ...image, data: pathImage(baselines[0]!, image.data, alpha) };
  const target = attribution.target.label ?? `class ${attribution.target.index}`;
  const points = order.map((i) => profile.alphas[i]!);
  return drawLineChart({
    title: `${attribution.method}: ${attribution.baseline ?? 'baseline'} → image, ${attribution.rule ?? ''} (${profile.alphas.length} points), target ${target}`,
    xLabel: 'alpha',
    yLabel: `F (${attribution.output})`,
    y2Label: 'integrand dF/dalpha',
    series: [
      { name: 'F(alpha), F(x′) at 0 and F(x) at 1', x: xs, y: fs, color: '#1f77b4', markers: false },
      { name: `F at the rule's ${points.length} points`, x: points, y: order.map((i) => profile.scores[i]!), color: '#1f77b4' },
      { name: 'integrand dF/dalpha per point', x: points, y: order.map((i) => profile.integrand[i]!), axis: 'right', color: '#d62728' },
    ],
    xTicks: [0, 0.25, 0.5, 0.75, 1],
    xMarker: alpha,
    aside: { image: rgbaFromImage(interpolated), caption: [`alpha = ${alpha}`, `F = ${scoreAt(attribution, profile, alpha).toPrecision(4)}`] },
    width: 960,
    height: 420,
  });
}

export interface ViewSaveOptions {
  /** Folder for the files (created when missing). */
  dir: string;
  /** File name stem: files are STEM.png, STEM.npy, STEM.json. */
  stem: string;
  /** Name of the image, stored in the files. */
  imageName?: string;
  /** Extra fields for the JSON summary and the PNG text (e.g. the model name). */
  extra?: Record<string, string | number | boolean>;
}

/**
 * Writes the path view: STEM.png (see {@link pathViewPng}; text chunks of the attribution plus
 * `view`, `alpha`, `F_alpha`), STEM.npy (float32, one row per point, columns {@link PATH_COLUMNS})
 * and STEM.json.
 *
 * @example
 * await savePathView(ig, image, baselines, { dir: 'out', stem: 'cat.ig.path', alpha: 0.25, imageName: 'cat.jpg' });
 */
export async function savePathView(attribution: Attribution, image: ImageInput, baselines: readonly Float32Array[], options: ViewSaveOptions & { alpha: number }): Promise<SavedFiles> {
  const files = savedFiles(options);
  const profile = pathProfile(attribution, image, baselines);
  const png = await pathViewPng(attribution, image, baselines, options.alpha, profile);
  const fAlpha = scoreAt(attribution, profile, options.alpha);
  await writePngAtomic(files.png, png, { ...attributionPngText(attribution, nameText(options)), view: 'path', alpha: options.alpha, F_alpha: fAlpha });
  const columns = [profile.alphas, profile.weights, profile.scores, profile.integrand, profile.gradientMagnitude];
  const rows = profile.alphas.length;
  const table = new Float32Array(rows * columns.length);
  for (let r = 0; r < rows; r++) columns.forEach((col, c) => (table[r * columns.length + c] = col[r]!));
  await writeNpy(files.npy, table, [rows, columns.length]);
  const c = attribution.completeness;
  await writeJsonAtomic(files.json, {
    ...(options.imageName !== undefined ? { image: options.imageName } : {}),
    view: 'path',
    method: attribution.method,
    baseline: attribution.baseline ?? null,
    rule: attribution.rule ?? null,
    target: attribution.target,
    output: attribution.output,
    alpha: options.alpha,
    F_alpha: fAlpha,
    inputScore: c?.inputScore ?? null,
    baselineScore: c?.baselineScore ?? null,
    delta: c?.delta ?? null,
    relative: c?.relative ?? null,
    baselines: profile.baselines,
    pointsPerBaseline: profile.pointsPerBaseline,
    columns: PATH_COLUMNS,
    ...(options.extra ?? {}),
    files,
  });
  return files;
}

/** The deletion and insertion curves of one attribution, named (e.g. by its baseline). */
export interface NamedCurves {
  name: string;
  deletion: Curve;
  insertion: Curve;
}

/**
 * Deletion and insertion curves (score of the target against the share of pixels removed or
 * inserted in attribution order), deletion solid and insertion dashed, AUC in the legend.
 *
 * @example
 * show(await curvesChartPng([{ name: 'black deletion', curve: deletion }, { name: 'black insertion', curve: insertion }]));
 */
export async function curvesChartPng(curves: readonly { name: string; curve: Curve; color?: string }[], options: { title?: string; width?: number; height?: number } = {}): Promise<Buffer> {
  if (curves.length === 0) throw new LensError('INVALID_ARGUMENT', 'no curves to draw');
  return drawLineChart({
    title: options.title ?? 'deletion and insertion curves',
    xLabel: 'share of pixels removed / inserted',
    yLabel: 'probability of the target',
    series: curves.map(({ name, curve, color }) => ({
      name: `${name} (AUC ${curve.auc.toFixed(3)})`,
      x: Array.from(curve.fractions),
      y: Array.from(curve.scores),
      dashed: curve.kind === 'insertion',
      ...(color ? { color } : {}),
    })),
    ...(options.width ? { width: options.width } : {}),
    ...(options.height ? { height: options.height } : {}),
  });
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

/**
 * Writes the curves view: STEM.png (every attribution's deletion curve solid and insertion curve
 * dashed in its own colour, on the same axes; text chunks `view`, `curves`, `curve_steps`),
 * STEM.npy (float32 scores, shape (attributions, 2, points): deletion then insertion) and
 * STEM.json (names, fractions, AUCs).
 *
 * @example
 * await saveCurvesView([{ name: 'black', deletion, insertion }], { dir: 'out', stem: 'cat.ig.curves', title: 'cat.jpg: IG' });
 */
export async function saveCurvesView(curves: readonly NamedCurves[], options: ViewSaveOptions & { title?: string }): Promise<SavedFiles> {
  if (curves.length === 0) throw new LensError('INVALID_ARGUMENT', 'no curves to save');
  const points = curves[0]!.deletion.fractions.length;
  if (curves.some((c) => c.deletion.fractions.length !== points || c.insertion.fractions.length !== points)) throw new LensError('SHAPE_MISMATCH', 'curves on one chart need the same points');
  const files = savedFiles(options);
  const png = await curvesChartPng(
    curves.flatMap((c, i) => (['deletion', 'insertion'] as const).map((kind) => ({ name: `${c.name} ${kind}`, curve: c[kind], color: PALETTE[i % PALETTE.length]! }))),
    { title: `${options.title ? `${options.title}: ` : ''}deletion (solid) and insertion (dashed)`, width: 960, height: 540 },
  );
  await writePngAtomic(files.png, png, { view: 'curves', curves: curves.map((c) => c.name).join(','), curve_steps: points - 1, ...nameText(options), Software: 'serving-lens' });
  const scores = new Float32Array(curves.length * 2 * points);
  curves.forEach((c, i) => {
    scores.set(c.deletion.scores, (i * 2) * points);
    scores.set(c.insertion.scores, (i * 2 + 1) * points);
  });
  await writeNpy(files.npy, scores, [curves.length, 2, points]);
  await writeJsonAtomic(files.json, {
    ...(options.imageName !== undefined ? { image: options.imageName } : {}),
    view: 'curves',
    axes: ['curve', 'deletion/insertion', 'point'],
    fractions: curves[0]!.deletion.fractions,
    curves: curves.map((c) => ({ name: c.name, deletionAuc: c.deletion.auc, insertionAuc: c.insertion.auc })),
    ...(options.extra ?? {}),
    files,
  });
  return files;
}
