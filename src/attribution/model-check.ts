/**
 * "The model you explain must be the model you serve": TF Serving computes no gradients, so
 * gradient methods run on a local copy of the served model. Before explaining, the local copy's
 * answers are compared with the server's on the images being explained (same top-k classes,
 * probabilities within a tolerance); a mismatch is refused with MODEL_MISMATCH.
 */
import { LensError } from '../core/errors.js';
import { topK as rankScores, type ImageModel } from '../core/model.js';
import { checkImage, defaultBatchSize, forwardRows, toProbabilities } from './engine.js';
import type { ImageInput } from './types.js';

export interface AgreementOptions {
  /** Classes compared by rank. Default 5 (or the class count if smaller). */
  topK?: number;
  /** Largest accepted difference of any class probability. Default 1e-3. */
  tolerance?: number;
  batchSize?: number;
}

export interface RankedClass {
  index: number;
  label?: string;
  probability: number;
}

export interface ImageAgreement {
  image: string;
  local: RankedClass[];
  served: RankedClass[];
  /** Largest |p_local - p_served| over all classes. */
  maxProbabilityDifference: number;
  /** The top-k classes agree (up to classes tied within the tolerance). */
  sameTopK: boolean;
  ok: boolean;
}

export interface AgreementReport {
  ok: boolean;
  topK: number;
  tolerance: number;
  local: string;
  served: string;
  images: ImageAgreement[];
  /** Things that suggest a wrong setting rather than a different model. */
  warnings: string[];
}

/** Why rows said to be probabilities are not (negative values, or rows not summing to 1), if so. */
function probabilityDoubt(model: Pick<ImageModel, 'name' | 'output'>, rows: readonly Float32Array[]): string | undefined {
  if (model.output !== 'probability') return undefined;
  for (const r of rows) {
    let sum = 0;
    let min = Infinity;
    for (const v of r) {
      sum += v;
      min = Math.min(min, v);
    }
    if (min < 0 || Math.abs(sum - 1) > 0.01) {
      return `model ${model.name} is said to output probabilities, but its scores ${min < 0 ? 'include negative values' : `sum to ${sum.toPrecision(4)}`}: if they are logits, say so (--served-output logit)`;
    }
  }
  return undefined;
}

function ranked(p: Float32Array, k: number, labels?: readonly string[]): RankedClass[] {
  return rankScores(p, k, labels).map(({ score, ...c }) => ({ ...c, probability: score }));
}

/** Top-k sets agree, allowing swaps between classes whose probabilities differ by no more than `tolerance`. */
function topKAgree(a: Float32Array, b: Float32Array, k: number, tolerance: number): boolean {
  const topA = ranked(a, k);
  const topB = ranked(b, k);
  const setB = new Set(topB.map((c) => c.index));
  const kthA = topA.at(-1)!.probability;
  return topA.every((c) => setB.has(c.index) || Math.abs(c.probability - kthA) <= tolerance);
}

/**
 * Compares two models' answers on the same images. Both are compared as probabilities (softmax of
 * logits where a model outputs logits), so a local logit model can be checked against a server
 * whose signature returns probabilities.
 *
 * @example
 * const report = await compareModels(local, remote, images.map((p) => ({ name: p.source, image: p })));
 * if (!report.ok) throw modelMismatchError(report);
 */
export async function compareModels(local: ImageModel, served: ImageModel, images: readonly { name: string; image: ImageInput }[], options: AgreementOptions = {}): Promise<AgreementReport> {
  checkSameClasses(local, served);
  const [lh, lw, lc] = local.inputShape;
  const [sh, sw, sc] = served.inputShape;
  if (lh !== sh || lw !== sw || lc !== sc) {
    throw new LensError('MODEL_MISMATCH', `the local model ${local.name} takes ${lh}x${lw}x${lc} images but the served model ${served.name} takes ${sh}x${sw}x${sc}`);
  }
  images.forEach((i) => checkImage(local, i.image, `image ${i.name}`));
  const batchSize = options.batchSize ?? defaultBatchSize(local.inputShape);
  const data = images.map((i) => i.image.data);
  const localRows = await forwardRows(local, data, batchSize);
  const servedRows = await forwardRows(served, data, batchSize);
  return compareScoreRows({ model: local, rows: localRows }, { model: served, rows: servedRows }, images.map((i) => i.name), options);
}

