/**
 * Image lists for batch attribution: one image path or http(s) URL per line, stable ids, and the
 * deterministic assignment of images to shards.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LensError, errorMessage } from '../core/errors.js';

/** One image of a batch list. */
export interface BatchItem {
  /** Stable id: the first 16 hex digits of SHA-256 over the reference as written in the list. */
  id: string;
  /** The reference as written in the list (path or URL). */
  ref: string;
  /** Where to read it: URLs as given, relative paths resolved against the list file's folder. */
  source: string;
  /** Position in the list after duplicates are dropped (0-based); shard assignment uses it. */
  index: number;
}

/** A parsed image list. */
export interface ImageList {
  items: BatchItem[];
  /** References that appeared more than once (kept once, at their first position). */
  duplicates: string[];
}

/**
 * Stable id of an image reference: the same path or URL always gives the same id, on any machine
 * and in any shard, so that finished work is recognised after a restart.
 *
 * @example
 * imageId('images/cat.jpg'); // '9c1f0d3e6a2b4c58' (16 hex digits)
 */
export function imageId(ref: string): string {
  return createHash('sha256').update(ref.trim(), 'utf8').digest('hex').slice(0, 16);
}

const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Parses the text of an image list: one reference per line; blank lines and lines starting with
 * `#` are skipped; duplicates are kept once. Relative paths are resolved against `baseDir`.
 *
 * @example
 * const { items } = parseImageList('cat.jpg\nhttps://example.org/dog.png\n', '/data');
 * items[0].source; // '/data/cat.jpg'
 */
export function parseImageList(text: string, baseDir: string, what = 'image list'): ImageList {
  const items: BatchItem[] = [];
  const duplicates: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((line, lineNo) => {
    const ref = line.trim();
    if (ref === '' || ref.startsWith('#')) return;
    const scheme = URL_SCHEME.exec(ref)?.[0].toLowerCase();
    if (scheme !== undefined && scheme !== 'http://' && scheme !== 'https://') {
      throw new LensError(
        'INVALID_ARGUMENT',
        `${what} line ${lineNo + 1}: "${ref}" uses ${scheme}, which lens batch cannot read; mount the bucket as a volume ` +
          '(GCS FUSE CSI driver, Mountpoint for Amazon S3 CSI driver, Azure Blob CSI driver) and list paths, or list https:// (signed) URLs',
      );
    }
    const id = imageId(ref);
    if (seen.has(id)) {
      duplicates.push(ref);
      return;
    }
    seen.add(id);
    const source = scheme !== undefined || isAbsolute(ref) ? ref : resolve(baseDir, ref);
    items.push({ id, ref, source, index: items.length });
  });
  return { items, duplicates };
}

/**
 * Reads an image list file (see {@link parseImageList}); relative entries are resolved against the
 * file's folder.
 *
 * @example
 * const { items } = await readImageList('/data/images.txt');
 */
export async function readImageList(path: string): Promise<ImageList> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new LensError('NOT_FOUND', `cannot read image list ${path}: ${errorMessage(e)}`);
  }
  return parseImageList(text, dirname(resolve(path)), `image list ${path}`);
}

/** Checks a shard index and count, naming the flags at fault. */
export function checkShard(shard: number, shards: number): void {
  if (!Number.isInteger(shards) || shards < 1) throw new LensError('INVALID_ARGUMENT', `--shards must be a positive integer, got ${shards}`);
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new LensError('INVALID_ARGUMENT', `--shard must be an integer in 0..${shards - 1} for --shards ${shards}, got ${shard}`);
  }
}

/**
 * Shard that owns the item at list position `index`: positions are dealt round-robin, so shards
 * differ in size by at most one and appending to the list leaves earlier assignments unchanged.
 *
 * @example
 * shardOf(7, 3); // 1
 */
export function shardOf(index: number, shards: number): number {
  return index % shards;
}

/**
 * The items shard `shard` of `shards` owns, in list order.
 *
 * @example
 * const mine = shardItems(list.items, Number(process.env.JOB_COMPLETION_INDEX), 4);
 */
export function shardItems(items: readonly BatchItem[], shard: number, shards: number): BatchItem[] {
  checkShard(shard, shards);
  return items.filter((item) => shardOf(item.index, shards) === shard);
}
