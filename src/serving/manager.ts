/**
 * The model manager: which versions of which models are loaded, following TF Serving's file-system
 * source and availability-preserving policy. Each model has a base path whose numeric sub-folders
 * are versions; a version policy (latest N, all, specific) picks the aspired ones; polling the base
 * path loads new versions first and unloads old ones only once a newer one is AVAILABLE, so a request
 * never meets an empty model. Requests hold a reference to the version they run on; an unloading
 * version is disposed only after its last request finishes.
 *
 * Version states are the real server's: START -> LOADING -> AVAILABLE -> UNLOADING -> END, with END
 * carrying the load error when loading failed.
 *
 * @example
 * const manager = new ModelManager({ loader: savedModelLoader() });
 * await manager.configure([{ name: 'half', basePath: '../shared/testdata/savedmodels/saved_model_half_plus_two_2_versions', policy: { all: true } }]);
 * const handle = manager.acquire({ name: 'half', version: 123 });
 * try { await handle.servable.run('serving_default', inputs, ['y']); } finally { handle.release(); }
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { Servable } from './servable.js';
import { ServingError, toServingError, type StatusName } from './status.js';

/** Which versions on disk to serve. */
export type VersionPolicy = { latest: number } | { all: true } | { specific: number[] };

/** One served model: a name, the folder of its numeric versions, a policy and version labels. */
export interface ModelSource {
  name: string;
  basePath: string;
  /** Default: the latest version only. */
  policy?: VersionPolicy;
  /** Label -> version, usable as ModelSpec.version_label (e.g. stable -> 1, canary -> 2). */
  labels?: Record<string, number>;
}

export type VersionState = 'START' | 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'END';

export interface VersionStatus {
  version: number;
  state: VersionState;
  status: { code: StatusName; message: string };
}

/** Loads the version folder `dir` of model `id.name`. */
export type ServableLoader = (dir: string, id: { name: string; version: number }) => Promise<Servable>;

/** A loaded version lent to one request; call `release` when the request is done with it. */
export interface ServableHandle {
  name: string;
  version: number;
  servable: Servable;
  release(): void;
}

export interface ModelManagerOptions {
  loader: ServableLoader;
  /** Wraps each loaded servable (e.g. with batching) before it becomes available. */
  wrap?: (servable: Servable, id: { name: string; version: number }) => Servable;
  /** Seconds between polls of the base paths; 0 polls once at configuration (default 1). */
  pollWaitSeconds?: number;
  /** Receives one line per lifecycle event, in the real server's words. */
  log?: (line: string) => void;
}

interface VersionEntry {
  version: number;
  state: VersionState;
  status: { code: StatusName; message: string };
  servable?: Servable;
  /** The folder it was loaded from (a reload may point the model at another base path). */
  dir?: string;
  /** A folder that failed to replace it (not tried again until the configuration changes). */
  failedDir?: string;
  refs: number;
  /** Resolves when the last reference is released while unloading. */
  drained?: () => void;
}

interface ModelEntry {
  source: ModelSource;
  versions: Map<number, VersionEntry>;
  /** False once the model is dropped from the configuration. */
  configured: boolean;
  /** Set when its configuration failed: it stays configured (NOT_SERVING) but is not polled. */
  failed?: boolean;
}

const OK = { code: 'OK' as StatusName, message: '' };

function servableId(name: string, version: number): string {
  return `{name: ${name} version: ${version}}`;
}

/**
 * Numeric version folders under a base path, as version -> folder path ("00000123" is version
 * 123). Non-numeric names are ignored, as the real server does.
 */
export async function listVersions(basePath: string): Promise<Map<number, string>> {
  const names = (await readdir(basePath)).sort();
  const out = new Map<number, string>();
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const v = Number(n);
    if (!Number.isSafeInteger(v) || out.has(v)) continue;
    const s = await stat(join(basePath, n)).catch(() => null);
    if (s?.isDirectory()) out.set(v, join(basePath, n));
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}

