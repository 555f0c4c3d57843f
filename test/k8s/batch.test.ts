import { link, mkdir, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BatchItem,
  type ExplainOne,
  imageId,
  mergeShards,
  parseDuration,
  parseImageList,
  readImageList,
  readJournal,
  reportCsv,
  runShard,
  shardItems,
  shardJournalName,
  shardTmpDir,
} from '../../src/batch/index.js';
import { isLensError } from '../../src/core/errors.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-batch-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function items(n: number): BatchItem[] {
  return parseImageList(Array.from({ length: n }, (_, i) => `img/${i}.png`).join('\n'), '/data').items;
}

/** An explainer that records which images it was asked for and returns a tiny file. */
function countingExplainer(fail: ReadonlySet<string> = new Set()): { explainOne: ExplainOne; calls: string[] } {
  const calls: string[] = [];
  const explainOne: ExplainOne = async (item) => {
    calls.push(item.ref);
    if (fail.has(item.ref)) throw new Error(`cannot decode ${item.ref}`);
    return { result: { target: { index: item.index % 3, label: `class ${item.index % 3}` }, sum: item.index }, files: { png: new TextEncoder().encode(`png of ${item.ref}`) } };
  };
  return { explainOne, calls };
}

describe('image lists', () => {
  it('skips blanks and comments, keeps duplicates once, resolves relative paths against the list folder', () => {
    const list = parseImageList('# images\ncat.jpg\n\n  dog.png  \ncat.jpg\n/abs/bird.jpg\nhttps://example.org/a.png?x=1\n', '/data/lists');
    expect(list.items.map((i) => i.ref)).toEqual(['cat.jpg', 'dog.png', '/abs/bird.jpg', 'https://example.org/a.png?x=1']);
    expect(list.items.map((i) => i.source)).toEqual(['/data/lists/cat.jpg', '/data/lists/dog.png', '/abs/bird.jpg', 'https://example.org/a.png?x=1']);
    expect(list.items.map((i) => i.index)).toEqual([0, 1, 2, 3]);
    expect(list.duplicates).toEqual(['cat.jpg']);
  });

  it('gives stable 16-hex ids from the reference as written', () => {
    expect(imageId('cat.jpg')).toMatch(/^[0-9a-f]{16}$/);
    expect(imageId('cat.jpg')).toBe(imageId(' cat.jpg '));
    expect(imageId('cat.jpg')).not.toBe(imageId('./cat.jpg'));
    // Pinned: ids name files on shared volumes, so they must never change between versions.
    expect(imageId('images/cat.jpg')).toBe('80d673d8b5b389d3');
  });

  it('refuses bucket URLs it cannot read, naming the line', () => {
    try {
      parseImageList('a.png\ngs://bucket/b.png\n', '/data');
      expect.unreachable();
    } catch (e) {
      expect(isLensError(e, 'INVALID_ARGUMENT')).toBe(true);
      expect((e as Error).message).toMatch(/line 2: "gs:\/\/bucket\/b.png"/);
    }
  });

  it('reads a list file and reports a missing one', async () => {
    const path = join(dir, 'list.txt');
    await writeFile(path, 'x.png\n');
    expect((await readImageList(path)).items[0]!.source).toBe(join(dir, 'x.png'));
    await expect(readImageList(join(dir, 'nope.txt'))).rejects.toThrow(/cannot read image list .*nope\.txt/);
  });
});

