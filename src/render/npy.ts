/**
 * NumPy `.npy` files, so Python users can `np.load` raw attributions. The writer produces NPY
 * version 1.0 in C order, byte for byte what `np.save` writes (header dict, spare room for the
 * first dimension to grow, space padding to a 64-byte boundary, newline); the reader takes
 * versions 1.0 to 3.0 in C order.
 *
 * @example
 * await writeNpy('out/cat.npy', attribution.data, [224, 224, 3]);   // '<f4', shape (224, 224, 3)
 * const { data, shape } = await readNpy('out/cat.npy');
 */
import { readFile } from 'node:fs/promises';
import { LensError, errorMessage } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic.js';

/** Element types the `.npy` helpers read and write. */
export type NpyArray = Float32Array | Float64Array | Int32Array | Uint8Array;

const DESCR: ReadonlyArray<[string, new (n: number) => NpyArray]> = [
  ['<f4', Float32Array],
  ['<f8', Float64Array],
  ['<i4', Int32Array],
  ['|u1', Uint8Array],
];

const MAGIC = '\x93NUMPY';
// np.lib.format pads headers to this alignment and leaves room for the first dimension to grow.
const ALIGN = 64;
const GROWTH_AXIS_MAX_DIGITS = 21;

function descrOf(data: NpyArray): string {
  const entry = DESCR.find(([, ctor]) => data instanceof ctor);
  if (!entry) throw new LensError('DTYPE_UNSUPPORTED', 'npy: only Float32Array, Float64Array, Int32Array and Uint8Array can be written');
  return entry[0];
}

function pythonTuple(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** The `.npy` bytes of `data` with the given shape (C order). */
export function encodeNpy(data: NpyArray, shape: readonly number[]): Buffer {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new LensError('INVALID_ARGUMENT', `npy: bad shape [${shape.join(', ')}]`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new LensError('SHAPE_MISMATCH', `npy: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`);
  }
  let header = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${pythonTuple(shape)}, }`;
  if (shape.length > 0) header += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  // magic (6) + version (2) + header length (2) + header + padding + '\n' is a multiple of 64;
  // like numpy, the padding is never empty.
  const padding = ALIGN - ((MAGIC.length + 4 + header.length + 1) % ALIGN);
  header += `${' '.repeat(padding)}\n`;
  if (header.length > 0xffff) throw new LensError('INVALID_ARGUMENT', 'npy: header too long for version 1.0');
  const prefix = Buffer.alloc(10);
  prefix.write(MAGIC, 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** A decoded `.npy` array. */
export interface NpyFile {
  data: NpyArray;
  shape: number[];
  /** numpy type string, e.g. `<f4`. */
  descr: string;
}

/** Decodes `.npy` bytes (C order, little-endian or single-byte types). */
export function decodeNpy(bytes: Uint8Array, source = '<bytes>'): NpyFile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || buf.subarray(0, 6).toString('latin1') !== MAGIC) throw new LensError('TENSOR_INVALID', `${source} is not a .npy file (bad magic)`);
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new LensError('TENSOR_INVALID', `${source}: unsupported .npy version ${major}.${buf[7]}`);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataStart = 8 + lengthBytes + headerLength;
  if (dataStart > buf.length) throw new LensError('TENSOR_INVALID', `${source}: .npy header runs past the end of the file`);
  const header = buf.subarray(8 + lengthBytes, dataStart).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new LensError('TENSOR_INVALID', `${source}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  if (fortran === 'True') throw new LensError('UNSUPPORTED', `${source}: Fortran-order .npy arrays are not supported`);
  const entry = DESCR.find(([d]) => d === descr || (d === '|u1' && descr === '<u1'));
  if (!entry) throw new LensError('DTYPE_UNSUPPORTED', `${source}: .npy type ${descr} is not supported (expected ${DESCR.map(([d]) => d).join(', ')})`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new LensError('TENSOR_INVALID', `${source}: bad .npy shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new entry[1](count);
  const byteLength = count * data.BYTES_PER_ELEMENT;
  if (dataStart + byteLength > buf.length) {
    throw new LensError('TENSOR_INVALID', `${source}: .npy data has ${buf.length - dataStart} bytes, shape (${shape.join(', ')}) needs ${byteLength}`);
  }
  // Copy: the data offset need not be aligned for a typed-array view.
  new Uint8Array(data.buffer).set(buf.subarray(dataStart, dataStart + byteLength));
  return { data, shape, descr: entry[0] };
}

/**
 * Writes an array as `.npy` atomically.
 *
 * @example
 * await writeNpy('out/cat.npy', attr.data, [attr.height, attr.width, attr.channels]);
 */
export async function writeNpy(path: string, data: NpyArray, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}

/**
 * Reads a `.npy` file.
 *
 * @example
 * const { data, shape } = await readNpy('out/cat.npy');   // Float32Array, [224, 224, 3]
 */
export async function readNpy(path: string): Promise<NpyFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new LensError('NOT_FOUND', `cannot read ${path}: ${errorMessage(e)}`);
  }
  return decodeNpy(bytes, path);
}
