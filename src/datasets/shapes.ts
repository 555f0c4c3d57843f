/**
 * The shapes dataset: a seeded, deterministic generator of images of one shape (disc, square,
 * triangle, star, cross) of random size, position, rotation and colour on a textured
 * background, each with the ground-truth mask of the object. The bundled default model is
 * trained on it, and the masks let attribution methods be scored against ground truth.
 *
 * Sample `i` of seed `s` depends only on (s, i, size): `generateShapes({count: 10, seed: 3})` is
 * a prefix of `generateShapes({count: 100, seed: 3})`, and the same call gives the same pixels
 * on every machine (see random.ts for why).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { LensError, errorMessage } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { decodePixels, encodePng, pixelsToTensor } from '../image/index.js';
import { coverage, insideDisc, insidePolygon, polygonArea, polygonBounds, type Bounds, type InsideTest, type Polygon } from './raster.js';
import { SeededRandom, sinCos } from './random.js';
import { TEXTURE_KINDS, drawTexture, hsvToRgb, type Rgb, type TextureKind } from './textures.js';

/** Class names in label order. */
export const SHAPE_CLASSES = ['disc', 'square', 'triangle', 'star', 'cross'] as const;
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

/** Default image side in pixels (the bundled model's input size). */
export const DEFAULT_SHAPES_SIZE = 64;

/** How one sample was drawn, for notebooks and debugging. */
export interface ShapeParams {
  /** Centre in pixel coordinates. */
  cx: number;
  cy: number;
  /** Circumradius in pixels. */
  radius: number;
  /** Rotation in radians. */
  rotation: number;
  /** Exact area of the drawn shape in square pixels (the mask approximates it). */
  area: number;
  colour: Rgb;
  background: TextureKind;
}

export interface ShapeSample {
  /** HWC RGB, 0..255 (whole numbers, as a PNG stores them). */
  pixels: Float32Array;
  /** HxW, 1 where the object covers at least half of the pixel. */
  mask: Uint8Array;
  /** Index into SHAPE_CLASSES. */
  label: number;
  className: ShapeClass;
  height: number;
  width: number;
  /** Position in the seeded sequence. */
  index: number;
  params: ShapeParams;
}

export interface ShapesOptions {
  count: number;
  seed: number;
  /** Image side in pixels (square images), default 64. */
  size?: number;
  /** Index of the first sample, default 0 (for drawing a sequence in chunks). */
  start?: number;
}

/** Range of the radius of the disc with the object's area, as a fraction of the image side. */
const AREA_RADIUS_RANGE: readonly [number, number] = [0.22, 0.33];
/** Largest circumradius, as a fraction of the image side (the object stays 1 pixel inside). */
const MAX_RADIUS = 0.46;
/** Objects are painted at least this far (RGB Euclidean) from every background colour. */
const MIN_CONTRAST = 90;
/** Supersampling grid side for the object's anti-aliased edge. */
const EDGE_SAMPLES = 4;
/** HSV saturation and value ranges of object colours (vivid, light). */
const OBJECT_SATURATION: readonly [number, number] = [0.6, 1];
const OBJECT_VALUE: readonly [number, number] = [0.75, 1];

/** How the images are drawn, in one sentence for reports (built from the constants above). */
export const SHAPES_DATASET_DESCRIPTION =
  `one shape (${SHAPE_CLASSES.join(', ')}) per image, in a vivid colour (HSV saturation ${OBJECT_SATURATION.join('-')}, value ${OBJECT_VALUE.join('-')}) ` +
  `with soft shading, sized by area (that of a disc of radius ${AREA_RADIUS_RANGE.map((r) => Math.round(r * 100)).join('-')}% of the image side), ` +
  `at a random position and rotation, on a darker, muted textured background (${TEXTURE_KINDS.join(', ')}) with pixel grain; ` +
  'the mask marks the pixels the object covers at least half of';

function regularPolygon(cx: number, cy: number, radii: readonly number[], rotation: number): Polygon {
  const n = radii.length;
  const pts: number[] = [];
  for (let k = 0; k < n; k++) {
    // Start at the top so that rotation 0 shows a triangle or star point up.
    const [s, c] = sinCos(rotation - Math.PI / 2 + (2 * Math.PI * k) / n);
    pts.push(cx + radii[k]! * c, cy + radii[k]! * s);
  }
  return pts;
}

function rotated(cx: number, cy: number, local: readonly number[], rotation: number): Polygon {
  const [s, c] = sinCos(rotation);
  const pts: number[] = [];
  for (let i = 0; i < local.length; i += 2) {
    const x = local[i]!;
    const y = local[i + 1]!;
    pts.push(cx + x * c - y * s, cy + x * s + y * c);
  }
  return pts;
}

