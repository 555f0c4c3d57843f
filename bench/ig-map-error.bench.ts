/**
 * Integrated Gradients to a requested map error: is the map-error estimate honest, and does the
 * map_adaptive rule reach Captum's default accuracy with less model work?
 *
 * For each image (black baseline, top-1 class, logits) the reference is the converged map: the
 * trapezoid on a uniform grid of 2049 points (bundled model, ResNet-8) or, for MobileNetV2, where a
 * gradient costs over a second here, 513 points; its own error estimate is reported. The grid is
 * dyadic, so map_adaptive's points are among its points. Then:
 * - Captum's default, gausslegendre with 50 steps: its true map error e50 and its estimate;
 * - map_adaptive with mapTolerance = e50 (the same error asked for): the work it spent, the true
 *   error it reached and its estimate;
 * - map_adaptive with mapTolerance = 0.01: does it meet 1%, and how far is the estimate;
 * - the oracle placement: trapezoid points spread with density (error density)^(1/3), the optimum
 *   for an integrand with independent increments, with the density read off the reference grid:
 *   the fewest gradient points that reach GL-50's error with knowledge no rule has, so the bound
 *   on what any placement of gradient points can save;
 * - the increment check: mean ||p(a + 16h) - p(a)||^2 / (16 mean ||p(a + h) - p(a)||^2) over the
 *   grid (p = gradient x (x - x'), h the grid step): 1 when the increments are independent, as for a
 *   random walk, where the trapezoid (linear interpolation) is the best estimate from the points.
 * Work = gradient evaluations + forward passes x (forward cost / gradient cost), both costs measured
 * on this machine per image at the bench's batch size. Gradients are cached by input image, so
 * runs that share points (the trapezoid reference and map_adaptive's dyadic points) compute them
 * once; the work reported is what each rule asks for, as its Attribution counts it.
 *
 * Models: the bundled shapes model on generated shapes (64x64), the MLPerf Tiny ResNet-8 on the
 * five photos of ../shared/images squashed to 32x32, MobileNetV2 (uint8 TFLite, run in float) on
 * the same photos at 224x224 (`MOBILENET_IMAGES=2`: the first two). `QUICK=1` runs two images per model. `GRADIENT_CACHE=DIR`
 * keeps every gradient on disk, so later runs reuse earlier runs' points. To use several cores, run
 * `MODELS=shapes PART=/tmp/a.json`, `MODELS=resnet8 PART=/tmp/b.json`, ... in parallel, then
 * `MERGE=/tmp/a.json,/tmp/b.json` writes the result from the parts (`MERGE_NOTE` adds a note).
 *
 * `ROUTES=1` measures instead the routes past the placement bound, on the same reference grids
 * (written as ig-map-error-routes; bench/ig-grid.ts does the grid arithmetic): how much of the
 * gradient increments a few pixel-space directions hold (what directional derivatives from forward
 * passes could stand in for), the gradient work left if the top 25 came free and exact, and a
 * smoothing quadrature (Brownian motion plus noise) fitted from a rule's own points, with oracle
 * variants. `PHOTOS=grace_hopper.bmp,parrot.jpg` keeps only those photos.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engines/tfjs/index.js';
import { integratedGradients, type Attribution } from '../src/attribution/index.js';
import { gradientsAt } from '../src/attribution/engine.js';
import { pathImage } from '../src/attribution/adaptive-rules.js';
import { MAP_TOLERANCE_MARGIN } from '../src/attribution/map-tolerance.js';
import { generateShapes } from '../src/datasets/shapes.js';
import { loadPixels } from '../src/image/index.js';
import { loadImageModel } from '../src/models/load.js';
import type { GradientResult, ImageModel } from '../src/core/model.js';
import { median, writeBenchResult, type Cell } from './lib.js';
import { distance, fewestPoints, fitSmoothing, incrementDirections, norm, oraclePlacement, spannedEnergies, smoothingWeights, trapezoidOn, uniformIndices, weightedSum } from './ig-grid.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = join(here, '../../shared');
const QUICK = process.env.QUICK === '1';
/** ROUTES=1: the routes past the placement bound (routes()), written as ig-map-error-routes. */
const ROUTES = process.env.ROUTES === '1';
/** PHOTOS=a.bmp,b.jpg: only these photos of ../shared/images. */
const PHOTOS = process.env.PHOTOS?.split(',');
const CAPTUM_STEPS = 50;
const TOLERANCE = 0.01;
const BATCH = 16;

