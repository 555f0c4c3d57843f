/**
 * TensorBundles: TensorFlow's checkpoint format (`variables/variables.index` + `.data-*` shards),
 * read and written in pure TypeScript.
 *
 * The index is a LevelDB table: the empty key holds a BundleHeaderProto, every other key a
 * BundleEntryProto that places a tensor's bytes in a data shard, with a masked CRC32C of them.
 * Numeric tensors are raw little-endian bytes (read straight into a buffer and viewed without
 * copying); string tensors are varint lengths, a masked CRC32C of the lengths, then the bytes.
 *
 * @example
 * const bundle = await readTensorBundle('export/1/variables/variables');
 * bundle.names;                          // ['a', 'b', ...]
 * const a = await bundle.read('a');      // HostTensor
 * await writeTensorBundle('/tmp/ckpt/variables', { a, w: { dtype: 'float32', shape: [2], values } });
 */
import { existsSync, statSync } from 'node:fs';
import { open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LensError } from '../core/errors.js';
import { refuseSymlink } from '../fs/atomic.js';
import { decodeMessage, encodeMessage } from '../proto/index.js';
import {
  bytesOf,
  dataTypeName,
  dataTypeOfDtype,
  dtypeOfDataType,
  elementCount,
  floatToBfloat16,
  floatToHalf,
  hostTensorFromBytes,
  shapeFromProto,
  type HostDType,
  type HostTensor,
  type TensorProtoMessage,
} from '../tensor/index.js';
import { crc32c, maskCrc, unmaskCrc } from './crc32c.js';
import { corrupt, readTable, writeTable } from './table.js';

/** Where and how one tensor is stored. */
export interface BundleEntry {
  name: string;
  /** TensorFlow DataType number. */
  dataType: number;
  /** Host dtype, or undefined for types without one (resource, variant, ...). */
  dtype: HostDType | undefined;
  shape: number[];
  shardId: number;
  offset: number;
  size: number;
  /** Masked CRC32C of the stored bytes. */
  crc32c: number;
  /** Number of slices for partitioned variables (their values live under other keys). */
  slices: number;
}

export interface BundleHeader {
  numShards: number;
  endianness: 'little' | 'big';
  version: { producer: number; minConsumer: number };
}

/** An opened TensorBundle: the index is parsed, data shards are read on demand. */
export interface TensorBundle {
  /** Path prefix, e.g. `.../variables/variables`. */
  readonly prefix: string;
  readonly header: BundleHeader;
  /** Tensor names in key order. */
  readonly names: readonly string[];
  readonly entries: ReadonlyMap<string, BundleEntry>;
  /** Reads one tensor (CRC-checked unless opened with verify: false). */
  read(name: string): Promise<HostTensor>;
  /** Reads several tensors (all when `names` is omitted), one open per shard. */
  readMany(names?: readonly string[]): Promise<Map<string, HostTensor>>;
  /** Raw stored bytes of an entry (for string tensors: the encoded form). */
  readBytes(name: string): Promise<Uint8Array>;
}

export interface ReadBundleOptions {
  /** Check entry CRC32Cs when reading tensors (default true; index blocks are always checked). */
  verify?: boolean;
}

interface HeaderMessage {
  num_shards?: number;
  endianness?: number;
  version?: { producer?: number; min_consumer?: number };
}

interface EntryMessage {
  dtype?: number;
  shape?: TensorProtoMessage['tensor_shape'];
  shard_id?: number;
  offset?: number;
  size?: number;
  crc32c?: number;
  slices?: unknown[];
}

/** File name of a data shard: `<prefix>.data-00000-of-00001`. */
export function shardPath(prefix: string, shard: number, numShards: number): string {
  return `${prefix}.data-${String(shard).padStart(5, '0')}-of-${String(numShards).padStart(5, '0')}`;
}

/** Accepts a prefix, an `.index` path, or a SavedModel / variables directory. */
export function bundlePrefix(path: string): string {
  if (path.endsWith('.index')) return path.slice(0, -'.index'.length);
  if (existsSync(path) && statSync(path).isDirectory()) {
    if (existsSync(join(path, 'variables', 'variables.index'))) return join(path, 'variables', 'variables');
    if (existsSync(join(path, 'variables.index'))) return join(path, 'variables');
  }
  return path;
}

