import type { Command } from 'commander';
import { GRAPH_MODEL_FLAGS, addAttributionFlags, integerFlag, stderrProgressBar } from '../attribution-support.js';
import { modelLoadFlags } from '../../models/load-settings.js';

interface ExportFlags {
  version: string;
  name?: string;
  input: string;
  topK: string;
  preprocess?: string;
  labels?: string;
  signature?: string;
  checkpoint?: string;
  inputTensor?: string;
  outputTensor?: string;
  force?: boolean;
  json?: boolean;
}

/**
 * `lens export`: any model serving-lens loads, written as a SavedModel version folder that
 * TensorFlow Serving (and `lens serve`) serves: JPEG-bytes and float-pixels signatures, top-k
 * classes and probabilities, preprocessing in-graph.
 */
export function register(program: Command): void {
  const command = program
    .command('export')
    .description('export a model as a TF Serving SavedModel: OUT_BASE_PATH/VERSION/saved_model.pb + variables/')
    .argument('<model>', 'SavedModel folder, .h5, .keras, .tflite, model.json (or its folder), TF1 checkpoint dir or model.ckpt-N prefix, frozen .pb, "default", or a downloaded zoo id (resnet50)')
    .argument('<out_base_path>', 'model base path; the version folder is created inside it')
    .requiredOption('--version <n>', 'version folder number (TF Serving serves the highest)')
    .option('--name <name>', 'model name recorded in lens.json (default: the model\'s)')
    .option('--input <kind>', 'signatures: jpeg (image_bytes), float (images) or both', 'both')
    .option('--top-k <k>', 'classes returned in "classes"', '5')
    .option('--preprocess <name>', 'raw, unit, symmetric, caffe, torch, bgr (default: what the model declares)')
    .option('--labels <file>', 'class labels, one per line (or a JSON array), recorded in lens.json')
    .option('--signature <name>', 'signature of a SavedModel MODEL to re-export (default serving_default)');
  addAttributionFlags(command, GRAPH_MODEL_FLAGS);
  command
    .option('--force', 'replace an existing version folder')
    .option('--json', 'print the export summary as JSON')
    .action(async (modelSpec: string, outBase: string, flags: ExportFlags) => {
      const { LensError } = await import('../../core/errors.js');
      const bad = (m: string) => new LensError('INVALID_ARGUMENT', m);
      const version = Number(flags.version);
      if (!Number.isSafeInteger(version) || version < 0) throw bad(`--version must be a whole number >= 0, got "${flags.version}"`);
      const topK = integerFlag(flags.topK, '--top-k', 1, 'a whole number');
      if (!['jpeg', 'float', 'both'].includes(flags.input)) throw bad(`--input must be jpeg, float or both, got "${flags.input}"`);
      const { existsSync } = await import('node:fs');
      const { join } = await import('node:path');
      const target = join(outBase, String(version));
      // Leftovers of a killed export first: a version moved aside comes back before the check below.
      const { recoverVersionLeftovers } = await import('../../export/write.js');
      for (const r of await recoverVersionLeftovers(outBase)) process.stderr.write(`lens export: ${r.action} ${r.path}${r.action === 'restored' ? ` as version ${r.version}` : ''} (left by a killed export)\n`);
      if (existsSync(target) && !flags.force) throw bad(`${target} already exists; choose another --version or pass --force to replace it`);
      const { exportSavedModel, loadExportableModel } = await import('../../export/export.js');
      const model = await loadExportableModel(modelSpec, {
        ...modelLoadFlags(flags),
        ...(flags.signature ? { signature: flags.signature } : {}),
      });
      const bar = await stderrProgressBar({ format: 'export {phase} [{bar}] {percentage}%', noTTYOutput: false, notTTYSchedule: 2000 });
      bar.update(0, { phase: 'build' }, 100);
      let result;
      try {
        result = await exportSavedModel(model, outBase, {
          version,
          input: flags.input as 'jpeg' | 'float' | 'both',
          topK,
          ...(flags.name ? { name: flags.name } : {}),
          ...(flags.force ? { force: true } : {}),
          onProgress: (p) => bar.update(Math.round(100 * p.fraction), { phase: p.phase }),
        });
      } finally {
        bar.stop();
        model.dispose();
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
      const lines = [
        `exported ${modelSpec} -> ${result.dir}`,
        `  signatures:  ${result.signatures.join(', ')}`,
        `  input:       [${result.inputShape.join(',')}], ${result.classes} classes, top-${result.topK}`,
        `  graph:       ${result.nodes} nodes, ${Object.keys(result.opCounts).length} op types, saved_model.pb ${mib(result.savedModelBytes)}`,
        `  variables:   ${result.variables} (${mib(result.variablesBytes)})`,
        `serve it with: lens serve --model_name ${result.dir.split(/[\\/]/).slice(-2, -1)[0] ?? 'model'} --model_base_path ${outBase}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
