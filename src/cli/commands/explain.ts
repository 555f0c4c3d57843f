import type { Command } from 'commander';
import * as support from '../attribution-support.js';
import { addConnectionFlags, collect } from '../server-flags.js';
import type { ConnectionSettings } from '../../serving/connection.js';
import { modelLoadFlags } from '../../models/load-settings.js';

interface ExplainOptions extends support.AttributionFlagValues, ConnectionSettings {
  model?: string;
  out: string;
  samples?: string;
  stdev?: string;
  magnitude?: boolean;
  references?: string[];
  layer?: string;
  window?: string;
  stride?: string;
  masks?: string;
  cells?: string;
  maxSigma?: string;
  path?: boolean;
  pathView?: string;
  curves?: string;
  server?: string;
  servedModel?: string;
  servedOutput?: string;
  tolerance: string;
  mapTolerance?: string;
  canvas: string;
  smooth?: string;
}

/** `lens explain`: attribution maps for images, written as PNG, .npy and JSON. */
export function register(program: Command): void {
  const command = program
    .command('explain')
    .description('explain a model\'s predictions pixel by pixel (Integrated Gradients and other methods); writes PNG, .npy and JSON per image')
    .argument('<images...>', 'image files, folders of images, or http(s) URLs')
    .option('--model <model>', 'SavedModel dir, .h5, .keras, .tflite, model.json, checkpoint dir, frozen .pb, resnet50, or default (the bundled shapes model)');
  support.addAttributionFlags(command, support.GRAPH_MODEL_FLAGS);
  support.addAttributionFlags(command, ['method', 'baseline', 'steps', 'rule', 'target', 'viz', 'sign']);
  command
    .option('--canvas <canvas>', 'photo (the attribution on the photo at its own size; photos under 256 px enlarged) or model (the model input beside the map, at the model size)', 'photo')
    .option('--smooth <px>', 'Gaussian smoothing of the picture in model pixels, named in the legend (default 1.5 for overlay and outline, 0 for the named conventions; never applied to the .npy)')
    .option('--out <dir>', 'output folder', 'explanations');
  support.addAttributionFlags(command, ['preprocess', 'resize', 'labels', 'batchSize', 'seed']);
  command
    .option('--samples <n>', 'SmoothGrad/VarGrad noisy samples')
    .option('--stdev <fraction>', 'SmoothGrad noise as a fraction of the input range', undefined)
    .option('--magnitude', 'SmoothGrad: average squared maps')
    // One path per flag: a variadic flag would take the images after it too (`--references refs/ cat.jpg`).
    .option('--references <path>', 'Expected Gradients: an image or folder of images to draw baselines from; repeatable', collect)
    .option('--layer <name>', 'Grad-CAM layer (default: the last spatial layer)')
    .option('--window <n>', 'occlusion window side in pixels')
    .option('--stride <n>', 'occlusion stride in pixels')
    .option('--masks <n>', 'RISE masks')
    .option('--cells <n>', 'RISE grid cells per side')
    .option('--max-sigma <s>', 'Blur IG largest blur in pixels')
    .option('--path', 'IG: keep per-step scores and mean gradients in the JSON summary')
    .option('--path-view <alpha>', 'IG: also write STEM.path.png/.npy/.json: the image interpolated at alpha (0..1) from the baseline, F(alpha) at the rule\'s points and the integrand per point')
    .option('--curves <n>', 'also write STEM.curves.png/.npy/.json: deletion and insertion curves with n points after the first, every baseline on the same axes')
    .option('--map-tolerance <e>', 'IG: place the steps until the estimated relative L2 error of the map is at most e (e.g. 0.01); --steps is then the budget (default 1024)')
    .option('--server <host:port>', 'TF Serving address: check that --model answers like the served model first (forward-only methods may omit --model)')
    .option('--served-model <name>', 'name of the served model (default: the local model name)');
  addConnectionFlags(command)
    .option('--served-output <kind>', 'what the served model returns: logit or probability (default: guessed from the output name)')
    .option('--tolerance <p>', 'largest accepted probability difference local vs served', '0.001');
  support.addAttributionFlags(command, ['backend', 'engine', 'progress']);
  command
    .option('--json', 'print one JSON object per image (and target)')
    .action(async (images: string[], opts: ExplainOptions, cmd: Command) => {
      await explain(images, opts, cmd.getOptionValueSource('rule') !== 'default');
    });
}

