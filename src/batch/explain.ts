/**
 * The attribution engine as a batch `explainOne`: load the image at the model's size, find the
 * target class, run the method (Integrated Gradients with a black baseline unless told otherwise),
 * and return the picture (the `lens explain` panel, with method, baseline, steps, target and delta
 * in PNG text chunks) and the raw attributions (.npy, float32 HxWxC) as bytes for the runner to
 * store atomically.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import type { ModelLoadSettings } from '../models/load-settings.js';
import type { JsonValue } from './store.js';
import type { ExplainOne } from './runner.js';

/** How each image is explained (the same choices as `lens explain`). */
export interface AttributionExplainerOptions extends ModelLoadSettings {
  /** Model spec for loadImageModel: SavedModel folder (a TF Serving base path picks its newest version), .h5, .keras, .tflite, model.json, TF1 checkpoint, frozen .pb, resnet50, default. */
  model: string;
  /** Method name (`ig`, `smoothgrad:ig`, `gradient`, ...). Default 'ig'. */
  method?: string;
  /** Baseline spec (`black`, `blur:sigma=10`, `black+white`, ...). Default 'black'. */
  baseline?: string;
  steps?: number;
  /** Integration rule. Default 'gausslegendre'. */
  rule?: string;
  /** `top1`, a class index or a label (one target per image). Default 'top1'. */
  target?: string;
  /** Visualization convention. Default DEFAULT_VIEW.viz (`overlay`), as `lens batch`. */
  viz?: string;
  /** Captum sign. Default DEFAULT_VIEW.sign (`absolute_value`). */
  sign?: string;
  /** pad, crop or squash. Default 'pad'. */
  resize?: string;
  batchSize?: number;
  seed?: number;
  /** Also store the raw attributions as .npy. Default true. */
  npy?: boolean;
  /** Engine for the model: auto, onnxruntime, tfjs (see loadImageModel). */
  engine?: string;
  /** Checkpoints and frozen graphs: the image input and scores output tensors (`NAME:0`). */
  inputTensor?: string;
}

/** An explainer bound to a loaded model. */
export interface AttributionExplainer {
  explainOne: ExplainOne;
  model: ImageModel;
  /** What every record shares (model, method, baseline, ...), for logs. */
  describe: string;
  dispose(): void;
}

/**
 * Loads the model once and returns an `explainOne` for {@link runShard}.
 *
 * @example
 * const explainer = await createAttributionExplainer({ model: '/data/models/resnet', steps: 32 });
 * await runShard({ items, shard: 0, shards: 4, out: '/data/out', explainOne: explainer.explainOne });
 * explainer.dispose();
 */
export async function createAttributionExplainer(options: AttributionExplainerOptions): Promise<AttributionExplainer> {
  // Attribution first: it registers gradients before the backend installs its kernels.
  const attribution = await import('../attribution/index.js');
  const render = await import('../render/index.js');
  const { attributionPicture, explanationSummary } = await import('../report/save.js');
  const { loadImageModel } = await import('../models/load.js');
  const { modelLoadFlags } = await import('../models/load-settings.js');
  const { loadPixels, parseResizeMode } = await import('../image/index.js');

  const method = attribution.parseMethod(options.method ?? 'ig');
  const methodName = attribution.methodLabel(method);
  const rule = attribution.parseIntegrationRule(options.rule ?? 'gausslegendre');
  const target = attribution.parseTarget(options.target ?? 'top1');
  if (typeof target === 'object') throw new LensError('INVALID_ARGUMENT', `--target ${options.target}: batch attribution explains one class per image (top1, an index or a label)`);
  const viz = render.parseVisualizationMethod(options.viz ?? render.DEFAULT_VIEW.viz);
  const sign = render.parseAttributionSign(options.sign ?? render.DEFAULT_VIEW.sign);
  const resize = parseResizeMode(options.resize ?? 'pad');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LensError('INVALID_ARGUMENT', `--seed must be an integer, got ${seed}`);

  const model = await loadImageModel(options.model, modelLoadFlags(options));
  if (attribution.FORWARD_ONLY_METHODS.includes(method.name) === false && !model.gradient) {
    model.dispose();
    throw new LensError('UNSUPPORTED', `model ${options.model} gives no gradients, which method ${methodName} needs; use --method occlusion or rise`);
  }
  const [height, width, channels] = model.inputShape;
  if (channels !== 1 && channels !== 3) {
    model.dispose();
    throw new LensError('MODEL_UNSUPPORTED', `model ${options.model} takes ${channels}-channel images; batch attribution loads 1 or 3 channels`);
  }
  const loadAt = (source: string) => loadPixels(source, { size: [height, width], resize, channels });
  const baseline = await attribution.resolveBaseline(attribution.parseBaseline(options.baseline ?? 'black'), loadAt);
  const settings = {
    baseline,
    rule,
    seed,
    ...(options.steps !== undefined ? { steps: options.steps } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
  };
  const withNpy = options.npy ?? true;

  const explainOne: ExplainOne = async (item) => {
    const image = await loadAt(item.source);
    const [scores] = await attribution.forwardRows(model, [image.data], 1);
    const [info] = attribution.resolveTargets(model, scores!, target);
    const attr = await attribution.runMethod(method, model, image, { ...settings, target: info!.index, inputScores: scores! });
    // The model-size panel of `lens explain --canvas model`, unsmoothed.
    const panel = await attributionPicture(attr, image, { viz, sign, canvas: 'model', smooth: 0, imageName: item.ref.replace(/[?#].*$/, '').split('/').pop() || item.ref });
    const png = render.addPngText(panel.bytes, render.attributionPngText(attr, { image: item.ref, model: model.name }));
    const result: { [key: string]: JsonValue } = { model: model.name, ...explanationSummary(attr) };
    return { result, files: { png, ...(withNpy ? { npy: render.encodeNpy(attr.data, [attr.height, attr.width, attr.channels]) } : {}) } };
  };

  return {
    explainOne,
    model,
    describe: `${model.name}: ${methodName}, baseline ${options.baseline ?? 'black'}${options.steps !== undefined ? `, ${options.steps} steps` : ''}, target ${options.target ?? 'top1'}`,
    dispose: () => model.dispose(),
  };
}
