/**
 * LevelDB-format tables (the container of `variables.index` and of old checkpoints): reading with
 * block CRC verification and Snappy blocks, and writing uncompressed tables.
 *
 * File = data blocks, metaindex block, index block, 48-byte footer (two block handles, padding,
 * magic). Every block is followed by a type byte (0 raw, 1 Snappy) and the masked CRC32C of the
 * block bytes plus that type byte. Every read is bounds-checked so that a damaged file gives a
 * BUNDLE_CORRUPT error naming it, never a hang or an out-of-range read.
 *
 * @example
 * const bytes = writeTable([{ key: 'a', value: new Uint8Array([1]) }]);
 * readTable(bytes, 'mem.index'); // [{ key: 'a', value: Uint8Array [1] }]
 */
import snappy from 'snappyjs';
import { LensError } from '../core/errors.js';
import { crc32c, maskCrc, unmaskCrc } from './crc32c.js';

/** Magic number at the end of every table, as little-endian fixed64. */
export const TABLE_MAGIC = 0xdb4775248b80fb57n;
const FOOTER_SIZE = 48;
const TRAILER_SIZE = 5;
/** Largest block we accept after decompression (TF writes 256 KiB blocks; this guards hostile lengths). */
const MAX_BLOCK_SIZE = 1 << 30;

export interface TableEntry {
  /** Key decoded as UTF-8 (TensorBundle keys are tensor names). */
  key: string;
  /** Value bytes: a view into the table (or into a decompressed block). */
  value: Uint8Array;
}

interface BlockHandle {
  offset: number;
  size: number;
}

/** A BUNDLE_CORRUPT error about `what` (index and data files alike). */
export function corrupt(what: string, detail: string): LensError {
  return new LensError('BUNDLE_CORRUPT', `${what}: ${detail}`);
}

/** A cursor over bytes that reads LevelDB varints with bounds checks. */
class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
    readonly what: string,
  ) {}

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw corrupt(this.what, 'truncated varint');
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (!(b & 0x80)) {
        if (!Number.isSafeInteger(result)) throw corrupt(this.what, 'varint too large');
        return result;
      }
      scale *= 128;
    }
    throw corrupt(this.what, 'varint longer than 10 bytes');
  }
}

function readHandle(c: Cursor): BlockHandle {
  return { offset: c.varint(), size: c.varint() };
}