/**
 * Opens a TensorBundle: parses and checks the index (block CRCs, header, every entry's range
 * against its shard's size) and checks that every data shard exists. Tensors are read later.
 *
 * `path` may be the prefix (`.../variables/variables`), the `.index` file, or a SavedModel
 * directory. Old V1 checkpoints (tensor-slice tables) are refused with SAVEDMODEL_UNSUPPORTED.
 *
 * @example
 * const b = await readTensorBundle('../shared/testdata/savedmodels/saved_model_half_plus_two_cpu/00000123');
 * (await b.read('a')).values; // Float32Array [0.5]
 */
export async function readTensorBundle(path: string, options: ReadBundleOptions = {}): Promise<TensorBundle> {
  const prefix = bundlePrefix(path);
  const indexPath = `${prefix}.index`;
  let indexBytes: Buffer;
  try {
    indexBytes = await readFile(indexPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LensError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'BUNDLE_CORRUPT',
      `cannot read TensorBundle index ${indexPath}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`,
    );
  }
  const table = readTable(indexBytes, indexPath);
  const headerRecord = table.find((e) => e.key === '');
  if (!headerRecord) {
    throw corrupt(indexPath, 'no header record (empty key): not a TensorBundle index');
  }
  if (headerRecord.value[0] === 0x0a) {
    // BundleHeaderProto starts with varint fields; a length-delimited field 1 is SavedTensorSlices.meta.
    throw new LensError(
      'SAVEDMODEL_UNSUPPORTED',
      `${indexPath} is an old V1 checkpoint (tensor-slice table), not a V2 TensorBundle (TensorFlow's pre-SavedModel format): re-export the model as a SavedModel`,
    );
  }
  const h = decodeMessage<HeaderMessage>('tensorflow.BundleHeaderProto', headerRecord.value, `${indexPath} header`);
  const header: BundleHeader = {
    numShards: h.num_shards ?? 0,
    endianness: h.endianness === 1 ? 'big' : 'little',
    version: { producer: h.version?.producer ?? 0, minConsumer: h.version?.min_consumer ?? 0 },
  };
  if (header.endianness === 'big') throw new LensError('SAVEDMODEL_UNSUPPORTED', `${indexPath}: big-endian bundles are not supported`);
  if (!Number.isInteger(header.numShards) || header.numShards < 1 || header.numShards > 100000) {
    throw corrupt(indexPath, `header says ${header.numShards} shards`);
  }
  const shardSizes: number[] = [];
  for (let s = 0; s < header.numShards; s++) {
    const p = shardPath(prefix, s, header.numShards);
    try {
      shardSizes.push(statSync(p).size);
    } catch {
      throw new LensError('BUNDLE_CORRUPT', `TensorBundle ${prefix}: data shard ${basename(p)} is missing (shard ${s + 1} of ${header.numShards})`);
    }
  }

  const entries = new Map<string, BundleEntry>();
  for (const rec of table) {
    if (rec.key === '') continue;
    const m = decodeMessage<EntryMessage>('tensorflow.BundleEntryProto', rec.value, `${indexPath} entry "${rec.key}"`);
    const dataType = m.dtype ?? 0;
    let dtype: HostDType | undefined;
    try {
      dtype = dtypeOfDataType(dataType);
    } catch {
      dtype = undefined;
    }
    const entry: BundleEntry = {
      name: rec.key,
      dataType,
      dtype,
      shape: shapeFromProto(m.shape, `${indexPath} entry "${rec.key}"`),
      shardId: m.shard_id ?? 0,
      offset: m.offset ?? 0,
      size: m.size ?? 0,
      crc32c: m.crc32c ?? 0,
      slices: m.slices?.length ?? 0,
    };
    const shardSize = shardSizes[entry.shardId];
    if (shardSize === undefined) {
      throw corrupt(indexPath, `entry "${rec.key}" is in shard ${entry.shardId}, but the bundle has ${header.numShards}`);
    }
    if (entry.offset < 0 || entry.size < 0 || entry.offset + entry.size > shardSize) {
      throw corrupt(
        indexPath,
        `entry "${rec.key}" spans bytes ${entry.offset}..${entry.offset + entry.size} but ${basename(shardPath(prefix, entry.shardId, header.numShards))} has ${shardSize} bytes (truncated shard?)`,
      );
    }
    entries.set(rec.key, entry);
  }
  return new OpenBundle(prefix, header, entries, options.verify ?? true);
}

