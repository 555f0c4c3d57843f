/**
 * Colormaps as 256-entry lookup tables, built by linear interpolation between published control
 * points and looked up the way matplotlib does (`index = floor(t * 256)`, clamped to 0..255), so
 * that a value of 1 lands on the last entry and each entry covers an equal share of [0, 1].
 *
 * - `viridis`, `inferno`: matplotlib's perceptually uniform maps, from every 8th entry of their
 *   256-entry tables (and the last); interpolation stays within 2/255 of the originals.
 * - `gray`: black to white.
 * - `rdbu`: ColorBrewer's 11-class RdBu as matplotlib orders it (0 = dark red, 0.5 = near white,
 *   1 = dark blue). `rdbu_r` reverses it, so that positive values are red.
 * - `blues`, `greens`, `reds`: ColorBrewer 9-class sequential maps, Captum's defaults for the
 *   absolute_value, positive and negative signs; `rdwhgn`: red-white-green, Captum's default for
 *   sign `all`.
 *
 * Any name takes the `_r` suffix for the reversed map, as in matplotlib.
 *
 * @example
 * const [r, g, b] = colorAt('viridis', 0.5);   // [33, 145, 140]
 * const lut = colormapLut('rdbu_r');           // Uint8Array(768), RGB per entry
 */
import { LensError } from '../core/errors.js';

const BASE_COLORMAPS = ['viridis', 'inferno', 'gray', 'rdbu', 'blues', 'greens', 'reds', 'rdwhgn'] as const;
export type BaseColormapName = (typeof BASE_COLORMAPS)[number];
/** A colormap name, optionally reversed with `_r`. */
export type ColormapName = BaseColormapName | `${BaseColormapName}_r`;

/** Every accepted colormap name, reversed ones included. */
export const COLORMAP_NAMES: readonly ColormapName[] = BASE_COLORMAPS.flatMap((n) => [n, `${n}_r` as const]);

/** Entries of every lookup table. */
export const LUT_SIZE = 256;

// Colours at evenly spaced positions unless positions are given (viridis/inferno: entries
// 0, 8, ..., 248 and 255 of matplotlib's tables, so the last gap is 7 entries wide).
interface ControlPoints {
  colors: readonly string[];
  positions?: readonly number[];
}

const SAMPLED_TABLE_POSITIONS = [...Array.from({ length: 32 }, (_, i) => (i * 8) / 255), 1];

const CONTROL_POINTS: Record<BaseColormapName, ControlPoints> = {
  viridis: {
    colors: [
      '440154', '470d60', '48186a', '482374', '472d7b', '453781', '424086', '3e4989', '3b528b', '375b8d', '33638d',
      '2f6b8e', '2c728e', '297a8e', '26828e', '23898e', '21918c', '1f988b', '1fa088', '22a785', '28ae80', '32b67a',
      '3fbc73', '4ec36b', '5ec962', '70cf57', '84d44b', '98d83e', 'addc30', 'c2df23', 'd8e219', 'ece51b', 'fde725',
    ],
    positions: SAMPLED_TABLE_POSITIONS,
  },
  inferno: {
    colors: [
      '000004', '040312', '0b0724', '150b37', '210c4a', '2f0a5b', '3d0965', '4a0c6b', '57106e', '64156e', '71196e',
      '7d1e6d', '8a226a', '972766', 'a32c61', 'b0315b', 'bc3754', 'c73e4c', 'd24644', 'db503b', 'e45a31', 'eb6628',
      'f1731d', 'f68013', 'f98e09', 'fb9d07', 'fcac11', 'fbbc21', 'f9cb35', 'f5db4c', 'f2ea69', 'f3f68a', 'fcffa4',
    ],
    positions: SAMPLED_TABLE_POSITIONS,
  },
  gray: { colors: ['000000', 'ffffff'] },
  rdbu: {
    colors: ['67001f', 'b2182b', 'd6604d', 'f4a582', 'fddbc7', 'f7f7f7', 'd1e5f0', '92c5de', '4393c3', '2166ac', '053061'],
  },
  blues: { colors: ['f7fbff', 'deebf7', 'c6dbef', '9ecae1', '6baed6', '4292c6', '2171b5', '08519c', '08306b'] },
  greens: { colors: ['f7fcf5', 'e5f5e0', 'c7e9c0', 'a1d99b', '74c476', '41ab5d', '238b45', '006d2c', '00441b'] },
  reds: { colors: ['fff5f0', 'fee0d2', 'fcbba1', 'fc9272', 'fb6a4a', 'ef3b2c', 'cb181d', 'a50f15', '67000d'] },
  // matplotlib's named colours red, white and green (#008000).
  rdwhgn: { colors: ['ff0000', 'ffffff', '008000'] },
};

function hexToRgb(hex: string): [number, number, number] {
  const v = parseInt(hex, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function buildLut(points: ControlPoints): Uint8Array {
  const rgb = points.colors.map(hexToRgb);
  const positions = points.positions ?? rgb.map((_, i) => i / (rgb.length - 1));
  const lut = new Uint8Array(LUT_SIZE * 3);
  let k = 0;
  for (let i = 0; i < LUT_SIZE; i++) {
    const x = i / (LUT_SIZE - 1);
    while (k < positions.length - 2 && positions[k + 1]! < x) k++;
    const x0 = positions[k]!;
    const x1 = positions[k + 1]!;
    const t = x1 > x0 ? Math.min(1, Math.max(0, (x - x0) / (x1 - x0))) : 0;
    const c0 = rgb[k]!;
    const c1 = rgb[k + 1]!;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(c0[c]! + (c1[c]! - c0[c]!) * t);
  }
  return lut;
}

const lutCache = new Map<ColormapName, Uint8Array>();

/** True when `name` is a colormap this module knows. */
export function isColormapName(name: string): name is ColormapName {
  return (COLORMAP_NAMES as readonly string[]).includes(name);
}

/** Checks a user-given colormap name (e.g. a CLI flag). */
export function parseColormap(name: string): ColormapName {
  if (isColormapName(name)) return name;
  throw new LensError('INVALID_ARGUMENT', `unknown colormap "${name}": expected one of ${COLORMAP_NAMES.join(', ')}`);
}

/**
 * The lookup table of a colormap: 256 RGB triplets (768 bytes), entry i for t = i / 255.
 * Tables are built once and shared: do not modify the returned array.
 */
export function colormapLut(name: ColormapName): Uint8Array {
  const cached = lutCache.get(name);
  if (cached) return cached;
  const checked = parseColormap(name);
  const reversed = checked.endsWith('_r');
  const base = (reversed ? checked.slice(0, -2) : checked) as BaseColormapName;
  const forward = buildLut(CONTROL_POINTS[base]);
  let lut = forward;
  if (reversed) {
    lut = new Uint8Array(forward.length);
    for (let i = 0; i < LUT_SIZE; i++) lut.set(forward.subarray((LUT_SIZE - 1 - i) * 3, (LUT_SIZE - i) * 3), i * 3);
  }
  lutCache.set(name, lut);
  return lut;
}

/** Table entry for t in [0, 1] (clamped; NaN counts as 0): `min(255, floor(t * 256))`. */
export function lutIndex(t: number): number {
  if (!(t > 0)) return 0;
  return Math.min(LUT_SIZE - 1, Math.floor(t * LUT_SIZE));
}

/** The RGB colour of `t` in [0, 1] (clamped). */
export function colorAt(name: ColormapName, t: number): [number, number, number] {
  const lut = colormapLut(name);
  const i = lutIndex(t) * 3;
  return [lut[i]!, lut[i + 1]!, lut[i + 2]!];
}
