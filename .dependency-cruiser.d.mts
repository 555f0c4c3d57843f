// Types of .dependency-cruiser.mjs, for the TypeScript that reads its table.
import type { IConfiguration } from 'dependency-cruiser';

/** One row of the layer order: its folders of src/ (or a file, `index.ts`), lowest row first. */
export interface Layer {
  readonly folders: readonly string[];
  /** What the row owns, as docs/architecture.md shows it. */
  readonly owns: string;
  /** Imports allowed inside the row: folder -> folders of the same row it may import. */
  readonly sameRow?: Readonly<Record<string, readonly string[]>>;
}

export const LAYERS: readonly Layer[];
export const STUDIO_WEB: { readonly from: string; readonly allowed: readonly string[] };
export function pathPattern(entry: string): string;
export function entryOf(path: string): string | undefined;
declare const config: IConfiguration;
export default config;
