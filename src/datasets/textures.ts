/**
 * Procedural backgrounds for the shapes dataset. Each texture is drawn from its own random
 * parameters and is independent of the object's class, so that a model can only tell classes
 * apart by looking at the object; the variety (gradients, stripes, checkers, noise, plaid) keeps
 * it from relying on any one kind of background.
 */
import { SeededRandom, sinCos } from './random.js';

export type Rgb = readonly [number, number, number];

export const TEXTURE_KINDS = ['flat', 'gradient', 'radial', 'stripes', 'checker', 'noise', 'plaid'] as const;
export type TextureKind = (typeof TEXTURE_KINDS)[number];

/** A drawn background: HWC float pixels 0..255 and the colours it was painted with. */
export interface Texture {
  kind: TextureKind;
  data: Float32Array;
  /** The colours the texture mixes; objects are painted far from all of them. */
  palette: Rgb[];
}

/** HSV (h in [0,1), s and v in [0,1]) to RGB 0..255, with piecewise-linear arithmetic only. */
export function hsvToRgb(h: number, s: number, v: number): Rgb {
  const h6 = (h - Math.floor(h)) * 6;
  const sector = Math.floor(h6);
  const f = h6 - sector;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const rgb: [number, number, number] =
    sector === 0 ? [v, t, p] : sector === 1 ? [q, v, p] : sector === 2 ? [p, v, t] : sector === 3 ? [p, q, v] : sector === 4 ? [t, p, v] : [v, p, q];
  return [rgb[0] * 255, rgb[1] * 255, rgb[2] * 255];
}

/** The base colour of a background: any hue, muted (low saturation), dark to middling. */
interface Tone {
  h: number;
  s: number;
  v: number;
}

function baseTone(rng: SeededRandom): Tone {
  return { h: rng.next(), s: rng.uniform(0, 0.5), v: rng.uniform(0.05, 0.45) };
}

/**
 * A second colour of the same background: a nearby hue, visibly lighter or darker. Textures are
 * thus clearly visible but darker and less colourful than objects, which keeps the object the
 * salient thing in the image (the model must find it, and attributions are scored against it).
 */
function relatedColour(rng: SeededRandom, base: Tone): Rgb {
  const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
  const step = rng.uniform(0.08, 0.25) * (rng.next() < 0.5 ? -1 : 1);
  const v = base.v + step < 0.02 || base.v + step > 0.55 ? base.v - step : base.v + step;
  return hsvToRgb(base.h + rng.uniform(-0.08, 0.08), clamp(base.s + rng.uniform(-0.15, 0.15), 0, 0.6), clamp(v, 0.02, 0.55));
}

/** Smoothstep, for value-noise interpolation without visible grid lines. */
function smooth(t: number): number {
  return t * t * (3 - 2 * t);
}