/**
 * The proportions of one shape that vary between samples, relative to a circumradius of 1:
 * the inner radius of a star, the half-width of a cross's arms.
 */
function shapeProportion(kind: ShapeClass, rng: SeededRandom): number {
  if (kind === 'star') return rng.uniform(0.38, 0.55);
  if (kind === 'cross') return rng.uniform(0.24, 0.36);
  return 0;
}

/** Area of a shape of circumradius 1, so that sizes can be drawn by area. */
function unitArea(kind: ShapeClass, proportion: number): number {
  switch (kind) {
    case 'disc':
      return Math.PI;
    case 'square':
      return 2;
    case 'triangle':
      return (3 * Math.sqrt(3)) / 4;
    case 'star':
      // Ten triangles between the centre, a point and an inner vertex 36 degrees apart.
      return 5 * sinCos(Math.PI / 5)[0] * proportion;
    case 'cross': {
      const l = Math.sqrt(1 - proportion * proportion);
      return 8 * l * proportion - 4 * proportion * proportion;
    }
  }
}

/** The membership test, bounds and exact area of one shape. */
function shapeGeometry(kind: ShapeClass, cx: number, cy: number, r: number, rotation: number, proportion: number): { inside: InsideTest; bounds: Bounds; area: number } {
  let polygon: Polygon;
  switch (kind) {
    case 'disc':
      return { inside: insideDisc(cx, cy, r), bounds: { minX: cx - r, minY: cy - r, maxX: cx + r, maxY: cy + r }, area: Math.PI * r * r };
    case 'square': {
      const h = r / Math.SQRT2;
      polygon = rotated(cx, cy, [-h, -h, h, -h, h, h, -h, h], rotation);
      break;
    }
    case 'triangle':
      polygon = regularPolygon(cx, cy, [r, r, r], rotation);
      break;
    case 'star': {
      const inner = r * proportion;
      polygon = regularPolygon(cx, cy, [r, inner, r, inner, r, inner, r, inner, r, inner], rotation);
      break;
    }
    case 'cross': {
      // A plus sign whose arm ends lie on the circumcircle.
      const w = r * proportion;
      const l = Math.sqrt(r * r - w * w);
      polygon = rotated(cx, cy, [-w, -l, w, -l, w, -w, l, -w, l, w, w, w, w, l, -w, l, -w, w, -l, w, -l, -w, -w, -w], rotation);
      break;
    }
  }
  return { inside: insidePolygon(polygon), bounds: polygonBounds(polygon), area: polygonArea(polygon) };
}

function distance(a: Rgb, b: Rgb): number {
  const d0 = a[0] - b[0];
  const d1 = a[1] - b[1];
  const d2 = a[2] - b[2];
  return Math.sqrt(d0 * d0 + d1 * d1 + d2 * d2);
}

/** A vivid object colour far from every background colour (the farthest of 32 draws if none is far enough). */
function objectColour(rng: SeededRandom, palette: readonly Rgb[]): Rgb {
  let best: Rgb = [255, 255, 255];
  let bestDistance = -1;
  for (let attempt = 0; attempt < 32; attempt++) {
    const colour = hsvToRgb(rng.next(), rng.uniform(OBJECT_SATURATION[0], OBJECT_SATURATION[1]), rng.uniform(OBJECT_VALUE[0], OBJECT_VALUE[1]));
    const d = Math.min(...palette.map((p) => distance(colour, p)));
    if (d >= MIN_CONTRAST) return colour;
    if (d > bestDistance) {
      best = colour;
      bestDistance = d;
    }
  }
  return best;
}

function checkOptions(options: ShapesOptions): { count: number; seed: number; size: number; start: number } {
  const { count, seed } = options;
  const size = options.size ?? DEFAULT_SHAPES_SIZE;
  const start = options.start ?? 0;
  if (!Number.isInteger(count) || count < 0) throw new LensError('INVALID_ARGUMENT', `shapes count must be a whole number >= 0, got ${count}`);
  if (!Number.isInteger(seed)) throw new LensError('INVALID_ARGUMENT', `shapes seed must be an integer, got ${seed}`);
  if (!Number.isInteger(size) || size < 16 || size > 1024) throw new LensError('INVALID_ARGUMENT', `shapes size must be a whole number in 16..1024, got ${size}`);
  if (!Number.isInteger(start) || start < 0) throw new LensError('INVALID_ARGUMENT', `shapes start must be a whole number >= 0, got ${start}`);
  return { count, seed, size, start };
}

