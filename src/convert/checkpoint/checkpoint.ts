/**
 * TF1 training checkpoints as `tf.train.Saver` and `tf.estimator.Estimator` write them: a model
 * directory with the `checkpoint` state file (a text CheckpointState naming the newest prefix and
 * all kept ones) and, per step, `model.ckpt-N.meta` (the MetaGraphDef), `model.ckpt-N.index` and
 * `model.ckpt-N.data-*` (a TensorBundle, the format of a SavedModel's variables).
 *
 * @example
 * const ckpts = listCheckpoints('model_dir');          // [{ prefix, step: 12000, date, files }, ...]
 * const chosen = resolveCheckpoint('model_dir', { checkpoint: 12000 });
 * chosen.meta; // 'model_dir/model.ckpt-12000.meta'
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { LensError } from '../../core/errors.js';

/** The `checkpoint` state file of a model directory. */
export interface CheckpointState {
  /** The newest checkpoint's prefix, as written (relative to the directory or absolute). */
  newest: string;
  /** Every kept prefix, oldest first. */
  all: string[];
}

/** One checkpoint (a prefix with its files). */
export interface CheckpointInfo {
  /** Absolute prefix (`.../model.ckpt-12000`). */
  prefix: string;
  /** Global step from the `-N` suffix, or undefined when the prefix has none. */
  step?: number;
  /** Modification time of the index (when the step was saved). */
  date?: Date;
  /** Which of its files exist: a V2 checkpoint has `.index` and data shards, a V1 one only the prefix file. */
  meta: boolean;
  index: boolean;
  /** Data shard file names present (`model.ckpt-12000.data-00000-of-00001`). */
  shards: string[];
  /** An old V1 checkpoint (one tensor-slice file named by the prefix, no `.index`). */
  v1: boolean;
}

/** A checkpoint chosen to load: its prefix and MetaGraphDef file. */
export interface ChosenCheckpoint extends CheckpointInfo {
  /** The model directory it is in. */
  dir: string;
  /** Path of the `.meta` file. */
  metaPath: string;
}

const STATE_FILE = 'checkpoint';

/** Where a TensorFlow graph file comes from. */
export type GraphFileKind = 'checkpoint' | 'frozen-graph';

/**
 * How a MODEL path names a graph file, if it does: a checkpoint directory or prefix, or a `.pb`
 * GraphDef (other than a SavedModel's). Only names and files are looked at (nothing is decoded).
 *
 * @example
 * graphFileKind('model_dir/model.ckpt-12000'); // 'checkpoint'
 * graphFileKind('frozen_model.pb');             // 'frozen-graph'
 */
export function graphFileKind(path: string): GraphFileKind | undefined {
  const abs = resolve(path);
  if (existsSync(abs) && statSync(abs).isDirectory()) return isCheckpointDir(abs) ? 'checkpoint' : undefined;
  if (/\.pb$/i.test(abs) && basename(abs) !== 'saved_model.pb') return 'frozen-graph';
  if (/\.(meta|index)$/.test(abs) || isCheckpointPrefix(abs)) return 'checkpoint';
  return undefined;
}

/** Whether a directory is a TF1 training-checkpoint directory (a `checkpoint` file, or `*.ckpt*.meta` files). */
export function isCheckpointDir(dir: string): boolean {
  if (existsSync(join(dir, STATE_FILE)) && statSync(join(dir, STATE_FILE)).isFile()) return true;
  return readdirSync(dir).some((f) => f.endsWith('.meta') && /ckpt/.test(f));
}

/** Whether a path names a checkpoint prefix (`model.ckpt-N`, given with or without `.index`/`.meta`). */
export function isCheckpointPrefix(path: string): boolean {
  const prefix = path.replace(/\.(index|meta)$/, '');
  return existsSync(`${prefix}.index`) || existsSync(`${prefix}.meta`);
}

