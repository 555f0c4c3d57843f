/**
 * What a picture says about the attribution behind it: cell titles for grids and the key/values
 * stored in PNG text chunks.
 *
 * @example
 * const png = await renderGrid({ cells: [[{ image: visualize(attr), title: attributionTitle(attr) }]] });
 * await writePngAtomic('out/cat.png', png, attributionPngText(attr, { image: 'cat.jpg' }));
 */
import { formatNumber, formatProbability } from './format.js';
import type { PngText } from './png.js';

/** What `attributionTitle` and `attributionPngText` read; H5's `Attribution` has these fields. */
export interface AttributionMeta {
  method?: string;
  target?: { index: number; label?: string; probability?: number; score?: number };
  /** What the target score is: `logit` or `probability`. */
  output?: string;
  baseline?: string;
  steps?: number;
  rule?: string;
  completeness?: { delta: number; relative?: number };
  gradientEvaluations?: number;
  forwardEvaluations?: number;
  /** Estimated relative L2 error of the map against the converged integral (path methods). */
  mapErrorEstimate?: number;
}

/**
 * Cell title lines: "label 0.873", "baseline · 64 steps", "Δ 0.0012 (0.1%)"; lines without data
 * are left out.
 *
 * @example
 * attributionTitle({ target: { index: 2, label: 'circle', probability: 0.91 }, baseline: 'black', steps: 64,
 *   completeness: { delta: 0.0012, relative: 0.001 } });   // ['circle 0.91', 'black · 64 steps', 'Δ 0.0012 (0.1%)']
 */
export function attributionTitle(meta: AttributionMeta): string[] {
  const lines: string[] = [];
  if (meta.target) {
    const name = meta.target.label ?? `class ${meta.target.index}`;
    lines.push(meta.target.probability === undefined ? name : `${name} ${formatProbability(meta.target.probability)}`);
  }
  const setup = [meta.baseline, meta.steps === undefined ? undefined : `${meta.steps} steps`].filter((s): s is string => !!s);
  if (setup.length > 0) lines.push(setup.join(' · '));
  if (meta.completeness) {
    const { delta, relative } = meta.completeness;
    const share = relative === undefined || !Number.isFinite(relative) ? '' : ` (${formatNumber(relative * 100, 2)}%)`;
    lines.push(`Δ ${formatNumber(delta)}${share}`);
  }
  return lines;
}

/**
 * PNG text entries for an attribution picture: `method`, `baseline`, `steps`, `rule`, `target`
 * (class index), `label`, `probability`, `output`, `delta`, `relative_delta`,
 * `gradient_evaluations`, `forward_evaluations`, `map_error_estimate` (numbers at full precision,
 * absent fields left out), `Software`, then `extra` (which may override any of them).
 */
export function attributionPngText(meta: AttributionMeta, extra: PngText = {}): PngText {
  return {
    method: meta.method,
    baseline: meta.baseline,
    steps: meta.steps,
    rule: meta.rule,
    target: meta.target?.index,
    label: meta.target?.label,
    probability: meta.target?.probability,
    output: meta.output,
    delta: meta.completeness?.delta,
    relative_delta: meta.completeness?.relative,
    gradient_evaluations: meta.gradientEvaluations,
    forward_evaluations: meta.forwardEvaluations,
    map_error_estimate: meta.mapErrorEstimate,
    Software: 'serving-lens',
    ...extra,
  };
}
