/**
 * The whole serving-lens pipeline in one call, offline (`lens demo`, `npm run demo`):
 *
 * 1. load the bundled model (models/shapes-resnet, or any MODEL spec);
 * 2. write a few generated shapes images as JPEG files, with their object masks;
 * 3. export a servable SavedModel (JPEG-bytes and float-pixels signatures) and validate it;
 * 4. start the local TF Serving-compatible server in-process on 127.0.0.1 (free ports);
 * 5. predict over gRPC and over REST with the JPEG files, and check that the local copy of the
 *    model answers like the served one (explanations of the local copy explain the served model);
 * 6. Integrated Gradients with three baselines (black, blurred input, uniform noise);
 * 7. write a PNG grid (one shared colour scale) and a short markdown report.
 *
 * The server is always closed, also when a step fails; failures name the step.
 *
 * @example
 * const result = await runDemo({ out: 'out/demo', onProgress: (p) => console.error(p.message) });
 * result.files.grid;   // 'out/demo/grid.png'
 * result.files.report; // 'out/demo/report.md'
 */
import { readFile, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { assertSameModel, type AgreementReport } from '../attribution/model-check.js';
import { compareBaselines, type BaselineEntry, type CompareResult } from '../attribution/compare.js';
import type { BaselineName } from '../attribution/baselines.js';
import { mean } from '../attribution/stats.js';
import { topK } from '../core/model.js';
import { LensError, errorMessage, isLensError } from '../core/errors.js';
import { exportSavedModel, type ExportResult } from '../export/export.js';
import { loadPixels, type Pixels } from '../image/index.js';
import { loadImageModel } from '../models/load.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { writeJsonAtomic } from '../render/files.js';
import { formatProbability } from '../render/format.js';
import { writePngAtomic } from '../render/png.js';
import { createClient } from '../serving/client.js';
import type { ServingClient } from '../serving/client-api.js';
import { createRemoteModel } from '../models/remote.js';
import { startServer, type RunningServer } from '../serving/server.js';
import { markdownTable, type Row } from '../notebook/display.js';
import { attributionGridPng } from '../notebook/pictures.js';
import { validateServable, type ServableValidation } from '../notebook/servable.js';
import { writeShapeImages, type SampleImage } from '../notebook/workbench.js';

/** The demo's steps, in order. */
export const DEMO_STAGES = ['model', 'images', 'export', 'serve', 'predict', 'explain', 'report'] as const;
export type DemoStage = (typeof DEMO_STAGES)[number];

/** The baselines the demo compares. */
export const DEMO_BASELINES: readonly BaselineName[] = ['black', 'blur', 'uniform'];

export interface DemoProgress {
  stage: DemoStage;
  /** 1-based position of the stage in DEMO_STAGES. */
  step: number;
  steps: number;
  /** Work done within the stage, when it counts (explain: image x baseline pairs). */
  done?: number;
  total?: number;
  message: string;
}

export interface DemoOptions {
  /** Output folder. Default 'out/demo'. */
  out?: string;
  /** Model spec for loadImageModel. Default 'default' (the bundled shapes model). */
  model?: string;
  /** Generated images to serve and explain. Default 6. */
  images?: number;
  /** IG steps per baseline. Default 64. */
  steps?: number;
  /** Seed of the generated images and random baselines. Default 7. */
  seed?: number;
  /** Name the model is served under. Default 'shapes'. */
  servedName?: string;
  /** Colour scale of the grid: one for every panel (default) or one per panel. */
  scale?: 'shared' | 'panel';
  onProgress?(p: DemoProgress): void;
  /** Server log lines (model loading and unloading). */
  log?(line: string): void;
}

/** One class answer. */
export interface DemoClass {
  index: number;
  label?: string;
  probability: number;
}

export interface DemoPrediction {
  image: string;
  /** The generated shape's class. */
  truth?: string;
  grpc: DemoClass;
  rest: DemoClass;
}

export interface DemoBaselineSummary {
  baseline: string;
  /** Mean |sum(attr) - (F(x) - F(x'))| over the images. */
  meanDelta: number;
  /** Mean delta / |F(x) - F(x')|. */
  meanRelativeDelta: number;
  /** Mean share of positive attribution inside the object mask. */
  maskShare?: number;
  /** Share of images whose strongest pixel lies on the object. */
  pointing?: number;
}

export interface DemoResult {
  out: string;
  files: {
    grid: string;
    report: string;
    summary: string;
    /** The SavedModel version folder (holds saved_model.pb and variables/). */
    savedModel: string;
    images: string[];
  };
  model: { name: string; inputShape: readonly [number, number, number]; classes: number; output: string; preprocessing: string; engine: string };
  export: Pick<ExportResult, 'dir' | 'signatures' | 'nodes' | 'savedModelBytes' | 'variablesBytes'>;
  validation: ServableValidation;
  server: { grpc: string; rest: string; model: string };
  predictions: DemoPrediction[];
  agreement: { maxProbabilityDifference: number; images: number };
  baselines: DemoBaselineSummary[];
  steps: number;
  seconds: number;
}

function classOf(probs: Float32Array, labels: readonly string[] | undefined): DemoClass {
  const { score, ...top } = topK(probs, 1, labels)[0]!;
  return { ...top, probability: score };
}

function rowsOf(t: { dtype: string; shape: number[]; values: unknown } | undefined, what: string): Float32Array[] {
  if (!t || t.dtype !== 'float32' || t.shape.length !== 2) throw new LensError('SERVING_ERROR', `the server's reply has no float32 [N, classes] "${what}" output`);
  const values = t.values as Float32Array;
  const [n, c] = t.shape as [number, number];
  return Array.from({ length: n }, (_, i) => values.subarray(i * c, (i + 1) * c));
}

async function predictJpegs(client: ServingClient, model: string, files: readonly Uint8Array[]): Promise<Float32Array[]> {
  const reply = await client.predict({ model, signature: 'serving_default', inputs: { image_bytes: { dtype: 'string', shape: [files.length], values: [...files] } } });
  return rowsOf(reply.outputs.probabilities, 'probabilities');
}

function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || !Number.isFinite(v)) return '';
  const a = Math.abs(v);
  return a !== 0 && a < 1e-3 ? v.toExponential(1) : v.toFixed(digits);
}