/** Models with different numbers of classes are not the same model, whatever their scores. */
function checkSameClasses(local: Pick<ImageModel, 'name' | 'classes'>, served: Pick<ImageModel, 'name' | 'classes'>): void {
  if (local.classes !== served.classes) {
    throw new LensError('MODEL_MISMATCH', `the local model ${local.name} has ${local.classes} classes but the served model ${served.name} has ${served.classes}: they are not the same model`);
  }
}

/** Score rows (one per image) and who answered them, for {@link compareScoreRows}. */
export interface ScoreRows {
  model: Pick<ImageModel, 'name' | 'output' | 'labels' | 'classes'>;
  rows: readonly Float32Array[];
}

/**
 * Compares two sets of score rows (one per image, in the same order) as probabilities: the core
 * of {@link compareModels}, for rows computed in other ways (e.g. encoded images sent as they are).
 *
 * @example
 * const report = compareScoreRows({ model: local, rows: localRows }, { model: served, rows: servedRows }, ['parrot.jpg']);
 */
export function compareScoreRows(localSide: ScoreRows, servedSide: ScoreRows, names: readonly string[], options: AgreementOptions = {}): AgreementReport {
  const { model: local, rows: localRows } = localSide;
  const { model: served, rows: servedRows } = servedSide;
  checkSameClasses(local, served);
  const tolerance = options.tolerance ?? 1e-3;
  const topK = Math.min(options.topK ?? 5, local.classes);
  const labels = local.labels ?? served.labels;
  const results = names.map((name, n): ImageAgreement => {
    const a = toProbabilities(localRows[n]!, local.output);
    const b = toProbabilities(servedRows[n]!, served.output);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    if (a.length !== b.length || Number.isNaN(a.reduce((s, v) => s + v, 0) + b.reduce((s, v) => s + v, 0))) maxDiff = Infinity;
    const sameTopK = topKAgree(a, b, topK, tolerance);
    return { image: name, local: ranked(a, topK, labels), served: ranked(b, topK, labels), maxProbabilityDifference: maxDiff, sameTopK, ok: sameTopK && maxDiff <= tolerance };
  });
  const warnings = [probabilityDoubt(local, localRows), probabilityDoubt(served, servedRows)].filter((w): w is string => w !== undefined);
  return { ok: results.every((r) => r.ok), topK, tolerance, local: local.name, served: served.name, images: results, warnings };
}

/** The MODEL_MISMATCH error for a failed report, naming the first image that differs and how. */
export function modelMismatchError(report: AgreementReport): LensError {
  const bad = report.images.filter((i) => !i.ok);
  const first = bad[0];
  const detail = first
    ? `on ${first.image}: local top-1 ${first.local[0]?.label ?? first.local[0]?.index} (${first.local[0]?.probability.toFixed(4)}), ` +
      `served top-1 ${first.served[0]?.label ?? first.served[0]?.index} (${first.served[0]?.probability.toFixed(4)}), ` +
      `largest probability difference ${first.maxProbabilityDifference.toPrecision(3)} (tolerance ${report.tolerance})` +
      (first.sameTopK ? '' : `, top-${report.topK} classes differ`)
    : '';
  return new LensError(
    'MODEL_MISMATCH',
    `the local model ${report.local} does not answer like the served model ${report.served} on ${bad.length} of ${report.images.length} images (${detail}); ` +
      'explanations of the local copy would not explain the served model: load the same SavedModel version the server serves' +
      (report.warnings.length ? `. Note: ${report.warnings.join('; ')}` : ''),
  );
}

/**
 * Compares and throws MODEL_MISMATCH when the models differ; returns the report when they agree.
 *
 * @example
 * await assertSameModel(local, remote, [{ name: 'cat.jpg', image: cat }]);
 */
export async function assertSameModel(local: ImageModel, served: ImageModel, images: readonly { name: string; image: ImageInput }[], options: AgreementOptions = {}): Promise<AgreementReport> {
  const report = await compareModels(local, served, images, options);
  if (!report.ok) throw modelMismatchError(report);
  return report;
}