/** The versions a policy aspires to among those on disk. */
export function aspiredVersions(onDisk: readonly number[], policy: VersionPolicy = { latest: 1 }): number[] {
  const sorted = [...onDisk].sort((a, b) => a - b);
  if ('all' in policy) return sorted;
  if ('specific' in policy) return sorted.filter((v) => policy.specific.includes(v));
  return sorted.slice(Math.max(0, sorted.length - Math.max(1, policy.latest)));
}

export class ModelManager {
  private readonly models = new Map<string, ModelEntry>();
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private closed = false;
  private readonly log: (line: string) => void;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: ModelManagerOptions) {
    this.log = options.log ?? (() => {});
  }

  /**
   * Sets the served models (first configuration or a reload): loads what new or changed sources
   * aspire to, unloads models no longer configured, and checks version labels. Resolves when every
   * aspired version is AVAILABLE or failed; rejects with a ServingError when a base path is missing,
   * a model has no loadable version, or a label names a version that is not available.
   * A failing model is also logged, unless `logFailures` is false (the first configuration, whose
   * rejection its caller reports: `lens serve` would print the same fault twice).
   */
  configure(sources: readonly ModelSource[], { logFailures = true }: { logFailures?: boolean } = {}): Promise<void> {
    return this.serial(async () => {
      const names = new Set<string>();
      for (const s of sources) {
        if (!s.name) throw new ServingError('INVALID_ARGUMENT', 'model config has a model without a name');
        if (names.has(s.name)) throw new ServingError('INVALID_ARGUMENT', `Illegal to list model ${s.name} multiple times in config list`);
        names.add(s.name);
        if (!s.basePath) throw new ServingError('INVALID_ARGUMENT', `model ${s.name} has no base_path`);
      }
      for (const [name, entry] of this.models) {
        if (!names.has(name) && entry.configured) {
          entry.configured = false;
          await this.reconcileModel(entry, new Map());
        }
      }
      const previous = new Map<string, ModelSource | undefined>();
      for (const s of sources) {
        const source = { ...s, basePath: resolve(s.basePath) };
        const entry = this.models.get(s.name);
        previous.set(s.name, entry?.configured ? entry.source : undefined);
        if (entry) {
          entry.source = source;
          entry.configured = true;
          entry.failed = false;
        } else this.models.set(s.name, { source, versions: new Map(), configured: true });
      }
      this.changed();
      for (const s of sources) {
        const entry = this.models.get(s.name)!;
        try {
          const versions = (await this.diskVersions(entry, true)) ?? new Map<number, string>();
          await this.reconcileModel(entry, versions);
          if (![...entry.versions.values()].some((v) => v.state === 'AVAILABLE')) {
            const failed = [...entry.versions.values()].find((v) => v.state === 'END' && v.status.code !== 'OK');
            if (failed) throw new ServingError(failed.status.code as Exclude<StatusName, 'OK'>, failed.status.message);
          }
          this.checkLabels(entry);
        } catch (e) {
          // A model that fails to configure is not polled: it goes back to what it served before,
          // or, when new, is dropped (its failed versions stay visible in GetModelStatus).
          const before = previous.get(s.name);
          if (before) entry.source = before;
          else entry.failed = true;
          if (logFailures) this.log(`Model ${s.name} ${before ? `keeps serving from ${before.basePath}` : 'is not served and not polled'}: ${errorMessage(e)}`);
          this.changed();
          throw e;
        }
      }
    });
  }

  /**
   * Calls `listener` after every change of a version's state and of the set of configured models
   * (what health checking watches). Returns the function that unsubscribes it.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts polling base paths for new and removed versions (no-op when pollWaitSeconds <= 0). */
  startPolling(): void {
    const seconds = this.options.pollWaitSeconds ?? 1;
    if (seconds <= 0 || this.timer || this.closed) return;
    this.timer = setInterval(() => void this.poll().catch((e) => this.log(`poll failed: ${errorMessage(e)}`)), seconds * 1000);
    this.timer.unref();
  }

  /** One poll of every configured model's base path (what the timer runs). */
  poll(): Promise<void> {
    return this.serial(async () => {
      for (const entry of this.models.values()) {
        if (!entry.configured || entry.failed) continue;
        const versions = await this.diskVersions(entry, false);
        if (versions) await this.reconcileModel(entry, versions);
      }
    });
  }

  /**
   * Lends the version a ModelSpec asks for. Errors are the real server's: unknown model or version
   * NOT_FOUND "Servable not found for request: Latest(m)" / "Specific(m, v)", unknown label
   * INVALID_ARGUMENT "Unrecognized servable version label: l".
   */
  acquire(spec: { name: string; version?: number | null; label?: string | null }): ServableHandle {
    if (!spec.name) throw new ServingError('INVALID_ARGUMENT', 'ModelSpec has no name specified.');
    const entry = this.models.get(spec.name);
    let version = spec.version ?? undefined;
    if (spec.label) {
      const labelled = entry?.source.labels?.[spec.label];
      if (labelled === undefined) throw new ServingError('INVALID_ARGUMENT', `Unrecognized servable version label: ${spec.label}`);
      version = labelled;
    }
    let v: VersionEntry | undefined;
    if (version !== undefined) {
      v = entry?.versions.get(version);
      if (v?.state !== 'AVAILABLE') throw new ServingError('NOT_FOUND', `Servable not found for request: Specific(${spec.name}, ${version})`);
    } else {
      for (const e of entry?.versions.values() ?? []) if (e.state === 'AVAILABLE' && (!v || e.version > v.version)) v = e;
      if (!v) throw new ServingError('NOT_FOUND', `Servable not found for request: Latest(${spec.name})`);
    }
    const held = v;
    held.refs++;
    let released = false;
    return {
      name: spec.name,
      version: held.version,
      servable: held.servable!,
      release: () => {
        if (released) return;
        released = true;
        held.refs--;
        if (held.refs === 0) held.drained?.();
      },
    };
  }

  /**
   * Version states of a model (every version the manager has tracked, ascending), or of one
   * version. NOT_FOUND "Could not find any versions of model m" / "Could not find version v of model m".
   */
  status(name: string, version?: number | null): VersionStatus[] {
    const entry = this.models.get(name);
    const all = [...(entry?.versions.values() ?? [])].sort((a, b) => a.version - b.version);
    if (version !== undefined && version !== null) {
      const v = all.find((e) => e.version === version);
      if (!v) throw new ServingError('NOT_FOUND', `Could not find version ${version} of model ${name}`);
      return [{ version: v.version, state: v.state, status: { ...v.status } }];
    }
    if (all.length === 0) throw new ServingError('NOT_FOUND', `Could not find any versions of model ${name}`);
    return all.map((v) => ({ version: v.version, state: v.state, status: { ...v.status } }));
  }

  /** The version a label points to, if the model has that label. */
  labelVersion(name: string, label: string): number | undefined {
    return this.models.get(name)?.source.labels?.[label];
  }

  /** Configured models with their available versions and labels (for startup messages). */
  describe(): { name: string; basePath: string; available: number[]; labels: Record<string, number> }[] {
    return [...this.models.values()]
      .filter((m) => m.configured)
      .map((m) => ({
        name: m.source.name,
        basePath: m.source.basePath,
        available: [...m.versions.values()].filter((v) => v.state === 'AVAILABLE').map((v) => v.version).sort((a, b) => a - b),
        labels: { ...(m.source.labels ?? {}) },
      }));
  }

  /** Stops polling, waits for in-flight requests, and unloads every version. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.serial(async () => {
      for (const entry of this.models.values()) {
        entry.configured = false;
        await this.reconcileModel(entry, new Map());
      }
      this.changed();
    });
  }

  private changed(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (e) {
        this.log(`model state listener failed: ${errorMessage(e)}`);
      }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async diskVersions(entry: ModelEntry, strict: boolean): Promise<Map<number, string> | null> {
    const { name, basePath } = entry.source;
    let versions: Map<number, string>;
    try {
      versions = await listVersions(basePath);
    } catch {
      const message = `Could not find base path ${basePath} for servable ${name}`;
      if (strict) throw new ServingError('NOT_FOUND', message);
      this.log(message);
      return null;
    }
    if (versions.size === 0) {
      const message = `No versions of servable ${name} found under base path ${basePath}. Did you forget to name your leaf directory as a number (eg. '/1/')?`;
      if (strict) throw new ServingError('NOT_FOUND', message);
      this.log(message);
    }
    return versions;
  }

  private async reconcileModel(entry: ModelEntry, disk: ReadonlyMap<number, string>): Promise<void> {
    const { name } = entry.source;
    const onDisk = [...disk.keys()];
    const aspired = entry.configured ? aspiredVersions(onDisk, entry.source.policy) : [];
    if (entry.configured && 'specific' in (entry.source.policy ?? {})) {
      for (const v of (entry.source.policy as { specific: number[] }).specific) {
        if (!onDisk.includes(v)) this.log(`Version ${v} of servable ${name} is specified in the version policy but not found under ${entry.source.basePath}`);
      }
    }
    // Load first: the availability-preserving policy never leaves a model without a version.
    // A version served from another folder (the base path changed) is loaded again from this one.
    const toLoad = aspired.filter((v) => {
      const e = entry.versions.get(v);
      return !e || (e.state === 'END' && e.status.code === 'OK') || (e.state === 'AVAILABLE' && e.dir !== disk.get(v) && e.failedDir !== disk.get(v));
    });
    for (const version of toLoad) await this.load(entry, version, disk.get(version)!);
    const anyAspiredAvailable = aspired.some((v) => entry.versions.get(v)?.state === 'AVAILABLE');
    const stale = [...entry.versions.values()].filter((e) => e.state === 'AVAILABLE' && !aspired.includes(e.version));
    if (stale.length && (anyAspiredAvailable || aspired.length === 0)) {
      await Promise.all(stale.map((e) => this.unload(name, e)));
    }
  }

  private async load(entry: ModelEntry, version: number, dir: string): Promise<void> {
    const { name } = entry.source;
    const e: VersionEntry = { version, state: 'START', status: OK, dir, refs: 0 };
    // Replacing a version loaded from another folder: the old one serves until the new one is in.
    const replaced = entry.versions.get(version)?.state === 'AVAILABLE' ? entry.versions.get(version) : undefined;
    if (!replaced) entry.versions.set(version, e);
    e.state = 'LOADING';
    this.changed();
    this.log(`Loading servable version ${servableId(name, version)} from ${dir}`);
    try {
      let servable = await this.options.loader(dir, { name, version });
      if (this.options.wrap) servable = this.options.wrap(servable, { name, version });
      e.servable = servable;
      e.state = 'AVAILABLE';
      if (replaced) entry.versions.set(version, e);
      this.changed();
      this.log(`Successfully loaded servable version ${servableId(name, version)}`);
      if (replaced) await this.unload(name, replaced);
    } catch (err) {
      const s = toServingError(err);
      e.state = 'END';
      e.status = { code: s.status, message: `Loading servable: ${servableId(name, version)} failed: ${s.message}` };
      if (replaced) {
        replaced.failedDir = dir;
        this.log(`${e.status.message}; version ${version} keeps serving from ${replaced.dir}`);
      }
      else {
        this.changed();
        this.log(e.status.message);
      }
    }
  }

  private async unload(name: string, e: VersionEntry): Promise<void> {
    e.state = 'UNLOADING';
    this.changed();
    this.log(`Unloading servable version ${servableId(name, e.version)}`);
    if (e.refs > 0) await new Promise<void>((done) => (e.drained = done));
    try {
      await e.servable?.dispose();
    } catch (err) {
      this.log(`Unloading servable ${servableId(name, e.version)} raised: ${errorMessage(err)}`);
    }
    e.servable = undefined;
    e.state = 'END';
    e.status = OK;
    this.changed();
    this.log(`Done unloading servable version ${servableId(name, e.version)}`);
  }

  private checkLabels(entry: ModelEntry): void {
    for (const [label, version] of Object.entries(entry.source.labels ?? {})) {
      if (entry.versions.get(version)?.state !== 'AVAILABLE') {
        throw new ServingError(
          'FAILED_PRECONDITION',
          `Request to assign label to version ${version} of model ${entry.source.name}, which is not currently available for inference.`,
        );
      }
    }
  }
}
