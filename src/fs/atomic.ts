/**
 * Writing files so that a kill at any moment leaves the old file or the whole new one, never a
 * half-written file, and never writing through a symbolic link: a temporary file is created
 * exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, so a link planted at its name is refused), filled,
 * fsynced, and renamed over the target after `lstat` has checked that the target is no link; the
 * folder is fsynced so the rename survives a power loss.
 *
 * Temporary files are named `.<name>.<pid>-<host>-<random>.tmp`. Live ones are removed when the
 * process exits (and on SIGINT/SIGTERM where the CLI asks for it, see {@link exitOnSignalRemovingTemps});
 * those of killed runs are removed by the next write into the same folder ({@link removeStaleTemps}).
 *
 * @example
 * await writeFileAtomic('out/report.md', '# Report\n');
 * await writeFileAtomic('/data/out/attributions/cat.png', png, { tmpDir: '/data/out/.tmp/shard-00001' });
 */
import { randomBytes } from 'node:crypto';
import { constants, rmSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { hostname, constants as osConstants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { LensError, errorMessage } from '../core/errors.js';
import { faultPoint } from './fault.js';

const HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 16);
const TAG = /^(\d+)-([A-Za-z0-9]{0,16})-[0-9a-f]{8}$/;
const TEMP_FILE = /^\.(.+)\.(\d+-[A-Za-z0-9]{0,16}-[0-9a-f]{8})\.tmp$/;
// Temporary files of earlier releases (`.<name>.<pid>.<random>.tmp`) name no host: only age tells.
const LEGACY_TEMP_FILE = /^\.(.+)\.\d+\.[0-9a-f]{8}\.tmp$/;
/** Temporary files of another host are only taken for abandoned after this long. */
const FOREIGN_STALE_MS = 24 * 3600_000;

/**
 * A tag unique to this process and call, `<pid>-<host>-<random>`, for naming temporary files and
 * folders so that a later run can tell whether their writer is gone ({@link isStaleTag}).
 *
 * @example
 * const tmp = join(base, `.1.tmp-${tempTag()}`);   // e.g. .1.tmp-4242-buildhost-9f00aa11
 */
export function tempTag(): string {
  return `${process.pid}-${HOST}-${randomBytes(4).toString('hex')}`;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when the writer of a temporary file with this tag is gone: on this host its process no
 * longer exists; from another host (a shared volume) the file has not changed for a day.
 *
 * @example
 * if (isStaleTag('4242-buildhost-9f00aa11', (await lstat(path)).mtimeMs)) await rm(path, { recursive: true });
 */
export function isStaleTag(tag: string, mtimeMs: number): boolean {
  const m = TAG.exec(tag);
  if (!m) return false;
  if (m[2] === HOST) return !processAlive(Number(m[1]));
  return Date.now() - mtimeMs > FOREIGN_STALE_MS;
}

// Temporary paths of this process still in use, removed on exit.
const liveTemps = new Set<string>();
let exitHookInstalled = false;

/**
 * Registers a temporary file or folder for removal at exit (and on SIGINT/SIGTERM with
 * {@link exitOnSignalRemovingTemps}); the returned function unregisters it once it is renamed away.
 *
 * @example
 * const untrack = trackTemp(tmpDir);
 * await rename(tmpDir, finalDir);
 * untrack();
 */
export function trackTemp(path: string): () => void {
  if (!exitHookInstalled) {
    process.on('exit', removeTrackedTempsSync);
    exitHookInstalled = true;
  }
  liveTemps.add(path);
  return () => liveTemps.delete(path);
}

/**
 * Removes every temporary file or folder of this process that is still registered.
 *
 * @example
 * process.on('exit', removeTrackedTempsSync);   // trackTemp installs this itself
 */
export function removeTrackedTempsSync(): void {
  for (const path of liveTemps) rmSync(path, { recursive: true, force: true });
  liveTemps.clear();
}

/**
 * For command-line programs: SIGINT and SIGTERM remove this process's temporary files, then end
 * the process by the same signal (exit status 128+n). A command that handles the signal itself
 * (a server draining, a batch finishing its image) keeps that behaviour: this handler then does nothing.
 *
 * @example
 * exitOnSignalRemovingTemps();   // once, at CLI start
 */
export function exitOnSignalRemovingTemps(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      removeTrackedTempsSync();
      process.off(signal, onSignal);
      process.exitCode = 128 + osConstants.signals[signal];
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Throws when `path` is a symbolic link; a missing path is fine.
 *
 * @example
 * await refuseSymlink('/data/out/report.json');
 */
export async function refuseSymlink(path: string): Promise<void> {
  let isLink = false;
  try {
    isLink = (await lstat(path)).isSymbolicLink();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (isLink) throw new LensError('WRITE_FAILED', `${path} is a symbolic link; refusing to write through it (remove the link or choose another output)`);
}

/**
 * Creates a folder (and its parents) and checks that the folder itself is a real folder, not a
 * symbolic link to somewhere else.
 *
 * @example
 * await ensureRealDir('/data/out/shards');
 */
export async function ensureRealDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new LensError('WRITE_FAILED', `cannot create folder ${dir}: ${errorMessage(e)}`, { cause: e });
  }
  const st = await lstat(dir);
  if (st.isSymbolicLink()) throw new LensError('WRITE_FAILED', `${dir} is a symbolic link; refusing to write through it (remove the link or choose another output)`);
  if (!st.isDirectory()) throw new LensError('WRITE_FAILED', `${dir} is not a folder`);
}

/**
 * Opens a file without following a symbolic link at its last component (`O_NOFOLLOW`), and checks
 * that it is a regular file. `flags` are `fs.constants` open flags.
 *
 * @example
 * const fh = await openNoFollow(journal, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND);
 */
export async function openNoFollow(path: string, flags: number, mode = 0o666): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, flags | constants.O_NOFOLLOW, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new LensError('WRITE_FAILED', `${path} is a symbolic link; refusing to open it`, { cause: e });
    }
    throw e;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new LensError('WRITE_FAILED', `${path} is not a regular file`);
  }
  return fh;
}

