import type { Command } from 'commander';
import { stderrProgressBar } from '../attribution-support.js';

interface ModelsOptions {
  json?: boolean;
  cacheDir?: string;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** `lens models`: the zoo and its cache state; `lens models download ID` fetches a zoo model's files. */
export function register(program: Command): void {
  const models = program
    .command('models')
    .description('list zoo models and whether their files are in the cache')
    .option('--cache-dir <dir>', 'cache directory (default: $LENS_CACHE_DIR, $XDG_CACHE_HOME/serving-lens or ~/.cache/serving-lens)')
    .option('--json', 'print JSON')
    .action(async (opts: ModelsOptions) => {
      const { zooStatus, cacheDir } = await import('../../models/zoo/index.js');
      const dir = opts.cacheDir ?? cacheDir();
      const status = zooStatus({ cacheDir: dir });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ cacheDir: dir, models: status }, null, 2)}\n`);
        return;
      }
      const lines = [`cache: ${dir}`, ''];
      for (const m of status) {
        lines.push(`${m.id.padEnd(12)} ${m.cached ? 'cached    ' : 'not cached'}  ${m.title}`);
        lines.push(`${''.padEnd(12)} ${m.classes} classes, input ${m.inputShape.join('x')}, preprocessing ${m.preprocessing}`);
        for (const f of m.fileStatus) {
          lines.push(`${''.padEnd(12)} ${f.cached ? `${f.path} (${mib(f.record!.bytes)})` : `${f.fileName} <- ${f.url}`}`);
        }
        if (!m.cached) lines.push(`${''.padEnd(12)} download: lens models download ${m.id}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  models
    .command('download <id>')
    .description('download a zoo model into the cache (checksum-verified, atomic)')
    .option('--cache-dir <dir>', 'cache directory')
    .option('--mirror <url>', 'base URL of a mirror with the same file names (or $LENS_ZOO_MIRROR); checksums are still checked')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: ModelsOptions & { mirror?: string }, cmd: Command) => {
      const { downloadZooModel } = await import('../../models/zoo/index.js');
      const inherited = cmd.parent?.opts<ModelsOptions>() ?? {};
      const dir = opts.cacheDir ?? inherited.cacheDir;
      const bar = await stderrProgressBar({ format: '{file} [{bar}] {percentage}% {value}/{total} MiB', noTTYOutput: false, notTTYSchedule: 2000 });
      try {
        const files = await downloadZooModel(id, {
          ...(dir ? { cacheDir: dir } : {}),
          ...(opts.mirror ? { mirror: opts.mirror } : {}),
          onProgress: ({ fileName, received, total }) => bar.update(Math.round(received / 2 ** 20), { file: fileName }, total ? Math.round(total / 2 ** 20) : undefined),
        });
        bar.stop();
        if (opts.json || inherited.json) {
          process.stdout.write(`${JSON.stringify({ id, files }, null, 2)}\n`);
          return;
        }
        for (const f of files) process.stdout.write(`${f.path}  ${mib(f.record!.bytes)}  md5 ${f.record!.md5}  sha256 ${f.record!.sha256}\n`);
      } finally {
        bar.stop();
      }
    });
}
