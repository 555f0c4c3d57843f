/**
 * JSON files: typed arrays written as arrays, written atomically (see `fs/atomic.ts`).
 *
 * @example
 * await writeJsonAtomic('out/summary.json', { method: 'integrated_gradients', delta: 0.002 });
 */
import { writeFileAtomic } from '../fs/atomic.js';

/** JSON with typed arrays written as plain arrays (JSON.stringify would write them as objects). */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => (ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number | bigint>, Number) : v),
    indent,
  );
}

/** Writes `value` as pretty JSON (typed arrays as arrays, NaN/Infinity as null), atomically. */
export async function writeJsonAtomic(path: string, value: unknown, indent = 2): Promise<void> {
  await writeFileAtomic(path, `${toJson(value, indent)}\n`);
}