class OpenBundle implements TensorBundle {
  readonly names: readonly string[];

  constructor(
    readonly prefix: string,
    readonly header: BundleHeader,
    readonly entries: ReadonlyMap<string, BundleEntry>,
    private readonly verify: boolean,
  ) {
    this.names = [...entries.keys()];
  }

  private entry(name: string): BundleEntry {
    const e = this.entries.get(name);
    if (!e) {
      throw new LensError('UNKNOWN_TENSOR', `TensorBundle ${this.prefix} has no tensor "${name}" (it has ${this.names.length}: ${this.names.slice(0, 8).join(', ')}${this.names.length > 8 ? ', ...' : ''})`);
    }
    return e;
  }

  private where(e: BundleEntry): string {
    return `tensor "${e.name}" in ${basename(shardPath(this.prefix, e.shardId, this.header.numShards))}`;
  }

  private async readFrom(fh: FileHandle, e: BundleEntry): Promise<Uint8Array> {
    // Not from the shared pool: typed-array views need the buffer to start at an aligned offset.
    const buf = Buffer.allocUnsafeSlow(e.size);
    let done = 0;
    while (done < e.size) {
      const { bytesRead } = await fh.read(buf, done, e.size - done, e.offset + done);
      if (bytesRead === 0) throw corrupt(this.where(e), `shard ended after ${done} of ${e.size} bytes (truncated?)`);
      done += bytesRead;
    }
    return buf;
  }

  private decode(e: BundleEntry, bytes: Uint8Array): HostTensor {
    const what = this.where(e);
    if (e.slices > 0) throw new LensError('SAVEDMODEL_UNSUPPORTED', `${what} is a partitioned variable (${e.slices} slices)`);
    if (!e.dtype) throw new LensError('DTYPE_UNSUPPORTED', `${what} has dtype ${dataTypeName(e.dataType)}, which has no host form`);
    if (e.dtype === 'string') return decodeStringTensor(bytes, e, what, this.verify);
    if (this.verify) checkCrc(bytes, e.crc32c, what);
    return hostTensorFromBytes(e.dtype, e.shape, bytes, what);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const fh = await this.openShard(e.shardId);
    try {
      return await this.readFrom(fh, e);
    } finally {
      await fh.close();
    }
  }

  private async openShard(shard: number): Promise<FileHandle> {
    const p = shardPath(this.prefix, shard, this.header.numShards);
    try {
      return await open(p, 'r');
    } catch (e) {
      throw new LensError('BUNDLE_CORRUPT', `TensorBundle ${this.prefix}: cannot open data shard ${basename(p)}: ${(e as Error).message}`);
    }
  }

  async read(name: string): Promise<HostTensor> {
    const e = this.entry(name);
    return this.decode(e, await this.readBytes(name));
  }

  async readMany(names: readonly string[] = this.names): Promise<Map<string, HostTensor>> {
    const wanted = names.map((n) => this.entry(n));
    const byShard = new Map<number, BundleEntry[]>();
    for (const e of wanted) byShard.set(e.shardId, [...(byShard.get(e.shardId) ?? []), e]);
    const out = new Map<string, HostTensor>();
    for (const [shard, list] of byShard) {
      const fh = await this.openShard(shard);
      // In file order, so reads stream forward through the shard; the next read runs (in the
      // I/O thread pool) while this thread checks and decodes the current tensor.
      const ordered = [...list].sort((a, b) => a.offset - b.offset);
      let next: Promise<Uint8Array> | undefined;
      try {
        next = ordered[0] ? this.readFrom(fh, ordered[0]) : undefined;
        for (let i = 0; i < ordered.length; i++) {
          const bytes: Uint8Array = await next!;
          next = ordered[i + 1] ? this.readFrom(fh, ordered[i + 1]!) : undefined;
          out.set(ordered[i]!.name, this.decode(ordered[i]!, bytes));
        }
      } finally {
        // A read still in flight (after an error) must finish before its file closes.
        await next?.catch(() => undefined);
        await fh.close();
      }
    }
    return new Map(names.map((n) => [n, out.get(n)!]));
  }
}

