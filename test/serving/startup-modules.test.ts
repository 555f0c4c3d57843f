/**
 * `lens serve` loads only what its models need (issue 14): a server of half_plus_two, a graph that
 * decodes no images and runs on TensorFlow.js, must not load the image codecs (sharp) nor
 * onnxruntime. The modules are recorded by a preload hook in the child process (see
 * test/helpers/loaded-modules.mjs), not asked of the server.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/serving/index.js';
import { REPO_ROOT, SHARED } from '../helpers/cli.js';

const dir = await mkdtemp(join(tmpdir(), 'lens-modules-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Packages a half_plus_two server must not load. */
const NOT_NEEDED = ['sharp', 'onnxruntime-node', '@tensorflow/tfjs-layers'];

describe('lens serve start-up', () => {
  it('serves half_plus_two without loading sharp or onnxruntime', async () => {
    const log = join(dir, 'modules.txt');
    const child = spawn(
      process.execPath,
      ['--import', resolve(REPO_ROOT, 'test/helpers/loaded-modules.mjs'), '--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'serve', '--port', '0', '--rest_api_port', '0',
        '--model_name', 'half', '--model_base_path', resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu'), '--json'],
      { cwd: REPO_ROOT, env: { ...process.env, LENS_LOADED_MODULES: log }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', done));
    const grpcPort = await new Promise<number>((done, fail) => {
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('\n')) done((JSON.parse(stdout.split('\n')[0]!) as { grpcPort: number }).grpcPort);
      });
      void exited.then((code) => fail(new Error(`lens serve exited with ${code}: ${stderr}`)));
    });
    const client = createClient({ target: `127.0.0.1:${grpcPort}` });
    const reply = await client.predict({ model: 'half', inputs: { x: { dtype: 'float32', shape: [3], values: new Float32Array([1, 2, 5]) } } });
    client.close();
    expect(Array.from(reply.outputs.y!.values as Float32Array)).toEqual([2.5, 3, 4.5]);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    const packages = new Set(
      (await readFile(log, 'utf8')).split('\n').flatMap((url) => {
        const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
        return m ? [m[1]!] : [];
      }),
    );
    // The record is complete enough to fail: what the server does use shows up in it.
    expect(packages).toContain('@grpc/grpc-js');
    expect(packages).toContain('@tensorflow/tfjs-backend-wasm');
    expect(NOT_NEEDED.filter((p) => packages.has(p))).toEqual([]);
  }, 60_000);
});