interface Image {
  name: string;
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

const log = (msg: string) => process.stderr.write(`[ig-map-error] ${msg}\n`);

/** Milliseconds per image of a gradient evaluation and of a forward pass at the bench's batch size (median of 3). */
async function costs(model: ImageModel): Promise<{ gradient: number; forward: number }> {
  const [h, w, c] = model.inputShape;
  const batch = tf.randomUniform([BATCH, h, w, c], 0, 255);
  const time = async (fn: () => Promise<void>) => {
    await fn();
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await fn();
      runs.push((performance.now() - t0) / BATCH);
    }
    return median(runs);
  };
  const gradient = await time(async () => {
    const r = await model.gradient!(batch as tf.Tensor4D, 0);
    await r.gradients.data();
    tf.dispose([r.gradients, r.values]);
  });
  const forward = await time(async () => {
    const r = await model.forward(batch as tf.Tensor4D);
    await r.data();
    r.dispose();
  });
  batch.dispose();
  return { gradient, forward };
}

interface Outcome {
  image: string;
  e50: number;
  est50: number;
  work50: number;
  matchWork: number;
  matchError: number;
  matchEstimate: number;
  matchConverged: boolean;
  calibratedWork: number;
  calibratedError: number;
  tolWork: number;
  tolError: number;
  tolEstimate: number;
  tolConverged: boolean;
  referenceSpread: number;
  refDelta: number;
  oraclePoints: number;
  incrementRatio: number;
  scalarShare: number;
}

/** Gradients by key, in memory and, when GRADIENT_CACHE names a folder, on disk (so a slow model's runs reuse each other's points). */
class GradientStore {
  private readonly memory = new Map<string, { gradient: Float32Array; value: number }>();
  constructor(private readonly folder = process.env.GRADIENT_CACHE) {
    if (folder) mkdirSync(folder, { recursive: true });
  }
  has(key: string): boolean {
    return this.memory.has(key) || (this.folder !== undefined && existsSync(join(this.folder, key)));
  }
  get(key: string): { gradient: Float32Array; value: number } {
    let hit = this.memory.get(key);
    if (!hit && this.folder) {
      const bytes = readFileSync(join(this.folder, key));
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      hit = { value: all[0]!, gradient: all.slice(1) };
      this.memory.set(key, hit);
    }
    return hit!;
  }
  set(key: string, entry: { gradient: Float32Array; value: number }): void {
    this.memory.set(key, entry);
    if (this.folder) {
      const all = new Float32Array(entry.gradient.length + 1);
      all[0] = entry.value;
      all.set(entry.gradient, 1);
      writeFileSync(join(this.folder, `${key}.tmp`), all);
      renameSync(join(this.folder, `${key}.tmp`), join(this.folder, key));
    }
  }
}

/** The model with its gradients cached by (input image, target): wall time only, the counts stay the rules' own. */
function cachedGradients(model: ImageModel): ImageModel {
  const cache = new GradientStore();
  const [h, w, c] = model.inputShape;
  const per = h * w * c;
  return {
    name: model.name,
    inputShape: model.inputShape,
    classes: model.classes,
    output: model.output,
    preprocessing: model.preprocessing,
    forward: (pixels) => model.forward(pixels),
    dispose: () => model.dispose(),
    gradient: async (pixels, target) => {
      if (typeof target !== 'number') throw new Error('the bench caches one target per batch');
      const data = (await pixels.data()) as Float32Array;
      const n = pixels.shape[0];
      const keys = Array.from({ length: n }, (_, i) =>
        createHash('sha1').update(model.name).update(Buffer.from(data.buffer, data.byteOffset + i * per * 4, per * 4)).update(String(target)).digest('hex'),
      );
      const missing = [...new Set(keys.filter((k) => !cache.has(k)))];
      if (missing.length > 0) {
        const rows = missing.map((k) => keys.indexOf(k));
        const batch = tf.tensor4d(Float32Array.from(rows.flatMap((i) => Array.from(data.subarray(i * per, (i + 1) * per)))), [rows.length, h, w, c]);
        const result = await model.gradient!(batch, target);
        const g = (await result.gradients.data()) as Float32Array;
        const v = (await result.values.data()) as Float32Array;
        tf.dispose([batch, result.gradients, result.values]);
        missing.forEach((k, j) => cache.set(k, { gradient: g.slice(j * per, (j + 1) * per), value: v[j]! }));
      }
      const out = new Float32Array(n * per);
      keys.forEach((k, i) => out.set(cache.get(k)!.gradient, i * per));
      const result: GradientResult = { gradients: tf.tensor4d(out, [n, h, w, c]), values: tf.tensor1d(keys.map((k) => cache.get(k)!.value)) };
      return result;
    },
  };
}

