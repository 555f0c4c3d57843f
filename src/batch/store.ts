/**
 * The on-disk layout of a batch run and the writes that keep it consistent when a pod is killed at
 * any moment: files appear whole (temp file, fsync, rename) and each shard's JSON-lines journal
 * gains whole lines only (a torn last line is cut off before the shard appends again). Nothing is
 * written through a symbolic link.
 *
 * ```
 * OUT/attributions/<stem>-<id>.<kind>     files per image (e.g. .png, .npy)
 * OUT/shards/shard-00001-of-00003.jsonl   one JSON record per finished image, per shard
 * OUT/shards/shard-00001-of-00003.done.json  written when the shard has a record for every image
 * OUT/.tmp/shard-00001/                   temp files of shard 1 (emptied when shard 1 starts, removed when it ends)
 * OUT/report.json, report.md, report.csv  written by the merge
 * ```
 */
import { constants } from 'node:fs';
import { readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LensError, errorMessage } from '../core/errors.js';
import { ensureRealDir, openNoFollow } from '../fs/atomic.js';
import type { BatchItem } from './list.js';

/** A JSON value as stored in records. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One line of a shard journal: the outcome for one image. */
export interface BatchRecord {
  id: string;
  /** The reference as written in the list. */
  image: string;
  /** Position in the list. */
  index: number;
  shard: number;
  shards: number;
  status: 'ok' | 'error';
  /** What the explainer reported (target, completeness, method, ...); absent on error. */
  result?: { [key: string]: JsonValue };
  /** Written files by kind (e.g. `png`), as paths relative to the output folder. */
  files?: Record<string, string>;
  error?: string;
  /** Which attempt at this image the record is (1 for the first); older journals omit it (read as 1). */
  attempt?: number;
  finishedAt: string;
  durationMs: number;
}

/** Written by a shard once every one of its images has a record. */
export interface ShardDoneMarker {
  shard: number;
  shards: number;
  images: number;
  ok: number;
  failed: number;
  finishedAt: string;
}

export const ATTRIBUTIONS_DIR = 'attributions';
export const SHARDS_DIR = 'shards';
export const TMP_DIR = '.tmp';

const pad = (n: number): string => String(n).padStart(5, '0');

/** Journal file name of a shard, e.g. `shard-00001-of-00003.jsonl`. */
export function shardJournalName(shard: number, shards: number): string {
  return `shard-${pad(shard)}-of-${pad(shards)}.jsonl`;
}

/** Done-marker file name of a shard, e.g. `shard-00001-of-00003.done.json`. */
export function shardDoneName(shard: number, shards: number): string {
  return `shard-${pad(shard)}-of-${pad(shards)}.done.json`;
}

const SHARD_FILE = /^shard-(\d{5})-of-(\d{5})\.(jsonl|done\.json)$/;

/** Parses a journal or marker file name back to its shard and count, or undefined for other files. */
export function parseShardFileName(name: string): { shard: number; shards: number; kind: 'journal' | 'done' } | undefined {
  const m = SHARD_FILE.exec(name);
  if (!m) return undefined;
  return { shard: Number(m[1]), shards: Number(m[2]), kind: m[3] === 'jsonl' ? 'journal' : 'done' };
}

/** Folder for the temp files of one shard. */
export function shardTmpDir(out: string, shard: number): string {
  return join(out, TMP_DIR, `shard-${pad(shard)}`);
}

/**
 * File name of an output of an image: a readable stem from the reference plus the id (which alone
 * makes it unique), e.g. `cat-9c1f0d3e6a2b4c58.png`.
 */
export function outputFileName(item: Pick<BatchItem, 'id' | 'ref'>, kind: string): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(kind)) throw new LensError('INVALID_ARGUMENT', `output kind "${kind}" of image ${item.ref} must be lower-case letters, digits, '.', '_' or '-'`);
  const last = basename(item.ref.replace(/[?#].*$/, '').replace(/\/+$/, ''));
  const stem = last.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48) || 'image';
  return `${stem}-${item.id}.${kind}`;
}

/** Records of a journal plus what was wrong with it. */
export interface JournalContents {
  records: BatchRecord[];
  /** Bytes up to the end of the last complete line. */
  completeBytes: number;
  /** True when the file ends in a line without its newline (a write cut short). */
  tornTail: boolean;
  /** Complete lines that are not records (reported, never fatal). */
  badLines: number;
}

function isRecord(v: unknown): v is BatchRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<BatchRecord>;
  return typeof r.id === 'string' && typeof r.image === 'string' && (r.status === 'ok' || r.status === 'error') && typeof r.index === 'number';
}

