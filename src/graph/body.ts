import type { GraphBuilder } from './builder.js';
import type { VariableSet } from './variables.js';

/** The parts of a graph the serving layer hangs on: the model from preprocessed pixels to scores. */
export interface ModelBody {
  inputShape: [number, number, number];
  /** Emits the model on the preprocessed input; returns scores [N, classes] and whether they are probabilities. */
  emit(g: GraphBuilder, vars: VariableSet, input: string, progress: (fraction: number) => void): Promise<{ scores: string; probabilities: boolean; classes: number }>;
}