/** Gradient x (x - x') at the reference grid's points alpha = j / (steps - 1) (black baseline), from the cache. */
async function gridProducts(model: ImageModel, image: Image, target: number, steps: number): Promise<Float32Array[]> {
  const start = new Float32Array(image.data.length);
  const out: Float32Array[] = [];
  for (let j = 0; j < steps; j += 64) {
    const alphas = Array.from({ length: Math.min(64, steps - j) }, (_, k) => (j + k) / (steps - 1));
    const { gradients } = await gradientsAt(model as Required<ImageModel>, alphas.map((a) => pathImage(start, image.data, a)), target, { batchSize: BATCH });
    for (const g of gradients) out.push(Float32Array.from(g, (v, i) => v * image.data[i]!));
  }
  return out;
}

/** (sum of e)^2 / (length x ||e||^2): the share of ||e||^2 along the all-ones direction, the only one F(x) - F(x') measures. */
function scalarShare(e: Float32Array): number {
  let sum = 0;
  let squares = 0;
  for (const v of e) {
    sum += v;
    squares += v * v;
  }
  return squares > 0 ? (sum * sum) / (e.length * squares) : 0;
}

/** mean ||p(a + 16h) - p(a)||^2 / (16 mean ||p(a + h) - p(a)||^2): 1 for independent increments. */
function incrementRatio(products: readonly Float32Array[]): number {
  const meanSquare = (lag: number) => {
    let t = 0;
    for (let j = 0; j + lag < products.length; j++) for (let i = 0; i < products[j]!.length; i++) t += (products[j + lag]![i]! - products[j]![i]!) ** 2;
    return t / (products.length - lag);
  };
  return meanSquare(16) / (16 * meanSquare(1));
}

/** How each model's reference map is made: the trapezoid on a dyadic grid of `steps` points. */
interface Reference {
  rule: 'riemann_trapezoid';
  steps: number;
}

const ig = (model: ImageModel, image: Image, options: Parameters<typeof integratedGradients>[2]) =>
  integratedGradients(model, image, { baseline: 'black', batchSize: BATCH, ...options });

