/**
 * The atomic writer under attack and under kills: links planted at the target are refused (the
 * linked file stays untouched), and writer processes killed at a named point of the write
 * (LENS_FAULT, no sleeps) leave the old file whole and no temporary file after the next run.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLensError } from '../../src/core/errors.js';
import { ensureRealDir, removeStaleTemps, tempTag, writeFileAtomic } from '../../src/fs/atomic.js';
import { SHARED, runLens } from '../helpers/cli.js';
import { runWriter } from '../helpers/fault.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-atomic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const temps = async (folder: string) => (await readdir(folder)).filter((n) => n.endsWith('.tmp'));

describe('writeFileAtomic and symbolic links', () => {
  it('refuses a link at the target and leaves the linked file untouched', async () => {
    const out = join(dir, 'links');
    await mkdir(out);
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, 'precious\n');
    await symlink(outside, join(out, 'report.json'));
    const e = await writeFileAtomic(join(out, 'report.json'), 'attack').catch((x: unknown) => x);
    expect(isLensError(e, 'WRITE_FAILED')).toBe(true);
    expect((e as Error).message).toMatch(/report\.json is a symbolic link; refusing to write through it/);
    expect(await readFile(outside, 'utf8')).toBe('precious\n');
    expect(await temps(out)).toEqual([]);
  });

  it('refuses a folder that is a link where a real folder is required', async () => {
    const target = join(dir, 'elsewhere');
    await mkdir(target);
    await symlink(target, join(dir, 'shards-link'));
    await expect(ensureRealDir(join(dir, 'shards-link'))).rejects.toThrow(/shards-link is a symbolic link/);
    await ensureRealDir(join(dir, 'real', 'nested'));
  });

  it('replaces a regular file whole', async () => {
    const path = join(dir, 'plain', 'a.txt');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, new TextEncoder().encode('two'));
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await temps(join(dir, 'plain'))).toEqual([]);
  });
});

describe('writers killed mid-write (LENS_FAULT)', () => {
  it('SIGKILL between fsync and rename keeps the old file; the next write into the folder removes the temp', async () => {
    const out = join(dir, 'killed');
    await mkdir(out);
    const path = join(out, 'a.txt');
    await writeFile(path, 'old');
    const r = await runWriter(['file', path, 'new'], 'atomic-write:before-rename');
    expect(r.signal).toBe('SIGKILL');
    expect(await readFile(path, 'utf8')).toBe('old');
    const [left] = await temps(out);
    expect(left).toMatch(/^\.a\.txt\.\d+-\w*-[0-9a-f]{8}\.tmp$/);
    expect(await readFile(join(out, left!), 'utf8')).toBe('new');

    await writeFileAtomic(join(out, 'b.txt'), 'b');
    expect(await temps(out)).toEqual([]);
    expect((await readdir(out)).sort()).toEqual(['a.txt', 'b.txt']);
  });

  it('SIGINT and SIGTERM at the same point remove the temp and end the process by that signal', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const out = join(dir, `interrupted-${signal}`);
      await mkdir(out);
      const path = join(out, 'a.txt');
      await writeFile(path, 'old');
      const r = await runWriter(['file', path, 'new'], `atomic-write:before-rename:${signal}`);
      expect(r.signal, r.stderr).toBe(signal);
      expect(r.stdout).toBe('');
      expect(await readFile(path, 'utf8')).toBe('old');
      expect(await readdir(out)).toEqual(['a.txt']);
    }
  });

  it('an interrupted lens explain leaves no hidden temp file in its output folder', async () => {
    const out = join(dir, 'explain');
    const r = await runLens(['explain', '--model', 'default', join(SHARED, 'images/parrot.jpg'), '--steps', '4', '--out', out, '--backend', 'cpu'], {
      env: { LENS_FAULT: 'atomic-write:before-rename:SIGINT' },
    });
    // runLens reports a death by signal as -1.
    expect(r.code, r.stderr).toBe(-1);
    expect((await readdir(out)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('stale temporary files', () => {
  it('removes those of dead writers on this host and of other hosts after a day, keeps live ones', async () => {
    const out = join(dir, 'stale');
    await mkdir(out);
    const host = tempTag().split('-')[1]!;
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const names = {
      live: `.a.png.${process.pid}-${host}-0000000a.tmp`,
      dead: `.b.png.${dead}-${host}-0000000b.tmp`,
      foreignFresh: `.c.png.7-someotherhost-0000000c.tmp`,
      foreignOld: `.d.png.7-someotherhost-0000000d.tmp`,
      // Named by an earlier release: no host, so only a day of age makes it stale.
      legacyFresh: `.f.ig.npy.${dead}.0000000f.tmp`,
      legacyOld: `.g.ig.npy.${dead}.0000000a.tmp`,
      unrelated: 'e.png',
    };
    for (const n of Object.values(names)) await writeFile(join(out, n), 'x');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600_000);
    for (const n of [names.foreignOld, names.legacyOld]) await utimes(join(out, n), twoDaysAgo, twoDaysAgo);
    const removed = await removeStaleTemps(out);
    expect(removed.map((p) => p.slice(out.length + 1)).sort()).toEqual([names.dead, names.foreignOld, names.legacyOld].sort());
    expect((await readdir(out)).sort()).toEqual([names.live, names.foreignFresh, names.legacyFresh, names.unrelated].sort());
  });
});
