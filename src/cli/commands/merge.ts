import type { Command } from 'commander';
import { positiveInt } from '../attribution-support.js';

interface MergeFlags {
  out: string;
  list?: string;
  wait?: boolean;
  shards?: string;
  timeout: string;
  allowMissing?: boolean;
  json?: boolean;
}

/** `lens merge`: gathers the shard journals of `lens batch` runs into report.json, report.md and report.csv. */
export function register(program: Command): void {
  program
    .command('merge')
    .description('merge the per-shard results of `lens batch` into one report (report.json, report.md, report.csv in --out)')
    .requiredOption('--out <dir>', 'output folder the shards wrote to')
    .option('--list <file>', 'the image list the shards ran over: report in its order and name images without a result')
    .option('--wait', 'wait until every shard has finished (its done marker exists) before merging')
    .option('--shards <n>', 'shard count to wait for (default: read from the journal names)')
    .option('--timeout <duration>', 'with --wait: give up after this long (e.g. 90s, 30m, 6h)', '6h')
    .option('--allow-missing', 'exit 0 even when listed images have no result')
    .option('--json', 'print the whole report as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  lens merge --out /data/out --list /data/images.txt --wait --timeout 12h\n' +
        'Exits 1 when listed images have no result yet (rerun the missing shards, then merge again).',
    )
    .action(async (flags: MergeFlags) => {
      const { LensError } = await import('../../core/errors.js');
      const { mergeShards, readImageList } = await import('../../batch/index.js');
      const { parseDuration } = await import('../../batch/duration.js');
      const items = flags.list ? (await readImageList(flags.list)).items : undefined;
      const shards = flags.shards === undefined ? undefined : positiveInt(flags.shards, '--shards');
      const report = await mergeShards({
        out: flags.out,
        ...(items ? { items } : {}),
        ...(flags.wait
          ? {
              wait: {
                timeoutMs: parseDuration(flags.timeout, '--timeout'),
                ...(shards !== undefined ? { shards } : {}),
                onWaiting: (done, total) => process.stderr.write(`lens merge: ${done} of ${total ?? '?'} shards done, waiting\n`),
              },
            }
          : {}),
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(
          `${report.images} images: ${report.ok} ok, ${report.failed} failed, ${report.missing} missing` +
            ` (${report.shards.length} shard journals, ${report.duplicateRecords} duplicate records collapsed)\n` +
            `wrote ${flags.out}/report.json, report.md, report.csv\n`,
        );
        for (const e of report.entries.filter((x) => x.status === 'error').slice(0, 20)) process.stderr.write(`failed: ${e.image}: ${e.error}\n`);
      }
      if (report.missing > 0 && !flags.allowMissing) {
        throw new LensError('INVALID_ARGUMENT', `${report.missing} of ${report.images} listed images have no result in ${flags.out}: rerun the shards that did not finish, then merge again (or pass --allow-missing)`);
      }
    });
}
