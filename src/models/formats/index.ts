/**
 * Every model file format the loader knows, in the order they are tried: the first whose
 * `detect` claims a path loads it. A SavedModel folder wins over a model.json next to it, and
 * `saved_model.pb` over other `.pb` files (frozen graphs).
 */
import { checkpointFormat, frozenGraphFormat } from './checkpoint.js';
import { keras3Format, kerasH5Format } from './keras.js';
import { savedModelFormat } from './savedmodel.js';
import { tfliteFormat } from './tflite.js';
import { graphFormat, layersFormat } from './tfjs.js';
import type { ModelFormatHandler } from './types.js';

export const MODEL_FORMATS = [
  savedModelFormat,
  layersFormat,
  graphFormat,
  kerasH5Format,
  keras3Format,
  tfliteFormat,
  checkpointFormat,
  frozenGraphFormat,
] as const satisfies readonly ModelFormatHandler[];

export type * from './types.js';
