/**
 * The `lens` command line. Each command lives in its own file under `commands/` and exports
 * `register(program)`; this file finds them, so adding a command touches no shared list.
 * Commands import heavy modules inside their actions, which keeps `lens --help` fast.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { LensError, errorMessage } from '../errors.js';
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

/** Runs the CLI with the given arguments (argv without node and script). Returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const program = new Command('lens')
    .description('serving-lens: convert, serve, query, profile and explain image models for TensorFlow Serving')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError()
    .exitOverride();
  await loadCommands(program);
  try {
    await program.parseAsync(args, { from: 'user' });
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
