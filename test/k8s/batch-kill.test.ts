/**
 * The proof of the batch Job's logic without a cluster: three shard processes over a small image
 * list, one killed with SIGKILL in the middle of its work and started again, then `lens merge`.
 * The merged result must hold every image exactly once, and the volume no partial file.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MergeReport, type ShardSummary, listShardFiles, readImageList, readJournal, shardItems } from '../../src/batch/index.js';
import { REPO_ROOT, runLens } from '../helpers/cli.js';

const WORKER = resolve(REPO_ROOT, 'test/k8s/fixtures/shard-worker.ts');
const IMAGES = 13;
let dir: string;
let list: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-batch-kill-'));
  const lines: string[] = [];
  await mkdir(join(dir, 'images'));
  for (let i = 0; i < IMAGES; i++) {
    const name = `images/img-${String(i).padStart(2, '0')}.png`;
    const png = await sharp({ create: { width: 12, height: 9, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 } } }).png().toBuffer();
    await writeFile(join(dir, name), png);
    lines.push(name);
  }
  // One image that cannot be decoded: it must be reported as failed, once.
  await writeFile(join(dir, 'images/broken.png'), 'not a png');
  lines.splice(5, 0, 'images/broken.png');
  list = join(dir, 'images.txt');
  await writeFile(list, `# test list\n${lines.join('\n')}\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Worker {
  child: ChildProcessWithoutNullStreams;
  lines: unknown[];
  /** Resolves with the first stdout JSON line that `match` accepts. */
  waitFor(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startShard(out: string, shard: number, shards: number, hangOn?: string, fault?: string): Worker {
  const env = { ...process.env };
  if (fault) env.LENS_FAULT = fault;
  else delete env.LENS_FAULT;
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, list, out, String(shard), String(shards), ...(hangOn ? [hangOn] : [])], { cwd: REPO_ROOT, env });
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      for (const w of [...waiters]) if (w.match(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => child.on('close', (code, signal) => res({ code, signal, stderr })));
  return {
    child,
    lines,
    exit,
    waitFor: (match) =>
      new Promise((res, rej) => {
        const seen = lines.find(match);
        if (seen) return res(seen);
        waiters.push({ match, resolve: res });
        void exit.then((e) => rej(new Error(`shard ${shard} exited (${e.code ?? e.signal}) before the awaited line: ${e.stderr}`)));
      }),
  };
}

async function summaryOf(w: Worker): Promise<ShardSummary> {
  const e = await w.exit;
  expect(e.code, e.stderr).toBe(0);
  return (w.lines.find((l) => typeof l === 'object' && l !== null && 'summary' in l) as { summary: ShardSummary }).summary;
}

/** Every file on the volume is whole: each attribution decodes as a PNG and belongs to exactly one kept record. */
async function checkVolume(out: string, report: MergeReport): Promise<void> {
  const files = (await readdir(join(out, 'attributions'))).sort();
  const referenced = report.entries.filter((e) => e.status === 'ok').map((e) => e.files!.png!.replace('attributions/', '')).sort();
  expect(files).toEqual(referenced);
  for (const f of files) {
    const meta = await sharp(join(out, 'attributions', f)).metadata();
    expect(meta.format).toBe('png');
    expect([meta.width, meta.height]).toEqual([12, 9]);
  }
  const tmp = await readdir(join(out, '.tmp')).catch(() => []);
  expect(tmp).toEqual([]);
  for (const j of (await listShardFiles(out)).journals) {
    const contents = await readJournal(j.path);
    expect(contents).toMatchObject({ tornTail: false, badLines: 0 });
  }
}

