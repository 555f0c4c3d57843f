/**
 * Quadrature experiments on a reference grid of Integrated Gradients path products (p = gradient x
 * (x - x') at alpha = j / n, j = 0..n), for the ig-map-error bench: every estimate here reuses the
 * grid's points, so it costs no model evaluations, and its error is measured against the grid's
 * own trapezoid (the reference map).
 * - trapezoid on any subset of the grid, and the oracle placement (density (error density)^(1/3));
 * - the principal directions of the increments p(a + h) - p(a) (what directional derivatives, JVPs,
 *   would have to capture to stand in for gradients between gradient points);
 * - a smoothing quadrature: the posterior mean of the integral for a Brownian motion observed with
 *   independent noise (kernel min(s, t) + ratio x delta, an unknown constant), whose ratio is
 *   fitted from the rule's own points; ratio 0 is the trapezoid.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EigenvalueDecomposition, Matrix, QrDecomposition, solve } from 'ml-matrix';
import { relativeL2 } from '../src/attribution/index.js';

/** ||a - b|| / ||b||. */
export function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return relativeL2(
    Float32Array.from(b, (v, i) => a[i]! - v),
    b,
  );
}

/** sum_k weights[k] x products[indices[k]]. */
export function weightedSum(products: readonly Float32Array[], indices: readonly number[], weights: ArrayLike<number>): Float32Array {
  const sum = new Float64Array(products[0]!.length);
  indices.forEach((j, k) => {
    const w = weights[k]!;
    const p = products[j]!;
    for (let i = 0; i < sum.length; i++) sum[i]! += w * p[i]!;
  });
  return Float32Array.from(sum);
}

/** Trapezoid weights for grid points `indices` (ascending, first 0, last n) of a grid of n intervals. */
export function trapezoidWeights(indices: readonly number[], n: number): Float64Array {
  const w = new Float64Array(indices.length);
  for (let k = 0; k + 1 < indices.length; k++) {
    const h = (indices[k + 1]! - indices[k]!) / n;
    w[k]! += h / 2;
    w[k + 1]! += h / 2;
  }
  return w;
}

/** The trapezoid map on grid points `indices` (ascending, first 0, last n). */
export function trapezoidOn(products: readonly Float32Array[], indices: readonly number[]): Float32Array {
  return weightedSum(products, indices, trapezoidWeights(indices, products.length - 1));
}

/** `points` grid indices as evenly spread as the grid allows (both ends included). */
export function uniformIndices(n: number, points: number): number[] {
  return [...new Set(Array.from({ length: points }, (_, k) => Math.round((k * n) / (points - 1))))];
}

/**
 * The oracle placement: `points` grid indices spread with density rho^(1/3), where rho is the
 * error density of the trapezoid on 32 blocks of the grid (||coarse - fine||^2 / h^3), the optimum
 * for independent increments; returns the placement as a function of the number of points.
 */
export function oraclePlacement(products: readonly Float32Array[]): (points: number) => number[] {
  const n = products.length - 1;
  const blocks = 32;
  const step = n / blocks;
  const density = Array.from({ length: blocks }, (_, b) => {
    const [pa, pb] = [products[b * step]!, products[(b + 1) * step]!];
    let squared = 0;
    for (let i = 0; i < pa.length; i++) {
      let fine = 0;
      for (let j = b * step; j < (b + 1) * step; j++) fine += (products[j]![i]! + products[j + 1]![i]!) / (2 * n);
      squared += ((pa[i]! + pb[i]!) / (2 * blocks) - fine) ** 2;
    }
    return Math.cbrt(squared * blocks ** 3);
  });
  // Cumulative density over the grid's intervals; a point at share u goes to the first grid index reaching u.
  const cumulative = [0];
  for (let j = 0; j < n; j++) cumulative.push(cumulative[j]! + density[Math.floor(j / step)]!);
  const at = (u: number) => cumulative.findIndex((c) => c >= u * cumulative[n]!);
  return (points) => [...new Set(Array.from({ length: points }, (_, k) => (k === points - 1 ? n : at(k / (points - 1)))))].sort((p, q) => p - q);
}

/** The fewest points (3 to `most`) whose placement `reaches` the goal, counted as placed; Infinity if none. */
export function fewestPoints(place: (points: number) => number[], reaches: (indices: number[]) => boolean, most: number): number {
  for (let points = 3; points <= most; points++) {
    const indices = place(points);
    if (reaches(indices)) return indices.length;
  }
  return Infinity;
}