async function explain(imageArgs: string[], opts: ExplainOptions, ruleGiven: boolean): Promise<void> {
  const attribution = await import('../../attribution/index.js');
  const { LensError } = await import('../../core/errors.js');
  const { parseVisualizationMethod, parseAttributionSign } = await import('../../render/index.js');
  const { initBackend } = await import('../../engines/tfjs/index.js');
  const { expandImagePaths, imageStem, loadModelImages } = await import('../../image/files.js');
  const { hostPort } = await import('../../serving/connection.js');

  const method = attribution.parseMethod(opts.method);
  const methodName = attribution.methodLabel(method);
  const viz = parseVisualizationMethod(opts.viz);
  const sign = parseAttributionSign(opts.sign);
  const rule = attribution.parseIntegrationRule(opts.rule);
  const mapTolerance = opts.mapTolerance === undefined ? undefined : support.finiteNumber(opts.mapTolerance, '--map-tolerance');
  const targetSpec = attribution.parseTarget(opts.target);
  const tolerance = support.finiteNumber(opts.tolerance, '--tolerance');
  const { CANVASES } = await import('../../report/save.js');
  if (!(CANVASES as readonly string[]).includes(opts.canvas)) throw new LensError('INVALID_ARGUMENT', `--canvas must be one of ${CANVASES.join(', ')}, got "${opts.canvas}"`);
  const canvas = opts.canvas as import('../../report/save.js').Canvas;
  const smooth = opts.smooth === undefined ? undefined : support.finiteNumber(opts.smooth, '--smooth');
  if (smooth !== undefined && smooth < 0) throw new LensError('INVALID_ARGUMENT', `--smooth must be >= 0, got ${smooth}`);
  const num = (v: string | undefined, flag: string) => (v === undefined ? undefined : support.positiveInt(v, flag));
  const real = (v: string | undefined, flag: string) => (v === undefined ? undefined : support.finiteNumber(v, flag));
  const numbers = support.attributionNumbers(opts);
  const pathAlpha = opts.pathView === undefined ? undefined : support.finiteNumber(opts.pathView, '--path-view');
  if (pathAlpha !== undefined && !(pathAlpha >= 0 && pathAlpha <= 1)) throw new LensError('INVALID_ARGUMENT', `--path-view takes alpha between 0 and 1, got ${pathAlpha}`);
  if (pathAlpha !== undefined && method.name !== 'ig') throw new LensError('INVALID_ARGUMENT', `--path-view draws the Integrated Gradients path: use --method ig, not ${methodName}`);
  const curveSteps = opts.curves === undefined ? undefined : support.positiveInt(opts.curves, '--curves');
  const paths = expandImagePaths(imageArgs);
  if (!opts.model && !opts.server) throw new LensError('INVALID_ARGUMENT', 'give --model MODEL (a local model), or --server HOST:PORT --served-model NAME for forward-only methods');
  await initBackend(opts.backend !== undefined ? { backend: opts.backend } : {});

  const { loadImageModel } = await import('../../models/load.js');
  const local = opts.model
    ? await loadImageModel(opts.model, modelLoadFlags(opts))
    : undefined;
  if (local && !opts.json) process.stderr.write(`engine: ${local.engine.detail}${local.engine.reason ? ` (${local.engine.reason})` : ''}\n`);
  let served: import('../../core/model.js').ImageModel | undefined;
  let closeServed = () => {};
  if (opts.server) {
    const name = opts.servedModel ?? local?.name;
    if (!name) throw new LensError('INVALID_ARGUMENT', '--served-model NAME is needed with --server when no --model is given');
    const { openServedModel } = await import('../../models/remote.js');
    const remote = await openServedModel({ target: hostPort(opts.server), model: name, connection: opts, ...(local ? { like: local } : {}), ...(opts.servedOutput ? { output: opts.servedOutput } : {}) });
    served = remote.model;
    closeServed = remote.close;
  }
  try {
    const model = local ?? served!;
    if (!local && !attribution.FORWARD_ONLY_METHODS.includes(method.name)) {
      throw new LensError(
        'UNSUPPORTED',
        `method ${methodName} needs gradients, which TF Serving does not compute: give --model with a local copy of the served model (it is checked against the server first), or use --method occlusion or rise`,
      );
    }
    const pixels = await loadModelImages(paths, model, opts.resize);
    const named = pixels.map((p, i) => ({ name: paths[i]!, image: p }));
    if (local && served) {
      // The model explained must be the model served.
      const report = await attribution.assertSameModel(local, served, named, { tolerance });
      process.stderr.write(`verified: ${local.name} answers like served model ${served.name} on ${report.images.length} image(s)\n`);
    }
    const references = opts.references ? await loadModelImages(expandImagePaths(opts.references), model, opts.resize) : undefined;
    // Several comma-separated baselines explain each image once per baseline (as the studio's panels).
    const baselineTexts = attribution.splitBaselineList(opts.baseline);
    if (baselineTexts.length === 0) throw new LensError('INVALID_ARGUMENT', '--baseline is empty');
    const baselines = await Promise.all(baselineTexts.map((b) => attribution.resolveBaseline(attribution.parseBaseline(b), async (p) => (await loadModelImages([p], model, opts.resize))[0]!)));
    const settings: Omit<import('../../attribution/index.js').MethodSettings, 'baseline'> = {
      // --map-tolerance places the steps itself, unless a rule is named (then the library says they clash).
      ...(mapTolerance === undefined || ruleGiven ? { rule } : {}),
      ...(mapTolerance !== undefined ? { mapTolerance } : {}),
      ...numbers,
      ...(opts.samples !== undefined ? { samples: support.positiveInt(opts.samples, '--samples') } : {}),
      ...(opts.stdev !== undefined ? { stdevFraction: real(opts.stdev, '--stdev')! } : {}),
      ...(opts.magnitude ? { magnitude: true } : {}),
      ...(references ? { references } : {}),
      ...(opts.layer ? { layer: opts.layer } : {}),
      ...(opts.window !== undefined ? { window: num(opts.window, '--window')! } : {}),
      ...(opts.stride !== undefined ? { stride: num(opts.stride, '--stride')! } : {}),
      ...(opts.masks !== undefined ? { masks: num(opts.masks, '--masks')! } : {}),
      ...(opts.cells !== undefined ? { cells: num(opts.cells, '--cells')! } : {}),
      ...(opts.maxSigma !== undefined ? { maxSigma: real(opts.maxSigma, '--max-sigma')! } : {}),
      ...(opts.path || pathAlpha !== undefined ? { returnPath: 'gradients' as const } : {}),
    };
    const usedStems = new Set<string>();
    const report = await import('../../report/index.js');
    const { loadPixels } = await import('../../image/index.js');
    for (const { name, image } of named) {
      // The photo at its own size, to draw on (the model saw it resized).
      const photo = canvas === 'photo' ? await loadPixels(name, { channels: image.channels === 1 ? 1 : 3 }) : undefined;
      const [scores] = await attribution.forwardRows(model, [image.data], 1);
      const targets = attribution.resolveTargets(model, scores!, targetSpec);
      for (const target of targets) {
        const curves: import('../../report/index.js').NamedCurves[] = [];
        const baseStem = `${imageStem(name)}.${methodName.replace(':', '-')}${targets.length > 1 ? `.t${target.index}` : ''}`;
        for (let b = 0; b < baselines.length; b++) {
          const bar = await support.progressBar(support.wantsProgressBar(opts));
          let attr;
          try {
            attr = await attribution.runMethod(method, model, image, { ...settings, baseline: baselines[b]!, target: target.index, inputScores: scores!, ...(bar.onProgress ? { onProgress: bar.onProgress } : {}) });
          } finally {
            bar.stop();
          }
          let stem = baselines.length > 1 ? `${baseStem}.${baselineTexts[b]!.replace(/[^A-Za-z0-9=._-]+/g, '-')}` : baseStem;
          for (let k = 2; usedStems.has(stem); k++) stem = `${stem.replace(/~\d+$/, '')}~${k}`;
          usedStems.add(stem);
          const files: Record<string, string> = {
            ...(await report.saveAttribution(attr, image, {
              dir: opts.out,
              stem,
              viz,
              sign,
              canvas,
              ...(photo ? { photo } : {}),
              ...(smooth !== undefined ? { smooth } : {}),
              imageName: name,
              extra: { model: model.name },
            })),
          };
          if (pathAlpha !== undefined) {
            const { images: starts } = attribution.makeBaselines(model, image, baselines[b]!, attribution.seededRandom(numbers.seed));
            files.path = (await report.savePathView(attr, image, starts, { dir: opts.out, stem: `${stem}.path`, alpha: pathAlpha, imageName: name, extra: { model: model.name } })).png;
          }
          if (curveSteps !== undefined) {
            const curve = { steps: curveSteps, ...(numbers.batchSize !== undefined ? { batchSize: numbers.batchSize } : {}) };
            curves.push({ name: baselineTexts[b]!, deletion: await attribution.attributionCurve(model, image, attr, 'deletion', curve), insertion: await attribution.attributionCurve(model, image, attr, 'insertion', curve) });
          }
          printSummary(name, model, local, attr, report.explanationSummary(attr), files, opts.json === true);
        }
        if (curveSteps !== undefined) {
          const saved = await report.saveCurvesView(curves, { dir: opts.out, stem: `${baseStem}.curves`, title: `${imageStem(name)}: ${methodName}`, imageName: name, extra: { model: model.name, method: methodName } });
          if (!opts.json) process.stdout.write(`  -> ${saved.png}\n`);
        }
      }
    }
  } finally {
    closeServed();
    local?.dispose();
  }
}

