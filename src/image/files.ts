/**
 * Image files as the CLI, the studio, batch jobs and notebooks take them: files, folders and URLs
 * expanded to image sources, output stems, loading at a model's input size, and the ground-truth
 * object masks that live beside images (`IMAGE.mask.png`). Only light modules load at the top
 * (the decoders are imported when an image is read), so CLI option parsing may use this module.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { LensError } from '../core/errors.js';
import type { Pixels } from './index.js';
import { isUrl } from './url.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.gif', '.tif', '.tiff'];

/** Object masks that live beside images (`IMAGE.mask.png`), which folder expansion leaves out. */
export function isMaskFile(path: string): boolean {
  return /\.mask\.[a-z]+$/i.test(path);
}

/**
 * Image files from arguments: files and URLs as given, folders expanded to their images (sorted,
 * masks left out).
 *
 * @example
 * expandImagePaths(['photos/', 'https://example.com/cat.jpg']); // ['photos/a.jpg', 'photos/b.png', 'https://example.com/cat.jpg']
 */
export function expandImagePaths(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (isUrl(a)) {
      out.push(a);
      continue;
    }
    let isDir = false;
    try {
      isDir = statSync(a).isDirectory();
    } catch {
      throw new LensError('NOT_FOUND', `image ${a} does not exist`);
    }
    if (!isDir) {
      out.push(a);
      continue;
    }
    const files = readdirSync(a)
      .filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()))
      .sort()
      .map((f) => join(a, f))
      .filter((p) => !isMaskFile(p));
    if (files.length === 0) throw new LensError('NOT_FOUND', `folder ${a} holds no images (${IMAGE_EXTENSIONS.join(' ')})`);
    out.push(...files);
  }
  return out;
}

/**
 * A file name stem for outputs: the image's base name without extension.
 *
 * @example
 * imageStem('https://example.com/cat.jpg?size=2'); // 'cat'
 */
export function imageStem(path: string): string {
  const base = basename(path.split('?')[0] ?? path);
  const ext = extname(base);
  return (ext ? base.slice(0, -ext.length) : base) || 'image';
}

/**
 * Loads images at the model's input size and channel count.
 *
 * @example
 * const [pixels] = await loadModelImages(['cat.jpg'], model, 'crop');
 */
export async function loadModelImages(paths: readonly string[], model: { readonly inputShape: readonly [number, number, number] }, resize = 'pad'): Promise<Pixels[]> {
  const { loadPixels, parseResizeMode } = await import('./index.js');
  const mode = parseResizeMode(resize);
  const [h, w, c] = model.inputShape;
  if (c !== 1 && c !== 3) throw new LensError('MODEL_UNSUPPORTED', `the model takes ${c}-channel images; images can be loaded with 1 or 3 channels`);
  return Promise.all(paths.map((p) => loadPixels(p, { size: [h, w], resize: mode, channels: c })));
}

/** The mask file beside an image (`IMAGE.mask.png`), when there is one. */
export function maskBeside(path: string): string | undefined {
  const mask = path.replace(/\.[a-z]+$/i, '.mask.png');
  return mask !== path && statSync(mask, { throwIfNoEntry: false })?.isFile() ? mask : undefined;
}

/**
 * Reads an object mask squashed to [height, width]: 1 inside the object (grey level above 127),
 * else 0.
 *
 * @example
 * const mask = await loadMask('cat.mask.png', [224, 224]);
 */
export async function loadMask(path: string, [height, width]: readonly [number, number]): Promise<Uint8Array> {
  const { loadPixels } = await import('./index.js');
  const m = await loadPixels(path, { size: [height, width], resize: 'squash', channels: 1 });
  return Uint8Array.from(m.data, (v) => (v > 127 ? 1 : 0));
}
