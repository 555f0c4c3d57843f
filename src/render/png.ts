/**
 * PNG text metadata: key/value pairs stored in the PNG itself, so a picture carries the method,
 * baseline, steps, target and completeness delta that made it. ASCII values are written as
 * `tEXt` chunks, others as uncompressed `iTXt` (UTF-8); the reader also understands Latin-1 `tEXt`,
 * `zTXt` and compressed `iTXt`. Chunks go before the first `IDAT`, each with its
 * CRC-32 over type and data, as the PNG specification asks.
 *
 * @example
 * const png = addPngText(await encodeRgbaPng(viz), { method: 'integrated_gradients', steps: 64 });
 * readPngText(png);   // { method: 'integrated_gradients', steps: '64' }
 * await writePngAtomic('out/cat.png', viz, { method: 'integrated_gradients', delta: 0.0012 });
 */
import { inflateSync } from 'node:zlib';
import { LensError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { encodeRgbaPng, type RgbaImage } from './rgba.js';

const SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const TEXT_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt']);

/** Values are written as text: numbers with full precision, booleans as true/false; null and undefined are skipped. */
export type PngTextValue = string | number | boolean | null | undefined;
export type PngText = Readonly<Record<string, PngTextValue>>;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309 / PNG / zlib), continuing from `crc` when given. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** One chunk of a PNG file. */
export interface PngChunk {
  type: string;
  data: Uint8Array;
}

/** The chunks of a PNG, in order, after checking the signature, lengths and CRCs. */
export function readPngChunks(png: Uint8Array): PngChunk[] {
  if (png.length < 8 || SIGNATURE.some((b, i) => png[i] !== b)) throw new LensError('IMAGE_DECODE', 'not a PNG file: bad signature');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: PngChunk[] = [];
  let offset = 8;
  while (offset < png.length) {
    if (offset + 12 > png.length) throw new LensError('IMAGE_DECODE', `PNG truncated inside the chunk header at byte ${offset}`);
    const length = view.getUint32(offset);
    const end = offset + 12 + length;
    if (end > png.length) throw new LensError('IMAGE_DECODE', `PNG chunk at byte ${offset} claims ${length} bytes past the end of the file`);
    const typeAndData = png.subarray(offset + 4, offset + 8 + length);
    const type = String.fromCharCode(...typeAndData.subarray(0, 4));
    if (crc32(typeAndData) !== view.getUint32(offset + 8 + length)) throw new LensError('IMAGE_DECODE', `PNG chunk ${type} at byte ${offset} has a bad CRC`);
    chunks.push({ type, data: png.subarray(offset + 8, offset + 8 + length) });
    offset = end;
    if (type === 'IEND') break;
  }
  if (chunks[0]?.type !== 'IHDR' || chunks[chunks.length - 1]?.type !== 'IEND') throw new LensError('IMAGE_DECODE', 'PNG must start with IHDR and end with IEND');
  return chunks;
}

function encodeChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function checkKeyword(key: string): void {
  // PNG keywords: 1-79 printable Latin-1 characters, no leading, trailing or doubled spaces.
  const printable = [...key].every((ch) => {
    const c = ch.charCodeAt(0);
    return ch.length === 1 && ((c >= 0x20 && c <= 0x7e) || (c >= 0xa1 && c <= 0xff));
  });
  if (key.length < 1 || key.length > 79 || !printable || key !== key.trim() || key.includes('  ')) {
    throw new LensError('INVALID_ARGUMENT', `PNG text key "${key}" must be 1-79 printable Latin-1 characters without leading, trailing or double spaces`);
  }
}

function textValue(key: string, value: PngTextValue): string | undefined {
  if (value === null || value === undefined) return undefined;
  const text = String(value);
  if (text.includes('\0')) throw new LensError('INVALID_ARGUMENT', `PNG text value of "${key}" contains a NUL character`);
  return text;
}

