/**
 * Charts for notebooks, drawn with src/render's `drawLineChart` and returned as PNG bytes: the
 * model's scores and gradients along an Integrated Gradients path (the plots of the TF Serving
 * tutorial's model-understanding notebook); deletion/insertion curves are src/report's `curvesChartPng`.
 *
 * @example
 * const ig = await integratedGradients(model, image, { baseline: grey, returnPath: 'gradients' });
 * show(await pathScoresChartPng(ig, { labels: model.labels }));
 * show(await pathGradientsChartPng(ig, image, grey));
 */
import { LensError } from '../core/errors.js';
import type { Attribution, ImageInput, PathTrace } from '../attribution/types.js';
import { drawLineChart, type LineSeries } from '../render/index.js';
import { pathProfile } from '../report/views.js';

function requirePath(attribution: Attribution): PathTrace {
  if (!attribution.path) throw new LensError('INVALID_ARGUMENT', `attribution ${attribution.method} carries no path: run it with returnPath: true or 'gradients'`);
  return attribution.path;
}

/** Points of a path sorted by alpha (quadrature rules need not list them in order). */
function order(path: PathTrace): number[] {
  return Array.from(path.alphas.keys()).sort((a, b) => path.alphas[a]! - path.alphas[b]!);
}

export interface PathScoresOptions {
  /** Classes to plot besides the target. Default: the 3 highest at the input (needs class scores on the path). */
  classes?: readonly number[];
  labels?: readonly string[];
  title?: string;
}

/**
 * The model's output along the path from the baseline (alpha 0) to the image (alpha 1): the target
 * class and, when the path has all class scores (`returnPath: 'gradients'`), the other top classes.
 * A curve that rises early and then stays flat shows saturation: most steps add little.
 *
 * @example
 * show(await pathScoresChartPng(ig, { labels: model.labels }));
 */
export async function pathScoresChartPng(attribution: Attribution, options: PathScoresOptions = {}): Promise<Buffer> {
  const path = requirePath(attribution);
  const idx = order(path);
  const x = idx.map((i) => path.alphas[i]!);
  const target = attribution.target.index;
  const name = (c: number) => options.labels?.[c] ?? (c === target ? attribution.target.label : undefined) ?? `class ${c}`;
  const series: LineSeries[] = [];
  const all = path.classScores;
  if (all) {
    const classes = all.length / path.alphas.length;
    const last = idx[idx.length - 1]!;
    const others =
      options.classes ??
      Array.from({ length: classes }, (_, c) => c)
        .filter((c) => c !== target)
        .sort((a, b) => all[last * classes + b]! - all[last * classes + a]!)
        .slice(0, 3);
    for (const c of [target, ...others.filter((c) => c !== target)]) {
      if (!Number.isInteger(c) || c < 0 || c >= classes) throw new LensError('INVALID_ARGUMENT', `class ${c} is outside 0..${classes - 1}`);
      series.push({ name: `${c === target ? 'target: ' : ''}${name(c)}`, x, y: idx.map((i) => all[i * classes + c]!) });
    }
  } else {
    series.push({ name: `target: ${name(target)}`, x, y: idx.map((i) => path.scores[i]!) });
  }
  return drawLineChart({
    title: options.title ?? `${attribution.output} along the path from ${attribution.baseline ?? 'the baseline'} to the image`,
    xLabel: 'alpha',
    yLabel: attribution.output,
    series,
  });
}

/**
 * Gradients along the path: the mean absolute input gradient of the target class at each alpha
 * (left axis) and, on the right axis, the share of the final attribution sum(attr) gathered up to
 * that alpha. Needs an attribution computed with `returnPath: 'gradients'`, and the image and the
 * baseline it ran from.
 *
 * @example
 * show(await pathGradientsChartPng(ig, image, grey));
 */
export async function pathGradientsChartPng(attribution: Attribution, image: ImageInput, baseline: ImageInput, options: { title?: string } = {}): Promise<Buffer> {
  const path = requirePath(attribution);
  if (!path.gradients || path.gradients.length !== path.alphas.length) {
    throw new LensError('INVALID_ARGUMENT', "the attribution's path has no gradients: run integrated gradients with returnPath: 'gradients'");
  }
  if (baseline.data.length !== image.data.length) throw new LensError('SHAPE_MISMATCH', `baseline has ${baseline.data.length} values but the image has ${image.data.length}`);
  const profile = pathProfile(attribution, image, [baseline.data]);
  const idx = order(path);
  const x = idx.map((i) => path.alphas[i]!);
  const meanAbs = idx.map((i) => profile.gradientMagnitude[i]!);
  const integrand = idx.map((i) => profile.integrand[i]!);
  let running = 0;
  const total = idx.reduce((s, i, k) => s + path.weights[i]! * integrand[k]!, 0);
  const cumulative = idx.map((i, k) => {
    running += path.weights[i]! * integrand[k]!;
    return total !== 0 ? running / total : Number.NaN;
  });
  return drawLineChart({
    title: options.title ?? `gradients of ${attribution.target.label ?? `class ${attribution.target.index}`} along the path`,
    xLabel: 'alpha',
    yLabel: 'mean |gradient|',
    y2Label: 'share of the attribution gathered',
    series: [
      { name: 'mean |gradient|', x, y: meanAbs },
      { name: 'cumulative share of sum(attribution)', x, y: cumulative, axis: 'right' },
    ],
  });
}
