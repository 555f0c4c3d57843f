import type { Command } from 'commander';
import * as support from '../attribution-support.js';
import { addConnectionFlags } from '../server-flags.js';
import { hostPort, type ConnectionSettings } from '../../serving/connection.js';
import { modelLoadFlags } from '../../models/load-settings.js';

interface StudioFlags extends Pick<support.AttributionFlagValues, 'preprocess' | 'resize' | 'labels' | 'backend' | 'engine'>, ConnectionSettings {
  model?: string;
  server?: string;
  servedModel?: string;
  host: string;
  port: string;
  maxUploadMb: string;
}

/** `lens studio`: the browser workbench (explain, path explorer, baseline comparison, served vs local, export). */
export function register(program: Command): void {
  const command = program
    .command('studio')
    .description('open a browser workbench on a model: explain images interactively, explore the IG path, compare baselines, check a served model, export pictures and command lines')
    .argument('[images...]', 'image files, folders of images, or http(s) URLs to open at start')
    .option('--model <model>', 'SavedModel dir, .h5, .tflite, model.json, resnet50, or default (the bundled shapes model); default: $LENS_MODEL, else default, unless only --server is given')
    .option('--server <host:port>', 'TF Serving address: predictions and verification of the served model next to the local one')
    .option('--served-model <name>', 'name of the served model (default: the local model name)')
    .option('--host <host>', 'address to listen on (anything but loopback requires the random token printed in the URL)', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', '8750')
    .option('--max-upload-mb <n>', 'largest image upload in MiB', '20');
  addConnectionFlags(command);
  support
    .addAttributionFlags(command, ['preprocess', 'resize', 'labels', 'backend', 'engine'])
    .action(studio);
}

async function studio(images: string[], flags: StudioFlags): Promise<void> {
  const { LensError } = await import('../../core/errors.js');
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LensError('INVALID_ARGUMENT', `--port must be 0..65535, got "${flags.port}"`);
  const maxUploadBytes = Math.round(support.finiteNumber(flags.maxUploadMb, '--max-upload-mb') * 1024 * 1024);
  if (maxUploadBytes < 1) throw new LensError('INVALID_ARGUMENT', '--max-upload-mb must be positive');
  if (flags.server) hostPort(flags.server);
  const { startStudio } = await import('../../studio/server.js');
  const model = flags.model ?? (flags.server ? undefined : process.env.LENS_MODEL || 'default');
  const running = await startStudio({
    images,
    host: flags.host,
    port,
    maxUploadBytes,
    ...(model ? { model } : {}),
    ...(flags.server ? { server: flags.server, connection: { transport: flags.transport, rest: flags.rest, hostHeader: flags.hostHeader, tls: flags.tls, header: flags.header } } : {}),
    ...(flags.servedModel ? { servedModel: flags.servedModel } : {}),
    ...modelLoadFlags(flags),
    ...(flags.resize ? { resize: flags.resize } : {}),
  });
  process.stdout.write(`lens studio: ${running.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      running.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