async function measure(raw: ImageModel, modelName: string, images: Image[], ref: Reference, rows: Record<string, Cell>[], notes: string[]): Promise<void> {
  const cost = await costs(raw);
  const model = cachedGradients(raw);
  const forwardWeight = cost.forward / cost.gradient;
  const work = (a: Attribution) => a.gradientEvaluations + forwardWeight * a.forwardEvaluations;
  notes.push(`${modelName}: ${cost.gradient.toFixed(2)} ms per gradient evaluation, ${cost.forward.toFixed(2)} ms per forward pass (weight ${forwardWeight.toFixed(2)}), batch ${BATCH}.`);
  const outcomes: Outcome[] = [];
  for (const image of images) {
    const reference = await ig(model, image, { rule: ref.rule, steps: ref.steps });
    const referenceSpread = reference.mapErrorEstimate!;
    const captum = await ig(model, image, { rule: 'gausslegendre', steps: CAPTUM_STEPS });
    const e50 = distance(captum.data, reference.data);
    // Budget: the reference's steps, so the rule can go as far as the reference does.
    const match = await ig(model, image, { mapTolerance: e50, steps: ref.steps });
    // Asked to bring its estimate itself (not estimate x margin) to e50: what a stop without margin costs.
    const calibrated = await ig(model, image, { mapTolerance: Math.min(0.99, e50 * MAP_TOLERANCE_MARGIN), steps: ref.steps });
    const tol = await ig(model, image, { mapTolerance: TOLERANCE, steps: ref.steps });
    const products = await gridProducts(model, image, reference.target.index, ref.steps);
    const o: Outcome = {
      image: image.name,
      e50,
      est50: captum.mapErrorEstimate!,
      work50: work(captum),
      matchWork: work(match),
      matchError: distance(match.data, reference.data),
      matchEstimate: match.mapErrorEstimate!,
      matchConverged: match.details?.converged === true,
      calibratedWork: work(calibrated),
      calibratedError: distance(calibrated.data, reference.data),
      tolWork: work(tol),
      tolError: distance(tol.data, reference.data),
      tolEstimate: tol.mapErrorEstimate!,
      tolConverged: tol.details?.converged === true,
      referenceSpread,
      refDelta: reference.completeness!.relative,
      oraclePoints: fewestPoints(oraclePlacement(products), (indices) => distance(trapezoidOn(products, indices), reference.data) <= e50, 4 * CAPTUM_STEPS),
      incrementRatio: incrementRatio(products),
      scalarShare: scalarShare(Float32Array.from(captum.data, (v, i) => v - reference.data[i]!)),
    };
    outcomes.push(o);
    log(
      `${modelName} ${image.name}: GL-50 error ${o.e50.toExponential(2)} (est ${o.est50.toExponential(2)}); same error asked: work ${o.matchWork.toFixed(1)} vs ${o.work50.toFixed(1)}, error ${o.matchError.toExponential(2)} (est ${o.matchEstimate.toExponential(2)}); ` +
        `1%: work ${o.tolWork.toFixed(1)}, error ${o.tolError.toExponential(2)} (est ${o.tolEstimate.toExponential(2)}); reference spread ${o.referenceSpread.toExponential(2)}`,
    );
  }
  const within2 = (est: number, err: number) => est <= 2 * err && est >= err / 2;
  const count = (f: (o: Outcome) => boolean) => `${outcomes.filter(f).length}/${outcomes.length}`;
  const ratio = (f: (o: Outcome) => number) => median(outcomes.map(f));
  rows.push({
    model: modelName,
    images: outcomes.length,
    'GL-50 map error (median)': median(outcomes.map((o) => o.e50)),
    'GL-50 estimate / error (median)': ratio((o) => o.est50 / o.e50),
    'GL-50 estimate within 2x': count((o) => within2(o.est50, o.e50)),
    'map_adaptive at GL-50 error: work / GL-50 work (median)': ratio((o) => o.matchWork / o.work50),
    'work / GL-50 work (max)': Math.max(...outcomes.map((o) => o.matchWork / o.work50)),
    'images at <= half the work and <= GL-50 error': count((o) => o.matchWork <= o.work50 / 2 && o.matchError <= o.e50),
    'its error / GL-50 error (median)': ratio((o) => o.matchError / o.e50),
    'its estimate within 2x': count((o) => within2(o.matchEstimate, o.matchError)),
    'oracle placement at GL-50 error: work / GL-50 work (median)': ratio((o) => (o.oraclePoints + 2 * forwardWeight) / o.work50),
    'increment check (1 = independent increments, median)': ratio((o) => o.incrementRatio),
    "share of GL-50's squared error that F can see (max)": Math.max(...outcomes.map((o) => o.scalarShare)),
    'stopping at estimate = GL-50 error (no margin): work / GL-50 work (median)': ratio((o) => o.calibratedWork / o.work50),
    'then error / GL-50 error (median)': ratio((o) => o.calibratedError / o.e50),
    'tolerance 1%: met': count((o) => o.tolError <= TOLERANCE),
    'tolerance 1%: gradient-equivalent work (median)': median(outcomes.map((o) => o.tolWork)),
    'tolerance 1%: error (median)': median(outcomes.map((o) => o.tolError)),
    'tolerance 1%: estimate within 2x': count((o) => within2(o.tolEstimate, o.tolError)),
    'map_adaptive true error / estimate (max)': Math.max(...outcomes.flatMap((o) => [o.matchError / o.matchEstimate, o.tolError / o.tolEstimate])),
    reference: `${ref.rule} ${ref.steps}`,
    'reference error (max; see notes)': Math.max(...outcomes.map((o) => o.referenceSpread)),
  });
  for (const o of outcomes) {
    notes.push(
      `${modelName} ${o.image}: GL-50 error ${o.e50.toPrecision(3)} est ${o.est50.toPrecision(3)}, work ${o.work50.toFixed(1)}; ` +
        `map_adaptive(tol=${o.e50.toPrecision(3)}) work ${o.matchWork.toFixed(1)}, error ${o.matchError.toPrecision(3)} est ${o.matchEstimate.toPrecision(3)}${o.matchConverged ? '' : ' (budget spent)'}; ` +
        `estimate to GL-50 error: work ${o.calibratedWork.toFixed(1)}, error ${o.calibratedError.toPrecision(3)}; oracle placement ${o.oraclePoints} points; increment check ${o.incrementRatio.toFixed(2)}; map_adaptive(tol=0.01) work ${o.tolWork.toFixed(1)}, error ${o.tolError.toPrecision(3)} est ${o.tolEstimate.toPrecision(3)}${o.tolConverged ? '' : ' (budget spent)'}; reference delta ${o.refDelta.toExponential(1)}.`,
    );
  }
}