/**
 * Draws sample `index` of the sequence named by `seed`. Labels cycle through the classes
 * (index mod 5), so any run of 5k samples is balanced.
 *
 * @example
 * const s = generateShape(7, 0);           // a 64x64 disc
 * s.className; s.mask.reduce((a, b) => a + b); // 'disc', object area in pixels
 */
export function generateShape(seed: number, index: number, size = DEFAULT_SHAPES_SIZE): ShapeSample {
  checkOptions({ count: 1, seed, size, start: index });
  const rng = new SeededRandom(seed, index, size);
  const label = index % SHAPE_CLASSES.length;
  const className = SHAPE_CLASSES[label]!;
  const texture = drawTexture(rng, size, size);
  // Sizes are drawn by area, so that size says nothing about the class: a disc and a star of
  // the same area have different circumradii. The largest stars and triangles are capped to fit.
  const proportion = shapeProportion(className, rng);
  const areaRadius = rng.uniform(AREA_RADIUS_RANGE[0], AREA_RADIUS_RANGE[1]) * size;
  const radius = Math.min(MAX_RADIUS * size, areaRadius * Math.sqrt(Math.PI / unitArea(className, proportion)));
  const margin = radius + 1;
  const cx = rng.uniform(margin, size - margin);
  const cy = rng.uniform(margin, size - margin);
  const rotation = rng.uniform(0, 2 * Math.PI);
  const colour = objectColour(rng, texture.palette);
  const { inside, bounds, area } = shapeGeometry(className, cx, cy, radius, rotation, proportion);
  const cover = coverage(size, size, inside, bounds, EDGE_SAMPLES);
  // Soft light across the object, so that it is not one flat colour.
  const [ls, lc] = sinCos(rng.uniform(0, 2 * Math.PI));
  const shade = rng.uniform(0, 0.2);
  const grain = rng.uniform(0, 10);
  const pixels = new Float32Array(size * size * 3);
  const mask = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      const a = cover[p]!;
      mask[p] = a >= 0.5 ? 1 : 0;
      const light = 1 + (shade * ((x + 0.5 - cx) * lc + (y + 0.5 - cy) * ls)) / radius;
      for (let c = 0; c < 3; c++) {
        const bg = texture.data[p * 3 + c]!;
        const value = bg + (colour[c]! * light - bg) * a + (rng.next() * 2 - 1) * grain;
        pixels[p * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  return {
    pixels,
    mask,
    label,
    className,
    height: size,
    width: size,
    index,
    params: { cx, cy, radius, rotation, area, colour, background: texture.kind },
  };
}

/**
 * Draws `count` samples of the sequence named by `seed`, from index `start` (default 0).
 *
 * @example
 * const heldOut = generateShapes({ count: 200, seed: 2, size: 64 });
 * heldOut[0]!.pixels.length; // 64 * 64 * 3
 */
export function generateShapes(options: ShapesOptions): ShapeSample[] {
  const { count, seed, size, start } = checkOptions(options);
  const out: ShapeSample[] = [];
  for (let i = 0; i < count; i++) out.push(generateShape(seed, start + i, size));
  return out;
}

/**
 * Stacks samples into model inputs: pixels [N,H,W,3] in 0..255 (as every ImageModel takes them)
 * and labels [N] as int32.
 *
 * @example
 * const { pixels, labels } = shapesToTensors(generateShapes({ count: 100, seed: 2 }));
 * const scores = await model.forward(pixels);
 */
export function shapesToTensors(samples: readonly ShapeSample[]): { pixels: tf.Tensor4D; labels: tf.Tensor1D } {
  if (samples.length === 0) throw new LensError('INVALID_ARGUMENT', 'no shapes samples to stack');
  return {
    pixels: pixelsToTensor(samples.map((s) => ({ data: s.pixels, height: s.height, width: s.width, channels: 3, source: `shapes sample ${s.index}` }))),
    labels: tf.tensor1d(samples.map((s) => s.label), 'int32'),
  };
}

/** One entry of a dataset directory's manifest. */
export interface ShapesManifestEntry {
  /** Image path relative to the dataset directory. */
  image: string;
  /** Mask PNG (greyscale, 255 inside the object) relative to the dataset directory. */
  mask: string;
  label: number;
  className: ShapeClass;
  index: number;
  /** Object area in pixels (mask sum). */
  maskArea: number;
  params: ShapeParams;
}

/** `manifest.json` of a dataset directory. */
export interface ShapesManifest {
  dataset: 'shapes';
  seed: number;
  size: number;
  count: number;
  start: number;
  classes: ShapeClass[];
  samples: ShapesManifestEntry[];
}

/** Mask as an 8-bit greyscale PNG, 255 inside the object. */
export async function encodeMask(mask: Uint8Array, width: number, height: number): Promise<Buffer> {
  return encodePng({ data: Float32Array.from(mask, (m) => (m ? 255 : 0)), width, height, channels: 1 });
}

/**
 * Writes a sample set to `dir` as `images/NNNNN-class.png`, `masks/NNNNN-class.png` (255 inside
 * the object), `labels.txt` (class names, one per line) and `manifest.json`. Every file is
 * written atomically and the manifest last, so a directory with a manifest is complete.
 *
 * @example
 * await writeShapesDataset('out/shapes', { count: 100, seed: 2 }, (done, total) => bar.update(done));
 */
export async function writeShapesDataset(
  dir: string,
  options: ShapesOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<ShapesManifest> {
  const { count, seed, size, start } = checkOptions(options);
  try {
    await mkdir(join(dir, 'images'), { recursive: true });
    await mkdir(join(dir, 'masks'), { recursive: true });
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', `cannot create dataset directory ${dir}: ${errorMessage(e)}`);
  }
  const samples: ShapesManifestEntry[] = [];
  for (let i = 0; i < count; i++) {
    const s = generateShape(seed, start + i, size);
    const stem = `${String(s.index).padStart(5, '0')}-${s.className}.png`;
    const entry: ShapesManifestEntry = {
      image: `images/${stem}`,
      mask: `masks/${stem}`,
      label: s.label,
      className: s.className,
      index: s.index,
      maskArea: s.mask.reduce((a, b) => a + b, 0),
      params: s.params,
    };
    await writeFileAtomic(join(dir, entry.image), await encodePng({ data: s.pixels, width: size, height: size, channels: 3 }));
    await writeFileAtomic(join(dir, entry.mask), await encodeMask(s.mask, size, size));
    samples.push(entry);
    onProgress?.(i + 1, count);
  }
  const manifest: ShapesManifest = { dataset: 'shapes', seed, size, count, start, classes: [...SHAPE_CLASSES], samples };
  await writeFileAtomic(join(dir, 'labels.txt'), `${SHAPE_CLASSES.join('\n')}\n`);
  await writeFileAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Reads a mask PNG written by {@link writeShapesDataset} (or any greyscale mask: > 127 is inside).
 *
 * @example
 * const mask = await readShapesMask('out/shapes/masks/00000-disc.png'); // Uint8Array of 0/1
 */
export async function readShapesMask(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path).catch((e: unknown) => {
    throw new LensError('NOT_FOUND', `cannot read mask ${path}: ${errorMessage(e)}`);
  });
  const px = await decodePixels(bytes, { channels: 1, source: path });
  return Uint8Array.from(px.data, (v) => (v > 127 ? 1 : 0));
}

/**
 * Loads a dataset directory written by {@link writeShapesDataset}: images decoded from their
 * PNGs, masks from theirs, labels and parameters from the manifest.
 *
 * @example
 * const { manifest, samples } = await readShapesDataset('out/shapes');
 * samples[0]!.mask; // Uint8Array, 1 inside the object
 */
export async function readShapesDataset(dir: string): Promise<{ manifest: ShapesManifest; samples: ShapeSample[] }> {
  const manifestPath = join(dir, 'manifest.json');
  let manifest: ShapesManifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ShapesManifest;
  } catch (e) {
    throw new LensError('NOT_FOUND', `${manifestPath} is missing or not JSON (write the set with writeShapesDataset): ${errorMessage(e)}`);
  }
  if (manifest.dataset !== 'shapes' || !Array.isArray(manifest.samples)) {
    throw new LensError('INVALID_ARGUMENT', `${manifestPath} is not a shapes dataset manifest`);
  }
  const samples: ShapeSample[] = [];
  for (const entry of manifest.samples) {
    const imagePath = join(dir, entry.image);
    const bytes = await readFile(imagePath).catch((e: unknown) => {
      throw new LensError('NOT_FOUND', `cannot read image ${imagePath} listed in ${manifestPath}: ${errorMessage(e)}`);
    });
    const px = await decodePixels(bytes, { channels: 3, source: imagePath });
    samples.push({
      pixels: px.data,
      mask: await readShapesMask(join(dir, entry.mask)),
      label: entry.label,
      className: entry.className,
      height: px.height,
      width: px.width,
      index: entry.index,
      params: entry.params,
    });
  }
  return { manifest, samples };
}
