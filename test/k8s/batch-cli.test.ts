/**
 * The real thing through the CLI: `lens batch` with the attribution engine (Integrated Gradients,
 * black baseline) on ResNet-8 from ../shared, as 3 shards, one of them stopped by SIGTERM midway
 * and rerun, then `lens merge`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MergeReport, readImageList, shardItems } from '../../src/batch/index.js';
import { readNpy, readPngText } from '../../src/render/index.js';
import { REPO_ROOT, SHARED, runLens } from '../helpers/cli.js';

const MODEL = resolve(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5');
const IMAGES = ['bird.bmp', 'cat.bmp', 'grace_hopper.bmp', 'hot_dog.jpg', 'parrot.jpg'];
let dir: string;
let list: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-batch-cli-'));
  list = join(dir, 'images.txt');
  // Each photo under three spellings: distinct references, so 15 images and 5 per shard.
  const dirs = [`${SHARED}/images`, `${SHARED}/images/.`, `${SHARED}/models-external/../images`];
  await writeFile(list, dirs.flatMap((d) => IMAGES.map((i) => `${d}/${i}`)).join('\n') + '\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const common = ['--list', () => list, '--model', MODEL, '--steps', '4', '--backend', 'cpu', '--no-progress'] as const;
const args = (out: string, extra: string[]) => ['batch', ...common.map((a) => (typeof a === 'function' ? a() : a)), '--out', out, ...extra];

describe('lens batch with the attribution engine', () => {
  it('runs 3 shards, one stopped by SIGTERM and resumed, and merges every image once', async () => {
    const out = join(dir, 'out');
    const { items } = await readImageList(list);
    expect(shardItems(items, 0, 3).length).toBe(5);

    // Shards 1 and 2 run alongside, as the Job's pods do.
    const others = Promise.all(['1', '2'].map((shard) => runLens(args(out, ['--shard', shard, '--shards', '3']))));
    // Shard 0, stopped after its first image: SIGTERM lets the image in progress finish, then exits 1.
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), ...args(out, ['--shard', '0', '--shards', '3'])], { cwd: REPO_ROOT });
    let stderr = '';
    const exit = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    await new Promise<void>((res, rej) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/\[1\/5\]/.test(stderr)) res();
      });
      void exit.then(() => rej(new Error(`shard 0 ended before its first image: ${stderr}`)));
    });
    child.kill('SIGTERM');
    expect(await exit).toBe(1);
    expect(stderr).toMatch(/SIGTERM: stopping after the current image/);
    const left = Number(/shard 0 of 3 stopped with (\d+) images left; run it again to resume/.exec(stderr)?.[1]);
    expect(left).toBeGreaterThanOrEqual(1);
    expect(left).toBeLessThanOrEqual(4);

    for (const r of await others) expect(r.code, r.stderr).toBe(0);
    // In an Indexed Job the shard comes from JOB_COMPLETION_INDEX.
    const resumed = await runLens(args(out, ['--shards', '3', '--json']), { env: { JOB_COMPLETION_INDEX: '0' } });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ shard: 0, images: 5, skipped: 5 - left, processed: left, ok: 5, interrupted: false });

    const merged = await runLens(['merge', '--out', out, '--list', list, '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    const report = JSON.parse(merged.stdout) as MergeReport;
    expect(report).toMatchObject({ images: 15, ok: 15, failed: 0, missing: 0, duplicateRecords: 0 });
    for (const e of report.entries) {
      expect(e.result).toMatchObject({ method: 'integrated_gradients', baseline: 'black', steps: 4, output: 'logit' });
      const png = await readFile(join(out, e.files!.png!));
      expect(readPngText(png)).toMatchObject({ method: 'integrated_gradients', baseline: 'black', steps: '4' });
      const npy = await readNpy(join(out, e.files!.npy!));
      expect(npy.shape).toEqual([32, 32, 3]);
    }
    expect((await readdir(join(out, 'attributions'))).length).toBe(30);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    expect(md).toContain('images: 15 (ok 15, failed 0, missing 0)');
  });

  it('exits 1 when an image failed, retries it on the next run up to --max-attempts, and --allow-failures accepts it', async () => {
    const out = join(dir, 'failing');
    // A JPEG whose header is damaged: libvips names several reasons, each several times.
    const jpeg = await readFile(join(SHARED, 'images/parrot.jpg'));
    for (let i = 20; i < 2000; i += 3) jpeg[i] = (i * 37) & 0xff;
    const broken = join(dir, 'broken.jpg');
    await writeFile(broken, jpeg);
    const failList = join(dir, 'failing.txt');
    await writeFile(failList, `${SHARED}/images/parrot.jpg\n${broken}\n`);
    // The bundled model: this test is about exit status and retries, so the smallest model will do.
    const run = (extra: string[]) => runLens(['batch', '--list', failList, '--model', 'default', '--steps', '4', '--backend', 'cpu', '--no-progress', '--out', out, '--max-attempts', '2', ...extra]);

    const first = await run([]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/lens: 1 of 2 images of shard 0 failed \(--allow-failures 0\); a rerun retries those with fewer than 2 attempts/);
    // The decoder's complaint appears once, on one line naming the file.
    const failedLines = first.stderr.split('\n').filter((l) => l.includes('broken.jpg'));
    expect(failedLines).toHaveLength(1);
    expect(failedLines[0]).toMatch(/failed: cannot decode image .*broken\.jpg: .*Unsupported marker type/);
    expect(failedLines[0]!.match(/Unsupported marker type/g)).toHaveLength(1);

    const second = await run(['--allow-failures', '1', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ processed: 1, skipped: 1, ok: 1, failed: 1 });
    const third = await run(['--allow-failures', '1', '--json']);
    expect(JSON.parse(third.stdout)).toMatchObject({ processed: 0, skipped: 2, failed: 1 });

    const merged = await runLens(['merge', '--out', out, '--list', failList, '--json']);
    const report = JSON.parse(merged.stdout) as MergeReport;
    expect(report.entries[1]).toMatchObject({ status: 'error', attempts: 2, error: expect.stringMatching(/cannot decode image/) });
    expect(await readFile(join(out, 'report.md'), 'utf8')).toMatch(/## Failures\n\n- .*broken\.jpg: cannot decode image .* \(2 attempts\)/);
    expect(await readdir(out)).not.toContain('.tmp');
  });

  it('refuses a shard outside the count and a missing list, naming the flag or file', async () => {
    const r = await runLens(args(join(dir, 'x'), ['--shard', '3', '--shards', '3']));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--shard must be an integer in 0\.\.2 for --shards 3, got 3/);
    const m = await runLens(['batch', '--list', join(dir, 'nope.txt'), '--model', MODEL, '--out', join(dir, 'y')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/cannot read image list .*nope\.txt/);
  });
});
