/**
 * `lens serve`, `lens predict` and `lens profile` as a user runs them.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, startServer, type RunningServer } from '../../src/serving/index.js';
import { REPO_ROOT, runLens, SHARED } from '../helpers/cli.js';

const CIFAR_LABELS = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-cli-'));
  // A real CNN SavedModel (CIFAR-10, [N,32,32,3] float input) as version 1 of a model.
  await mkdir(join(dir, 'cifar'));
  await symlink(resolve(SHARED, 'testdata/savedmodels-cnn/dotnet-cifar-conv-tf1'), join(dir, 'cifar', '1'));
  await writeFile(join(dir, 'cifar.txt'), `${CIFAR_LABELS.join('\n')}\n`);
  server = await startServer({ port: 0, restApiPort: 0, modelName: 'cifar', modelBasePath: join(dir, 'cifar'), fileSystemPollWaitSeconds: 0 });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const IMAGES = ['cat.bmp', 'parrot.jpg'].map((f) => resolve(SHARED, 'images', f));

describe('lens predict', () => {
  it('prints top-k classes with probabilities for a batch of images, as JSON', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'cifar', '--top-k', '3', '--labels', join(dir, 'cifar.txt'), '--json', ...IMAGES]);
    // This TF1 model's output is called "Output" but holds logits.
    expect(r.stderr).toBe('lens: output Output of cifar holds values outside [0, 1]: read as logits, probabilities are their softmax\n');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { image: string; top_k: { index: number; label: string; probability: number }[] }[];
    expect(out.map((o) => o.image)).toEqual(IMAGES);
    for (const o of out) {
      expect(o.top_k).toHaveLength(3);
      for (const t of o.top_k) expect(t.label).toBe(CIFAR_LABELS[t.index]);
      expect(o.top_k[0]!.probability).toBeGreaterThanOrEqual(o.top_k[1]!.probability);
    }
  });

  it('fetches images from http(s) URLs', async () => {
    const bytes = await readFile(IMAGES[1]!);
    const http = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(bytes));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/parrot.jpg`;
    try {
      const [fromUrl, fromFile] = await Promise.all(
        [url, IMAGES[1]!].map((img) => runLens(['predict', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'cifar', '--top-k', '1', '--json', img])),
      );
      expect(fromUrl!.code).toBe(0);
      const a = JSON.parse(fromUrl!.stdout) as { image: string; top_k: { index: number; probability: number }[] }[];
      const b = JSON.parse(fromFile!.stdout) as typeof a;
      expect(a[0]!.image).toBe(url);
      expect(a[0]!.top_k[0]!.index).toBe(b[0]!.top_k[0]!.index);
      expect(a[0]!.top_k[0]!.probability).toBeCloseTo(b[0]!.top_k[0]!.probability, 6);
    } finally {
      http.close();
    }
  });

  it('prints a table over REST, with a version', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${server.restPort}`, '--transport', 'rest', '--model', 'cifar', '--version', '1', '--top-k', '2', '--labels', join(dir, 'cifar.txt'), IMAGES[0]!]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(IMAGES[0]);
    expect(lines.slice(1)).toHaveLength(2);
    expect(lines[1]).toMatch(/^ {2}1\. +\d+ {2}\w+ +\d\.\d{4}$/);
  });

  it('accepts the underscore spellings of earlier releases (--top_k, --rest)', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${server.restPort}`, '--rest', '--model', 'cifar', '--top_k=2', '--json', IMAGES[0]!]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { top_k: unknown[] }[])[0]!.top_k).toHaveLength(2);
  });

  it('leaves the label column out when the model names no class (no labels, or an export\'s classes that are the indices as text)', async () => {
    const plain = await runLens(['predict', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'cifar', '--top-k', '3', IMAGES[1]!]);
    expect(plain.code, plain.stderr).toBe(0);
    // An export of the same model without labels answers `classes` "0".."9".
    const exported = join(dir, 'cifar-export');
    const ex = await runLens(['export', resolve(SHARED, 'testdata/savedmodels-cnn/dotnet-cifar-conv-tf1'), exported, '--version', '1', '--top-k', '2', '--json']);
    expect(ex.code, ex.stderr).toBe(0);
    const exportServer = await startServer({ port: 0, restApiPort: 0, modelName: 'cifar-export', modelBasePath: exported, fileSystemPollWaitSeconds: 0 });
    try {
      const viaExport = await runLens(['predict', '--server', `127.0.0.1:${exportServer.grpcPort}`, '--model', 'cifar-export', '--top-k', '3', IMAGES[1]!]);
      expect(viaExport.code, viaExport.stderr).toBe(0);
      for (const r of [plain, viaExport]) {
        const lines = r.stdout.trim().split('\n');
        expect(lines[0]).toBe(IMAGES[1]);
        expect(lines.slice(1)).toHaveLength(3);
        for (const line of lines.slice(1)) expect(line).toMatch(/^ {2}\d\. +\d+ {2}\d\.\d{4}$/);
      }
    } finally {
      await exportServer.close();
    }
  }, 60_000);

  it('reads an output with values outside [0, 1] as logits: the probabilities of all classes sum to 1', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'cifar', '--top-k', '10', '--json', ...IMAGES]);
    expect(r.code, r.stderr).toBe(0);
    for (const row of JSON.parse(r.stdout) as { top_k: { probability: number }[] }[]) {
      for (const t of row.top_k) expect(t.probability).toBeGreaterThanOrEqual(0);
      expect(row.top_k.reduce((sum, t) => sum + t.probability, 0)).toBeCloseTo(1, 5);
    }
  });

  it('fits the label column to the longest label shown', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'cifar', '--top-k', '10', '--labels', join(dir, 'cifar.txt'), IMAGES[1]!]);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').slice(1);
    // 'automobile' is the longest CIFAR label: every probability starts two spaces after it.
    for (const row of rows) expect(row).toMatch(/^ +\d+\. +\d+ {2}[a-z ]{10} {2}\d\.\d{4}$/);
  });

  it('fails with the server\'s message for an unknown model', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'nope', IMAGES[0]!]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('lens: Servable not found for request: Latest(nope)\n');
  });
});

describe('lens profile', () => {
  it('writes JSON, CSV and a PNG chart', async () => {
    const out = join(dir, 'profile');
    const r = await runLens(['profile', '--server', `127.0.0.1:${server.grpcPort}`, '--model', 'cifar', '--batch-sizes', '1,2', '--trials', '2', '--warmup', '1', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { rows: { batchSize: number; requests: number }[]; files: string[] };
    expect(result.rows.map((x) => [x.batchSize, x.requests])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect((await readFile(join(out, 'profile.csv'), 'utf8')).trim().split('\n')).toHaveLength(3);
    expect(JSON.parse(await readFile(join(out, 'profile.json'), 'utf8')).rows).toHaveLength(2);
    expect((await sharp(join(out, 'profile.png')).metadata()).format).toBe('png');
    expect((await sharp(join(out, 'profile.svg')).metadata()).format).toBe('svg');
  });
});

describe('lens serve', () => {
  it('prints its ports and models, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'serve', '--port', '0', '--rest_api_port', '0', '--model_name', 'half', '--model_base_path', resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu'), '--json'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const summary = await new Promise<{ grpcPort: number; restPort: number; models: { name: string; available: number[] }[] }>((resolvePromise, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const line = stdout.split('\n')[0];
        if (stdout.includes('\n')) resolvePromise(JSON.parse(line!));
      });
      child.on('exit', (code) => reject(new Error(`lens serve exited with ${code}: ${stderr}`)));
    });
    expect(summary.models).toEqual([{ name: 'half', basePath: resolve(SHARED, 'testdata/savedmodels/saved_model_half_plus_two_cpu'), available: [123], labels: {} }]);
    const client = createClient({ target: `127.0.0.1:${summary.grpcPort}` });
    const r = await client.predict({ model: 'half', inputs: { x: { dtype: 'float32', shape: [1, 1], values: new Float32Array([2]) } } });
    expect(Array.from(r.outputs.y!.values as Float32Array)).toEqual([3]);
    client.close();
    const code = await new Promise<number | null>((resolvePromise) => {
      child.removeAllListeners('exit');
      child.on('exit', (c) => resolvePromise(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(stderr).toMatch(/SIGTERM: draining in-flight requests/);
  }, 60_000);

  it('refuses contradictory flags', async () => {
    const r = await runLens(['serve', '--model_base_path', '/x', '--model_config_file', '/y']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('lens: give --model_base_path or --model_config_file, not both\n');
  });

  it('fails in one line for a base path that is missing or holds no version', async () => {
    const missing = join(dir, 'no-such-model');
    const r = await runLens(['serve', '--port', '0', '--rest_api_port', '0', '--model_name', 'x', '--model_base_path', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`lens: Could not find base path ${missing} for servable x\n`);
    // The version folder itself instead of its base path.
    const version = join(dir, 'cifar', '1');
    const leaf = await runLens(['serve', '--port', '0', '--rest_api_port', '0', '--model_name', 'x', '--model_base_path', version]);
    expect(leaf.code).toBe(1);
    expect(leaf.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^lens: No versions of servable x found under base path .*\/cifar\/1\. Did you forget to name your leaf directory as a number/)]);
  });
});