function summarize(result: CompareResult): DemoBaselineSummary[] {
  return result.baselines.map((baseline) => {
    const rows = result.rows.filter((r) => r.baseline === baseline);
    const s = result.summary[baseline] ?? {};
    return {
      baseline,
      meanDelta: mean(rows.map((r) => r.delta)),
      meanRelativeDelta: mean(rows.map((r) => r.relativeDelta)),
      ...(s.maskShare ? { maskShare: s.maskShare.mean } : {}),
      ...(s.pointing ? { pointing: s.pointing.mean } : {}),
    };
  });
}

function report(r: Omit<DemoResult, 'seconds' | 'files'> & { gridFile: string; imagesDir: string }, out: string): string {
  const predictions: Row[] = r.predictions.map((p) => ({
    image: p.image,
    'true class': p.truth,
    'gRPC top-1': p.grpc.label ?? String(p.grpc.index),
    'gRPC p': fmt(p.grpc.probability),
    'REST top-1': p.rest.label ?? String(p.rest.index),
    'REST p': fmt(p.rest.probability),
  }));
  const baselines: Row[] = r.baselines.map((b) => ({
    baseline: b.baseline,
    'mean completeness delta': fmt(b.meanDelta),
    'mean relative delta': fmt(b.meanRelativeDelta),
    'positive attribution inside the object': b.maskShare === undefined ? '' : `${(b.maskShare * 100).toFixed(1)}%`,
    'pointing game': b.pointing === undefined ? '' : `${(b.pointing * 100).toFixed(0)}%`,
  }));
  const checks = r.validation.checks.filter((c) => c.ok).length;
  const rel = (p: string) => relative(out, p) || '.';
  return [
    `# serving-lens demo`,
    '',
    `Model **${r.model.name}** (input ${r.model.inputShape.join('x')}, ${r.model.classes} classes, ${r.model.preprocessing} preprocessing, outputs ${r.model.output}s)` +
      ` exported as a servable SavedModel at \`${rel(r.export.dir)}\` (signatures ${r.export.signatures.join(', ')}; ${r.export.nodes} nodes; ${r.export.savedModelBytes} + ${r.export.variablesBytes} bytes),` +
      ` validated (${checks}/${r.validation.checks.length} checks passed), and served by the local server as "${r.server.model}" on gRPC ${r.server.grpc} and REST ${r.server.rest}.`,
    '',
    '## Predictions',
    '',
    `JPEG files from \`${rel(r.imagesDir)}\` sent as encoded bytes to the \`serving_default\` signature over gRPC and over REST.` +
      ` The local copy of the model agrees with the served one (largest probability difference ${fmt(r.agreement.maxProbabilityDifference)} on ${r.agreement.images} images), so its explanations explain the served model.`,
    '',
    markdownTable(predictions),
    '',
    '## Integrated Gradients, three baselines',
    '',
    `${r.steps} steps (Gauss-Legendre) per baseline, explaining each image's top-1 class, computed on ${r.model.engine}. Completeness delta = |sum(attribution) - (F(x) - F(baseline))| with F the ${r.model.output};` +
      ' the object masks of the generated images say how much positive attribution falls on the object.',
    '',
    markdownTable(baselines),
    '',
    `![Integrated Gradients with black, blurred and uniform-noise baselines](${rel(r.gridFile)})`,
    '',
    '## Next',
    '',
    '```sh',
    `lens serve --model_name ${r.server.model} --model_base_path ${rel(join(r.export.dir, '..'))} --port 8500 --rest_api_port 8501`,
    `lens predict --server localhost:8500 --model ${r.server.model} ${r.predictions[0] ? rel(join(r.imagesDir, r.predictions[0].image)) : 'IMAGE.jpg'}`,
    `lens compare --model default --images ${rel(r.imagesDir)} --baselines black,blur,uniform,expected`,
    '```',
    '(paths relative to this folder)',
    '',
  ].join('\n');
}

