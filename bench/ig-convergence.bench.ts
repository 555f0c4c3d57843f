/**
 * Fewer gradient evaluations for the same accuracy: how many evaluations Integrated Gradients
 * needs to be complete within 1% (|sum(attr) - (F(x) - F(x'))| < 1% of |F(x) - F(x')|, black
 * baseline) with the library's two model-guided rules, against Captum's default rule
 * (gausslegendre) and riemann_trapezoid. bench/ig-rules.bench.ts has every fixed rule.
 *
 * - nonuniform (after arXiv 2302.11107): a forward sweep of F on steps/2 segments, the gradient
 *   points spread over segments by how much F changes across them.
 * - adaptive: 2-point Gauss-Legendre per segment, checked against the exact change of F across
 *   it; the segments that miss most are halved until the delta is met (tolerance 1%, budget 1024).
 *
 * Models: the MLPerf Tiny ResNet-8 (../shared/models-external) on the five photos of
 * ../shared/images squashed to 32x32, and the bundled shapes model (models/shapes-resnet, when
 * present) on generated shapes. Fixed rules and nonuniform run steps 2, 4, ..., 1024; an image's count is
 * the first that reaches the threshold. Counts do not depend on the machine.
 *
 * Completeness is a sum over pixels, which can be met while the map is off, so each map is also
 * compared with a 4096-step reference map, next to riemann_trapezoid's map at as many gradient
 * evaluations.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/engines/tfjs/index.js';
import { integratedGradients, type Attribution, type IgRule } from '../src/attribution/index.js';
import { generateShapes } from '../src/datasets/shapes.js';
import { loadPixels } from '../src/image/index.js';
import { loadImageModel } from '../src/models/load.js';
import type { ImageModel } from '../src/core/model.js';
import { median, writeBenchResult, type Cell } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = join(here, '../../shared');
const RESNET8 = join(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const BUNDLED = join(here, '../models/shapes-resnet/model.json');
const LADDER = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const THRESHOLD = 0.01;
/** Steps of the reference map (riemann_middle) that map errors are measured against. */
const REFERENCE_STEPS = 4096;

