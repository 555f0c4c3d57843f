/**
 * Running `lens studio` (and a `lens serve` beside it) as a user does, from the TypeScript sources,
 * for the studio's API and browser tests. The front end is bundled first (esbuild, well under a second).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT, runLens } from '../helpers/cli.js';

/** Bundles the front end into dist/studio-web (what `npm run build` does after tsc). */
export function buildStudioWeb(): void {
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'studio/build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`studio/build.mjs failed: ${r.stderr}`);
}

export interface RunningProcess {
  child: ChildProcess;
  /** What the process wrote to stderr so far (the studio's log). */
  log(): string;
  stop(): Promise<number | null>;
}

function watch(child: ChildProcess): { out: () => string; err: () => string; firstLine: Promise<string> } {
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const firstLine = new Promise<string>((resolvePromise, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolvePromise(out.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`process exited with ${code} before printing: ${err}`)));
  });
  return { out: () => out, err: () => err, firstLine };
}

function stopper(child: ChildProcess): () => Promise<number | null> {
  return () =>
    new Promise((resolvePromise) => {
      if (child.exitCode !== null) return resolvePromise(child.exitCode);
      child.removeAllListeners('exit');
      child.on('exit', (code) => resolvePromise(code));
      child.kill('SIGTERM');
    });
}

/** Starts `lens studio ARGS --port 0` and waits for the URL it prints. */
export async function startStudioCli(args: readonly string[]): Promise<RunningProcess & { url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'studio', '--port', '0', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const w = watch(child);
  const line = await w.firstLine;
  const url = /^lens studio: (\S+)$/.exec(line)?.[1];
  if (!url) throw new Error(`unexpected first line from lens studio: ${line}`);
  return { child, url, log: w.err, stop: stopper(child) };
}

/** Exports the bundled model as a servable SavedModel and serves it with `lens serve` (gRPC on a free port). */
export async function startLensServe(baseDir: string): Promise<RunningProcess & { grpc: string; name: string }> {
  const name = 'shapes-resnet';
  const exported = await runLens(['export', 'default', resolve(baseDir, name), '--version', '1', '--json']);
  if (exported.code !== 0) throw new Error(`lens export failed: ${exported.stderr}`);
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'serve', '--port', '0', '--rest_api_port', '0', '--model_name', name, '--model_base_path', resolve(baseDir, name), '--json'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w = watch(child);
  const summary = JSON.parse(await w.firstLine) as { grpcPort: number };
  return { child, grpc: `127.0.0.1:${summary.grpcPort}`, name, log: w.err, stop: stopper(child) };
}

export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Reads a server-sent event stream to its end. */
export async function readEvents(url: string): Promise<StreamEvent[]> {
  const res = await fetch(url);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? '{}';
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}
