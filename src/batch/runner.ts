/**
 * Runs one shard of a batch: every image the shard owns that has no record yet goes through an
 * injected `explainOne`, its files are written atomically, then its record is appended to the
 * shard's journal. Killed at any point and started again, it neither redoes finished images nor
 * leaves partial files or duplicate records behind.
 */
import { rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { ensureRealDir, writeFileAtomic } from '../fs/atomic.js';
import { faultPoint } from '../fs/fault.js';
import { type BatchItem, shardItems } from './list.js';
import {
  ATTRIBUTIONS_DIR,
  type BatchRecord,
  type JsonValue,
  JournalWriter,
  SHARDS_DIR,
  type ShardDoneMarker,
  isCompleteFile,
  listShardFiles,
  outputFileName,
  readJournal,
  shardDoneName,
  shardJournalName,
  shardTmpDir,
} from './store.js';

/** Attempts per image before a failure is final, unless {@link ShardRunOptions.maxAttempts} says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** What explaining one image produced. */
export interface ExplainOutcome {
  /** JSON-serialisable facts for the report (target, completeness, method, ...). */
  result: { [key: string]: JsonValue };
  /** Files to store, by kind (`png`, `npy`, ...): the runner names and writes them atomically. */
  files?: Record<string, Uint8Array>;
}

/** Explains one image; throwing records the image as failed with the error's message. */
export type ExplainOne = (item: BatchItem) => Promise<ExplainOutcome>;

/** Progress of a shard, reported after every image. */
export interface ShardProgress {
  shard: number;
  /** Images the shard owns. */
  total: number;
  /** Images with a record, including those finished by earlier runs. */
  done: number;
  /** Images finished by earlier runs (not redone). */
  skipped: number;
  ok: number;
  failed: number;
  /** The record just written. */
  record?: BatchRecord;
}

export interface ShardRunOptions {
  /** The whole list (every shard sees the same list and picks its own items). */
  items: readonly BatchItem[];
  shard: number;
  shards: number;
  /** Output folder, shared by all shards (a shared volume on a cluster). */
  out: string;
  explainOne: ExplainOne;
  /**
   * Attempts per image: an image whose earlier attempts all failed is explained again on the next
   * run until it has failed this many times (counted over the journals). Default 3.
   */
  maxAttempts?: number;
  /** Explain again every image whose last attempt failed, however often it failed. Default false. */
  retryFailed?: boolean;
  /** Aborting stops the shard after the image in progress; the summary says `interrupted`. */
  signal?: AbortSignal;
  onProgress?: (progress: ShardProgress) => void;
}

/** Outcome of one shard run. */
export interface ShardSummary {
  shard: number;
  shards: number;
  /** Images the shard owns. */
  images: number;
  /** Images already finished before this run. */
  skipped: number;
  /** Images explained in this run. */
  processed: number;
  /** Images of the shard with a successful record, after this run. */
  ok: number;
  /** Images of the shard whose last attempt failed, after this run. */
  failed: number;
  /** True when the run stopped early on the abort signal (no done marker is written). */
  interrupted: boolean;
  journal: string;
}

type Status = 'ok' | 'error';

/**
 * Runs shard `shard` of `shards` over `items`, resuming from what the output folder already holds.
 *
 * @example
 * const { items } = await readImageList('/data/images.txt');
 * const summary = await runShard({
 *   items, shard: 0, shards: 3, out: '/data/out',
 *   explainOne: async (item) => ({ result: { bytes: (await readFile(item.source)).length } }),
 * });
 */
export async function runShard(options: ShardRunOptions): Promise<ShardSummary> {
  const { shard, shards, out } = options;
  const mine = shardItems(options.items, shard, shards);
  const shardsDir = join(out, SHARDS_DIR);
  const tmpDir = shardTmpDir(out, shard);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  await ensureRealDir(join(out, ATTRIBUTIONS_DIR));
  await ensureRealDir(shardsDir);
  const journal = await JournalWriter.open(join(shardsDir, shardJournalName(shard, shards)));
  // Set once OUT/.tmp is known to be a real folder: only then is it removed again.
  let tmpOwned = false;
  try {
    await ensureRealDir(dirname(tmpDir));
    tmpOwned = true;
    // Temp files of a killed run of this shard are garbage: their images have no record and are redone.
    await rm(tmpDir, { recursive: true, force: true });
    await ensureRealDir(tmpDir);
    await rm(join(shardsDir, shardDoneName(shard, shards)), { force: true });

    const status = await knownStatus(out, new Set(mine.map((i) => i.id)));
    const finished = async (item: BatchItem): Promise<boolean> => {
      const s = status.get(item.id);
      if (s === undefined) return false;
      if (s.status === 'error') return !options.retryFailed && s.attempts >= maxAttempts;
      // A record counts only while its files are still there (someone may have cleaned them up).
      for (const file of Object.values(s.files ?? {})) if (!(await isCompleteFile(join(out, file)))) return false;
      return true;
    };
    const todo: BatchItem[] = [];
    for (const item of mine) if (!(await finished(item))) todo.push(item);
    const counts = () => {
      let ok = 0;
      let failed = 0;
      for (const item of mine) {
        const s = status.get(item.id)?.status;
        if (s === 'ok') ok++;
        else if (s === 'error') failed++;
      }
      return { ok, failed };
    };
    const skipped = mine.length - todo.length;
    let processed = 0;
    options.onProgress?.({ shard, total: mine.length, done: skipped, skipped, ...counts() });

    for (const item of todo) {
      if (options.signal?.aborted) break;
      const attempt = (status.get(item.id)?.attempts ?? 0) + 1;
      const record = await explainAndStore(item, options, tmpDir, attempt);
      await faultPoint('batch:before-journal');
      await journal.append(record);
      status.set(item.id, { status: record.status, attempts: attempt, ...(record.files ? { files: record.files } : {}) });
      processed++;
      options.onProgress?.({ shard, total: mine.length, done: skipped + processed, skipped, ...counts(), record });
    }

    const interrupted = processed < todo.length;
    const { ok, failed } = counts();
    if (!interrupted) {
      const marker: ShardDoneMarker = { shard, shards, images: mine.length, ok, failed, finishedAt: new Date().toISOString() };
      await writeFileAtomic(join(shardsDir, shardDoneName(shard, shards)), `${JSON.stringify(marker, null, 2)}\n`, { tmpDir });
    }
    return { shard, shards, images: mine.length, skipped, processed, ok, failed, interrupted, journal: journal.path };
  } finally {
    await journal.close();
    // Finished, interrupted or failed: the shard's temp folder goes, and OUT/.tmp with the last
    // shard that stops (a shard still running keeps it).
    if (tmpOwned) {
      await rm(tmpDir, { recursive: true, force: true });
      await rmdir(dirname(tmpDir)).catch(() => undefined);
    }
  }
}

interface KnownStatus {
  status: Status;
  /** Attempts recorded so far (the highest `attempt` of the image's records). */
  attempts: number;
  files?: Record<string, string>;
}

/**
 * Latest known status of each wanted id over every journal in the folder, this shard's and the
 * others' (so a change of shard count does not redo work). A success anywhere beats a failure.
 */
async function knownStatus(out: string, wanted: ReadonlySet<string>): Promise<Map<string, KnownStatus>> {
  const status = new Map<string, KnownStatus>();
  const { journals } = await listShardFiles(out);
  for (const file of journals) {
    for (const r of (await readJournal(file.path)).records) {
      if (!wanted.has(r.id)) continue;
      const known = status.get(r.id);
      const attempts = Math.max(known?.attempts ?? 0, r.attempt ?? 1);
      if (known?.status === 'ok' && r.status !== 'ok') {
        known.attempts = attempts;
        continue;
      }
      status.set(r.id, { status: r.status, attempts, ...(r.files ? { files: r.files } : {}) });
    }
  }
  return status;
}

async function explainAndStore(item: BatchItem, options: ShardRunOptions, tmpDir: string, attempt: number): Promise<BatchRecord> {
  const started = performance.now();
  const base = { id: item.id, image: item.ref, index: item.index, shard: options.shard, shards: options.shards, attempt };
  const elapsed = () => ({ finishedAt: new Date().toISOString(), durationMs: Math.round(performance.now() - started) });
  let outcome: ExplainOutcome;
  try {
    outcome = await options.explainOne(item);
  } catch (e) {
    // A bad image fails alone; failures to write (disk full, lost volume) propagate and stop the shard.
    return { ...base, status: 'error', error: errorMessage(e), ...elapsed() };
  }
  const files: Record<string, string> = {};
  for (const [kind, bytes] of Object.entries(outcome.files ?? {})) {
    const rel = `${ATTRIBUTIONS_DIR}/${outputFileName(item, kind)}`;
    await writeFileAtomic(join(options.out, rel), bytes, { tmpDir });
    files[kind] = rel;
  }
  return { ...base, status: 'ok', result: outcome.result, files, ...elapsed() };
}
