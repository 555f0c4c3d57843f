/**
 * HDF5 access through h5wasm (HDF5 compiled to WebAssembly; its Node build reads files in place).
 * This wrapper turns HDF5's diagnostics into LensErrors that name the file and say what is wrong,
 * and checks the cheap things (existence, signature, truncation) before HDF5 sees the file.
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import type { Dataset, File as H5File, Group } from 'h5wasm/node';
import { LensError, errorMessage } from '../../core/errors.js';

export type { Dataset, Group, H5File };

type H5Wasm = (typeof import('h5wasm/node'))['default'];

let h5wasm: H5Wasm | undefined;
let ready: Promise<H5Wasm> | undefined;

/**
 * Loads the HDF5 WebAssembly module once (on first use: it is a 4 MB module that only HDF5 work
 * needs) and makes HDF5 errors throw instead of printing.
 */
export function h5Ready(): Promise<H5Wasm> {
  ready ??= import('h5wasm/node').then(async ({ default: lib }) => {
    const module = await lib.ready;
    module.activate_throwing_error_handler();
    h5wasm = lib;
    return lib;
  });
  return ready;
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** The last HDF5 diagnostic line ("... in H5F__super_read(): truncated file: ...") without the stack. */
export function hdf5Reason(e: unknown): string {
  const text = errorMessage(e);
  const lines = text.split('\n').filter((l) => /#\d+:/.test(l));
  const last = lines[lines.length - 1];
  const m = last?.match(/\(\):\s*(.*)$/);
  return m?.[1]?.trim() || text.split('\n')[0]!.trim();
}

/**
 * Checks that `path` is a complete HDF5 file: the signature at offset 0 (or 512, 1024, ...) and,
 * for the common superblock versions, an end-of-file address no larger than the file.
 */
export function checkHdf5File(path: string): void {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    throw new LensError('NOT_FOUND', `cannot read HDF5 file ${path}: ${errorMessage(e)}`);
  }
  const fd = openSync(path, 'r');
  try {
    for (let base = 0; base + 8 <= size; base = base === 0 ? 512 : base * 2) {
      const head = Buffer.alloc(64);
      const n = readSync(fd, head, 0, 64, base);
      if (n < 8 || !SIGNATURE.every((b, i) => head[i] === b)) continue;
      const version = head[8]!;
      let eof: number | undefined;
      if (version === 0 || version === 1) {
        const offsetSize = head[13]!;
        const at = (version === 0 ? 24 : 28) + 2 * offsetSize;
        if (offsetSize === 8 && n >= at + 8) eof = Number(head.readBigUInt64LE(at));
      } else if (version === 2 || version === 3) {
        const offsetSize = head[9]!;
        const at = 12 + 2 * offsetSize;
        if (offsetSize === 8 && n >= at + 8) eof = Number(head.readBigUInt64LE(at));
      }
      if (eof !== undefined && base + eof > size) {
        throw new LensError('MODEL_CORRUPT', `HDF5 file ${path} is truncated: it has ${size} bytes but its superblock says ${base + eof}`);
      }
      return;
    }
  } finally {
    closeSync(fd);
  }
  throw new LensError('MODEL_CORRUPT', `${path} is not an HDF5 file (no HDF5 signature)`);
}

/** Opens an HDF5 file for reading after `checkHdf5File`; the caller closes it. */
export async function openHdf5(path: string): Promise<H5File> {
  checkHdf5File(path);
  const lib = await h5Ready();
  try {
    return new lib.File(path, 'r');
  } catch (e) {
    throw new LensError('MODEL_CORRUPT', `cannot open HDF5 file ${path}: ${hdf5Reason(e)}`);
  }
}

/**
 * Opens an HDF5 file, runs `read` on it and closes it. Whatever HDF5 throws on the way (a corrupt
 * B-tree deep in the file surfaces only when a group is read) becomes one line naming the file and
 * the innermost HDF5 reason, instead of HDF5's 50-line diagnostic stack.
 *
 * @example
 * const names = await readHdf5('model.h5', (file) => file.keys());
 */
export async function readHdf5<T>(path: string, read: (file: H5File) => T | Promise<T>): Promise<T> {
  const file = await openHdf5(path);
  try {
    return await read(file);
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('MODEL_CORRUPT', `HDF5 file ${path} is corrupt or unreadable: ${hdf5Reason(e)}`, { cause: e });
  } finally {
    try {
      file.close();
    } catch {
      // closing a file HDF5 already gave up on reports the same damage again
    }
  }
}

/** Creates (truncates) an HDF5 file for writing; the caller closes it. */
export async function createHdf5(path: string): Promise<H5File> {
  const lib = await h5Ready();
  try {
    return new lib.File(path, 'w');
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', `cannot create HDF5 file ${path}: ${hdf5Reason(e)}`);
  }
}

/** True for an HDF5 group (entities only exist once the module is loaded). */
export function isGroup(entity: unknown): entity is Group {
  return h5wasm !== undefined && entity instanceof h5wasm.Group;
}

export function isDataset(entity: unknown): entity is Dataset {
  return h5wasm !== undefined && entity instanceof h5wasm.Dataset;
}

/** An attribute as a string (Keras stores JSON configs and versions as string attributes). */
export function stringAttr(obj: Group | Dataset, name: string): string | undefined {
  const attr = obj.attrs[name];
  if (!attr) return undefined;
  const v = attr.value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return v === null ? undefined : String(v);
}

/**
 * An attribute as a list of strings (Keras `layer_names`, `weight_names`). Keras splits lists
 * over HDF5's 64 KB attribute limit into `name0`, `name1`, ...; those are joined.
 */
export function stringListAttr(obj: Group | Dataset, name: string): string[] | undefined {
  const attr = obj.attrs[name];
  if (!attr) {
    if (!obj.attrs[`${name}0`]) return undefined;
    const parts: string[] = [];
    for (let i = 0; obj.attrs[`${name}${i}`]; i++) parts.push(...(stringListAttr(obj, `${name}${i}`) ?? []));
    return parts;
  }
  if (attr.shape?.includes(0)) return [];
  const v = attr.value;
  if (v === null) return undefined;
  const items = Array.isArray(v) ? v : [v];
  return items.map((x) => (x instanceof Uint8Array ? Buffer.from(x).toString('utf8') : String(x)));
}