describe('shard assignment', () => {
  it('partitions the list: every image in exactly one shard, sizes within one', () => {
    const all = items(23);
    const shards = [0, 1, 2, 3].map((s) => shardItems(all, s, 4));
    const ids = shards.flat().map((i) => i.id);
    expect(new Set(ids).size).toBe(23);
    expect(ids.length).toBe(23);
    const sizes = shards.map((s) => s.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('keeps earlier assignments when the list grows', () => {
    const before = shardItems(items(10), 1, 3).map((i) => i.id);
    const after = shardItems(items(14), 1, 3).map((i) => i.id);
    expect(after.slice(0, before.length)).toEqual(before);
  });

  it('rejects a shard outside the count', () => {
    expect(() => shardItems(items(3), 3, 3)).toThrow(/--shard must be an integer in 0\.\.2/);
    expect(() => shardItems(items(3), 0, 0)).toThrow(/--shards must be a positive integer/);
  });
});

describe('shard runner and merge', () => {
  it('resumes after a torn journal line, a stray temp file and an orphan output, redoing only the unrecorded image', async () => {
    const out = join(dir, 'torn');
    const all = items(3);
    const first = countingExplainer();
    const s1 = await runShard({ items: all, shard: 0, shards: 1, out, explainOne: first.explainOne });
    expect(s1).toMatchObject({ images: 3, processed: 3, skipped: 0, ok: 3, interrupted: false });

    // State of a pod killed while appending the third record: its PNG exists, its line is cut short,
    // and a temp file of a fourth write lies around.
    const journal = join(out, 'shards', shardJournalName(0, 1));
    const text = await readFile(journal, 'utf8');
    const cut = text.lastIndexOf('\n', text.length - 2) + 20;
    await truncate(journal, cut);
    await rm(join(out, 'shards', 'shard-00000-of-00001.done.json'));
    await mkdir(shardTmpDir(out, 0), { recursive: true });
    await writeFile(join(shardTmpDir(out, 0), 'x.png.123.tmp'), 'partial');
    expect((await readJournal(journal)).tornTail).toBe(true);

    const second = countingExplainer();
    const s2 = await runShard({ items: all, shard: 0, shards: 1, out, explainOne: second.explainOne });
    expect(second.calls).toEqual(['img/2.png']);
    expect(s2).toMatchObject({ skipped: 2, processed: 1, ok: 3 });
    const after = await readJournal(journal);
    expect(after).toMatchObject({ tornTail: false, badLines: 0 });
    expect(after.records.map((r) => r.image)).toEqual(['img/0.png', 'img/1.png', 'img/2.png']);
    // A finished shard leaves no temp folder at all.
    await expect(readdir(join(out, '.tmp'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('retries a failed image on resume until it failed --max-attempts times, counting attempts in the journal', async () => {
    const out = join(dir, 'failures');
    const all = items(4);
    const bad = new Set(['img/1.png']);
    const runs: string[][] = [];
    for (let run = 0; run < 3; run++) {
      const failing = countingExplainer(bad);
      const s = await runShard({ items: all, shard: 0, shards: 1, out, explainOne: failing.explainOne, maxAttempts: 2 });
      expect(s).toMatchObject({ ok: 3, failed: 1 });
      runs.push(failing.calls);
    }
    // Run 1 explains all, run 2 retries the failure (attempt 2 of 2), run 3 leaves it alone.
    expect(runs).toEqual([['img/0.png', 'img/1.png', 'img/2.png', 'img/3.png'], ['img/1.png'], []]);
    const journal = await readJournal(join(out, 'shards', shardJournalName(0, 1)));
    expect(journal.records.filter((r) => r.image === 'img/1.png').map((r) => [r.status, r.attempt])).toEqual([['error', 1], ['error', 2]]);
    const failedReport = await mergeShards({ out, items: all });
    expect(failedReport.entries[1]).toMatchObject({ status: 'error', error: 'cannot decode img/1.png', attempts: 2 });
    expect(await readFile(join(out, 'report.md'), 'utf8')).toContain('## Failures\n\n- img/1.png: cannot decode img/1.png (2 attempts)');

    // --retry-failed goes past the bound; a success then wins over the failures.
    const retry = countingExplainer();
    const s3 = await runShard({ items: all, shard: 0, shards: 1, out, explainOne: retry.explainOne, maxAttempts: 2, retryFailed: true });
    expect(retry.calls).toEqual(['img/1.png']);
    expect(s3).toMatchObject({ ok: 4, failed: 0 });
    const report = await mergeShards({ out, items: all });
    expect(report).toMatchObject({ images: 4, ok: 4, failed: 0, missing: 0, duplicateRecords: 2 });
    expect(await readFile(join(out, 'report.md'), 'utf8')).not.toContain('## Failures');
  });

  it('refuses a journal planted as a symbolic link instead of cutting and extending the linked file', async () => {
    // The exploit: a link at the journal's name to a file outside OUT whose last line has no newline.
    const out = join(dir, 'planted');
    const outside = join(dir, 'outside.log');
    await writeFile(outside, 'first line\nlast line without newline');
    await mkdir(join(out, 'shards'), { recursive: true });
    await symlink(outside, join(out, 'shards', shardJournalName(0, 1)));
    const run = countingExplainer();
    const e = await runShard({ items: items(2), shard: 0, shards: 1, out, explainOne: run.explainOne }).catch((x: unknown) => x);
    expect(isLensError(e, 'WRITE_FAILED')).toBe(true);
    expect((e as Error).message).toMatch(/shard-00000-of-00001\.jsonl is a symbolic link; refusing to open it/);
    expect(await readFile(outside, 'utf8')).toBe('first line\nlast line without newline');
    expect(run.calls).toEqual([]);
    expect((await readdir(out)).sort()).toEqual(['attributions', 'shards']);
    // The same through a hard link.
    await rm(join(out, 'shards', shardJournalName(0, 1)));
    await link(outside, join(out, 'shards', shardJournalName(0, 1)));
    await expect(runShard({ items: items(2), shard: 0, shards: 1, out, explainOne: run.explainOne })).rejects.toThrow(/has other hard links; refusing to write it/);
    expect(await readFile(outside, 'utf8')).toBe('first line\nlast line without newline');
  });

  it('refuses output subfolders that are symbolic links', async () => {
    const out = join(dir, 'linked-dirs');
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await mkdir(out);
    await symlink(elsewhere, join(out, 'attributions'));
    await expect(runShard({ items: items(1), shard: 0, shards: 1, out, explainOne: countingExplainer().explainOne })).rejects.toThrow(/attributions is a symbolic link/);
    expect(await readdir(elsewhere)).toEqual([]);
    // A temp folder linked elsewhere is neither written into nor emptied.
    const tmpOut = join(dir, 'linked-tmp');
    await mkdir(join(tmpOut), { recursive: true });
    await mkdir(join(elsewhere, 'shard-00000'));
    await writeFile(join(elsewhere, 'shard-00000', 'keep.txt'), 'keep');
    await symlink(elsewhere, join(tmpOut, '.tmp'));
    await expect(runShard({ items: items(1), shard: 0, shards: 1, out: tmpOut, explainOne: countingExplainer().explainOne })).rejects.toThrow(/\.tmp is a symbolic link/);
    expect(await readFile(join(elsewhere, 'shard-00000', 'keep.txt'), 'utf8')).toBe('keep');
  });

  it('redoes an image whose output file was deleted', async () => {
    const out = join(dir, 'deleted');
    const all = items(2);
    await runShard({ items: all, shard: 0, shards: 1, out, explainOne: countingExplainer().explainOne });
    const pngs = await readdir(join(out, 'attributions'));
    await rm(join(out, 'attributions', pngs[0]!));
    const again = countingExplainer();
    await runShard({ items: all, shard: 0, shards: 1, out, explainOne: again.explainOne });
    expect(again.calls.length).toBe(1);
    const report = await mergeShards({ out, items: all, write: false });
    expect(report.ok).toBe(2);
  });

  it('does not redo finished images when the shard count changes', async () => {
    const out = join(dir, 'reshard');
    const all = items(9);
    await runShard({ items: all, shard: 0, shards: 2, out, explainOne: countingExplainer().explainOne });
    const calls: string[] = [];
    for (let s = 0; s < 3; s++) {
      const e = countingExplainer();
      await runShard({ items: all, shard: s, shards: 3, out, explainOne: e.explainOne });
      calls.push(...e.calls);
    }
    const doneBefore = new Set(shardItems(all, 0, 2).map((i) => i.ref));
    expect(calls.filter((c) => doneBefore.has(c))).toEqual([]);
    expect(calls.length + doneBefore.size).toBe(9);
    const report = await mergeShards({ out, items: all });
    expect(report).toMatchObject({ images: 9, ok: 9, missing: 0, duplicateRecords: 0 });
  });

  it('stops after the current image when aborted, without a done marker', async () => {
    const out = join(dir, 'abort');
    const controller = new AbortController();
    const e = countingExplainer();
    const explainOne: ExplainOne = async (item) => {
      const r = await e.explainOne(item);
      if (e.calls.length === 2) controller.abort();
      return r;
    };
    const s = await runShard({ items: items(5), shard: 0, shards: 1, out, explainOne, signal: controller.signal });
    expect(s).toMatchObject({ processed: 2, interrupted: true });
    expect(await readdir(join(out, 'shards'))).toEqual([shardJournalName(0, 1)]);
    // No temp folder stays behind on this exit path either.
    expect((await readdir(out)).sort()).toEqual(['attributions', 'shards']);
  });

  it('merges in list order, names the missing images, and writes JSON, markdown and CSV', async () => {
    const out = join(dir, 'merge');
    const all = items(6);
    await runShard({ items: all, shard: 0, shards: 2, out, explainOne: countingExplainer().explainOne });
    const report = await mergeShards({ out, items: all });
    expect(report.entries.map((e) => e.status)).toEqual(['ok', 'missing', 'ok', 'missing', 'ok', 'missing']);
    expect(report).toMatchObject({ images: 6, ok: 3, missing: 3 });
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { entries: unknown[] };
    expect(json.entries.length).toBe(6);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    expect(md).toContain('images: 6 (ok 3, failed 0, missing 3)');
    expect(md).toMatch(/\| 0 \| [0-9a-f]{16} \| img\/0\.png \| ok \| 0 \| 0 \| class 0 \| 0 \| \[0-[0-9a-f]{16}\.png\]\(attributions\/0-[0-9a-f]{16}\.png\) \|  \|/);
    const csv = await readFile(join(out, 'report.csv'), 'utf8');
    expect(csv.split('\r\n')[0]).toBe('index,id,image,status,shard,target.index,target.label,sum,file.png,error');
    expect(csv.split('\r\n').length).toBe(8);
  });

  it('quotes CSV cells with commas and quotes', () => {
    const csv = reportCsv({
      createdAt: '', out: '', images: 1, ok: 0, failed: 1, missing: 0, duplicateRecords: 0, extraRecords: 0, badLines: 0, shards: [],
      entries: [{ id: 'a', image: 'x,"y".png', index: 0, status: 'error', error: 'bad, "really"' }],
    });
    expect(csv.split('\r\n')[1]).toBe('0,a,"x,""y"".png",error,,"bad, ""really"""');
  });

  it('waits for every shard to finish, and gives up after the timeout', async () => {
    const out = join(dir, 'wait');
    const all = items(4);
    await runShard({ items: all, shard: 0, shards: 2, out, explainOne: countingExplainer().explainOne });
    await expect(mergeShards({ out, items: all, wait: { timeoutMs: 0 } })).rejects.toThrow(/gave up waiting .* 1 of 2 shards done/);
    const waiting: number[] = [];
    const merged = mergeShards({ out, items: all, wait: { timeoutMs: 60_000, pollMs: 20, onWaiting: (done) => waiting.push(done) } });
    await runShard({ items: all, shard: 1, shards: 2, out, explainOne: countingExplainer().explainOne });
    const report = await merged;
    expect(report).toMatchObject({ ok: 4, missing: 0 });
    expect(report.shards.every((s) => s.done)).toBe(true);
  });

  it('parses durations', () => {
    expect(parseDuration('90s', '--timeout')).toBe(90_000);
    expect(parseDuration('30m', '--timeout')).toBe(1_800_000);
    expect(parseDuration('2', '--timeout')).toBe(2000);
    expect(() => parseDuration('soon', '--timeout')).toThrow(/--timeout must be a duration/);
  });
});