function mix(a: Rgb, b: Rgb, t: number): [number, number, number] {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Value noise in [0,1]: random values on a lattice of `cell` pixels, smoothly interpolated. */
function valueNoise(rng: SeededRandom, width: number, height: number, cell: number): (x: number, y: number) => number {
  const gw = Math.ceil(width / cell) + 2;
  const gh = Math.ceil(height / cell) + 2;
  const lattice = new Float32Array(gw * gh);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng.next();
  return (x, y) => {
    const gx = x / cell;
    const gy = y / cell;
    const ix = Math.floor(gx);
    const iy = Math.floor(gy);
    const tx = smooth(gx - ix);
    const ty = smooth(gy - iy);
    const i00 = iy * gw + ix;
    const v00 = lattice[i00]!;
    const v10 = lattice[i00 + 1]!;
    const v01 = lattice[i00 + gw]!;
    const v11 = lattice[i00 + gw + 1]!;
    const top = v00 + (v10 - v00) * tx;
    const bottom = v01 + (v11 - v01) * tx;
    return top + (bottom - top) * ty;
  };
}

/** Square wave in [0,1] along direction `angle`, period and duty cycle in pixels. */
function stripeWave(rng: SeededRandom): (x: number, y: number) => number {
  const [s, c] = sinCos(rng.uniform(0, Math.PI));
  const period = rng.uniform(4, 16);
  const duty = rng.uniform(0.3, 0.7);
  const phase = rng.next();
  return (x, y) => {
    const u = (x * c + y * s) / period + phase;
    return u - Math.floor(u) < duty ? 1 : 0;
  };
}

/**
 * Draws one background of the given size, 2x2 supersampled so that stripes and checkers are
 * anti-aliased like the objects.
 *
 * @example
 * const bg = drawTexture(new SeededRandom(1), 64, 64); // random kind
 */
export function drawTexture(rng: SeededRandom, width: number, height: number, kind: TextureKind = rng.pick(TEXTURE_KINDS)): Texture {
  const tone = baseTone(rng);
  const a = hsvToRgb(tone.h, tone.s, tone.v);
  const b = relatedColour(rng, tone);
  let c2: Rgb | undefined;
  // Every texture mixes colour a towards b by a weight in [0,1]; plaid then mixes towards a third colour.
  let weight: (x: number, y: number) => number;
  let weight2: ((x: number, y: number) => number) | undefined;
  switch (kind) {
    case 'flat':
      weight = () => 0;
      break;
    case 'gradient': {
      const [s, c] = sinCos(rng.uniform(0, 2 * Math.PI));
      // Project the corners to find the gradient's extent along its direction.
      const proj = [0, width * c, height * s, width * c + height * s];
      const lo = Math.min(...proj);
      const span = Math.max(...proj) - lo || 1;
      weight = (x, y) => (x * c + y * s - lo) / span;
      break;
    }
    case 'radial': {
      const cx = rng.uniform(0, width);
      const cy = rng.uniform(0, height);
      const radius = rng.uniform(0.5, 1.2) * Math.max(width, height);
      weight = (x, y) => Math.min(1, Math.sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) / radius);
      break;
    }
    case 'stripes':
      weight = stripeWave(rng);
      break;
    case 'checker': {
      const [s, c] = sinCos(rng.uniform(0, Math.PI / 2));
      const cell = rng.uniform(4, 14);
      const ox = rng.uniform(0, cell);
      const oy = rng.uniform(0, cell);
      weight = (x, y) => (Math.floor((x * c + y * s + ox) / cell) + Math.floor((-x * s + y * c + oy) / cell)) & 1;
      break;
    }
    case 'noise': {
      const coarse = valueNoise(rng, width, height, rng.uniform(8, 24));
      const fine = valueNoise(rng, width, height, rng.uniform(2, 6));
      const w = rng.uniform(0, 0.4);
      weight = (x, y) => coarse(x, y) * (1 - w) + fine(x, y) * w;
      break;
    }
    case 'plaid': {
      c2 = relatedColour(rng, tone);
      const w1 = stripeWave(rng);
      const w2 = stripeWave(rng);
      weight = w1;
      weight2 = (x, y) => w2(x, y) * 0.5;
      break;
    }
  }
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (weight(x + 0.25, y + 0.25) + weight(x + 0.75, y + 0.25) + weight(x + 0.25, y + 0.75) + weight(x + 0.75, y + 0.75)) / 4;
      let col = mix(a, b, t);
      if (c2 && weight2) {
        const t2 = (weight2(x + 0.25, y + 0.25) + weight2(x + 0.75, y + 0.25) + weight2(x + 0.25, y + 0.75) + weight2(x + 0.75, y + 0.75)) / 4;
        col = mix(col, c2, t2);
      }
      data.set(col, (y * width + x) * 3);
    }
  }
  const palette: Rgb[] = kind === 'flat' ? [a] : [a, b];
  if (c2) palette.push(c2, mix(a, c2, 0.5), mix(b, c2, 0.5));
  return { kind, data, palette };
}
