import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import {
  SHAPE_CLASSES,
  TEXTURE_KINDS,
  generateShape,
  generateShapes,
  readShapesDataset,
  readShapesMask,
  shapesToTensors,
  writeShapesDataset,
  type ShapeSample,
} from '../../src/datasets/index.js';
import { SeededRandom, sinCos } from '../../src/datasets/random.js';
import { isLensError } from '../../src/core/errors.js';

function digest(samples: readonly ShapeSample[]): string {
  const h = createHash('sha256');
  for (const s of samples) {
    h.update(Buffer.from(Uint8Array.from(s.pixels)));
    h.update(s.mask);
  }
  return h.digest('hex');
}

const maskArea = (s: ShapeSample) => s.mask.reduce((a, b) => a + b, 0);

describe('seeded randomness and trigonometry', () => {
  it('repeats a sequence for the same seeds and differs for others', () => {
    const draw = (...seeds: number[]) => {
      const r = new SeededRandom(...seeds);
      return Array.from({ length: 8 }, () => r.nextUint32());
    };
    expect(draw(1, 2)).toEqual(draw(1, 2));
    expect(draw(1, 2)).not.toEqual(draw(2, 1));
    expect(draw(2 ** 40)).not.toEqual(draw(0));
  });

  it('draws uniform numbers in [0, 1)', () => {
    const r = new SeededRandom(9);
    const values = Array.from({ length: 20000 }, () => r.next());
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(values.reduce((a, b) => a + b, 0) / values.length).toBeCloseTo(0.5, 2);
  });

  it('computes sine and cosine like Math to 1e-14', () => {
    for (let a = -20; a <= 20; a += 0.173) {
      const [s, c] = sinCos(a);
      expect(Math.abs(s - Math.sin(a))).toBeLessThan(1e-14);
      expect(Math.abs(c - Math.cos(a))).toBeLessThan(1e-14);
    }
  });
});