/** Principal directions of the grid's increments and the share of their energy each captures. */
export interface IncrementDirections {
  /** shares[k - 1]: share of sum_j ||p_{j+1} - p_j||^2 in the top k directions. */
  shares: number[];
  /** Orthonormal directions in pixel space, strongest first. */
  directions: Float32Array[];
}

/** Pixels per block when the increments are handled in pixel blocks (wasm heap: n x block floats at a time). */
const PIXEL_BLOCK = 8192;

/** The n x (block) increments p_{j+1} - p_j over pixels [from, to) as a tensor. */
function incrementBlock(products: readonly Float32Array[], from: number, to: number): tf.Tensor2D {
  const n = products.length - 1;
  const width = to - from;
  const data = new Float32Array(n * width);
  for (let j = 0; j < n; j++) {
    const [p, q] = [products[j]!, products[j + 1]!];
    for (let i = from; i < to; i++) data[j * width + i - from] = q[i]! - p[i]!;
  }
  return tf.tensor2d(data, [n, width]);
}

/**
 * The top `count` principal directions of the increments, from their Gram matrix (n x n, built
 * in pixel blocks) by subspace iteration with Rayleigh-Ritz until the top `count` energies change
 * by under 1e-6 (relative; at most 300 rounds), and the share of the increments' energy in the top 1..count.
 */
export async function incrementDirections(products: readonly Float32Array[], count: number): Promise<IncrementDirections> {
  const n = products.length - 1;
  const per = products[0]!.length;
  let gram = tf.zeros([n, n]) as tf.Tensor2D;
  for (let from = 0; from < per; from += PIXEL_BLOCK) {
    const block = incrementBlock(products, from, Math.min(per, from + PIXEL_BLOCK));
    const next = tf.tidy(() => tf.add(gram, tf.matMul(block, block, false, true))) as tf.Tensor2D;
    tf.dispose([gram, block]);
    gram = next;
  }
  const trace = (await tf.tidy(() => tf.sum(tf.mul(gram, tf.eye(n)))).data())[0]!;
  const width = Math.min(n, count + 16);
  // Deterministic start: a fixed pseudo-random block (the result does not depend on it once converged).
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  let basis = new Matrix(Array.from({ length: n }, () => Array.from({ length: width }, random)));
  let ritz: { values: number[]; vectors: Matrix } | undefined;
  let previous = 0;
  for (let iter = 0; iter < 300; iter++) {
    basis = new QrDecomposition(basis).orthogonalMatrix;
    const q = tf.tensor2d(Float32Array.from(basis.to1DArray()), [n, width]);
    const gq = tf.matMul(gram, q);
    const product = new Matrix(n, width);
    const values = (await gq.data()) as Float32Array;
    for (let r = 0; r < n; r++) for (let c = 0; c < width; c++) product.set(r, c, values[r * width + c]!);
    tf.dispose([q, gq]);
    // Rayleigh-Ritz on span(basis): T = basis' G basis.
    const small = basis.transpose().mmul(product);
    const eig = new EigenvalueDecomposition(small.add(small.transpose()).div(2), { assumeSymmetric: true });
    const order = eig.realEigenvalues.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v);
    ritz = { values: order.map((o) => o.v), vectors: basis.mmul(new Matrix(eig.eigenvectorMatrix.to2DArray().map((row) => order.map((o) => row[o.i]!)))) };
    const top = ritz.values.slice(0, count).reduce((a, b) => a + b, 0);
    if (iter > 5 && Math.abs(top - previous) <= 1e-6 * top) break;
    previous = top;
    basis = product;
  }
  // Directions in pixel space: increments' transpose times the Gram eigenvectors / sqrt(energy).
  const vectors = tf.tensor2d(Float32Array.from(ritz!.vectors.subMatrix(0, n - 1, 0, count - 1).to1DArray()), [n, count]);
  const directions = Array.from({ length: count }, () => new Float32Array(per));
  for (let from = 0; from < per; from += PIXEL_BLOCK) {
    const to = Math.min(per, from + PIXEL_BLOCK);
    const block = incrementBlock(products, from, to);
    const u = tf.matMul(block, vectors, true, false);
    const values = (await u.data()) as Float32Array;
    tf.dispose([block, u]);
    for (let i = from; i < to; i++) for (let c = 0; c < count; c++) directions[c]![i] = values[(i - from) * count + c]! / Math.sqrt(ritz!.values[c]!);
  }
  tf.dispose([gram, vectors]);
  let running = 0;
  const shares = ritz!.values.slice(0, count).map((v) => (running += v) / trace);
  return { shares, directions };
}

