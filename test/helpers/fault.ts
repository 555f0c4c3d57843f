/**
 * Runs the writer fixture (test/fs/fixtures/write-worker.ts) in a child process, optionally with
 * LENS_FAULT set so that it kills itself at a named point of the write.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT } from './cli.js';

const WORKER = resolve(REPO_ROOT, 'test/fs/fixtures/write-worker.ts');

export interface WriterExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runWriter(args: readonly string[], fault?: string): Promise<WriterExit> {
  return new Promise((res, rej) => {
    const env = { ...process.env };
    if (fault) env.LENS_FAULT = fault;
    else delete env.LENS_FAULT;
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { cwd: REPO_ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}