describe('generateShapes', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  const samples = generateShapes({ count: 60, seed: 12345 });

  it('gives the same pixels for the same seed, on every machine', () => {
    // A fixed digest: any change to the generator (or a platform difference) shows here.
    expect(digest(generateShapes({ count: 10, seed: 12345, size: 64 }))).toBe('7912d15fd32315a1e1e37f02381d25dbb5c8d52866ddbb764cfdd14e7a5b8afa');
    expect(digest(generateShapes({ count: 10, seed: 12345 }))).toBe(digest(samples.slice(0, 10)));
  });

  it('differs between seeds and draws sample i independently of the count', () => {
    expect(digest(generateShapes({ count: 10, seed: 12346 }))).not.toBe(digest(samples.slice(0, 10)));
    const tail = generateShapes({ count: 5, seed: 12345, start: 20 });
    expect(digest(tail)).toBe(digest(samples.slice(20, 25)));
    expect(digest([generateShape(12345, 33)])).toBe(digest([samples[33]!]));
  });

  it('labels cycle through the classes and name them', () => {
    samples.forEach((s, i) => {
      expect(s.label).toBe(i % SHAPE_CLASSES.length);
      expect(s.className).toBe(SHAPE_CLASSES[s.label]);
      expect(s.index).toBe(i);
    });
  });

  it('draws whole-number RGB pixels of the requested size', () => {
    const small = generateShapes({ count: 3, seed: 5, size: 32 });
    for (const s of small) {
      expect([s.height, s.width, s.pixels.length, s.mask.length]).toEqual([32, 32, 32 * 32 * 3, 32 * 32]);
    }
    for (const s of samples.slice(0, 5)) {
      expect(s.pixels.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)).toBe(true);
      expect(s.mask.every((v) => v === 0 || v === 1)).toBe(true);
    }
  });

  it('uses every background kind', () => {
    const kinds = new Set(samples.map((s) => s.params.background));
    expect([...kinds].sort()).toEqual([...TEXTURE_KINDS].sort());
  });

  it('masks have the area of the drawn shape and lie within its circumcircle', () => {
    for (const s of samples) {
      const { cx, cy, radius, area } = s.params;
      // Edge pixels are in the mask when at least half covered, so areas agree up to the rim.
      expect(Math.abs(maskArea(s) - area)).toBeLessThan(0.05 * area + 8);
      for (let y = 0; y < s.height; y++) {
        for (let x = 0; x < s.width; x++) {
          if (!s.mask[y * s.width + x]) continue;
          expect(Math.hypot(x + 0.5 - cx, y + 0.5 - cy)).toBeLessThanOrEqual(radius + 0.75);
        }
      }
      // Every shape covers its own centre.
      expect(s.mask[Math.floor(cy) * s.width + Math.floor(cx)]).toBe(1);
      expect(area / (s.height * s.width)).toBeGreaterThan(0.02);
    }
  });

  it('class areas follow the geometry of each shape', () => {
    const ratio = (cls: string) => {
      const of = samples.filter((s) => s.className === cls);
      return of.reduce((a, s) => a + maskArea(s) / s.params.radius ** 2, 0) / of.length;
    };
    expect(ratio('disc')).toBeCloseTo(Math.PI, 1);
    expect(ratio('square')).toBeCloseTo(2, 1);
    expect(ratio('triangle')).toBeCloseTo((3 * Math.sqrt(3)) / 4, 1);
    // A five-point star of inner radius k*r has area 5 sin(36deg) k r^2, k in [0.38, 0.55].
    expect(ratio('star')).toBeGreaterThan(5 * Math.sin(Math.PI / 5) * 0.38);
    expect(ratio('star')).toBeLessThan(5 * Math.sin(Math.PI / 5) * 0.55);
  });

  it('draws sizes by area, so that size does not give the class away', () => {
    const many = generateShapes({ count: 250, seed: 99 });
    const meanArea = (cls: string) => {
      const of = many.filter((s) => s.className === cls);
      return of.reduce((a, s) => a + s.params.area, 0) / of.length;
    };
    const areas = SHAPE_CLASSES.map(meanArea);
    // Equal by construction, up to sampling noise and the cap on the largest stars and triangles.
    expect(Math.max(...areas) / Math.min(...areas)).toBeLessThan(1.25);
    for (const s of many) expect(s.params.radius).toBeLessThanOrEqual(0.46 * s.width + 1e-9);
  });

  it('paints the object in its colour, far from the background around it', () => {
    for (const s of samples) {
      const colour = s.params.colour;
      let inside = 0;
      let insideCount = 0;
      let outside = 0;
      let outsideCount = 0;
      for (let p = 0; p < s.mask.length; p++) {
        const d = Math.hypot(s.pixels[3 * p]! - colour[0], s.pixels[3 * p + 1]! - colour[1], s.pixels[3 * p + 2]! - colour[2]);
        if (s.mask[p]) {
          inside += d;
          insideCount++;
        } else {
          outside += d;
          outsideCount++;
        }
      }
      // Inside: the colour up to shading (<= 20%) and grain; outside: the background.
      expect(inside / insideCount).toBeLessThan(50);
      expect(outside / outsideCount).toBeGreaterThan(inside / insideCount + 30);
    }
  });

  it('stacks samples into pixel and label tensors', () => {
    const { pixels, labels } = shapesToTensors(samples.slice(0, 4));
    expect(pixels.shape).toEqual([4, 64, 64, 3]);
    expect(Array.from(labels.dataSync())).toEqual([0, 1, 2, 3]);
    expect(pixels.dataSync().slice(0, 12)).toEqual(samples[0]!.pixels.slice(0, 12));
    pixels.dispose();
    labels.dispose();
  });

  it('rejects bad options with LensError INVALID_ARGUMENT', () => {
    for (const bad of [{ count: -1, seed: 1 }, { count: 1.5, seed: 1 }, { count: 1, seed: 0.5 }, { count: 1, seed: 1, size: 8 }, { count: 1, seed: 1, start: -2 }]) {
      expect(() => generateShapes(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    try {
      generateShapes({ count: 1, seed: 1, size: 3000 });
    } catch (e) {
      expect(isLensError(e, 'INVALID_ARGUMENT')).toBe(true);
      expect(String(e)).toContain('size');
    }
  });
});

describe('writeShapesDataset / readShapesDataset', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('writes PNG images, masks and a manifest that read back to the same samples', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lens-shapes-'));
    dirs.push(dir);
    const progress: number[] = [];
    const manifest = await writeShapesDataset(join(dir, 'set'), { count: 7, seed: 77, size: 48 }, (done) => progress.push(done));
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(manifest.samples.map((s) => s.image)).toEqual(
      generateShapes({ count: 7, seed: 77, size: 48 }).map((s) => `images/${String(s.index).padStart(5, '0')}-${s.className}.png`),
    );
    const files = await readdir(join(dir, 'set'));
    expect(files.sort()).toEqual(['images', 'labels.txt', 'manifest.json', 'masks']);
    expect((await readdir(join(dir, 'set', 'images'))).every((f) => f.endsWith('.png'))).toBe(true);

    const { manifest: read, samples } = await readShapesDataset(join(dir, 'set'));
    expect(read).toEqual(manifest);
    const original = generateShapes({ count: 7, seed: 77, size: 48 });
    expect(digest(samples)).toBe(digest(original));
    expect(samples.map((s) => s.className)).toEqual(original.map((s) => s.className));
    expect(manifest.samples[2]!.maskArea).toBe(maskArea(original[2]!));
    expect(await readShapesMask(join(dir, 'set', manifest.samples[0]!.mask))).toEqual(original[0]!.mask);
  });

  it('names the missing manifest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lens-shapes-empty-'));
    dirs.push(dir);
    await expect(readShapesDataset(dir)).rejects.toThrow(/manifest\.json/);
  });
});
