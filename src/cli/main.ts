/**
 * The `lens` command line. Each command lives in its own file under `commands/` and exports
 * `register(program)`; this file finds them, so adding a command touches no shared list.
 * Commands import heavy modules inside their actions, which keeps `lens --help` fast.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { LensError, errorMessage } from '../core/errors.js';
import { exitOnSignalRemovingTemps } from '../fs/atomic.js';

export interface CommandModule {
  register(program: Command): void;
}

const here = dirname(fileURLToPath(import.meta.url));

async function loadCommands(program: Command): Promise<void> {
  const dir = join(here, 'commands');
  const files = readdirSync(dir)
    .filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts') && !f.includes('.test.'))
    .sort();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Partial<CommandModule>;
    if (typeof mod.register === 'function') mod.register(program);
  }
}

/** Commands whose flags keep another program's spelling (tensorflow_model_server's `--rest_api_port`). */
const UNDERSCORE_COMMANDS = new Set(['serve']);

/**
 * lens's own flags are kebab-case (`--top-k`, `--batch-sizes`); the underscore spellings of earlier
 * releases and of TF Serving's tools (`--top_k`) are accepted as aliases, except on commands that
 * mirror another program's flags (`lens serve`). Arguments after `--` are left alone.
 *
 * @example
 * kebabFlags(['predict', '--top_k=3', 'cat.jpg']); // ['predict', '--top-k=3', 'cat.jpg']
 */
export function kebabFlags(args: readonly string[]): string[] {
  const command = args.find((a) => !a.startsWith('-'));
  if (command === undefined || UNDERSCORE_COMMANDS.has(command)) return [...args];
  const end = args.indexOf('--');
  return args.map((a, i) => ((end < 0 || i < end) && /^--[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+(?:=|$)/.test(a) ? a.replace(/^--[^=]+/, (name) => name.replace(/_/g, '-')) : a));
}

/** Makes every command report a usage error in one line that points at its own help. */
function oneLineUsageErrors(command: Command, path: string): void {
  command.configureOutput({
    outputError: (text, write) => write(`lens: ${text.trim().replace(/^error: /, '').replace(/\n+/g, ' ')}; see ${path} --help\n`),
  });
  for (const sub of command.commands) oneLineUsageErrors(sub, `${path} ${sub.name()}`);
}

/** Runs the CLI with the given arguments (argv without node and script). Returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  // grpc-js logs some failures itself (e.g. "E No address added out of total 1 resolved" for a busy
  // port) before the error that the CLI prints anyway; --debug or a GRPC_VERBOSITY of the user's keep them.
  if (!args.includes('--debug')) process.env.GRPC_VERBOSITY ??= 'NONE';
  const program = new Command('lens')
    .description('serving-lens: convert, serve, query, profile and explain image models for TensorFlow Serving')
    .option('--debug', 'print stack traces on errors')
    .exitOverride();
  await loadCommands(program);
  oneLineUsageErrors(program, 'lens');
  try {
    await program.parseAsync(kebabFlags(args), { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    const debug = args.includes('--debug');
    if (e instanceof LensError) process.stderr.write(`lens: ${e.message}${debug && e.stack ? `\n${e.stack}` : ''}\n`);
    else process.stderr.write(`lens: ${debug && e instanceof Error && e.stack ? e.stack : errorMessage(e)}\n`);
    return 1;
  }
}

const runAsProgram = (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) || (process.argv[1] && /bin[\\/]lens(\.js)?$/.test(process.argv[1]));
if (runAsProgram) {
  // Ctrl-C or a pod's SIGTERM in the middle of a write leaves no temporary file behind.
  exitOnSignalRemovingTemps();
  process.exitCode = await main(process.argv.slice(2));
}