/**
 * Reads a shard journal, tolerating a torn last line; a missing file reads as empty.
 *
 * @example
 * const { records, tornTail } = await readJournal('/data/out/shards/shard-00000-of-00004.jsonl');
 */
export async function readJournal(path: string): Promise<JournalContents> {
  let fh: FileHandle;
  try {
    fh = await openNoFollow(path, constants.O_RDONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], completeBytes: 0, tornTail: false, badLines: 0 };
    throw new LensError('INTERNAL', `cannot read shard journal ${path}: ${errorMessage(e)}`);
  }
  try {
    return parseJournal(await fh.readFile());
  } finally {
    await fh.close();
  }
}

function parseJournal(bytes: Buffer): JournalContents {
  const completeBytes = bytes.lastIndexOf(0x0a) + 1;
  const records: BatchRecord[] = [];
  let badLines = 0;
  for (const line of bytes.subarray(0, completeBytes).toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (isRecord(parsed)) records.push(parsed);
      else badLines++;
    } catch {
      badLines++;
    }
  }
  return { records, completeBytes, tornTail: completeBytes < bytes.length, badLines };
}

/**
 * Appends records to one shard journal, each as one whole line written by a single call and synced
 * before the next image starts. Opening it first cuts off a torn last line left by a killed run.
 */
export class JournalWriter {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /**
   * Opens (creating) the journal at `path` for appending, after repairing a torn tail.
   *
   * @example
   * const journal = await JournalWriter.open(join(out, 'shards', shardJournalName(0, 3)));
   * await journal.append(record);
   * await journal.close();
   */
  static async open(path: string): Promise<JournalWriter> {
    await ensureRealDir(join(path, '..'));
    // One handle, opened without following a link, for the repair and the appends: a symbolic
    // link planted at the journal's name is refused instead of cutting and extending its target.
    let handle: FileHandle;
    try {
      handle = await openNoFollow(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND);
    } catch (e) {
      if (e instanceof LensError) throw e;
      throw new LensError('WRITE_FAILED', `cannot open shard journal ${path}: ${errorMessage(e)}`, { cause: e });
    }
    try {
      // A hard link would make the cut and the appends land in another file too.
      if ((await handle.stat()).nlink > 1) throw new LensError('WRITE_FAILED', `shard journal ${path} has other hard links; refusing to write it`);
      const contents = parseJournal(await handle.readFile());
      if (contents.tornTail) await handle.truncate(contents.completeBytes);
    } catch (e) {
      await handle.close();
      throw e;
    }
    return new JournalWriter(path, handle);
  }

  async append(record: BatchRecord): Promise<void> {
    await this.handle.write(`${JSON.stringify(record)}\n`);
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** A journal file found in an output folder. */
export interface JournalFile {
  path: string;
  shard: number;
  shards: number;
}

/** Journals and done markers present in `OUT/shards`. */
export async function listShardFiles(out: string): Promise<{ journals: JournalFile[]; done: JournalFile[] }> {
  const dir = join(out, SHARDS_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { journals: [], done: [] };
    throw new LensError('INTERNAL', `cannot list ${dir}: ${errorMessage(e)}`);
  }
  const journals: JournalFile[] = [];
  const done: JournalFile[] = [];
  for (const name of names.sort()) {
    const parsed = parseShardFileName(name);
    if (!parsed) continue;
    (parsed.kind === 'journal' ? journals : done).push({ path: join(dir, name), shard: parsed.shard, shards: parsed.shards });
  }
  return { journals, done };
}

/** True when `path` exists and is a non-empty regular file. */
export async function isCompleteFile(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size > 0;
  } catch {
    return false;
  }
}