/** ||e||^2 and, for k = 1..directions, ||U_k' e||^2: the part of e the first k (orthonormal) directions span. */
export function spannedEnergies(e: ArrayLike<number>, directions: readonly Float32Array[]): { total: number; cumulative: number[] } {
  let total = 0;
  for (let i = 0; i < e.length; i++) total += e[i]! ** 2;
  let running = 0;
  const cumulative = directions.map((u) => {
    let dot = 0;
    for (let i = 0; i < e.length; i++) dot += u[i]! * e[i]!;
    return (running += dot * dot);
  });
  return { total, cumulative };
}

/**
 * Weights of the smoothing quadrature at `alphas` (ascending): the posterior mean of the integral
 * over [0, 1] of f = c + W, W a Brownian motion of unit rate, c an unknown constant, observed with
 * independent noise of variance `ratio` (per unit rate); and the posterior variance of the
 * integral per unit rate. Ratio 0 gives the trapezoid (and variance sum h^3 / 12).
 */
export function smoothingWeights(alphas: readonly number[], ratio: number): { weights: Float64Array; variance: number } {
  const m = alphas.length;
  // Universal kriging: [K 1; 1' 0] [w; lambda] = [z; 1], K = min(s, t) + ratio I, z = integral of min(a, t) dt.
  const system = new Matrix(m + 1, m + 1);
  const right = new Matrix(m + 1, 1);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) system.set(i, j, Math.min(alphas[i]!, alphas[j]!) + (i === j ? ratio : 0));
    system.set(i, m, 1);
    system.set(m, i, 1);
    right.set(i, 0, alphas[i]! - alphas[i]! ** 2 / 2);
  }
  right.set(m, 0, 1);
  const solution = solve(system, right).to1DArray();
  const weights = Float64Array.from(solution.slice(0, m));
  const lambda = solution[m]!;
  let wz = 0;
  for (let i = 0; i < m; i++) wz += weights[i]! * right.get(i, 0);
  return { weights, variance: Math.max(0, 1 / 3 - wz - lambda) };
}

/**
 * The smoothing quadrature's rate and noise fitted from the rule's own points: least squares of
 * ||p_j - p_i||^2 = rate x (alpha_j - alpha_i) + 2 noise over pairs at most 4 points apart (noise
 * clipped at 0, which is the trapezoid). Returns the ratio noise / rate and the rate (summed over pixels).
 */
export function fitSmoothing(products: readonly Float32Array[], indices: readonly number[]): { ratio: number; rate: number } {
  const n = products.length - 1;
  const lags: number[] = [];
  const squares: number[] = [];
  for (let a = 0; a < indices.length; a++) {
    for (let b = a + 1; b < Math.min(indices.length, a + 5); b++) {
      const [p, q] = [products[indices[a]!]!, products[indices[b]!]!];
      let s = 0;
      for (let i = 0; i < p.length; i++) s += (q[i]! - p[i]!) ** 2;
      lags.push((indices[b]! - indices[a]!) / n);
      squares.push(s);
    }
  }
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  const [mx, my] = [mean(lags), mean(squares)];
  let sxy = 0;
  let sxx = 0;
  lags.forEach((x, k) => {
    sxy += (x - mx) * (squares[k]! - my);
    sxx += (x - mx) ** 2;
  });
  let rate = sxx > 0 ? sxy / sxx : my / mx;
  let noise = (my - rate * mx) / 2;
  if (!(rate > 0) || noise <= 0) {
    // Through the origin: no noise, the Brownian rate alone (the trapezoid).
    rate = squares.reduce((t, s) => t + s, 0) / lags.reduce((t, x) => t + x, 0);
    noise = 0;
  }
  return { ratio: noise / rate, rate };
}

/** ||v|| (L2). */
export function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! ** 2;
  return Math.sqrt(s);
}
