import type { Command } from 'commander';

interface VerifyOptions {
  server: string;
  model: string;
  local: string;
  transport: string;
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
  program
    .command('verify')
    .description('check that a local model answers like a TF Serving model on some images (same top-k, probabilities within a tolerance); exits 1 with MODEL_MISMATCH when not')
    .argument('<images...>', 'image files, folders of images, or http(s) URLs')
    .requiredOption('--server <host:port>', 'TF Serving address (gRPC, or REST with --transport rest)')
    .requiredOption('--model <name>', 'name of the served model')
    .requiredOption('--local <model>', 'the local copy: SavedModel dir, .h5, .tflite, model.json, resnet50 or default')
    .option('--transport <t>', 'grpc or rest', 'grpc')
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
    .action(async (images: string[], opts: VerifyOptions) => {
      await verify(images, opts);
    });
}

async function verify(imageArgs: string[], opts: VerifyOptions): Promise<void> {
  const { compareModels, modelMismatchError } = await import('../../attribution/model-check.js');
  const support = await import('../attribution-support.js');
  const { loadImageModel } = await import('../../models/load.js');
  const tolerance = support.finiteNumber(opts.tolerance, '--tolerance');
  const topK = support.positiveInt(opts.topK, '--top-k');
  const version = opts.version !== undefined ? support.positiveInt(opts.version, '--version') : undefined;
  const server = support.hostPort(opts.server);
  const paths = support.expandImagePaths(imageArgs);
  const local = await loadImageModel(opts.local, {
    ...(opts.preprocess ? { preprocess: opts.preprocess } : {}),
    ...(opts.labels ? { labels: opts.labels } : {}),
    ...(opts.backend ? { backend: opts.backend } : {}),
  });
  const served = await support.openServedModel({
    target: server,
    model: opts.model,
    transport: opts.transport,
    like: local,
    ...(version !== undefined ? { version } : {}),
    ...(opts.signature ? { signature: opts.signature } : {}),
    ...(opts.servedOutput ? { output: opts.servedOutput } : {}),
  });
  try {
    const pixels = await support.loadModelImages(paths, local, opts.resize);
    const report = await compareModels(local, served.model, pixels.map((p, i) => ({ name: paths[i]!, image: p })), { topK, tolerance });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`);
    } else {
      for (const r of report.images) {
        const top = (c: { index: number; label?: string; probability: number } | undefined) => (c ? `${c.label ?? `class ${c.index}`} ${c.probability.toFixed(4)}` : '-');
        process.stdout.write(
          `${r.ok ? 'ok  ' : 'DIFF'} ${r.image}: local ${top(r.local[0])} | served ${top(r.served[0])} | max |dp| ${r.maxProbabilityDifference.toPrecision(3)}${r.sameTopK ? '' : ` | top-${report.topK} differ`}\n`,
        );
      }
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      if (report.ok) {
        process.stdout.write(`OK: local ${report.local} answers like served ${report.served} on ${report.images.length} image(s) (top-${report.topK}, tolerance ${report.tolerance})\n`);
      }
    }
    if (!report.ok) throw modelMismatchError(report);
  } finally {
    served.close();
    local.dispose();
  }
}