/** Noise ratios (noise variance / Brownian rate, in units of alpha) tried by the oracle smoothing. */
const SMOOTHING_RATIOS = [0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2];
/** Principal directions of the increments measured (JVPs would need one forward pass per direction and point). */
const DIRECTION_COUNTS = [1, 3, 10, 25];

interface RouteOutcome {
  image: string;
  e50: number;
  work50: number;
  shares: number[];
  /** Directions a JVP point can cover for less than a gradient point costs, and their share of the increment energy. */
  cheapDirections: number;
  cheapShare: number;
  halfPoints: number;
  spannedShare: number;
  neededShare: number;
  /** Per DIRECTION_COUNTS: the fewest oracle-placed gradient points reaching GL-50 error outside the top k directions. */
  freePoints: number[];
  trapezoidPoints: number;
  fittedPoints: number;
  fittedError: number;
  fittedEstimate: number;
  fittedAt50: number;
  trapezoidAt50: number;
  bestRatioPoints: number;
  oraclePoints: number;
  floorPoints: number;
}

/**
 * The routes past the placement bound, measured on the reference grid (no model evaluations
 * beyond the grid and GL-50): (a) how much of the increments' energy a few pixel-space directions
 * hold, which is what directional derivatives (JVPs from forward passes) could stand in for, and
 * the gradient work left when the top 25 directions are integrated exactly for free; (b) the
 * smoothing quadrature (Brownian motion plus noise, ratio fitted from the rule's own points, and the
 * best ratio per image as an oracle), on uniform and on oracle-placed points.
 */
