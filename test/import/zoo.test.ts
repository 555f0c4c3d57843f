import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLensError } from '../../src/core/errors.js';
import { cacheDir, downloadFile, downloadZooModel, loadZooModel, zooStatus, type DownloadProgress } from '../../src/models/zoo/index.js';
import { runLens } from '../helpers/cli.js';

const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const md5 = createHash('md5').update(payload).digest('hex');
const sha256 = createHash('sha256').update(payload).digest('hex');
let server: Server;
let base = '';
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/file.bin' || req.url === '/resnet50_weights_tf_dim_ordering_tf_kernels.h5') {
      res.writeHead(200, { 'content-length': String(payload.length) });
      // In chunks, so that progress is reported more than once.
      for (let i = 0; i < payload.length; i += 65536) res.write(payload.subarray(i, i + 65536));
      res.end();
    } else if (req.url === '/short.bin') {
      res.writeHead(200, { 'content-length': String(payload.length) });
      // Fewer bytes than announced, then the connection drops.
      res.write(payload.subarray(0, 1000), () => res.socket?.destroy());
    } else {
      res.writeHead(404).end('no such file');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

async function expectLensError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isLensError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an error');
}

describe('downloader', () => {
  it('downloads with progress, verifies MD5 and SHA-256, records them and serves later calls from the cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lens-dl-'));
    const dest = join(dir, 'sub', 'file.bin');
    const progress: DownloadProgress[] = [];
    const record = await downloadFile({ url: `${base}/file.bin`, dest, md5, sha256, onProgress: (p) => progress.push(p) });
    expect(readFileSync(dest).equals(payload)).toBe(true);
    expect(record).toMatchObject({ bytes: payload.length, md5, sha256, url: `${base}/file.bin` });
    expect(JSON.parse(readFileSync(`${dest}.json`, 'utf8'))).toMatchObject({ md5, sha256 });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.every((p, i) => p.total === payload.length && (i === 0 || p.received >= progress[i - 1]!.received))).toBe(true);
    expect(progress.at(-1)!.received).toBe(payload.length);
    const before = hits.length;
    await downloadFile({ url: `${base}/file.bin`, dest, md5 });
    expect(hits.length).toBe(before); // cached: no request
    expect(readdirSync(join(dir, 'sub')).sort()).toEqual(['file.bin', 'file.bin.json']);
  });

  it('discards a file whose checksum differs, leaving nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lens-dl-'));
    const dest = join(dir, 'file.bin');
    await expectLensError(downloadFile({ url: `${base}/file.bin`, dest, sha256: '0'.repeat(64) }), 'CHECKSUM_MISMATCH', new RegExp(`sha256 is ${sha256} but the published checksum is 0{64}`));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports HTTP errors, short bodies and refused connections', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lens-dl-'));
    await expectLensError(downloadFile({ url: `${base}/missing.bin`, dest: join(dir, 'a') }), 'DOWNLOAD_FAILED', /HTTP 404/);
    await expectLensError(downloadFile({ url: `${base}/short.bin`, dest: join(dir, 'b') }), 'DOWNLOAD_FAILED', /short\.bin broke off after 1000 bytes/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expectLensError(downloadFile({ url: `http://127.0.0.1:${port}/x`, dest: join(dir, 'c') }), 'DOWNLOAD_FAILED', /ECONNREFUSED/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('uses XDG_CACHE_HOME, then ~/.cache, with LENS_CACHE_DIR first', () => {
    expect(cacheDir({ LENS_CACHE_DIR: '/x/lens', XDG_CACHE_HOME: '/y' })).toBe('/x/lens');
    expect(cacheDir({ XDG_CACHE_HOME: '/y' })).toBe('/y/serving-lens');
    expect(cacheDir({})).toMatch(/\.cache\/serving-lens$/);
  });
});

describe('zoo', () => {
  it('reports cache state, refuses to load uncached models and checks the published MD5 through a mirror', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lens-zoo-'));
    const [resnet] = zooStatus({ cacheDir: dir });
    expect(resnet).toMatchObject({ id: 'resnet50', cached: false, classes: 1000, preprocessing: 'caffe' });
    expect(resnet!.files[0]!.url).toBe('https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5');
    expect(resnet!.files[0]!.md5).toBe('2cb95161c43110f7111970584f804107');
    await expectLensError(loadZooModel('resnet50', { cacheDir: dir }), 'NOT_FOUND', /not in the cache .*run: lens models download resnet50/);
    await expectLensError(loadZooModel('vgg99', { cacheDir: dir }), 'UNKNOWN_MODEL', /no zoo model "vgg99"; the zoo has resnet50/);
    // The mirror serves other bytes under the official name: refused, and the cache stays empty.
    await expectLensError(downloadZooModel('resnet50', { cacheDir: dir, mirror: `${base}/` }), 'CHECKSUM_MISMATCH', new RegExp(`md5 is ${md5} but the published checksum is 2cb95161c43110f7111970584f804107`));
    expect(readdirSync(dir)).toEqual([]);
    // A file copied into the cache by hand is checked too.
    writeFileSync(join(dir, 'resnet50_weights_tf_dim_ordering_tf_kernels.h5'), payload);
    await expectLensError(loadZooModel('resnet50', { cacheDir: dir }), 'CHECKSUM_MISMATCH', /delete the file and download it again/);
  });

  it('lens models lists the zoo and lens models download fails cleanly on a bad mirror', async () => {
    const xdg = mkdtempSync(join(tmpdir(), 'lens-xdg-'));
    const listed = await runLens(['models', '--json'], { env: { XDG_CACHE_HOME: xdg, LENS_CACHE_DIR: '' } });
    expect(listed.code).toBe(0);
    const json = JSON.parse(listed.stdout) as { cacheDir: string; models: { id: string; cached: boolean }[] };
    expect(json.cacheDir).toBe(join(xdg, 'serving-lens'));
    expect(json.models.map((m) => [m.id, m.cached])).toEqual([['resnet50', false]]);
    const text = await runLens(['models'], { env: { XDG_CACHE_HOME: xdg, LENS_CACHE_DIR: '' } });
    expect(text.stdout).toMatch(/resnet50\s+not cached/);
    expect(text.stdout).toMatch(/download: lens models download resnet50/);
    const failed = await runLens(['models', 'download', 'resnet50', '--mirror', base], { env: { XDG_CACHE_HOME: xdg, LENS_CACHE_DIR: '' } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/md5 is [0-9a-f]{32} but the published checksum is 2cb95161c43110f7111970584f804107/);
    expect(existsSync(join(xdg, 'serving-lens', 'resnet50_weights_tf_dim_ordering_tf_kernels.h5'))).toBe(false);
  });
});
