/** SavedModel folders, TF Serving base paths (the highest numbered version) and saved_model.pb files. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ModelFormatHandler } from './types.js';

const hasGraph = (dir: string) => existsSync(join(dir, 'saved_model.pb')) || existsSync(join(dir, 'saved_model.pbtxt'));

/** A SavedModel dir, or a TF Serving base path whose highest numeric version holds one. */
function savedModelDir(dir: string): string | undefined {
  if (hasGraph(dir)) return dir;
  const versions = readdirSync(dir)
    .filter((d) => /^\d+$/.test(d) && statSync(join(dir, d)).isDirectory())
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(dir, v)).find(hasGraph);
}

export const savedModelFormat: ModelFormatHandler<'savedmodel'> = {
  name: 'savedmodel',
  detect({ path, exists, isDirectory, sidecar }) {
    if (!exists) return undefined;
    if (isDirectory) {
      const format = sidecar?.format;
      const dir = format === 'savedmodel' || format === undefined ? savedModelDir(path) : undefined;
      return dir ? { path: dir, dir: path } : undefined;
    }
    return basename(path) === 'saved_model.pb' ? { path: dirname(path), dir: dirname(path) } : undefined;
  },
  async load({ path, name, namedExplicitly, labels, preprocessing, options, engine }) {
    const { imageModelFromSavedModel } = await import('../savedmodel.js');
    const model = await imageModelFromSavedModel(path, {
      ...(options.signature !== undefined ? { signature: options.signature } : {}),
      preprocessing: preprocessing ?? 'raw',
      ...(labels ? { labels } : {}),
      ...(namedExplicitly ? { name } : {}),
      ...engine,
    });
    return {
      model,
      finalSoftmax: model.output === 'probability',
      structure: { kind: 'savedmodel', dir: path, ...(options.signature !== undefined ? { signature: options.signature } : {}) },
    };
  },
};
