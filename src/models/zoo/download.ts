/**
 * Downloads into the user's cache: streamed to a temporary file while hashing (MD5 and
 * SHA-256), checked against the published checksum, then renamed into place, so a cache entry
 * is either complete and verified or absent. A JSON note next to each file records its hashes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LensError, errorMessage } from '../../core/errors.js';
import { withAtomicFile, writeFileAtomic } from '../../fs/atomic.js';

/**
 * The cache directory: LENS_CACHE_DIR, else $XDG_CACHE_HOME/serving-lens, else ~/.cache/serving-lens.
 *
 * @example
 * cacheDir(); // '/home/me/.cache/serving-lens'
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LENS_CACHE_DIR) return env.LENS_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'serving-lens');
  return join(homedir(), '.cache', 'serving-lens');
}

/** Progress of one download: bytes so far and the total when the server says it. */
export interface DownloadProgress {
  url: string;
  received: number;
  total?: number;
}

export interface DownloadOptions {
  url: string;
  /** Final path of the file. */
  dest: string;
  /** Expected MD5 (hex); checked when given. */
  md5?: string;
  /** Expected SHA-256 (hex); checked when given. */
  sha256?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Abort when no bytes arrive for this long. Default 60000 ms. */
  idleTimeoutMs?: number;
}

/** What is recorded next to a downloaded file (`<file>.json`). */
export interface DownloadRecord {
  url: string;
  bytes: number;
  md5: string;
  sha256: string;
  downloadedAt: string;
}

export function recordPath(dest: string): string {
  return `${dest}.json`;
}

/** The record of a completed download, or undefined when the file or its record is missing or sizes differ. */
export function readDownloadRecord(dest: string): DownloadRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(recordPath(dest), 'utf8')) as DownloadRecord;
    return statSync(dest).size === record.bytes ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Downloads `url` to `dest` atomically with checksum checks. Does nothing when `dest` already
 * holds a verified download with the expected checksums.
 *
 * @example
 * await downloadFile({ url, dest: join(cacheDir(), 'w.h5'), md5: '2cb95161c43110f7111970584f804107',
 *   onProgress: ({ received, total }) => console.error(received, total) });
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadRecord> {
  const { url, dest } = options;
  const existing = readDownloadRecord(dest);
  if (existing && (!options.md5 || existing.md5 === options.md5.toLowerCase()) && (!options.sha256 || existing.sha256 === options.sha256.toLowerCase())) {
    return existing;
  }
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const controller = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let received = 0;
  let record: DownloadRecord | undefined;
  try {
    await withAtomicFile(dest, async (_temp, out) => {
      arm();
      let response: Response;
      try {
        response = await fetch(url, { signal: controller.signal, redirect: 'follow' });
      } catch (e) {
        const cause = e instanceof Error && e.cause ? `: ${errorMessage(e.cause)}` : '';
        throw new LensError('DOWNLOAD_FAILED', `cannot download ${url}: ${errorMessage(controller.signal.reason ?? e)}${cause}`);
      }
      if (!response.ok || !response.body) throw new LensError('DOWNLOAD_FAILED', `cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
      const declared = Number(response.headers.get('content-length') ?? '');
      const total = Number.isFinite(declared) && declared > 0 ? declared : undefined;
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          arm();
          md5.update(chunk);
          sha256.update(chunk);
          received += chunk.length;
          await out.write(chunk);
          options.onProgress?.({ url, received, ...(total !== undefined ? { total } : {}) });
        }
      } catch (e) {
        throw new LensError('DOWNLOAD_FAILED', `download of ${url} broke off after ${received} bytes: ${errorMessage(controller.signal.reason ?? e)}`);
      }
      if (total !== undefined && received !== total) {
        throw new LensError('DOWNLOAD_FAILED', `download of ${url} ended after ${received} of ${total} bytes`);
      }
      const got: DownloadRecord = { url, bytes: received, md5: md5.digest('hex'), sha256: sha256.digest('hex'), downloadedAt: new Date().toISOString() };
      for (const [kind, expected] of [['md5', options.md5], ['sha256', options.sha256]] as const) {
        if (expected && got[kind] !== expected.toLowerCase()) {
          throw new LensError('CHECKSUM_MISMATCH', `${url}: ${kind} is ${got[kind]} but the published checksum is ${expected.toLowerCase()}; the file was discarded`);
        }
      }
      record = got;
    });
  } finally {
    clearTimeout(idle);
  }
  await writeFileAtomic(recordPath(dest), `${JSON.stringify(record, null, 2)}\n`);
  return record!;
}

/**
 * Accepts a file placed in the cache by hand (e.g. copied from another machine) when its
 * checksums match, writing its record; returns undefined when there is no such file.
 *
 * @example
 * await adoptExistingFile(join(cacheDir(), 'resnet50_weights_tf_dim_ordering_tf_kernels.h5'), { md5 });
 */
export async function adoptExistingFile(dest: string, expected: { url: string; md5?: string; sha256?: string }): Promise<DownloadRecord | undefined> {
  if (!existsSync(dest)) return undefined;
  const known = readDownloadRecord(dest);
  if (known) return known;
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(dest) as AsyncIterable<Buffer>) {
    md5.update(chunk);
    sha256.update(chunk);
    bytes += chunk.length;
  }
  const record: DownloadRecord = { url: expected.url, bytes, md5: md5.digest('hex'), sha256: sha256.digest('hex'), downloadedAt: new Date().toISOString() };
  for (const [kind, value] of [['md5', expected.md5], ['sha256', expected.sha256]] as const) {
    if (value && record[kind] !== value.toLowerCase()) {
      throw new LensError('CHECKSUM_MISMATCH', `${dest}: ${kind} is ${record[kind]} but the published checksum is ${value.toLowerCase()}; delete the file and download it again`);
    }
  }
  await writeFileAtomic(recordPath(dest), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}
