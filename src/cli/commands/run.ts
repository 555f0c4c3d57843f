import type { Command } from 'commander';

interface RunOptions {
  signature?: string;
  tags: string;
  input?: string[];
  cut?: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * `lens run DIR --input x=[[1],[2]]`: runs one signature of a SavedModel with TensorFlow.js.
 * With `--json` the output is exactly TF Serving's columnar REST reply, `{"outputs": ...}`.
 */
export function register(program: Command): void {
  program
    .command('run')
    .description('run a SavedModel signature on inputs given as JSON (like saved_model_cli run)')
    .argument('<dir>', 'SavedModel export directory')
    .option('--signature <name>', 'signature to run (default serving_default)')
    .option('--tags <tags>', 'MetaGraph tag set, comma-separated', 'serve')
    .option('--input <name=json>', 'an input as NAME=JSON (nested lists, typed by the signature) or NAME=@file.json; repeatable', collect)
    .option('--cut <tensor>', 'feed this inner tensor (given as an --input named after it) instead of computing it; repeatable', collect)
    .option('--json', "print TF Serving's columnar REST reply: {\"outputs\": ...}")
    .action(async (dir: string, opts: RunOptions) => {
      const { readFile } = await import('node:fs/promises');
      const { LensError } = await import('../../core/errors.js');
      const { loadSavedModel } = await import('../../engines/tfjs/savedmodel.js');
      const { hostFromNested, hostToNested } = await import('../../tensor/index.js');
      const { predictReplyJson } = await import('../../serving/rest-json.js');
      const model = await loadSavedModel(dir, {
        tags: opts.tags.split(','),
        ...(opts.signature !== undefined ? { signature: opts.signature } : {}),
        ...(opts.cut ? { cutAt: opts.cut } : {}),
      });
      try {
        const graph = await model.graph();
        const inputs: Record<string, import('../../tensor/index.js').HostTensor> = {};
        for (const arg of opts.input ?? []) {
          const eq = arg.indexOf('=');
          if (eq <= 0) throw new LensError('INVALID_ARGUMENT', `--input ${arg}: expected NAME=JSON`);
          const name = arg.slice(0, eq);
          const spec = graph.inputs.find((t) => t.alias === name);
          if (!spec) {
            throw new LensError('INVALID_ARGUMENT', `--input ${name}: signature "${graph.converted.signature.name}" takes ${graph.inputs.map((t) => t.alias).join(', ') || 'no inputs'}`);
          }
          let text = arg.slice(eq + 1);
          if (text.startsWith('@')) text = await readFile(text.slice(1), 'utf8');
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (e) {
            throw new LensError('INVALID_ARGUMENT', `--input ${name}: not valid JSON (${(e as Error).message})`);
          }
          inputs[name] = hostFromNested(value, spec.dtype, `--input ${name}`);
        }
        const outputs = await model.predict(inputs);
        if (opts.json) {
          process.stdout.write(`${predictReplyJson(outputs, 'columnar')}\n`);
          return;
        }
        for (const [alias, t] of Object.entries(outputs)) {
          process.stdout.write(`${alias}: ${t.dtype} [${t.shape.join(',')}]\n${JSON.stringify(hostToNested(t))}\n`);
        }
      } finally {
        model.dispose();
      }
    });
}