/** The text proto string value `"..."` with C escapes, as CheckpointState writes it. */
function unquote(text: string): string {
  return text.replace(/\\(["'\\nt])/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
}

/**
 * Reads a model directory's `checkpoint` state file.
 *
 * @example
 * readCheckpointState('model_dir'); // { newest: 'model.ckpt-12000', all: ['model.ckpt-10000', 'model.ckpt-12000'] }
 */
export function readCheckpointState(dir: string): CheckpointState | undefined {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const values = (field: string) => [...text.matchAll(new RegExp(`^\\s*${field}\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`, 'gm'))].map((m) => unquote(m[1]!));
  const newest = values('model_checkpoint_path')[0];
  if (newest === undefined) throw new LensError('MODEL_CORRUPT', `${path} names no model_checkpoint_path: not a TensorFlow checkpoint state file`);
  const all = values('all_model_checkpoint_paths');
  return { newest, all: all.length > 0 ? all : [newest] };
}

/**
 * A prefix from the state file as a path: relative ones are inside the directory; absolute ones
 * that do not exist (a directory copied from the training machine) are looked for inside it too.
 */
function prefixIn(dir: string, p: string): string {
  if (!isAbsolute(p)) return join(dir, p);
  const moved = join(dir, basename(p));
  return !existsSync(`${p}.index`) && !existsSync(`${p}.meta`) && (existsSync(`${moved}.index`) || existsSync(`${moved}.meta`)) ? moved : p;
}

function stepOf(prefix: string): number | undefined {
  const m = /-(\d+)$/.exec(prefix);
  return m ? Number(m[1]) : undefined;
}

/** Facts about one prefix's files. */
export function checkpointInfo(prefix: string): CheckpointInfo {
  const dir = dirname(prefix);
  const base = basename(prefix);
  const index = existsSync(`${prefix}.index`);
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const shards = files.filter((f) => f.startsWith(`${base}.data-`)).sort();
  const v1 = !index && existsSync(prefix) && statSync(prefix).isFile();
  const dated = index ? `${prefix}.index` : v1 ? prefix : existsSync(`${prefix}.meta`) ? `${prefix}.meta` : undefined;
  const step = stepOf(base);
  return {
    prefix,
    ...(step !== undefined ? { step } : {}),
    ...(dated ? { date: statSync(dated).mtime } : {}),
    meta: existsSync(`${prefix}.meta`),
    index,
    shards,
    v1,
  };
}

/**
 * The checkpoints of a model directory: those the state file lists, plus any other
 * `*.meta`/`*.index` prefixes found beside them, sorted by step (unnumbered first).
 *
 * @example
 * listCheckpoints('../shared/models-external/tf1-checkpoint-cifar-dotnet').map((c) => c.prefix);
 */
export function listCheckpoints(dir: string): CheckpointInfo[] {
  const abs = resolve(dir);
  const state = readCheckpointState(abs);
  const prefixes = new Set((state?.all ?? []).map((p) => prefixIn(abs, p)));
  if (state) prefixes.add(prefixIn(abs, state.newest));
  for (const f of readdirSync(abs)) {
    const m = /^(.*)\.(meta|index)$/.exec(f);
    if (m) prefixes.add(join(abs, m[1]!));
  }
  return [...prefixes].map(checkpointInfo).sort((a, b) => (a.step ?? -1) - (b.step ?? -1) || a.prefix.localeCompare(b.prefix));
}

/** Checks that a prefix is a complete V2 checkpoint with a MetaGraphDef; the errors name the file and the fault. */
function checkUsable(info: CheckpointInfo, where: string): void {
  if (info.v1) {
    throw new LensError(
      'MODEL_UNSUPPORTED',
      `${info.prefix} is a V1 checkpoint (one tensor-slice file, no .index): only V2 checkpoints (.index + .data-*) are read; re-save it with tf.train.Saver(write_version=tf.train.SaverDef.V2)`,
    );
  }
  if (!info.index) throw new LensError('MODEL_CORRUPT', `${where} names checkpoint ${basename(info.prefix)}, but ${info.prefix}.index does not exist`);
  if (info.shards.length === 0) throw new LensError('MODEL_CORRUPT', `${where} names checkpoint ${basename(info.prefix)}, but it has no data shards (${basename(info.prefix)}.data-*)`);
  if (!info.meta) {
    throw new LensError('MODEL_UNSUPPORTED', `checkpoint ${info.prefix} has no .meta file (the training graph); a graph is needed to run it (save with tf.train.Saver, which writes one)`);
  }
}

/**
 * Picks the checkpoint to load from a model directory (its newest, or `checkpoint` by step) or a
 * prefix (`model.ckpt-N`, with or without `.index`/`.meta`), and checks its files.
 *
 * @example
 * resolveCheckpoint('model_dir').step;                         // the newest
 * resolveCheckpoint('model_dir', { checkpoint: 12000 }).prefix; // '.../model_dir/model.ckpt-12000'
 * resolveCheckpoint('model_dir/model.ckpt-8000').step;          // 8000
 */
export function resolveCheckpoint(spec: string, options: { checkpoint?: number | string } = {}): ChosenCheckpoint {
  const abs = resolve(spec);
  let dir: string;
  let info: CheckpointInfo;
  let where: string;
  if (existsSync(abs) && statSync(abs).isDirectory()) {
    dir = abs;
    const all = listCheckpoints(dir);
    const state = readCheckpointState(dir);
    where = state ? join(dir, STATE_FILE) : dir;
    if (options.checkpoint !== undefined) {
      const wanted = String(options.checkpoint);
      const hit = all.find((c) => String(c.step) === wanted || basename(c.prefix) === wanted);
      if (!hit) {
        const have = all.map((c) => (c.step !== undefined ? String(c.step) : basename(c.prefix))).join(', ') || 'none';
        throw new LensError('NOT_FOUND', `${dir} has no checkpoint ${wanted} (it has: ${have})`);
      }
      info = hit;
    } else if (state) {
      info = checkpointInfo(prefixIn(dir, state.newest));
    } else {
      const usable = all.filter((c) => c.meta && c.index);
      if (usable.length === 0) throw new LensError('NOT_FOUND', `${dir} has no checkpoint file and no complete checkpoint (.meta + .index)`);
      info = usable[usable.length - 1]!;
    }
  } else {
    const prefix = abs.replace(/\.(index|meta)$/, '');
    dir = dirname(prefix);
    where = spec;
    if (options.checkpoint !== undefined) throw new LensError('INVALID_ARGUMENT', `--checkpoint chooses a step inside a model directory; ${spec} already names one checkpoint`);
    if (!existsSync(`${prefix}.index`) && !existsSync(`${prefix}.meta`) && !existsSync(prefix)) throw new LensError('NOT_FOUND', `checkpoint ${prefix} does not exist (no .index or .meta)`);
    info = checkpointInfo(prefix);
  }
  checkUsable(info, where);
  return { ...info, dir, metaPath: `${info.prefix}.meta` };
}