async function routes(raw: ImageModel, modelName: string, images: Image[], ref: Reference, rows: Record<string, Cell>[], notes: string[]): Promise<void> {
  const cost = await costs(raw);
  const model = cachedGradients(raw);
  const forwardWeight = cost.forward / cost.gradient;
  // A rule with `points` gradient evaluations also spends F(x) and F(x').
  const pointsWork = (points: number) => points + 2 * forwardWeight;
  notes.push(`${modelName}: ${cost.gradient.toFixed(2)} ms per gradient evaluation, ${cost.forward.toFixed(2)} ms per forward pass (weight ${forwardWeight.toFixed(2)}), batch ${BATCH}.`);
  const outcomes: RouteOutcome[] = [];
  const most = 4 * CAPTUM_STEPS;
  for (const image of images) {
    const captum = await ig(model, image, { rule: 'gausslegendre', steps: CAPTUM_STEPS });
    const products = await gridProducts(model, image, captum.target.index, ref.steps);
    const n = products.length - 1;
    const reference = trapezoidOn(
      products,
      Array.from({ length: n + 1 }, (_, j) => j),
    );
    const e50 = distance(captum.data, reference);
    const work50 = captum.gradientEvaluations + forwardWeight * captum.forwardEvaluations;
    const allowed = (e50 * norm(reference)) ** 2;
    const reaches = (map: Float32Array) => distance(map, reference) <= e50;
    const errorOf = (map: Float32Array) => Float32Array.from(map, (v, i) => v - reference[i]!);
    const uniform = (points: number) => uniformIndices(n, points);
    const oracle = oraclePlacement(products);
    const smoothed = (indices: number[], ratio: number) => weightedSum(products, indices, smoothingWeights(indices.map((j) => j / n), ratio).weights);

    // (a) Principal directions of the increments; the share of the error at half GL-50's work they span.
    const { shares, directions } = await incrementDirections(products, Math.max(...DIRECTION_COUNTS));
    // A JVP point along k directions costs at least k forward passes (F there given for free) and
    // tells less than a gradient point, which gives every direction: only k < 1 / weight can pay.
    const cheapDirections = Math.min(shares.length, Math.ceil(1 / forwardWeight) - 1);
    const halfPoints = Math.floor(work50 / 2 - 2 * forwardWeight);
    const half = spannedEnergies(errorOf(trapezoidOn(products, oracle(halfPoints))), directions);
    const atHalf = { total: half.total, spanned: half.cumulative[directions.length - 1]! };
    const freePoints = DIRECTION_COUNTS.map(() => Infinity);
    for (let points = 3; points <= most && freePoints.some((p) => p === Infinity); points++) {
      const indices = oracle(points);
      const spanned = spannedEnergies(errorOf(trapezoidOn(products, indices)), directions);
      DIRECTION_COUNTS.forEach((k, c) => {
        if (freePoints[c] === Infinity && spanned.total - spanned.cumulative[k - 1]! <= allowed) freePoints[c] = indices.length;
      });
    }

    // (b) Smoothing quadrature: fitted from the rule's own points, and the oracle's best ratio.
    let fittedError = NaN;
    let fittedEstimate = NaN;
    const fitted = (indices: number[]) => {
      const { ratio, rate } = fitSmoothing(products, indices);
      const { weights, variance } = smoothingWeights(
        indices.map((j) => j / n),
        ratio,
      );
      const map = weightedSum(products, indices, weights);
      return { map, estimate: Math.sqrt(rate * variance) / norm(map) };
    };
    const fittedPoints = fewestPoints(
      uniform,
      (indices) => {
        const { map, estimate } = fitted(indices);
        fittedError = distance(map, reference);
        fittedEstimate = estimate;
        return fittedError <= e50;
      },
      most,
    );
    const bestRatio = (indices: number[]) => SMOOTHING_RATIOS.some((r) => reaches(smoothed(indices, r)));
    const o: RouteOutcome = {
      image: image.name,
      e50,
      work50,
      shares: DIRECTION_COUNTS.map((k) => shares[k - 1]!),
      cheapDirections,
      cheapShare: cheapDirections > 0 ? shares[cheapDirections - 1]! : 0,
      halfPoints,
      spannedShare: atHalf.spanned / atHalf.total,
      neededShare: 1 - allowed / atHalf.total,
      freePoints,
      trapezoidPoints: fewestPoints(uniform, (indices) => reaches(trapezoidOn(products, indices)), most),
      fittedPoints,
      fittedError,
      fittedEstimate,
      fittedAt50: distance(fitted(uniform(CAPTUM_STEPS)).map, reference),
      trapezoidAt50: distance(trapezoidOn(products, uniform(CAPTUM_STEPS)), reference),
      bestRatioPoints: fewestPoints(uniform, bestRatio, most),
      oraclePoints: fewestPoints(oracle, (indices) => reaches(trapezoidOn(products, indices)), most),
      floorPoints: fewestPoints(oracle, bestRatio, most),
    };
    outcomes.push(o);
    log(`${modelName} ${image.name}: ${JSON.stringify(o)}`);
  }
  const ratio = (points: (o: RouteOutcome) => number) => outcomes.map((o) => pointsWork(points(o)) / o.work50);
  const within2 = (o: RouteOutcome) => o.fittedEstimate <= 2 * o.fittedError && o.fittedEstimate >= o.fittedError / 2;
  rows.push({
    model: modelName,
    images: outcomes.length,
    'GL-50 map error (median)': median(outcomes.map((o) => o.e50)),
    ...Object.fromEntries(DIRECTION_COUNTS.map((k, c) => [`increment energy in the top ${k} direction${k > 1 ? 's' : ''} (max)`, Math.max(...outcomes.map((o) => o.shares[c]!))])),
    'directions a JVP point covers for less than a gradient (k x forward weight < 1)': Math.max(...outcomes.map((o) => o.cheapDirections)),
    'their increment energy (max)': Math.max(...outcomes.map((o) => o.cheapShare)),
    'error at half GL-50 work: share in the top 25 directions (max)': Math.max(...outcomes.map((o) => o.spannedShare)),
    'share needed to reach GL-50 error (min)': Math.min(...outcomes.map((o) => o.neededShare)),
    ...Object.fromEntries(
      DIRECTION_COUNTS.map((k, c) => [`top ${k} integrated exactly for free: gradient work at GL-50 error / GL-50 work (min)`, Math.min(...ratio((o) => o.freePoints[c]!))]),
    ),
    'trapezoid, uniform points: work / GL-50 work (median)': median(ratio((o) => o.trapezoidPoints)),
    'smoothing fitted from its points, uniform: work / GL-50 work (median)': median(ratio((o) => o.fittedPoints)),
    'smoothing fitted: work / GL-50 work (min)': Math.min(...ratio((o) => o.fittedPoints)),
    'smoothing fitted: estimate within 2x': `${outcomes.filter(within2).length}/${outcomes.length}`,
    'at 50 uniform points: smoothing error / trapezoid error (median)': median(outcomes.map((o) => o.fittedAt50 / o.trapezoidAt50)),
    'smoothing, best ratio per image (oracle), uniform: work / GL-50 work (median)': median(ratio((o) => o.bestRatioPoints)),
    'oracle placement, trapezoid: work / GL-50 work (median)': median(ratio((o) => o.oraclePoints)),
    'oracle placement and best smoothing ratio: work / GL-50 work (median)': median(ratio((o) => o.floorPoints)),
    'oracle placement and best smoothing ratio (min)': Math.min(...ratio((o) => o.floorPoints)),
    reference: `${ref.rule} ${ref.steps}`,
  });
  for (const o of outcomes) {
    notes.push(
      `${modelName} ${o.image}: GL-50 error ${o.e50.toPrecision(3)}, work ${o.work50.toFixed(1)}; increment energy in the top 1/3/10/25 directions ${o.shares.map((s) => s.toFixed(3)).join('/')}; ` +
        `at ${o.halfPoints} oracle-placed points (half GL-50's work) the top 25 span ${(100 * o.spannedShare).toFixed(1)}% of the error, ${(100 * o.neededShare).toFixed(1)}% needed; top 1/3/10/25 free: ${o.freePoints.join('/')} gradient points; ` +
        `uniform trapezoid ${o.trapezoidPoints} points, fitted smoothing ${o.fittedPoints} (error ${o.fittedError.toPrecision(3)}, est ${o.fittedEstimate.toPrecision(3)}), best ratio ${o.bestRatioPoints}; ` +
        `at 50 uniform points smoothing ${o.fittedAt50.toPrecision(3)} vs trapezoid ${o.trapezoidAt50.toPrecision(3)}; oracle placement ${o.oraclePoints}, with best ratio ${o.floorPoints}.`,
    );
  }
}

