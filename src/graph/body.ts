import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { TfliteImport } from '../convert/tflite/index.js';
import type { GraphBuilder } from './builder.js';
import type { VariableSet } from './variables.js';

/** The parts of a graph the serving layer hangs on: the model from preprocessed pixels to scores. */
export interface ModelBody {
  inputShape: [number, number, number];
  /** Emits the model on the preprocessed input; returns scores [N, classes] and whether they are probabilities. */
  emit(g: GraphBuilder, vars: VariableSet, input: string, progress: (fraction: number) => void): Promise<{ scores: string; probabilities: boolean; classes: number }>;
}

/** What a loaded model is built from: a LayersModel, a TFLite graph, tfjs graph artifacts or a SavedModel. */
export type ModelStructure =
  | { kind: 'layers'; model: LayersModel }
  | { kind: 'tflite'; tflite: TfliteImport }
  | { kind: 'graph'; artifacts: tf.io.ModelArtifacts }
  | { kind: 'savedmodel'; dir: string; signature?: string };
