import type { Command } from 'commander';
import { GRAPH_MODEL_FLAGS, addAttributionFlags, attributionNumbers, wantsProgressBar, type AttributionFlagValues } from '../attribution-support.js';
import { modelLoadFlags } from '../../models/load-settings.js';

interface BatchFlags extends AttributionFlagValues {
  list: string;
  model: string;
  out: string;
  shard?: string;
  shards: string;
  npy: boolean;
  retryFailed?: boolean;
  maxAttempts: string;
  allowFailures: string;
}

/** `lens batch`: one shard of a batch attribution run (a pod of the Indexed Job), resumable. */
export function register(program: Command): void {
  const command = program
    .command('batch')
    .description('explain shard N of an image list (one pod of an Indexed Job): PNG + .npy per image, a JSON-lines journal per shard; reruns resume')
    .requiredOption('--list <file>', 'image list: one path (relative to the list) or http(s) URL per line; # starts a comment')
    .requiredOption('--model <model>', 'SavedModel folder (a TF Serving base path uses its newest version), .h5, .keras, .tflite, model.json, TF1 checkpoint dir, frozen .pb, resnet50 or default')
    .requiredOption('--out <dir>', 'output folder shared by all shards')
    .option('--shard <n>', 'this shard, 0-based (default: $JOB_COMPLETION_INDEX, or 0 with --shards 1)')
    .option('--shards <n>', 'number of shards (= the Job\'s completions)', '1');
  addAttributionFlags(command, ['method', 'baseline', 'steps', 'rule', 'singleTarget', 'viz', 'sign', 'preprocess', 'resize', 'labels', 'batchSize', 'seed']);
  command
    .option('--no-npy', 'do not store the raw attributions')
    .option('--max-attempts <n>', 'attempts per image: a rerun explains a failed image again until it failed this often', '3')
    .option('--retry-failed', 'explain again every failed image, however often it failed')
    .option('--allow-failures <n>', 'exit 0 when at most this many images of the shard failed', '0');
  addAttributionFlags(command, ['backend', 'engine', ...GRAPH_MODEL_FLAGS, 'progress']);
  command
    .option('--json', 'print the shard summary as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  lens batch --shard 0 --shards 3 --list images.txt --model default --out out/   # then shards 1 and 2, then:\n' +
        '  lens merge --out out/ --list images.txt\n' +
        'In a Kubernetes Indexed Job: lens batch --shard $(JOB_COMPLETION_INDEX) --shards N ... (see k8s/batch).\n' +
        'Exits 1 when more images failed than --allow-failures (so a Kubernetes Job does not report success), or\n' +
        'when SIGTERM stopped it after the current image; a rerun skips finished images and retries failed ones.',
    )
    .action(async (flags: BatchFlags) => {
      const { LensError } = await import('../../core/errors.js');
      const { readImageList, runShard, checkShard } = await import('../../batch/index.js');
      const { createAttributionExplainer } = await import('../../batch/explain.js');
      const int = (v: string, flag: string, min: number): number => {
        const n = Number(v);
        if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < min) throw new LensError('INVALID_ARGUMENT', `${flag} must be an integer >= ${min}, got "${v}"`);
        return n;
      };
      const numbers = attributionNumbers(flags);
      const shards = int(flags.shards, '--shards', 1);
      const shardText = flags.shard ?? process.env.JOB_COMPLETION_INDEX ?? (shards === 1 ? '0' : undefined);
      if (shardText === undefined) throw new LensError('INVALID_ARGUMENT', `--shard is required with --shards ${shards} (outside an Indexed Job, where JOB_COMPLETION_INDEX gives it)`);
      const shard = int(shardText, '--shard', 0);
      const maxAttempts = int(flags.maxAttempts, '--max-attempts', 1);
      const allowFailures = int(flags.allowFailures, '--allow-failures', 0);
      checkShard(shard, shards);
      const list = await readImageList(flags.list);
      if (list.duplicates.length > 0) process.stderr.write(`lens batch: ${list.duplicates.length} duplicate entries in ${flags.list} are explained once\n`);

      const explainer = await createAttributionExplainer({
        model: flags.model,
        method: flags.method,
        baseline: flags.baseline,
        rule: flags.rule,
        target: flags.target,
        viz: flags.viz,
        sign: flags.sign,
        resize: flags.resize,
        npy: flags.npy,
        ...numbers,
        ...modelLoadFlags(flags),
      });
      const controller = new AbortController();
      const stop = (signal: NodeJS.Signals) => {
        process.stderr.write(`lens batch: ${signal}: stopping after the current image\n`);
        controller.abort();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const useBar = wantsProgressBar(flags);
      const { SingleBar, Presets } = await import('cli-progress');
      const bar = useBar ? new SingleBar({ format: 'shard {shard} [{bar}] {value}/{total} images  {failed} failed  {eta_formatted} left', stream: process.stderr }, Presets.shades_classic) : undefined;
      process.stderr.write(`lens batch: shard ${shard} of ${shards}, ${explainer.describe}\n`);
      let summary;
      try {
        summary = await runShard({
          items: list.items,
          shard,
          shards,
          out: flags.out,
          explainOne: explainer.explainOne,
          retryFailed: flags.retryFailed ?? false,
          maxAttempts,
          signal: controller.signal,
          onProgress: (p) => {
            if (bar) {
              if (!p.record) bar.start(p.total, p.done, { shard, failed: p.failed });
              else bar.update(p.done, { failed: p.failed });
            } else if (p.record) {
              process.stderr.write(`[${p.done}/${p.total}] ${p.record.image}: ${p.record.status === 'ok' ? 'ok' : `failed: ${p.record.error}`}\n`);
            } else if (p.skipped > 0) {
              process.stderr.write(`lens batch: ${p.skipped} of ${p.total} images already done, resuming\n`);
            }
          },
        });
      } finally {
        bar?.stop();
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        explainer.dispose();
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else {
        process.stdout.write(
          `shard ${shard} of ${shards}: ${summary.images} images, ${summary.processed} explained now, ${summary.skipped} done before; ${summary.ok} ok, ${summary.failed} failed\n` +
            `journal: ${summary.journal}\n`,
        );
      }
      if (summary.interrupted) {
        throw new LensError('INTERRUPTED', `shard ${shard} of ${shards} stopped with ${summary.images - summary.ok - summary.failed} images left; run it again to resume`);
      }
      if (summary.failed > allowFailures) {
        throw new LensError(
          'ATTRIBUTION_FAILED',
          `${summary.failed} of ${summary.images} images of shard ${shard} failed (--allow-failures ${allowFailures}); ` +
            `a rerun retries those with fewer than ${maxAttempts} attempts, lens merge lists the reasons`,
        );
      }
    });
}
