/**
 * Choosing the class to explain: the model's best class, an index, a label, or each of the top k.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import { checkImage, forwardRows, toProbabilities } from './engine.js';
import type { Attribution, CommonOptions, ImageInput, TargetInfo, TargetSpec } from './types.js';

/** A single target, or each of the model's k best classes. */
export type TargetsSpec = TargetSpec | { topK: number };

/**
 * Reads a target as the CLI gives it: `top1`, `topK` (e.g. `top3`), a class index, or a label.
 *
 * @example
 * parseTarget('top3'); // { topK: 3 }
 * parseTarget('7');    // 7
 * parseTarget('cat');  // 'cat'
 */
export function parseTarget(value: string): TargetsSpec {
  const v = value.trim();
  const top = /^top(\d+)$/i.exec(v);
  if (top) {
    const k = Number(top[1]);
    if (k < 1) throw new LensError('INVALID_ARGUMENT', `--target ${value}: k must be at least 1`);
    return k === 1 ? 'top1' : { topK: k };
  }
  if (/^\d+$/.test(v)) return Number(v);
  if (v === '') throw new LensError('INVALID_ARGUMENT', '--target is empty: give top1, topK, a class index or a label');
  return v;
}

function labelIndex(model: ImageModel, label: string): number {
  const labels = model.labels ?? [];
  let index = labels.indexOf(label);
  if (index < 0) {
    const lower = label.toLowerCase();
    index = labels.findIndex((l) => l.toLowerCase() === lower);
  }
  if (index < 0) {
    const hint = labels.length === 0 ? 'the model has no labels; give a class index' : `labels include ${labels.slice(0, 5).map((l) => `"${l}"`).join(', ')}${labels.length > 5 ? ', ...' : ''}`;
    throw new LensError('INVALID_ARGUMENT', `model ${model.name} has no class labelled "${label}" (${hint})`);
  }
  return index;
}

/** The target, with score and probability, from the model's scores on the input. */
export function targetInfo(model: ImageModel, scores: Float32Array, index: number): TargetInfo {
  if (!Number.isInteger(index) || index < 0 || index >= scores.length) {
    throw new LensError('INVALID_ARGUMENT', `target class ${index} is outside 0..${scores.length - 1} for model ${model.name}`);
  }
  const probabilities = toProbabilities(scores, model.output);
  const label = model.labels?.[index];
  return { index, ...(label !== undefined ? { label } : {}), score: scores[index]!, probability: probabilities[index]! };
}

/** Resolves a target spec against the model's scores on the input. */
export function resolveTargets(model: ImageModel, scores: Float32Array, spec: TargetsSpec = 'top1'): TargetInfo[] {
  const order = () => Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
  if (spec === 'top1') return [targetInfo(model, scores, order()[0]!)];
  if (typeof spec === 'number') return [targetInfo(model, scores, spec)];
  if (typeof spec === 'string') return [targetInfo(model, scores, labelIndex(model, spec))];
  if (!Number.isInteger(spec.topK) || spec.topK < 1) throw new LensError('INVALID_ARGUMENT', `topK must be a positive integer, got ${spec.topK}`);
  return order()
    .slice(0, spec.topK)
    .map((i) => targetInfo(model, scores, i));
}

/** Resolves a single target (not top-k) against the model's scores on the input. */
export function resolveTarget(model: ImageModel, scores: Float32Array, spec: TargetSpec = 'top1'): TargetInfo {
  return resolveTargets(model, scores, spec)[0]!;
}

/**
 * F(x) and the target on it, with the scores of `others` from the same batched call: `rows` is
 * [F(x), ...F(others)]. F(x) is `options.inputScores` when the caller gives it, so an explanation
 * that resolved its targets first computes it once.
 *
 * @example
 * const { target, rows } = await scoreInput(model, image, options, baselines, batchSize);
 */
export async function scoreInput(
  model: ImageModel,
  image: ImageInput,
  options: Pick<CommonOptions, 'target' | 'inputScores' | 'signal'>,
  others: readonly Float32Array[] = [],
  batchSize = 1,
): Promise<{ target: TargetInfo; rows: Float32Array[] }> {
  const progress = options.signal ? { signal: options.signal } : {};
  const rows = options.inputScores
    ? [options.inputScores, ...(others.length > 0 ? await forwardRows(model, others, batchSize, progress) : [])]
    : await forwardRows(model, [image.data, ...others], batchSize, progress);
  return { target: resolveTarget(model, rows[0]!, options.target), rows };
}

/**
 * Runs a method once per target of `spec` (e.g. each of the top 3 classes).
 *
 * @example
 * const maps = await attributeTargets(integratedGradients, model, image, { topK: 3 }, { steps: 32 });
 */
export async function attributeTargets<O extends CommonOptions>(
  method: (model: ImageModel, image: ImageInput, options?: O) => Promise<Attribution>,
  model: ImageModel,
  image: ImageInput,
  spec: TargetsSpec,
  options: Omit<O, 'target'> = {} as Omit<O, 'target'>,
): Promise<Attribution[]> {
  checkImage(model, image);
  const [scores] = await forwardRows(model, [image.data], 1);
  const targets = resolveTargets(model, scores!, spec);
  const out: Attribution[] = [];
  for (const t of targets) out.push(await method(model, image, { ...options, target: t.index, inputScores: scores } as O));
  return out;
}