interface Image {
  name: string;
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

const log = (msg: string) => process.stderr.write(`[ig-convergence] ${msg}\n`);

/** Relative L2 distance of a map from the reference map. */
function mapError(data: Float32Array, reference: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < data.length; i++) {
    num += (data[i]! - reference[i]!) ** 2;
    den += reference[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

interface Reached {
  gradients: number;
  forwards: number;
  /** Map error at that point, and riemann_trapezoid's at as many gradient evaluations. */
  error: number;
  trapezoidError: number;
}

const ig = (model: ImageModel, image: Image, rule: IgRule, steps: number, extra: { tolerance?: number } = {}) =>
  integratedGradients(model, image, { steps, rule, baseline: 'black', batchSize: 64, ...extra });

/** The first ladder step under the threshold (or the adaptive rule's stop), with map errors there. */
async function reach(model: ImageModel, image: Image, rule: IgRule, reference: Float32Array): Promise<{ reached?: Reached; deltas: Map<number, number> }> {
  const deltas = new Map<number, number>();
  const last = LADDER[LADDER.length - 1]!;
  const found = async (attr: Attribution): Promise<Reached> => ({
    gradients: attr.gradientEvaluations,
    forwards: attr.forwardEvaluations,
    error: mapError(attr.data, reference),
    trapezoidError: mapError((await ig(model, image, 'riemann_trapezoid', attr.gradientEvaluations)).data, reference),
  });
  if (rule === 'adaptive') {
    const attr = await ig(model, image, rule, last, { tolerance: THRESHOLD });
    return { ...((attr.completeness?.relative ?? Infinity) < THRESHOLD ? { reached: await found(attr) } : {}), deltas };
  }
  for (const steps of LADDER) {
    const attr = await ig(model, image, rule, steps);
    const relative = attr.completeness?.relative ?? Infinity;
    deltas.set(steps, relative);
    if (relative < THRESHOLD) return { reached: await found(attr), deltas };
  }
  return { deltas };
}

const RULE_LABELS: Partial<Record<IgRule, string>> = {
  nonuniform: 'nonuniform (steps/2 sweep segments)',
  adaptive: `adaptive (tolerance ${THRESHOLD}, budget ${LADDER[LADDER.length - 1]})`,
};

async function measure(model: ImageModel, modelName: string, images: Image[], referenceDeltas: number[]): Promise<Record<string, Cell>[]> {
  const rows: Record<string, Cell>[] = [];
  const last = LADDER[LADDER.length - 1]!;
  const references: Float32Array[] = [];
  for (const image of images) {
    const ref = await ig(model, image, 'riemann_middle', REFERENCE_STEPS);
    references.push(ref.data);
    referenceDeltas.push(ref.completeness?.relative ?? Infinity);
  }
  for (const rule of ['riemann_trapezoid', 'gausslegendre', 'nonuniform', 'adaptive'] as IgRule[]) {
    const reached: Reached[] = [];
    const at16: number[] = [];
    for (const [i, image] of images.entries()) {
      const r = await reach(model, image, rule, references[i]!);
      if (r.reached) reached.push(r.reached);
      const d16 = r.deltas.get(16);
      if (d16 !== undefined) at16.push(d16);
      log(
        `${modelName} ${rule} ${image.name}: ` +
          (r.reached ? `${r.reached.gradients} gradient + ${r.reached.forwards} forward evaluations, map error ${r.reached.error.toExponential(2)} (trapezoid ${r.reached.trapezoidError.toExponential(2)})` : `>${last} gradient evaluations`),
      );
    }
    const med = (pick: (r: Reached) => number) => (reached.length ? median(reached.map(pick)) : null);
    rows.push({
      model: modelName,
      rule: RULE_LABELS[rule] ?? rule,
      images: images.length,
      'reached <1%': reached.length,
      'median gradient evaluations': med((r) => r.gradients),
      'max gradient evaluations': reached.length === images.length ? Math.max(...reached.map((r) => r.gradients)) : `>${last}`,
      'median forward passes': med((r) => r.forwards),
      'median map error there': med((r) => r.error),
      'median map error of riemann_trapezoid at as many gradient evaluations': med((r) => r.trapezoidError),
      'median rel. delta at 16 steps (of images not done before)': at16.length ? median(at16) : null,
    });
  }
  return rows;
}

async function main(): Promise<void> {
  await initBackend();
  const rows: Record<string, Cell>[] = [];
  const referenceDeltas: number[] = [];
  const notes = [
    `Evaluations to reach a completeness delta under ${THRESHOLD * 100}% of |F(x) - F(x')|, black baseline, target = top-1 class, first of steps ${LADDER.join(', ')}.`,
    'Scores are logits (pre-softmax). Rules as `integratedGradients({ rule })` names them (src/attribution/integration.ts); every fixed rule: bench/results/ig-rules.json.',
    'forward passes = Attribution.forwardEvaluations at the first ladder step under 1%: F(x) and F(x\') (2) plus the sweep (nonuniform) or the segment ends and midpoints (adaptive).',
    'Forward passes cost about 40% of a gradient evaluation on wasm (ResNet50: 255 vs 565 ms/image).',
    `map error = ||map - reference|| / ||reference|| (L2 over pixels and channels), reference = riemann_middle with ${REFERENCE_STEPS} steps; "riemann_trapezoid at as many gradient evaluations" is that error for a trapezoid map with the same gradient evaluations as the row's rule used on that image.`,
  ];
  if (existsSync(RESNET8)) {
    const model = await loadImageModel(RESNET8);
    const dir = join(SHARED, 'images');
    const files = readdirSync(dir).filter((f) => /\.(bmp|jpe?g|png)$/i.test(f)).sort();
    const images: Image[] = [];
    for (const f of files) {
      const p = await loadPixels(join(dir, f), { size: [32, 32], resize: 'squash', channels: 3 });
      images.push({ name: f, data: p.data, height: p.height, width: p.width, channels: p.channels });
    }
    rows.push(...(await measure(model, 'resnet8-32 (photos)', images, referenceDeltas)));
    model.dispose();
  } else {
    notes.push(`ResNet-8 not found at ${RESNET8}`);
  }
  if (existsSync(BUNDLED)) {
    const model = await loadImageModel('default');
    const samples = generateShapes({ count: 8, seed: 2024, size: model.inputShape[0] });
    const images = samples.map((s, i) => ({ name: `shape ${i} (${s.className})`, data: s.pixels, height: model.inputShape[0], width: model.inputShape[1], channels: model.inputShape[2] }));
    rows.push(...(await measure(model, 'shapes-resnet (generated)', images, referenceDeltas)));
    model.dispose();
  } else {
    notes.push('The bundled model (models/shapes-resnet) is not in this checkout yet; its rows are missing.');
  }
  notes.push(`Median completeness delta of the reference maps: ${median(referenceDeltas).toExponential(2)} (max ${Math.max(...referenceDeltas).toExponential(2)}).`);
  writeBenchResult('ig-convergence', 'Integrated Gradients: gradient evaluations to 1% completeness, nonuniform and adaptive rules vs fixed rules', rows, notes);
}

await main();