function textChunk(key: string, text: string): Buffer {
  // tEXt is Latin-1, but several readers (libvips/sharp among them) decode it as UTF-8: only plain
  // ASCII goes there, anything else goes to iTXt, which is UTF-8 by definition.
  if (/^[\x01-\x7f]*$/.test(text)) return encodeChunk('tEXt', Buffer.from(`${key}\0${text}`, 'latin1'));
  // iTXt: keyword, NUL, compression flag 0, method 0, empty language tag + NUL, empty translated keyword + NUL, UTF-8 text.
  return encodeChunk('iTXt', Buffer.concat([Buffer.from(`${key}\0`, 'latin1'), Buffer.from([0, 0, 0, 0]), Buffer.from(text, 'utf8')]));
}

function keywordOf(chunk: PngChunk): string {
  const nul = chunk.data.indexOf(0);
  return Buffer.from(chunk.data.subarray(0, nul < 0 ? chunk.data.length : nul)).toString('latin1');
}

/**
 * A copy of `png` with the given text entries; earlier text chunks with the same keys are dropped,
 * so writing twice replaces rather than duplicates.
 */
export function addPngText(png: Uint8Array, text: PngText): Buffer {
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(text)) {
    checkKeyword(key);
    const v = textValue(key, value);
    if (v !== undefined) entries.push([key, v]);
  }
  const keys = new Set(entries.map(([k]) => k));
  const parts: Uint8Array[] = [SIGNATURE];
  let inserted = false;
  for (const chunk of readPngChunks(png)) {
    if (TEXT_CHUNKS.has(chunk.type) && keys.has(keywordOf(chunk))) continue;
    if (!inserted && (chunk.type === 'IDAT' || chunk.type === 'IEND')) {
      for (const [k, v] of entries) parts.push(textChunk(k, v));
      inserted = true;
    }
    parts.push(encodeChunk(chunk.type, chunk.data));
  }
  return Buffer.concat(parts);
}

function decodeTextChunk(chunk: PngChunk): [string, string] {
  const data = Buffer.from(chunk.data);
  const nul = data.indexOf(0);
  if (nul < 1) throw new LensError('IMAGE_DECODE', `PNG ${chunk.type} chunk has no keyword`);
  const key = data.subarray(0, nul).toString('latin1');
  try {
    if (chunk.type === 'tEXt') return [key, data.subarray(nul + 1).toString('latin1')];
    if (chunk.type === 'zTXt') return [key, inflateSync(data.subarray(nul + 2)).toString('latin1')];
    const compressed = data[nul + 1] === 1;
    const languageEnd = data.indexOf(0, nul + 3);
    const translatedEnd = languageEnd < 0 ? -1 : data.indexOf(0, languageEnd + 1);
    if (translatedEnd < 0) throw new Error('missing language or translated keyword terminator');
    const body = data.subarray(translatedEnd + 1);
    return [key, (compressed ? inflateSync(body) : body).toString('utf8')];
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('IMAGE_DECODE', `PNG ${chunk.type} chunk "${key}" is malformed: ${(e as Error).message}`);
  }
}

/**
 * The text entries of a PNG (tEXt, zTXt, iTXt), by keyword; a later entry wins over an earlier one.
 *
 * @example
 * readPngText(await readFile('out/cat.png')).delta;   // '0.00123'
 */
export function readPngText(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const chunk of readPngChunks(png)) {
    if (!TEXT_CHUNKS.has(chunk.type)) continue;
    const [key, value] = decodeTextChunk(chunk);
    out[key] = value;
  }
  return out;
}

/**
 * Writes a PNG atomically (temp file + rename), with text entries added. Takes encoded PNG bytes
 * (e.g. from a grid or chart) or an RGBA image, which is encoded first.
 *
 * @example
 * await writePngAtomic('out/cat.png', visualize(attr), { method: 'integrated_gradients', steps: 64 });
 */
export async function writePngAtomic(path: string, png: Uint8Array | RgbaImage, text: PngText = {}): Promise<void> {
  const bytes = png instanceof Uint8Array ? png : await encodeRgbaPng(png);
  await writeFileAtomic(path, addPngText(bytes, text));
}
