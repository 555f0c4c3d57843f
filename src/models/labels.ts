/**
 * Class names: the ImageNet lists (1000 classes, and the 1001-class variant with "background" at
 * index 0 that TF-slim and many TF Serving ResNet/MobileNet exports use), label files, and lookups.
 * The 1000 ImageNet names come from the `@tensorflow-models/mobilenet` package (Apache-2.0), which
 * ships them as data.
 *
 * @example
 * const labels = imagenetLabels(1001);
 * labels[286]; // 'Egyptian cat'
 * labelsForClassCount(1000) === imagenetLabels(1000); // true
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { LensError, errorMessage } from '../core/errors.js';

let imagenet1000: readonly string[] | undefined;
let imagenet1001: readonly string[] | undefined;

/** The 1000 ImageNet class names (index 0 "tench, Tinca tinca" ... 999 "toilet tissue, ..."). */
function loadImagenet(): readonly string[] {
  if (imagenet1000) return imagenet1000;
  const require = createRequire(import.meta.url);
  const mod = require('@tensorflow-models/mobilenet/dist/imagenet_classes.js') as { IMAGENET_CLASSES: Record<number, string> };
  const list = Array.from({ length: 1000 }, (_, i) => mod.IMAGENET_CLASSES[i]);
  if (list.some((x) => typeof x !== 'string')) {
    throw new LensError('INTERNAL', 'the ImageNet class list of @tensorflow-models/mobilenet is incomplete');
  }
  imagenet1000 = Object.freeze(list as string[]);
  return imagenet1000;
}

/**
 * ImageNet class names: 1000 entries, or 1001 with "background" first (index i+1 is class i).
 *
 * @example
 * imagenetLabels(1000)[285]; // 'Egyptian cat'
 */
export function imagenetLabels(variant: 1000 | 1001 = 1000): readonly string[] {
  const base = loadImagenet();
  if (variant === 1000) return base;
  imagenet1001 ??= Object.freeze(['background', ...base]);
  return imagenet1001;
}

/** The built-in label list for a class count (1000 or 1001 ImageNet), else undefined. */
export function labelsForClassCount(classes: number): readonly string[] | undefined {
  return classes === 1000 || classes === 1001 ? imagenetLabels(classes) : undefined;
}

/**
 * Reads a label file: a JSON array of strings, a JSON object {index: name}, or text with one label
 * per line (blank trailing lines ignored).
 *
 * @example
 * const labels = await readLabelsFile('labels.txt');
 */
export async function readLabelsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new LensError('NOT_FOUND', `cannot read labels file ${path}: ${errorMessage(e)}`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch (e) {
      throw new LensError('INVALID_ARGUMENT', `labels file ${path} is not valid JSON: ${errorMessage(e)}`);
    }
    if (Array.isArray(doc) && doc.every((x) => typeof x === 'string')) return doc;
    if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
      const entries = Object.entries(doc as Record<string, unknown>);
      const out: string[] = [];
      for (const [k, v] of entries) {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || typeof v !== 'string') {
          throw new LensError('INVALID_ARGUMENT', `labels file ${path}: expected {"<index>": "<name>"}, got key ${JSON.stringify(k)}`);
        }
        out[i] = v;
      }
      return Array.from(out, (v, i) => v ?? String(i));
    }
    throw new LensError('INVALID_ARGUMENT', `labels file ${path}: expected a JSON array of strings`);
  }
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.map((l) => l.trim());
}

/**
 * Labels for scores with `classes` columns: those given (checked against the count), else the
 * built-in ImageNet list when the count is 1000/1001, else undefined.
 */
export function resolveLabels(classes: number, given?: readonly string[], what = 'labels'): readonly string[] | undefined {
  if (given) {
    if (given.length !== classes) {
      throw new LensError('MODEL_MISMATCH', `${what} has ${given.length} labels but the model scores ${classes} classes`);
    }
    return given;
  }
  return labelsForClassCount(classes);
}