describe('batch attribution as 3 shards with one killed midway (no cluster: this is the Job logic)', () => {
  it('resumes the killed shard and merges every image exactly once', async () => {
    const out = join(dir, 'out');
    const { items } = await readImageList(list);
    expect(items.length).toBe(IMAGES + 1);
    const shard1 = shardItems(items, 1, 3);
    const hangOn = shard1[2]!.ref;

    const workers = [startShard(out, 0, 3), startShard(out, 1, 3, hangOn), startShard(out, 2, 3)];
    await workers[1]!.waitFor((l) => l.hanging === hangOn);
    workers[1]!.child.kill('SIGKILL');
    const killed = await workers[1]!.exit;
    expect(killed.signal).toBe('SIGKILL');
    await summaryOf(workers[0]!);
    await summaryOf(workers[2]!);

    // The killed shard left two records and no done marker: merging now names its missing images.
    const partial = await runLens(['merge', '--out', out, '--list', list, '--json']);
    expect(partial.code).toBe(1);
    expect(partial.stderr).toMatch(/listed images have no result/);
    const partialReport = JSON.parse(partial.stdout) as MergeReport;
    expect(partialReport.missing).toBe(shard1.length - 2);
    expect(partialReport.shards.find((s) => s.shard === 1)).toMatchObject({ records: 2, done: false });

    // Rerun: only the images without a record are explained.
    const rerun = startShard(out, 1, 3);
    const summary = await summaryOf(rerun);
    expect(summary).toMatchObject({ images: shard1.length, skipped: 2, processed: shard1.length - 2, interrupted: false });
    const explainedAgain = rerun.lines.filter((l) => typeof l === 'object' && l !== null && 'done' in l).map((l) => (l as { done: string }).done);
    expect(explainedAgain).toEqual(shard1.slice(2).map((i) => i.ref));

    const merged = await runLens(['merge', '--out', out, '--list', list, '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    const report = JSON.parse(merged.stdout) as MergeReport;
    expect(report).toMatchObject({ images: IMAGES + 1, ok: IMAGES, failed: 1, missing: 0, duplicateRecords: 0, extraRecords: 0 });
    expect(report.entries.map((e) => e.image)).toEqual(items.map((i) => i.ref));
    expect(new Set(report.entries.map((e) => e.id)).size).toBe(IMAGES + 1);
    expect(report.entries.find((e) => e.image === 'images/broken.png')).toMatchObject({ status: 'error', error: expect.stringMatching(/cannot decode image/) });
    // Each image was recorded exactly once over all journals: nothing was redone.
    const records = (await Promise.all((await listShardFiles(out)).journals.map((j) => readJournal(j.path)))).flatMap((c) => c.records);
    expect(records.map((r) => r.id).sort()).toEqual(items.map((i) => i.id).sort());
    await checkVolume(out, report);
    expect(JSON.parse(await readFile(join(out, 'report.json'), 'utf8'))).toMatchObject({ ok: IMAGES, missing: 0 });
  });

  it('survives kills at arbitrary points of the write path', async () => {
    // A single shard killed right after its 1st, 4th and 8th finished image, while the next image is
    // being decoded, written or journaled: wherever the kill lands, the rerun completes the set.
    const out = join(dir, 'out-anywhere');
    for (const after of [1, 4, 8]) {
      const w = startShard(out, 0, 1);
      let seen = 0;
      await w.waitFor((l) => 'done' in l && ++seen >= after).catch(() => undefined);
      w.child.kill('SIGKILL');
      await w.exit;
    }
    await summaryOf(startShard(out, 0, 1));
    const merged = await runLens(['merge', '--out', out, '--list', list, '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    const report = JSON.parse(merged.stdout) as MergeReport;
    expect(report).toMatchObject({ images: IMAGES + 1, ok: IMAGES, failed: 1, missing: 0 });
    await checkVolume(out, report);
  });

  it('survives kills at the named points of the write path (LENS_FAULT)', async () => {
    // Killed with a temp file written but not renamed (3rd file), then with an image's file in
    // place but its record not journaled (5th image): each rerun ends with every image once and
    // nothing stray on the volume.
    const out = join(dir, 'out-faults');
    for (const fault of ['atomic-write:before-rename@3', 'batch:before-journal@5']) {
      const w = startShard(out, 0, 1, undefined, fault);
      const e = await w.exit;
      expect(e.signal, e.stderr).toBe('SIGKILL');
    }
    const { journals } = await listShardFiles(out);
    const beforeRerun = (await readJournal(journals[0]!.path)).records;
    expect(beforeRerun.map((r) => r.image)).toEqual(['img-00', 'img-01', 'img-02', 'img-03', 'img-04', 'broken'].map((n) => `images/${n}.png`));
    // The broken image failed once: the rerun tries it again (attempt 2), and explains the unrecorded ones.
    const summary = await summaryOf(startShard(out, 0, 1));
    expect(summary).toMatchObject({ skipped: 5, processed: IMAGES + 1 - 5, interrupted: false });
    const merged = await runLens(['merge', '--out', out, '--list', list, '--json']);
    const report = JSON.parse(merged.stdout) as MergeReport;
    expect(report).toMatchObject({ images: IMAGES + 1, ok: IMAGES, failed: 1, missing: 0, duplicateRecords: 1 });
    expect(report.entries.find((e) => e.status === 'error')).toMatchObject({ image: 'images/broken.png', attempts: 2 });
    await checkVolume(out, report);
    expect(await readdir(out)).not.toContain('.tmp');
  });
});