/** Reads, checks and (if needed) decompresses one block. */
function readBlock(file: Uint8Array, handle: BlockHandle, limit: number, what: string, label: string): Uint8Array {
  const end = handle.offset + handle.size;
  if (end + TRAILER_SIZE > limit) {
    throw corrupt(what, `${label} at offset ${handle.offset} (${handle.size} bytes) runs past the end of the file (truncated?)`);
  }
  const contents = file.subarray(handle.offset, end);
  const type = file[end]!;
  const stored = new DataView(file.buffer, file.byteOffset + end + 1, 4).getUint32(0, true);
  const actual = crc32c(file.subarray(end, end + 1), crc32c(contents));
  if (unmaskCrc(stored) !== actual) {
    throw corrupt(what, `${label} at offset ${handle.offset} fails its CRC32C check (stored ${maskCrc(unmaskCrc(stored)).toString(16)}, computed ${maskCrc(actual).toString(16)}): the file is damaged`);
  }
  if (type === 0) return contents;
  if (type === 1) {
    try {
      return snappy.uncompress(contents, MAX_BLOCK_SIZE);
    } catch (e) {
      throw corrupt(what, `${label} at offset ${handle.offset} is not valid Snappy data (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  throw corrupt(what, `${label} at offset ${handle.offset} has unknown compression type ${type}`);
}

const utf8 = new TextDecoder('utf-8');

/** Entries of one block, in order; keys are prefix-compressed against the previous key. */
function blockEntries(block: Uint8Array, what: string, label: string): { key: Uint8Array; value: Uint8Array }[] {
  if (block.length < 4) throw corrupt(what, `${label} is shorter than its restart count`);
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const numRestarts = dv.getUint32(block.length - 4, true);
  const restartsAt = block.length - 4 - 4 * numRestarts;
  if (numRestarts === 0 && block.length > 4) throw corrupt(what, `${label} has entries but no restart points`);
  if (restartsAt < 0) throw corrupt(what, `${label} claims ${numRestarts} restart points, more than fit in ${block.length} bytes`);
  const out: { key: Uint8Array; value: Uint8Array }[] = [];
  const c = new Cursor(block, 0, restartsAt, `${what} (${label})`);
  let prev = new Uint8Array(0);
  while (c.pos < restartsAt) {
    const shared = c.varint();
    const unshared = c.varint();
    const valueLength = c.varint();
    if (shared > prev.length) throw corrupt(what, `${label}: entry shares ${shared} key bytes with a ${prev.length}-byte previous key`);
    if (c.pos + unshared + valueLength > restartsAt) throw corrupt(what, `${label}: entry runs past the end of the block`);
    const key = new Uint8Array(shared + unshared);
    key.set(prev.subarray(0, shared));
    key.set(block.subarray(c.pos, c.pos + unshared), shared);
    c.pos += unshared;
    out.push({ key, value: block.subarray(c.pos, c.pos + valueLength) });
    c.pos += valueLength;
    prev = key;
  }
  return out;
}

/**
 * Every entry of a LevelDB table in key order, after checking the footer magic and every block's
 * CRC32C. `what` names the file in errors.
 *
 * @example
 * const entries = readTable(await readFile('variables/variables.index'), 'variables.index');
 */
export function readTable(file: Uint8Array, what: string): TableEntry[] {
  if (file.length < FOOTER_SIZE) {
    throw corrupt(what, `${file.length} bytes is too short for a table (the footer alone is ${FOOTER_SIZE} bytes; truncated?)`);
  }
  const footerAt = file.length - FOOTER_SIZE;
  const magic = new DataView(file.buffer, file.byteOffset + file.length - 8, 8).getBigUint64(0, true);
  if (magic !== TABLE_MAGIC) {
    throw corrupt(what, `bad table magic 0x${magic.toString(16).padStart(16, '0')} (expected 0x${TABLE_MAGIC.toString(16)}): not a TensorBundle index, or truncated`);
  }
  const fc = new Cursor(file, footerAt, footerAt + 40, `${what} (footer)`);
  readHandle(fc); // metaindex: TF writes no meta blocks
  const indexHandle = readHandle(fc);
  const index = readBlock(file, indexHandle, footerAt, what, 'index block');
  const out: TableEntry[] = [];
  let blockNo = 0;
  for (const { value } of blockEntries(index, what, 'index block')) {
    const hc = new Cursor(value, 0, value.length, `${what} (index entry)`);
    const handle = readHandle(hc);
    const label = `data block ${blockNo++}`;
    for (const e of blockEntries(readBlock(file, handle, footerAt, what, label), what, label)) {
      out.push({ key: utf8.decode(e.key), value: e.value });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// writing

function putVarint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Builds one block: prefix-compressed entries with a restart point every `restartInterval`. */
class BlockBuilder {
  private parts: Uint8Array[] = [];
  private restarts: number[] = [0];
  private counter = 0;
  private last = new Uint8Array(0);
  size = 0;
  count = 0;

  constructor(private readonly restartInterval: number) {}

  add(key: Uint8Array, value: Uint8Array): void {
    let shared = 0;
    if (this.counter < this.restartInterval) {
      const max = Math.min(this.last.length, key.length);
      while (shared < max && this.last[shared] === key[shared]) shared++;
    } else {
      this.restarts.push(this.size);
      this.counter = 0;
    }
    const head: number[] = [];
    putVarint(head, shared);
    putVarint(head, key.length - shared);
    putVarint(head, value.length);
    const h = Uint8Array.from(head);
    this.parts.push(h, key.subarray(shared), value);
    this.size += h.length + key.length - shared + value.length;
    this.last = key;
    this.counter++;
    this.count++;
  }

  /** Bytes of the block once finished (entries, restart offsets, restart count). */
  finish(): Uint8Array {
    const tail = new Uint8Array(4 * (this.restarts.length + 1));
    const dv = new DataView(tail.buffer);
    this.restarts.forEach((r, i) => dv.setUint32(4 * i, r, true));
    dv.setUint32(4 * this.restarts.length, this.restarts.length, true);
    return Buffer.concat([...this.parts, tail]);
  }

  get estimatedSize(): number {
    return this.size + 4 * (this.restarts.length + 1);
  }
}

export interface WriteTableOptions {
  /** Target uncompressed size of data blocks in bytes (default 4096, LevelDB's default). */
  blockSize?: number;
  /** Keys between restart points in data blocks (default 16). */
  restartInterval?: number;
}

/**
 * An uncompressed LevelDB table holding `entries` (sorted bytewise by key here; duplicate keys
 * are an error), with masked CRC32C block trailers, as TensorFlow writes `variables.index`.
 *
 * @example
 * writeFileSync('x.index', writeTable([{ key: '', value: header }, { key: 'w', value: entry }]));
 */
export function writeTable(entries: readonly { key: string | Uint8Array; value: Uint8Array }[], options: WriteTableOptions = {}): Uint8Array {
  const blockSize = options.blockSize ?? 4096;
  const restartInterval = options.restartInterval ?? 16;
  const enc = new TextEncoder();
  const sorted = entries
    .map((e) => ({ key: typeof e.key === 'string' ? enc.encode(e.key) : e.key, value: e.value }))
    .sort((a, b) => compareBytes(a.key, b.key));
  for (let i = 1; i < sorted.length; i++) {
    if (compareBytes(sorted[i - 1]!.key, sorted[i]!.key) === 0) {
      throw new LensError('INVALID_ARGUMENT', `table key "${utf8.decode(sorted[i]!.key)}" appears twice`);
    }
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const emit = (contents: Uint8Array): BlockHandle => {
    const trailer = new Uint8Array(TRAILER_SIZE);
    trailer[0] = 0;
    const crc = crc32c(trailer.subarray(0, 1), crc32c(contents));
    new DataView(trailer.buffer).setUint32(1, maskCrc(crc), true);
    chunks.push(contents, trailer);
    const handle = { offset, size: contents.length };
    offset += contents.length + TRAILER_SIZE;
    return handle;
  };
  const handleBytes = (h: BlockHandle): Uint8Array => {
    const b: number[] = [];
    putVarint(b, h.offset);
    putVarint(b, h.size);
    return Uint8Array.from(b);
  };

  const index = new BlockBuilder(1);
  let block = new BlockBuilder(restartInterval);
  let lastKey: Uint8Array | undefined;
  const flush = (): void => {
    if (block.count === 0 || !lastKey) return;
    // The index key of a block may be any key >= its last key and < the next block's first key.
    index.add(lastKey, handleBytes(emit(block.finish())));
    block = new BlockBuilder(restartInterval);
  };
  for (const e of sorted) {
    block.add(e.key, e.value);
    lastKey = e.key;
    if (block.estimatedSize >= blockSize) flush();
  }
  flush();
  const metaHandle = emit(new BlockBuilder(restartInterval).finish());
  const indexHandle = emit(index.finish());
  const footer = new Uint8Array(FOOTER_SIZE);
  const handles = [...handleBytes(metaHandle), ...handleBytes(indexHandle)];
  footer.set(handles);
  new DataView(footer.buffer).setBigUint64(40, TABLE_MAGIC, true);
  chunks.push(footer);
  return Buffer.concat(chunks);
}