function checkCrc(bytes: Uint8Array, storedMasked: number, what: string): void {
  const actual = crc32c(bytes);
  if (actual !== unmaskCrc(storedMasked)) {
    throw corrupt(what, `CRC32C mismatch (index says ${storedMasked.toString(16)}, data gives ${maskCrc(actual).toString(16)}): the data file is damaged`);
  }
}

/** The CRC32C contribution of one string length: as uint32 LE, or uint64 LE when it does not fit. */
function lengthCrc(len: number, crc: number): number {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  if (len <= 0xffffffff) {
    dv.setUint32(0, len, true);
    return crc32c(b.subarray(0, 4), crc);
  }
  dv.setBigUint64(0, BigInt(len), true);
  return crc32c(b, crc);
}

function decodeStringTensor(bytes: Uint8Array, e: BundleEntry, what: string, verify: boolean): HostTensor {
  const n = elementCount(e.shape);
  const lengths = new Array<number>(n);
  let pos = 0;
  let crc = 0;
  for (let i = 0; i < n; i++) {
    let len = 0;
    let scale = 1;
    for (let k = 0; ; k++) {
      if (pos >= bytes.length || k >= 10) throw corrupt(what, `bad length of string element ${i}`);
      const b = bytes[pos++]!;
      len += (b & 0x7f) * scale;
      scale *= 128;
      if (!(b & 0x80)) break;
    }
    lengths[i] = len;
    crc = lengthCrc(len, crc);
  }
  if (pos + 4 > bytes.length) throw corrupt(what, 'string tensor ends before its length checksum');
  const storedLengthCrc = new DataView(bytes.buffer, bytes.byteOffset + pos, 4).getUint32(0, true);
  if (verify && unmaskCrc(storedLengthCrc) !== crc) throw corrupt(what, 'string lengths fail their CRC32C check');
  crc = crc32c(bytes.subarray(pos, pos + 4), crc);
  pos += 4;
  const values: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = lengths[i]!;
    if (pos + len > bytes.length) throw corrupt(what, `string element ${i} (${len} bytes) runs past the entry`);
    values[i] = bytes.subarray(pos, pos + len);
    if (verify) crc = crc32c(values[i]!, crc);
    pos += len;
  }
  if (pos !== bytes.length) throw corrupt(what, `${bytes.length - pos} bytes left over after ${n} strings`);
  if (verify && crc !== unmaskCrc(e.crc32c)) {
    throw corrupt(what, `CRC32C mismatch (index says ${e.crc32c.toString(16)}, data gives ${maskCrc(crc).toString(16)}): the data file is damaged`);
  }
  return { dtype: 'string', shape: [...e.shape], values };
}

// ---------------------------------------------------------------------------------------------
// writing

export interface WriteBundleOptions {
  /** Start a new data shard once a shard holds this many bytes (default: one shard). */
  maxShardBytes?: number;
}