/**
 * fsyncs a folder so that renames inside it survive a power loss; filesystems that refuse are skipped.
 *
 * @example
 * await rename(tmp, finalDir);
 * await syncDir(base);
 */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await fh.sync();
  } catch {
    // Some network filesystems cannot fsync folders; the rename itself is still atomic.
  } finally {
    await fh?.close();
  }
}

/**
 * fsyncs every file and folder under `dir` (and `dir`), e.g. before a folder written by several
 * writers is renamed into place.
 *
 * @example
 * await syncTree('/models/resnet/.1.tmp-4242-buildhost-9f00aa11');
 */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) {
      const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }
  await syncDir(dir);
}

// Folders already swept for stale temporary files by this process.
const swept = new Set<string>();

/**
 * Removes the temporary files (`.<name>.<tag>.tmp`) that killed writers left in `dir`
 * ({@link isStaleTag}); returns their paths. Writes call it once per folder and process.
 *
 * @example
 * const removed = await removeStaleTemps('explanations');
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_FILE.exec(name);
    const legacy = !m && LEGACY_TEMP_FILE.test(name);
    if (!m && !legacy) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      const stale = m ? isStaleTag(m[2]!, st.mtimeMs) : Date.now() - st.mtimeMs > FOREIGN_STALE_MS;
      if (!st.isFile() || !stale) continue;
      await rm(path, { force: true });
      removed.push(path);
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}

export interface AtomicWriteOptions {
  /** Folder for the temporary file (same filesystem as the target); default: the target's folder. */
  tmpDir?: string;
}

/**
 * Writes a file atomically through `write`, which fills the temporary file at `tempPath` (through
 * the open `handle`, or by path for libraries that open files themselves, e.g. HDF5), then the
 * file is fsynced and renamed over `path`. Parent folders are created as needed. A symbolic link
 * at `path` is refused; on any failure the temporary file is removed.
 *
 * @example
 * await withAtomicFile('model.h5', async (tempPath) => { writeHdf5(tempPath); });
 */
export async function withAtomicFile(path: string, write: (tempPath: string, handle: FileHandle) => Promise<void>, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmpDir = options.tmpDir ?? dir;
  const temp = join(tmpDir, `.${basename(path).slice(0, 120)}.${tempTag()}.tmp`);
  const untrack = trackTemp(temp);
  try {
    await mkdir(dir, { recursive: true });
    if (tmpDir !== dir) await mkdir(tmpDir, { recursive: true });
    if (!swept.has(tmpDir)) {
      swept.add(tmpDir);
      await removeStaleTemps(tmpDir);
    }
    await refuseSymlink(path);
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666);
    try {
      await write(temp, handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await faultPoint('atomic-write:before-rename');
    await refuseSymlink(path);
    await rename(temp, path);
    untrack();
  } catch (e) {
    await rm(temp, { force: true }).catch(() => undefined);
    untrack();
    if (e instanceof LensError) throw e;
    throw new LensError('WRITE_FAILED', `cannot write ${path}: ${errorMessage(e)}`, { cause: e });
  }
  await syncDir(dir);
}

/**
 * Writes `data` to `path` atomically: temporary file (created exclusively, never through a link),
 * fsync, rename over `path` (refused when `path` is a symbolic link), fsync of the folder.
 *
 * @example
 * await writeFileAtomic('out/report.md', '# Report\n');
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await withAtomicFile(path, (_temp, handle) => handle.writeFile(data), options);
}
