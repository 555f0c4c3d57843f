/**
 * A small seeded random source, so that every randomised method (noise baselines, Expected
 * Gradients, SmoothGrad, RISE) gives the same answer for the same seed on every machine.
 */

/** Uniform and normal draws from one seeded stream. */
export interface Random {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
}

/**
 * A seeded generator (mulberry32 for uniforms, Box-Muller for normals).
 *
 * @example
 * const rng = seededRandom(7);
 * const noise = Array.from({ length: 3 }, () => rng.normal());
 */
export function seededRandom(seed: number): Random {
  let state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  return {
    uniform: next,
    normal() {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      // 1 - u keeps the logarithm finite.
      const u = 1 - next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    int(n: number) {
      return Math.min(n - 1, Math.floor(next() * n));
    },
  };
}

/** The seed used when the caller gives none: results stay reproducible by default. */
export const DEFAULT_SEED = 0;
