/**
 * Replacing an exported version while being killed: a writer process is SIGKILLed at each named
 * point of the swap (LENS_FAULT: after the new folder is written and fsynced, between moving the
 * old version aside and renaming the new one in, after the new one is in place). After the next
 * run, `<base>/1` is always one complete version (the old or the new, never a mix and never
 * missing) and no leftover folder remains. Then the same through `lens export` itself.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverVersionLeftovers } from '../../src/export/write.js';
import { tempTag } from '../../src/fs/atomic.js';
import { runLens } from '../helpers/cli.js';
import { runWriter } from '../helpers/fault.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-version-swap-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The text a version holds, after checking that all its files agree (a whole version). */
async function versionText(versionDir: string): Promise<string> {
  const pb = await readFile(join(versionDir, 'saved_model.pb'), 'utf8');
  const sidecar = JSON.parse(await readFile(join(versionDir, 'lens.json'), 'utf8')) as { text: string };
  expect(sidecar.text).toBe(pb);
  expect((await readdir(join(versionDir, 'variables'))).sort()).toEqual(['variables.data-00000-of-00001', 'variables.index']);
  return pb;
}

describe('export version swap killed at each step', () => {
  const cases = [
    // point, what base/1 holds right after the kill, what it holds after the next run
    { point: 'export:written', afterKill: 'old', afterNextRun: 'old' },
    { point: 'export:old-aside', afterKill: 'missing', afterNextRun: 'old' },
    { point: 'export:new-in-place', afterKill: 'new', afterNextRun: 'new' },
  ] as const;
  for (const c of cases) {
    it(`killed at ${c.point}: the next run leaves one complete version and no leftovers`, async () => {
      const base = join(dir, c.point.replace(':', '-'));
      const first = await runWriter(['version', base, '1', 'old']);
      expect(first.code, first.stderr).toBe(0);
      const killed = await runWriter(['version', base, '1', 'new', '--force'], c.point);
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const names = await readdir(base);
      if (c.afterKill === 'missing') expect(names).not.toContain('1');
      else expect(await versionText(join(base, '1'))).toBe(c.afterKill);
      expect(names.filter((n) => n.startsWith('.')).length).toBeGreaterThan(0);

      // The next export (of another version) repairs the base path first.
      const next = await runWriter(['version', base, '2', 'two']);
      expect(next.code, next.stderr).toBe(0);
      expect((await readdir(base)).sort()).toEqual(['1', '2']);
      expect(await versionText(join(base, '1'))).toBe(c.afterNextRun);
      expect(await versionText(join(base, '2'))).toBe('two');
    });
  }

  it('SIGTERM while the new version is written removes its temporary folder at once', async () => {
    const base = join(dir, 'sigterm');
    expect((await runWriter(['version', base, '1', 'old'])).code).toBe(0);
    const stopped = await runWriter(['version', base, '1', 'new', '--force'], 'export:written:SIGTERM');
    expect(stopped.signal, stopped.stderr).toBe('SIGTERM');
    expect(await readdir(base)).toEqual(['1']);
    expect(await versionText(join(base, '1'))).toBe('old');
  });

  it('a forced export that is not killed replaces the version and leaves nothing else', async () => {
    const base = join(dir, 'clean');
    expect((await runWriter(['version', base, '1', 'old'])).code).toBe(0);
    const refused = await runWriter(['version', base, '1', 'new']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/1 already exists; choose another --version or pass --force/);
    expect((await runWriter(['version', base, '1', 'new', '--force'])).code).toBe(0);
    expect(await readdir(base)).toEqual(['1']);
    expect(await versionText(join(base, '1'))).toBe('new');
  });

  it('leaves the leftovers of a live export alone', async () => {
    const base = join(dir, 'live');
    // One from a live process on this host (this test), one from another host written just now.
    const host = tempTag().split('-')[1]!;
    await mkdir(join(base, `.1.tmp-${process.pid}-${host}-0000abcd`), { recursive: true });
    await mkdir(join(base, `.1.old-${process.pid}-someotherhost-0000abcd`));
    expect(await recoverVersionLeftovers(base)).toEqual([]);
    expect((await readdir(base)).length).toBe(2);
  });

  it('refuses to replace a version folder that is a symbolic link, leaving its target alone', async () => {
    const base = join(dir, 'linked');
    const outside = join(dir, 'outside-version');
    await mkdir(outside);
    await writeFile(join(outside, 'saved_model.pb'), 'precious');
    await mkdir(base);
    await symlink(outside, join(base, '1'));
    const r = await runWriter(['version', base, '1', 'new', '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1 is a symbolic link; refusing to write through it/);
    expect(await readdir(outside)).toEqual(['saved_model.pb']);
    expect(await readFile(join(outside, 'saved_model.pb'), 'utf8')).toBe('precious');
    expect((await readdir(base)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('lens export --force killed between the two renames', () => {
  it('the next lens export puts the old version back, says so, and the version serves again', async () => {
    const base = join(dir, 'cli');
    const first = await runLens(['export', 'default', base, '--version', '1', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const before = await readFile(join(base, '1', 'saved_model.pb'));

    const killed = await runLens(['export', 'default', base, '--version', '1', '--force'], { env: { LENS_FAULT: 'export:old-aside' } });
    expect(killed.code).toBe(-1);
    expect(await readdir(base)).not.toContain('1');

    const next = await runLens(['export', 'default', base, '--version', '1']);
    expect(next.stderr).toMatch(/lens export: restored .*\.1\.old-\S+ as version 1 \(left by a killed export\)/);
    expect(next.code).toBe(1);
    expect(next.stderr).toMatch(/1 already exists; choose another --version or pass --force/);
    expect(await readdir(base)).toEqual(['1']);
    expect((await readFile(join(base, '1', 'saved_model.pb'))).equals(before)).toBe(true);
    const run = await runLens(['inspect', join(base, '1'), '--json']);
    expect(run.code, run.stderr).toBe(0);
  });
});