async function photos(size: number, count = 5): Promise<Image[]> {
  const dir = join(SHARED, 'images');
  const files = readdirSync(dir)
    .filter((f) => /\.(bmp|jpe?g|png)$/i.test(f) && (!PHOTOS || PHOTOS.includes(f)))
    .sort()
    .slice(0, QUICK ? 2 : count);
  const out: Image[] = [];
  for (const f of files) {
    const p = await loadPixels(join(dir, f), { size: [size, size], resize: 'squash', channels: 3 });
    out.push({ name: f, data: p.data, height: p.height, width: p.width, channels: p.channels });
  }
  return out;
}

const TITLE = "Integrated Gradients to a map error: estimate vs true error, and work against Captum's default (gausslegendre, 50 steps)";
const ROUTES_TITLE = 'Integrated Gradients to a map error: routes past the placement bound (directional derivatives, smoothing quadrature), on the reference grid';
const ROUTES_NOTES = [
  'Every estimate here is built from points of the reference grid (the column names it), so it costs no model evaluations; its error is measured against the grid\'s own trapezoid. GL-50 = Captum\'s default (gausslegendre, 50 steps), evaluated at its own nodes. Map error = ||map - reference|| / ||reference||; black baseline, top-1 class, logits. Work = gradient points + 2 forward passes (F(x), F(x\')) weighted by their measured cost.',
  'Directional derivatives (a): the increments p(a+h) - p(a) of the grid (p = gradient x (x - x\'), h = 1/(steps - 1)), their principal directions from the Gram matrix (subspace iteration); "increment energy in the top k" = share of sum ||p(a+h) - p(a)||^2 in the top k directions (a JVP along one pixel-space direction sees only that component, at one or more forward passes each). "error at half GL-50 work": the trapezoid on the oracle placement with the points half of GL-50\'s work buys; "share needed": 1 - (GL-50 error / its error)^2, the part of its squared error the directions would have to hold for exact integration of that part to reach GL-50 error. "top k ... for free": the fewest oracle-placed gradient points whose error outside the top k directions is under GL-50 error, i.e. JVPs at no cost and exact in those directions; over 0.5 means no JVP scheme along k directions reaches the goal. "directions a JVP point covers for less than a gradient": a JVP point along k directions costs at least k forward passes (one per direction, F at the point given free) and yields k numbers where a gradient point yields all of them, so only k < 1 / (forward weight) can be cheaper per point.',
  'Smoothing quadrature (b): posterior mean of the integral for p = constant + Brownian motion observed with independent noise (per pixel, one kernel for all pixels), weights from min(s, t) + ratio x delta with the constant unknown (universal kriging); ratio 0 is the trapezoid. "fitted": rate and noise by least squares of ||p_j - p_i||^2 = rate x |a_j - a_i| + 2 noise over the rule\'s own pairs at most 4 points apart; its estimate sqrt(rate x posterior variance) / ||map||. "best ratio (oracle)": the best of ratios 0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2 per point set, chosen against the reference. "oracle placement and best smoothing ratio": both oracles at once, the floor of these gradient-point quadratures.',
];