/**
 * Runs the demo pipeline and writes `grid.png`, `report.md`, `summary.json`, `images/` and
 * `servable/1/` under `out`.
 *
 * @example
 * const { files, predictions, baselines } = await runDemo({ out: '/tmp/demo', images: 4, steps: 32 });
 * console.log(files.report, predictions[0]?.grpc.label, baselines[0]?.maskShare);
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = Date.now();
  const out = resolve(options.out ?? 'out/demo');
  const count = options.images ?? 6;
  const steps = options.steps ?? 64;
  const seed = options.seed ?? 7;
  const servedName = options.servedName ?? 'shapes';
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new LensError('INVALID_ARGUMENT', `demo images must be a whole number in 1..64, got ${count}`);
  if (!Number.isInteger(steps) || steps < 2) throw new LensError('INVALID_ARGUMENT', `demo steps must be a whole number >= 2, got ${steps}`);
  if (!/^[A-Za-z0-9_.-]+$/.test(servedName)) throw new LensError('INVALID_ARGUMENT', `served model name "${servedName}" must be letters, digits, _ . or -`);
  const progress = (stage: DemoStage, message: string, done?: number, total?: number) =>
    options.onProgress?.({ stage, step: DEMO_STAGES.indexOf(stage) + 1, steps: DEMO_STAGES.length, message, ...(done !== undefined ? { done } : {}), ...(total !== undefined ? { total } : {}) });
  // Each step's failure names the step, keeping the original error code.
  const step = async <T>(stage: DemoStage, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw new LensError(isLensError(e) ? e.code : 'INTERNAL', `demo step "${stage}" failed: ${errorMessage(e)}`, { cause: e });
    }
  };

  progress('model', `loading model ${options.model ?? 'default'}`);
  const model = await step('model', () => loadImageModel(options.model ?? 'default'));
  let server: RunningServer | undefined;
  const clients: ServingClient[] = [];
  try {
    const [h, w, c] = model.inputShape;
    if (!model.gradient) throw new LensError('MODEL_UNSUPPORTED', `demo step "model" failed: model ${model.name} has no gradients, so it cannot be explained`);
    if (h !== w || c !== 3) throw new LensError('MODEL_UNSUPPORTED', `demo step "model" failed: the demo's generated images are square RGB; model ${model.name} takes ${h}x${w}x${c}`);

    progress('images', `writing ${count} generated shapes images`);
    const imagesDir = join(out, 'images');
    // Images of an earlier run with more images would otherwise linger in the folder the report points at.
    await step('images', () => rm(imagesDir, { recursive: true, force: true }));
    const samples: SampleImage[] = await step('images', () => writeShapeImages(imagesDir, { count, size: h, seed }));
    const files = await step('images', () => Promise.all(samples.map(async (s) => new Uint8Array(await readFile(s.path)))));
    const pixels: Pixels[] = await step('images', () => Promise.all(samples.map((s) => loadPixels(s.path, { size: [h, w], channels: 3 }))));

    progress('export', 'exporting a servable SavedModel (JPEG-bytes and float signatures)');
    const servableBase = join(out, 'servable');
    const exported = await step('export', () => exportSavedModel(model, servableBase, { version: 1, name: servedName, force: true }));
    const validation = await step('export', () => validateServable(exported.dir, { images: samples.map((s) => s.path), reference: model }));
    if (!validation.ok) {
      const failed = validation.checks.filter((x) => !x.ok).map((x) => `${x.check}: ${x.detail}`);
      throw new LensError('MODEL_MISMATCH', `demo step "export" failed: the exported SavedModel ${exported.dir} did not pass validation (${failed.join('; ')})`);
    }

    progress('serve', 'starting the local server on 127.0.0.1');
    server = await step('serve', () =>
      startServer({ host: '127.0.0.1', port: 0, restApiPort: 0, modelName: servedName, modelBasePath: servableBase, ...(options.log ? { log: options.log } : {}) }),
    );
    const grpcTarget = `${server.host}:${server.grpcPort}`;
    const restTarget = `${server.host}:${server.restPort}`;
    const grpc = createClient({ target: grpcTarget, retry: { retries: 0 } });
    const rest = createClient({ target: restTarget, transport: 'rest', retry: { retries: 0 } });
    clients.push(grpc, rest);

    progress('predict', `predicting over gRPC (${grpcTarget}) and REST (${restTarget})`);
    const labels = model.labels;
    const [viaGrpc, viaRest] = await step('predict', () => Promise.all([predictJpegs(grpc, servedName, files), predictJpegs(rest, servedName, files)]));
    const predictions: DemoPrediction[] = samples.map((s, i) => ({
      image: relative(imagesDir, s.path),
      ...(s.className ? { truth: s.className } : {}),
      grpc: classOf(viaGrpc[i]!, labels),
      rest: classOf(viaRest[i]!, labels),
    }));
    // The served model computes no gradients: explanations run on the local copy, which must answer like the server.
    const agreement: AgreementReport = await step('predict', async () => {
      const served = await createRemoteModel({ client: grpc, model: servedName, signature: 'predict_pixels', ...(labels ? { labels } : {}) });
      return assertSameModel(model, served, pixels.map((p, i) => ({ name: samples[i]!.name, image: p })));
    });

    const entries: BaselineEntry[] = DEMO_BASELINES.map((name) => ({ name, spec: name }));
    const total = samples.length * entries.length;
    progress('explain', `Integrated Gradients: ${samples.length} images x ${entries.length} baselines, ${steps} steps`, 0, total);
    const compared = await step('explain', () =>
      compareBaselines(
        model,
        samples.map((s, i) => ({ name: s.name, image: pixels[i]!, ...(s.mask ? { mask: s.mask } : {}) })),
        entries,
        { steps, seed, curveSteps: 0, keep: samples.length, onProgress: (p) => progress('explain', p.stage ?? 'integrated gradients', p.done, p.total) },
      ),
    );

    progress('report', 'writing the grid and the report');
    const gridFile = join(out, 'grid.png');
    const reportFile = join(out, 'report.md');
    const summaryFile = join(out, 'summary.json');
    const baselines = summarize(compared);
    await step('report', async () => {
      const rows = compared.attributions.map((attrs, i) => ({
          image: pixels[i]!,
          title: [samples[i]!.name, `served: ${predictions[i]!.grpc.label ?? predictions[i]!.grpc.index} ${formatProbability(predictions[i]!.grpc.probability)}`],
          attributions: attrs,
      }));
      const gridOptions = {
        title: `${model.name}: Integrated Gradients, ${steps} steps, |attribution|`,
        columnTitles: compared.baselines,
        cellSize: Math.max(192, h),
        scale: (options.scale ?? 'shared') === 'shared' ? ('shared' as const) : ('per-map' as const),
      };
      const png = await attributionGridPng(rows, gridOptions);
      // The same grid as SVG, for papers.
      await writeFileAtomic(gridFile.replace(/\.png$/, '.svg'), await attributionGridPng(rows, { ...gridOptions, format: 'svg' }));
      await writePngAtomic(gridFile, png, {
        Title: 'serving-lens demo',
        Software: 'serving-lens',
        model: model.name,
        method: 'integrated_gradients',
        baselines: compared.baselines.join(','),
        steps,
        rule: 'gausslegendre',
        output: model.output,
        images: samples.map((s) => s.name).join(','),
        scale: options.scale ?? 'shared',
      });
    });
    const result = {
      out,
      model: { name: model.name, inputShape: model.inputShape, classes: model.classes, output: model.output, preprocessing: model.preprocessing, engine: model.engine.detail },
      export: { dir: exported.dir, signatures: exported.signatures, nodes: exported.nodes, savedModelBytes: exported.savedModelBytes, variablesBytes: exported.variablesBytes },
      validation,
      server: { grpc: grpcTarget, rest: restTarget, model: servedName },
      predictions,
      agreement: { maxProbabilityDifference: Math.max(...agreement.images.map((x) => x.maxProbabilityDifference)), images: agreement.images.length },
      baselines,
      steps,
    };
    const done: DemoResult = {
      ...result,
      files: { grid: gridFile, report: reportFile, summary: summaryFile, savedModel: exported.dir, images: samples.map((s) => s.path) },
      seconds: (Date.now() - started) / 1000,
    };
    await step('report', async () => {
      await writeFileAtomic(reportFile, report({ ...result, gridFile, imagesDir }, out));
      await writeJsonAtomic(summaryFile, done);
    });
    return done;
  } finally {
    for (const client of clients) client.close();
    await server?.close();
    model.dispose();
  }
}