/** Prints what was written for one attribution: a line for people, or one JSON object. */
function printSummary(
  name: string,
  model: import('../../core/model.js').ImageModel,
  local: import('../../models/load.js').LoadedImageModel | undefined,
  attr: import('../../attribution/index.js').Attribution,
  fields: Record<string, unknown>,
  files: Record<string, string>,
  json: boolean,
): void {
  const summary = {
    image: name,
    model: model.name,
    engine: local ? local.engine.detail : 'TF Serving (forward passes over the wire)',
    ...fields,
    ...(attr.geometry ? { geometry: attr.geometry } : {}),
    files,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const who = attr.target.label ?? `class ${attr.target.index}`;
  const setup = [attr.method, attr.baseline, attr.steps !== undefined ? `${attr.steps} steps` : undefined, attr.rule].filter(Boolean).join(' ');
  const delta = attr.completeness ? `  delta ${attr.completeness.delta.toPrecision(3)} (${(attr.completeness.relative * 100).toPrecision(3)}% of F(x)-F(x'), ${attr.output})` : '';
  const mapError = attr.mapErrorEstimate !== undefined ? `  map error ~${(attr.mapErrorEstimate * 100).toPrecision(2)}% (${attr.gradientEvaluations} gradients)` : '';
  process.stdout.write(`${name}: ${who} p=${attr.target.probability.toFixed(4)}  ${setup}${delta}${mapError}\n  -> ${files.png}\n${files.path ? `  -> ${files.path}\n` : ''}`);
}