async function main(): Promise<void> {
  // The parts ran on the default backend; the merge records it as theirs.
  await initBackend();
  if (process.env.MERGE) {
    const parts = process.env.MERGE.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as { rows: Record<string, Cell>[]; notes: string[] });
    // MERGE_NOTE: what the parts leave out and why (e.g. a model that did not finish).
    const notes = [...new Set(parts.flatMap((p) => p.notes)), ...(process.env.MERGE_NOTE ? [process.env.MERGE_NOTE] : [])];
    writeBenchResult(ROUTES ? 'ig-map-error-routes' : 'ig-map-error', ROUTES ? ROUTES_TITLE : TITLE, parts.flatMap((p) => p.rows), notes);
    return;
  }
  const rows: Record<string, Cell>[] = [];
  const only = process.env.MODELS?.split(',');
  const wanted = (name: string) => !only || only.includes(name);
  const run = ROUTES ? routes : measure;
  const notes = ROUTES ? [...ROUTES_NOTES] : [
    'Reference: the column names it (riemann_trapezoid on a uniform grid, both ends included). "reference error": its own map-error estimate (trapezoid against midpoint of the interleaved halves).',
    'Map error = ||map - reference|| / ||reference||, L2 over pixels and channels; black baseline, top-1 class, logits.',
    `Captum's default is gausslegendre with ${CAPTUM_STEPS} steps (n_steps=50). map_adaptive runs with mapTolerance set to GL-50's true error on that image (it stops at estimate <= tolerance / ${MAP_TOLERANCE_MARGIN}, the measured margin), and once more stopping at estimate <= GL-50's error (mapTolerance = ${MAP_TOLERANCE_MARGIN} x that); budget: the reference's steps.`,
    'Oracle placement: trapezoid points with density (error density)^(1/3), the error density measured on 32 blocks of the reference grid; the fewest points reaching GL-50 error (work adds the 2 forward passes). Increment check: mean ||p(a+16h) - p(a)||^2 / (16 mean ||p(a+h) - p(a)||^2) over the reference grid, p = gradient x (x - x\'); 1 means independent increments, where linear interpolation (the trapezoid) is the best estimate between points and only the placement can be improved. "Share ... F can see": (sum of e)^2 / (values x ||e||^2) for GL-50\'s error e, the part of it along the all-ones direction, the only one forward passes (changes of F) measure.',
    'Work = gradient evaluations + forward passes weighted by their measured cost relative to a gradient evaluation (both rules spend 2 forward passes, F(x) and F(x\')).',
    '"estimate within 2x": error / 2 <= estimate <= 2 x error. Estimates come from the rules\' own points (splitDifferenceWeights), no extra evaluations.',
  ];
  const bundled = join(here, '../models/shapes-resnet/model.json');
  if (!wanted('shapes')) {
    // left out on request
  } else if (existsSync(bundled)) {
    const model = await loadImageModel('default');
    const samples = generateShapes({ count: QUICK ? 2 : 8, seed: 2024, size: model.inputShape[0] });
    const images = samples.map((s, i) => ({ name: `shape ${i} (${s.className})`, data: s.pixels, height: model.inputShape[0], width: model.inputShape[1], channels: model.inputShape[2] }));
    await run(model, 'shapes-resnet (bundled, generated shapes)', images, { rule: 'riemann_trapezoid', steps: 2049 }, rows, notes);
    model.dispose();
  } else {
    notes.push('The bundled model (models/shapes-resnet) is missing; its row is left out.');
  }
  const resnet8 = join(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
  if (!wanted('resnet8')) {
    // left out on request
  } else if (existsSync(resnet8)) {
    const model = await loadImageModel(resnet8);
    await run(model, 'resnet8-cifar10 (photos, 32x32)', await photos(32), { rule: 'riemann_trapezoid', steps: 2049 }, rows, notes);
    model.dispose();
  } else {
    notes.push(`ResNet-8 not found at ${resnet8}`);
  }
  const mobilenet = join(SHARED, 'models-external/mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant.tflite');
  if (!wanted('mobilenet')) {
    // left out on request
  } else if (existsSync(mobilenet)) {
    const model = await loadImageModel(mobilenet);
    await run(model, 'mobilenet_v2_1.0_224_quant (photos, 224x224)', await photos(224, Number(process.env.MOBILENET_IMAGES ?? 3)), { rule: 'riemann_trapezoid', steps: 513 }, rows, notes);
    model.dispose();
  } else {
    notes.push(`MobileNetV2 not found at ${mobilenet}`);
  }
  if (process.env.PART) writeFileSync(process.env.PART, JSON.stringify({ rows, notes }));
  else if (ROUTES) writeBenchResult('ig-map-error-routes', ROUTES_TITLE, rows, notes);
  else writeBenchResult('ig-map-error', TITLE, rows, notes);
}

await main();
