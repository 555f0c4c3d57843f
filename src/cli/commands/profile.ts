import type { Command } from 'commander';
import { LensError } from '../../core/errors.js';
import { integerFlag, positiveInt, stderrProgressBar } from '../attribution-support.js';
import { addConnectionFlags } from '../server-flags.js';
import { connectionOptions, type ConnectionSettings } from '../../serving/connection.js';

interface ProfileFlags extends ConnectionSettings {
  server: string;
  model: string;
  version?: string;
  label?: string;
  signature?: string;
  input?: string;
  batchSizes: string;
  concurrency: string;
  trials: string;
  warmup: string;
  image?: string;
  out: string;
  timeout: string;
  json?: boolean;
}

function intList(value: string, flag: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new LensError('INVALID_ARGUMENT', `${flag} must be a comma-separated list of positive integers, got "${value}"`);
  return list;
}

/** `lens profile`: latency and throughput vs batch size and concurrency of a served model. */
export function register(program: Command): void {
  const command = program
    .command('profile')
    .description('measure latency percentiles and throughput of a served model against batch size and concurrency')
    .requiredOption('--server <host:port>', 'TF Serving address (gRPC port, or REST port with --transport rest)');
  addConnectionFlags(command)
    .requiredOption('--model <name>', 'served model name')
    .option('--version <n>', 'model version')
    .option('--label <label>', 'model version label')
    .option('--signature <name>', 'signature (default serving_default)')
    .option('--input <alias>', 'input tensor alias (default: the image input)')
    .option('--batch-sizes <list>', 'batch sizes', '1,2,4,8,16,32,64,128,256')
    .option('--concurrency <list>', 'requests in flight at once', '1')
    .option('--trials <n>', 'measured requests per (batch size, concurrency)', '20')
    .option('--warmup <n>', 'unmeasured requests before each batch size', '3')
    .option('--image <path|url>', 'image to send (default: deterministic noise)')
    .option('--out <dir>', 'folder for profile.json, profile.csv, profile.png and profile.svg', '.')
    .option('--timeout <ms>', 'deadline per request', '60000')
    .option('--json', 'print the result as JSON')
    .action(async (flags: ProfileFlags) => {
      const batchSizes = intList(flags.batchSizes, '--batch-sizes');
      const concurrency = intList(flags.concurrency, '--concurrency');
      const trials = positiveInt(flags.trials, '--trials');
      const warmup = integerFlag(flags.warmup, '--warmup', 0);
      if (flags.version !== undefined && flags.label !== undefined) throw new LensError('INVALID_ARGUMENT', 'give --version or --label, not both');
      const { writeFileAtomic } = await import('../../fs/atomic.js');
      const connection = connectionOptions(flags);
      const { join } = await import('node:path');
      const { profile, profileCsv, profileTable } = await import('../../serving/profiler.js');
      const { profileChart } = await import('../../render/profile-chart.js');
      const bar = await stderrProgressBar({ format: 'profile [{bar}] {value}/{total} requests | batch {batch} x concurrency {conc} ({phase})' });
      const result = await profile(
        {
          target: flags.server,
          ...connection,
          model: flags.model,
          ...(flags.version !== undefined ? { version: Number(flags.version) } : {}),
          ...(flags.label !== undefined ? { label: flags.label } : {}),
          ...(flags.signature ? { signature: flags.signature } : {}),
          ...(flags.input ? { input: flags.input } : {}),
          ...(flags.image ? { image: flags.image } : {}),
          batchSizes,
          concurrency,
          trials,
          warmup,
          timeoutMs: Number(flags.timeout),
        },
        (p) => bar.update(p.done, { batch: p.batchSize, conc: p.concurrency, phase: p.phase }, p.total),
      ).finally(() => bar.stop());
      const write = async (name: string, data: string | Buffer) => {
        const path = join(flags.out, name);
        await writeFileAtomic(path, data);
        return path;
      };
      const files = [
        await write('profile.json', `${JSON.stringify(result, null, 2)}\n`),
        await write('profile.csv', profileCsv(result)),
        await write('profile.png', await profileChart(result)),
        await write('profile.svg', await profileChart(result, { format: 'svg' })),
      ];
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ...result, files }, null, 2)}\n`);
        return;
      }
      const lines = [
        `${result.model} over ${result.transport} at ${result.target}${result.hostHeader ? ` (host ${result.hostHeader})` : ''} (input ${result.inputAlias}: ${result.inputKind} ${result.inputShape.join('x')})${result.predictedClass !== undefined ? `, image classified as "${result.predictedClass}"` : ''}`,
        ...profileTable(result),
        ...result.errorSamples.map((e) => `error: ${e}`),
        `wrote ${files.join(', ')}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
