import type { Command } from 'commander';
import { stderrProgressBar } from '../attribution-support.js';

interface ConvertCliOptions {
  signature?: string;
  tags: string;
  cut?: string[];
  json?: boolean;
  progress?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * `lens convert SAVED_MODEL_DIR OUT_DIR`: writes one signature as a TensorFlow.js graph model
 * (model.json + weight shards) that `tf.loadGraphModel('file://OUT_DIR/model.json')` loads.
 */
export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a SavedModel signature to a TensorFlow.js graph model (model.json + weight shards)')
    .argument('<saved_model_dir>', 'SavedModel export directory')
    .argument('<out_dir>', 'folder to write model.json and group1-shard*.bin into')
    .option('--signature <name>', 'signature to convert (default serving_default)')
    .option('--tags <tags>', 'MetaGraph tag set, comma-separated', 'serve')
    .option('--cut <tensor>', 'make this inner tensor an input of the converted model; repeatable', collect)
    .option('--json', 'print a JSON summary')
    .option('--no-progress', 'no progress bar')
    .action(async (dir: string, outDir: string, opts: ConvertCliOptions) => {
      const { convertSavedModel } = await import('../../convert/savedmodel.js');
      const showBar = opts.progress !== false && process.stderr.isTTY;
      const bar = showBar ? await stderrProgressBar({ format: 'convert [{bar}] {percentage}% {phase}' }) : undefined;
      bar?.update(0, { phase: 'reading' }, 100);
      try {
        const result = await convertSavedModel(dir, outDir, {
          tags: opts.tags.split(','),
          ...(opts.signature !== undefined ? { signature: opts.signature } : {}),
          ...(opts.cut ? { cutAt: opts.cut } : {}),
          onProgress: (p) => bar?.update(Math.round(p.fraction * 100), { phase: p.phase }),
        });
        bar?.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return;
        }
        process.stdout.write(
          [
            `wrote ${result.modelJson} (${result.nodes} nodes) and ${result.shards.length} weight shard(s), ${result.weightBytes} bytes`,
            `inputs:  ${result.inputs.map((t) => `${t.alias} -> ${t.name} ${t.dataType} [${t.shape?.join(',') ?? '?'}]`).join('; ')}`,
            `outputs: ${result.outputs.map((t) => `${t.alias} -> ${t.name} ${t.dataType} [${t.shape?.join(',') ?? '?'}]`).join('; ')}`,
          ].join('\n') + '\n',
        );
      } finally {
        bar?.stop();
      }
    });
}
