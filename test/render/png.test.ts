import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addPngText,
  attributionPngText,
  encodeRgbaPng,
  isLensError,
  readPngChunks,
  readPngText,
  visualize,
  writeJsonAtomic,
  writePngAtomic,
} from '../../src/index.js';
import { writeFileAtomic } from '../../src/fs/atomic.js';
import { crc32 } from '../../src/render/png.js';
import { TINY_ATTRIBUTION, TINY_IMAGE } from './fixtures.js';

let dir: string;
let png: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-png-'));
  png = await encodeRgbaPng(visualize(TINY_ATTRIBUTION, { method: 'blended_heat_map', image: TINY_IMAGE }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CRC-32', () => {
  it('matches the standard check value and zlib', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const bytes = Buffer.from('IEND');
    expect(crc32(bytes)).toBe(0xae426082);
    const zlibCrc = (zlib as { crc32?: (b: Uint8Array) => number }).crc32;
    if (zlibCrc) expect(crc32(png)).toBe(zlibCrc(png));
  });
});

describe('PNG text chunks', () => {
  it('round-trip, and sharp still decodes the image and sees the entries', async () => {
    const text = { method: 'integrated_gradients', baseline: 'black', steps: 64, target: 281, delta: 0.00123456789, note: 'café' };
    const tagged = addPngText(png, text);
    expect(readPngText(tagged)).toEqual({ method: 'integrated_gradients', baseline: 'black', steps: '64', target: '281', delta: '0.00123456789', note: 'café' });
    const meta = await sharp(tagged).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 3, 2]);
    expect(meta.comments).toEqual(expect.arrayContaining([{ keyword: 'method', text: 'integrated_gradients' }, { keyword: 'note', text: 'café' }]));
    const { data } = await sharp(tagged).raw().toBuffer({ resolveWithObject: true });
    const { data: original } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(data.equals(original)).toBe(true);
  });

  it('go before the image data, and text outside ASCII uses iTXt', () => {
    const tagged = addPngText(png, { label: 'Δ 猫', steps: 8, skipped: undefined });
    const types = readPngChunks(tagged).map((c) => c.type);
    expect(types[0]).toBe('IHDR');
    expect(types.indexOf('iTXt')).toBeLessThan(types.indexOf('IDAT'));
    expect(types.indexOf('tEXt')).toBeLessThan(types.indexOf('IDAT'));
    expect(readPngText(tagged)).toEqual({ label: 'Δ 猫', steps: '8' });
  });

  it('replace rather than duplicate an existing key', () => {
    const twice = addPngText(addPngText(png, { steps: 8, method: 'ig' }), { steps: 16 });
    expect(readPngText(twice)).toEqual({ method: 'ig', steps: '16' });
    expect(readPngChunks(twice).filter((c) => c.type === 'tEXt')).toHaveLength(2);
  });

  it('reads zTXt and compressed iTXt written by other tools', () => {
    const chunk = (type: string, data: Buffer) => {
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      out.write(type, 4, 'latin1');
      data.copy(out, 8);
      out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
      return out;
    };
    const ztxt = chunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), zlib.deflateSync(Buffer.from('zipped', 'latin1'))]));
    const itxt = chunk('iTXt', Buffer.concat([Buffer.from('Title\0\x01\x00en\0Titel\0', 'latin1'), zlib.deflateSync(Buffer.from('ünïcode ✓', 'utf8'))]));
    const iend = png.length - 12;
    const withChunks = Buffer.concat([png.subarray(0, iend), ztxt, itxt, png.subarray(iend)]);
    expect(readPngText(withChunks)).toEqual({ Comment: 'zipped', Title: 'ünïcode ✓' });
  });

  it('refuse bad keys and detect damaged files', () => {
    expect(() => addPngText(png, { ' padded': 1 })).toThrow(/PNG text key/);
    expect(() => addPngText(png, { ['k'.repeat(80)]: 1 })).toThrow(/PNG text key/);
    expect(() => addPngText(png, { key: 'a\0b' })).toThrow(/NUL/);
    const damaged = Buffer.from(addPngText(png, { method: 'ig' }));
    damaged[damaged.indexOf('method') + 1] ^= 0xff;
    try {
      readPngText(damaged);
      expect.unreachable();
    } catch (e) {
      expect(isLensError(e, 'IMAGE_DECODE')).toBe(true);
      expect((e as Error).message).toMatch(/tEXt .* bad CRC/);
    }
    expect(() => readPngText(Buffer.from('GIF89a'))).toThrow(/not a PNG/);
  });

  it('attributionPngText carries method, baseline, steps, target and delta', () => {
    const text = attributionPngText(
      { method: 'integrated_gradients', baseline: 'blur(10)', steps: 50, rule: 'gausslegendre', target: { index: 3, label: 'circle', probability: 0.9 }, output: 'logit', completeness: { delta: 0.004, relative: 0.002 } },
      { image: 'a.png' },
    );
    expect(readPngText(addPngText(png, text))).toEqual({
      method: 'integrated_gradients', baseline: 'blur(10)', steps: '50', rule: 'gausslegendre', target: '3', label: 'circle', probability: '0.9',
      output: 'logit', delta: '0.004', relative_delta: '0.002', Software: 'serving-lens', image: 'a.png',
    });
  });
});

describe('atomic writes', () => {
  it('writePngAtomic leaves the PNG and no temporary file, and creates folders', async () => {
    const path = join(dir, 'nested', 'cat.png');
    await writePngAtomic(path, visualize(TINY_ATTRIBUTION), { method: 'ig', delta: 0.5 });
    expect(await readdir(join(dir, 'nested'))).toEqual(['cat.png']);
    const bytes = await readFile(path);
    expect(readPngText(bytes)).toEqual({ method: 'ig', delta: '0.5' });
    expect((await sharp(bytes).metadata()).width).toBe(3);
  });

  it('replaces an existing file whole', async () => {
    const path = join(dir, 'replace.json');
    await writeFile(path, 'old content that is longer than the new one');
    await writeJsonAtomic(path, { values: Float32Array.of(0.5, 1), nan: Number.NaN });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ values: [0.5, 1], nan: null });
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a failed write throws WRITE_FAILED and removes its temporary file', async () => {
    const target = join(dir, 'occupied');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'x'); // renaming a file over a non-empty folder fails
    try {
      await writeFileAtomic(target, 'data');
      expect.unreachable();
    } catch (e) {
      expect(isLensError(e, 'WRITE_FAILED')).toBe(true);
      expect((e as Error).message).toContain(target);
    }
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
