import type { Command } from 'commander';
import { addConnectionFlags } from '../server-flags.js';
import type { ConnectionSettings } from '../../serving/connection.js';

interface VerifyOptions extends ConnectionSettings {
  server: string;
  model: string;
  local: string;
  version?: string;
  signature?: string;
  servedOutput?: string;
  tolerance: string;
  topK: string;
  preprocess?: string;
  resize: string;
  labels?: string;
  backend?: string;
  json?: boolean;
}

/** `lens verify`: does a local model answer like the served one? (the check before explaining a served model) */
export function register(program: Command): void {
  const command = program
    .command('verify')
    .description('check that a local model answers like a TF Serving model on some images (same top-k, probabilities within a tolerance); exits 1 with MODEL_MISMATCH when not')
    .argument('<images...>', 'image files, folders of images, or http(s) URLs')
    .requiredOption('--server <host:port>', 'TF Serving address (gRPC, or REST with --transport rest)')
    .requiredOption('--model <name>', 'name of the served model')
    .requiredOption('--local <model>', 'the local copy: SavedModel dir, .h5, .tflite, model.json, resnet50 or default');
  addConnectionFlags(command)
    .option('--version <n>', 'served model version (default: the server\'s choice)')
    .option('--signature <name>', 'served signature (default serving_default)')
    .option('--served-output <kind>', 'what the served model returns: logit or probability (default: guessed from the output name)')
    .option('--tolerance <p>', 'largest accepted difference of any class probability', '0.001')
    .option('--top-k <k>', 'classes compared by rank', '5')
    .option('--preprocess <name>', 'preprocessing of the local model: raw, unit, symmetric, caffe, torch, bgr')
    .option('--resize <mode>', 'pad, crop or squash to the model input size', 'pad')
    .option('--labels <file>', 'class labels, one per line (or a JSON array)')
    .option('--backend <name>', 'tfjs backend: auto, tensorflow-gpu, tensorflow, wasm, cpu')
    .option('--json', 'print the comparison as JSON')
    .action(verify);
}

async function verify(imageArgs: string[], opts: VerifyOptions): Promise<void> {
  const { compareModels, modelMismatchError } = await import('../../attribution/model-check.js');
  const support = await import('../attribution-support.js');
  const { expandImagePaths, loadModelImages } = await import('../../image/files.js');
  const { hostPort } = await import('../../serving/connection.js');
  const { openServedModel } = await import('../../models/remote.js');
  const { modelLoadFlags } = await import('../../models/load-settings.js');
  const { loadImageModel } = await import('../../models/load.js');
  const tolerance = support.finiteNumber(opts.tolerance, '--tolerance');
  const topK = support.positiveInt(opts.topK, '--top-k');
  const version = opts.version !== undefined ? support.positiveInt(opts.version, '--version') : undefined;
  const server = hostPort(opts.server);
  const paths = expandImagePaths(imageArgs);
  const local = await loadImageModel(opts.local, modelLoadFlags(opts));
  const served = await openServedModel({
    target: server,
    model: opts.model,
    connection: opts,
    like: local,
    ...(version !== undefined ? { version } : {}),
    ...(opts.signature ? { signature: opts.signature } : {}),
    ...(opts.servedOutput ? { output: opts.servedOutput } : {}),
  });
  try {
    const print = (report: import('../../attribution/model-check.js').AgreementReport, what: string) => {
      for (const r of report.images) {
        const top = (c: { index: number; label?: string; probability: number } | undefined) => (c ? `${c.label ?? `class ${c.index}`} ${c.probability.toFixed(4)}` : '-');
        process.stdout.write(
          `${r.ok ? 'ok  ' : 'DIFF'} ${r.image}: local ${top(r.local[0])} | served ${top(r.served[0])} | max |dp| ${r.maxProbabilityDifference.toPrecision(3)}${r.sameTopK ? '' : ` | top-${report.topK} differ`}\n`,
        );
      }
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      if (report.ok) process.stdout.write(`OK: ${what}: ${report.local} answers like ${report.served} on ${report.images.length} image(s) (top-${report.topK}, tolerance ${report.tolerance})\n`);
    };
    const json = (v: unknown) => `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x), 2)}\n`;
    if (served.model.inputKind === 'jpeg') {
      // Like with like: the same bytes through the served signature and the local graph's own.
      const { checkEncodedParity } = await import('../../attribution/served-parity.js');
      const localSavedModel = local.info.format === 'savedmodel' ? local.info.path : undefined;
      const reports = await checkEncodedParity({ served: served.model, local, images: paths, topK, tolerance, ...(localSavedModel ? { localSavedModel } : {}) });
      if (opts.json) process.stdout.write(json(reports));
      else {
        print(reports.serving, 'serving (same bytes through both graphs)');
        if (reports.attribution) print(reports.attribution, 'attribution model vs full local graph');
      }
      const bad = [reports.serving, reports.attribution].find((r) => r && !r.ok);
      if (bad) throw modelMismatchError(bad);
      return;
    }
    const pixels = await loadModelImages(paths, local, opts.resize);
    const report = await compareModels(local, served.model, pixels.map((p, i) => ({ name: paths[i]!, image: p })), { topK, tolerance });
    if (opts.json) process.stdout.write(json(report));
    else print(report, 'served model');
    if (!report.ok) throw modelMismatchError(report);
  } finally {
    served.close();
    local.dispose();
  }
}