/** Stored bytes of a host tensor: raw little-endian, halves narrowed, strings encoded. */
function encodeForBundle(t: HostTensor): { chunks: Uint8Array[]; size: number; crc: number } {
  if (t.dtype === 'string') {
    const head: number[] = [];
    let crc = 0;
    for (const v of t.values) {
      let len = v.length;
      while (len >= 0x80) {
        head.push((len % 128) | 0x80);
        len = Math.floor(len / 128);
      }
      head.push(len);
      crc = lengthCrc(v.length, crc);
    }
    const lengthCheck = new Uint8Array(4);
    new DataView(lengthCheck.buffer).setUint32(0, maskCrc(crc), true);
    crc = crc32c(lengthCheck, crc);
    for (const v of t.values) crc = crc32c(v, crc);
    const chunks = [Uint8Array.from(head), lengthCheck, ...t.values];
    return { chunks, size: chunks.reduce((s, c) => s + c.length, 0), crc };
  }
  let bytes: Uint8Array;
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') {
    const narrow = t.dtype === 'float16' ? floatToHalf : floatToBfloat16;
    const bits = new Uint16Array(t.values.length);
    for (let i = 0; i < bits.length; i++) bits[i] = narrow(t.values[i]!);
    bytes = bytesOf(bits);
  } else {
    bytes = bytesOf(t.values);
  }
  return { chunks: [bytes], size: bytes.length, crc: crc32c(bytes) };
}

/**
 * Writes tensors as a TensorBundle at `prefix` (`<prefix>.index` + `<prefix>.data-*`), the way
 * TensorFlow does: uncompressed index, masked CRC32Cs, string tensors in TF's layout. Files are
 * written under temporary names and renamed into place. Data is written from views of the typed
 * arrays (no copies).
 *
 * @example
 * await writeTensorBundle('/tmp/m/variables/variables', {
 *   a: { dtype: 'float32', shape: [], values: new Float32Array([0.5]) },
 * });
 */
export async function writeTensorBundle(
  prefix: string,
  tensors: Record<string, HostTensor> | ReadonlyMap<string, HostTensor>,
  options: WriteBundleOptions = {},
): Promise<void> {
  const list: [string, HostTensor][] = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, HostTensor>);
  for (const [name] of list) {
    if (name === '') throw new LensError('INVALID_ARGUMENT', 'a TensorBundle tensor cannot have an empty name (the empty key holds the header)');
  }
  const maxShard = options.maxShardBytes ?? Infinity;
  // Plan shards first: the shard count is part of every data file's name.
  const planned = list.map(([name, t]) => ({ name, t, ...encodeForBundle(t) }));
  const shardOf: number[] = [];
  let shard = 0;
  let used = 0;
  for (const p of planned) {
    if (used > 0 && used + p.size > maxShard) {
      shard++;
      used = 0;
    }
    shardOf.push(shard);
    used += p.size;
  }
  const numShards = shard + 1;
  const tmpTag = `.tmp-${process.pid}-${Date.now()}`;
  const written: [string, string][] = [];
  const records: { key: string; value: Uint8Array }[] = [];
  try {
    for (let s = 0; s < numShards; s++) {
      const finalPath = shardPath(prefix, s, numShards);
      const tmp = finalPath + tmpTag;
      // Exclusive: a link planted at the temporary name is refused, not written through.
      const fh = await open(tmp, 'wx');
      written.push([tmp, finalPath]);
      try {
        let offset = 0;
        for (let i = 0; i < planned.length; i++) {
          if (shardOf[i] !== s) continue;
          const p = planned[i]!;
          for (const c of p.chunks) if (c.length > 0) await fh.write(c);
          records.push({
            key: p.name,
            value: encodeMessage('tensorflow.BundleEntryProto', {
              dtype: dataTypeOfDtype(p.t.dtype),
              shape: { dim: p.t.shape.map((size) => ({ size })) },
              shard_id: s,
              offset,
              size: p.size,
              crc32c: maskCrc(p.crc),
            }),
          });
          offset += p.size;
        }
      } finally {
        await fh.close();
      }
    }
    records.push({
      key: '',
      value: encodeMessage('tensorflow.BundleHeaderProto', { num_shards: numShards, endianness: 0, version: { producer: 1 } }),
    });
    const indexFinal = `${prefix}.index`;
    const indexTmp = indexFinal + tmpTag;
    written.push([indexTmp, indexFinal]);
    await writeFile(indexTmp, writeTable(records), { flag: 'wx' });
    // Data first, index last: a reader never sees an index whose shards are missing.
    for (const [, final] of written) await refuseSymlink(final);
    for (const [tmp, final] of written) await rename(tmp, final);
  } catch (e) {
    await Promise.all(written.map(([tmp]) => rm(tmp, { force: true })));
    throw e;
  }
}
