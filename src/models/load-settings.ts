/**
 * Model loading settings given as text (the CLI's flags, the studio's and batch jobs' options)
 * as loadImageModel options. Only light modules load here, so CLI option parsing may use it.
 */

/** What to load a model with, as text; absent settings leave loadImageModel's defaults. */
export interface ModelLoadSettings {
  preprocess?: string;
  labels?: string;
  backend?: string;
  engine?: string;
  /** TF1 checkpoint directories: the step (digits) or the prefix name to load. */
  checkpoint?: string | number;
  inputTensor?: string;
  outputTensor?: string;
}

/**
 * Checkpoint (a step number, or a prefix name), input tensor and output tensor as loadImageModel options.
 *
 * @example
 * graphModelFlags({ checkpoint: '12000', inputTensor: 'Input:0' }); // { checkpoint: 12000, inputTensor: 'Input:0' }
 */
export function graphModelFlags(settings: Pick<ModelLoadSettings, 'checkpoint' | 'inputTensor' | 'outputTensor'>): { checkpoint?: number | string; inputTensor?: string; outputTensor?: string } {
  const { checkpoint } = settings;
  return {
    ...(checkpoint !== undefined ? { checkpoint: typeof checkpoint === 'string' && /^\d+$/.test(checkpoint) ? Number(checkpoint) : checkpoint } : {}),
    ...(settings.inputTensor ? { inputTensor: settings.inputTensor } : {}),
    ...(settings.outputTensor ? { outputTensor: settings.outputTensor } : {}),
  };
}

/**
 * Preprocessing, labels, backend, engine and the graph settings as options for loadImageModel.
 *
 * @example
 * await loadImageModel(flags.model, modelLoadFlags(flags));
 */
export function modelLoadFlags(settings: ModelLoadSettings): { preprocess?: string; labels?: string; backend?: string; engine?: string; checkpoint?: number | string; inputTensor?: string; outputTensor?: string } {
  return {
    ...(settings.preprocess ? { preprocess: settings.preprocess } : {}),
    ...(settings.labels ? { labels: settings.labels } : {}),
    ...(settings.backend ? { backend: settings.backend } : {}),
    ...(settings.engine ? { engine: settings.engine } : {}),
    ...graphModelFlags(settings),
  };
}
