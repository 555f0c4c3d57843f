/**
 * What one studio holds: the local model (loaded as `lens explain` loads it), the served model
 * when a server is given (through the same remote model as `lens explain --server`), the opened
 * images, and caches of forward passes and attributions so that repeated requests cost nothing.
 * Model work runs one job at a time (a queue), since the engines already use both cores.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as attribution from '../attribution/index.js';
import type { Attribution, CompareResult, ImageInput, Progress } from '../attribution/index.js';
import { expandImagePaths, loadMask, loadModelImages, maskBeside } from '../image/files.js';
import { modelLoadFlags, type ModelLoadSettings } from '../models/load-settings.js';
import type { ConnectionSettings } from '../serving/connection.js';
import { hostPort } from '../serving/connection.js';
import type { PathData, Prediction } from './wire.js';
import { LensError } from '../core/errors.js';
import type { LoadedImageModel } from '../models/load.js';
import type { ImageModel } from '../core/model.js';
import type { RemoteImageModel } from '../models/remote.js';
import { topK } from '../core/model.js';
import { pathProfile } from '../report/views.js';

/** Which model a request is about. */
export type ModelKind = 'local' | 'served';

/** An opened image at the model's input size. */
export interface StudioImage {
  id: string;
  /** Path, URL or uploaded file name, as shown and as written into exports. */
  name: string;
  /** A file the `lens` command line can read again (the temp copy for uploads). */
  path?: string;
  pixels: ImageInput;
  /** Ground-truth object mask (H*W, 1 inside), for shapes images and IMAGE.mask.png. */
  mask?: Uint8Array;
}

/** What an explanation was asked with (all text, as the CLI flags take it). */
export interface ExplainRequest {
  image: string;
  model: ModelKind;
  method: string;
  baseline: string;
  steps?: number;
  rule: string;
  target: string;
  seed: number;
}

/** A cached attribution with what it was computed from. */
export interface StudioAttribution {
  key: string;
  request: ExplainRequest;
  attribution: Attribution;
  /** Milliseconds the computation took (0 when it came from the cache). */
  millis: number;
}

export interface SessionOptions extends Pick<ModelLoadSettings, 'preprocess' | 'labels' | 'backend' | 'engine'> {
  /** MODEL as `lens explain --model` takes it. */
  model?: string;
  /** HOST:PORT of a TF Serving (or `lens serve`). */
  server?: string;
  servedModel?: string;
  /** Transport, Host header, TLS and metadata, as the client commands' connection flags give them. */
  connection?: ConnectionSettings;
  resize?: string;
  /** Largest upload in bytes. Default 20 MiB. */
  maxUploadBytes?: number;
  /** Attributions kept in memory. Default 48. */
  cacheSize?: number;
  log?: (line: string) => void;
}

const TOP_K = 5;

/** Loads the models and holds the studio's state. */
export class StudioSession {
  readonly images = new Map<string, StudioImage>();
  local?: LoadedImageModel;
  served?: RemoteImageModel;
  /** Why the served model is not there when a server was given. */
  servedError?: string;
  private closeServed = () => {};
  private readonly predictions = new Map<string, Prediction[]>();
  private readonly scores = new Map<string, Float32Array>();
  private readonly cache = new Map<string, StudioAttribution>();
  /** Milliseconds per gradient evaluation of the last computed attribution, per model. */
  private readonly msPerGradient = new Map<ModelKind, number>();
  private readonly curveCache = new Map<string, { deletion: attribution.Curve; insertion: attribution.Curve }>();
  private queue: Promise<unknown> = Promise.resolve();
  private uploadDir?: string;
  private counter = 0;
  readonly log: (line: string) => void;
  /** The CLI's own rules, for the command line shown with each view. */
  readonly maxUploadBytes: number;
  private readonly cacheSize: number;

  private constructor(readonly options: SessionOptions) {
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.maxUploadBytes = options.maxUploadBytes ?? 20 * 1024 * 1024;
    this.cacheSize = options.cacheSize ?? 48;
  }

  /**
   * Opens the models as `lens explain` does: backend first, then the local model, then the served one.
   *
   * @example
   * const session = await StudioSession.open({ model: 'default' });
   */
  static async open(options: SessionOptions): Promise<StudioSession> {
    const session = new StudioSession(options);
    if (!options.model && !options.server) throw new LensError('INVALID_ARGUMENT', 'give --model MODEL, or --server HOST:PORT --served-model NAME');
    const { initBackend } = await import('../engines/tfjs/index.js');
    await initBackend(options.backend !== undefined ? { backend: options.backend } : {});
    if (options.model) {
      const { loadImageModel } = await import('../models/load.js');
      session.local = await loadImageModel(options.model, modelLoadFlags(options));
      session.log(`studio: model ${session.local.name} (${session.local.engine.detail})`);
    }
    if (options.server) await session.connectServed();
    return session;
  }

  /** (Re)connects the served model; a dead server is reported, not fatal. */
  async connectServed(): Promise<void> {
    const { server, servedModel } = this.options;
    if (!server) throw new LensError('INVALID_ARGUMENT', 'the studio was started without --server');
    const name = servedModel ?? this.local?.name;
    if (!name) throw new LensError('INVALID_ARGUMENT', '--served-model NAME is needed with --server when no --model is given');
    this.closeServed();
    this.served = undefined;
    try {
      const { openServedModel } = await import('../models/remote.js');
      const remote = await openServedModel({
        target: hostPort(server),
        model: name,
        connection: this.options.connection ?? {},
        ...(this.local ? { like: this.local } : {}),
      });
      this.served = remote.model;
      this.closeServed = remote.close;
      this.servedError = undefined;
      this.log(`studio: served model ${name} at ${server}`);
    } catch (e) {
      this.servedError = e instanceof Error ? e.message : String(e);
      this.log(`studio: served model ${name} at ${server} is not available: ${this.servedError}`);
    }
    this.predictions.clear();
  }

  /** The model of a kind, or a clear error. */
  model(kind: ModelKind): ImageModel {
    const m = kind === 'served' ? this.served : this.local;
    if (m) return m;
    if (kind === 'served') throw new LensError('SERVING_ERROR', this.servedError ? `the served model is not available: ${this.servedError}` : 'the studio was started without --server');
    throw new LensError('INVALID_ARGUMENT', 'the studio was started without a local --model');
  }

  /** The model whose input size images are loaded at. */
  get primary(): ImageModel {
    return (this.local ?? this.served)!;
  }

  /** Runs model work one job at a time. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private nextId(): string {
    this.counter += 1;
    return `i${this.counter}`;
  }

  /** Opens image files, folders or URLs as `lens explain` expands them; masks beside images are read. */
  async addPaths(args: readonly string[]): Promise<StudioImage[]> {
    const paths = expandImagePaths(args);
    const pixels = await loadModelImages(paths, this.primary, this.options.resize);
    const [h, w] = this.primary.inputShape;
    const out: StudioImage[] = [];
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i]!;
      const maskPath = maskBeside(path);
      const mask = maskPath ? await loadMask(maskPath, [h, w]) : undefined;
      out.push(this.addImage({ name: path, path, pixels: pixels[i]!, ...(mask ? { mask } : {}) }));
    }
    return out;
  }

  /** Decodes uploaded bytes after writing them (only) into the studio's temporary folder. */
  async addUpload(fileName: string, bytes: Buffer): Promise<StudioImage> {
    if (bytes.length > this.maxUploadBytes) throw new LensError('IMAGE_TOO_LARGE', `${fileName}: ${bytes.length} bytes is over the upload limit of ${this.maxUploadBytes}`);
    if (bytes.length === 0) throw new LensError('IMAGE_DECODE', `${fileName}: the file is empty`);
    this.uploadDir ??= await mkdtemp(join(tmpdir(), 'lens-studio-'));
    // Only the base name's safe characters are kept: the file lands in the temp folder whatever the name says.
    const safe = basename(fileName).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '') || 'image';
    const path = join(this.uploadDir, `${randomBytes(4).toString('hex')}-${safe}`);
    await writeFile(path, bytes, { flag: 'wx' });
    try {
      const [image] = await loadModelImages([path], this.primary, this.options.resize);
      return this.addImage({ name: fileName, path, pixels: image! });
    } catch (e) {
      await rm(path, { force: true });
      // The message names the upload as the user knows it, not the temp copy.
      if (e instanceof LensError) throw new LensError(e.code, e.message.split(path).join(fileName));
      throw e;
    }
  }

  /** Adds generated images of the shapes dataset, with their ground-truth masks. */
  async addShapes(count: number, seed: number): Promise<StudioImage[]> {
    const [h, w] = this.primary.inputShape;
    if (h !== w) throw new LensError('MODEL_UNSUPPORTED', `the shapes dataset makes square images; model ${this.primary.name} takes ${h}x${w}`);
    const { generateShapes } = await import('../datasets/shapes.js');
    return generateShapes({ count, seed, size: h }).map((s) =>
      this.addImage({ name: `shape${s.index}-${s.className}`, pixels: { data: s.pixels, height: h, width: w, channels: 3 }, mask: s.mask }),
    );
  }

  private addImage(image: Omit<StudioImage, 'id'>): StudioImage {
    const full = { id: this.nextId(), ...image };
    this.images.set(full.id, full);
    this.log(`studio: opened ${image.name}`);
    return full;
  }

  image(id: string): StudioImage {
    const image = this.images.get(id);
    if (!image) throw new LensError('NOT_FOUND', `no image "${id}" is open`);
    return image;
  }

  /** Scores of a model on an image, computed once. */
  async scoresOf(kind: ModelKind, id: string): Promise<Float32Array> {
    const key = `${kind}/${id}`;
    const cached = this.scores.get(key);
    if (cached) return cached;
    const model = this.model(kind);
    const [row] = await this.run(() => attribution.forwardRows(model, [this.image(id).pixels.data], 1));
    this.scores.set(key, row!);
    return row!;
  }

  /** The top-k classes of a model on an image. */
  async predict(kind: ModelKind, id: string): Promise<Prediction[]> {
    const key = `${kind}/${id}`;
    const cached = this.predictions.get(key);
    if (cached) return cached;
    const model = this.model(kind);
    const probabilities = attribution.toProbabilities(await this.scoresOf(kind, id), model.output);
    const top = topK(probabilities, Math.min(TOP_K, model.classes), model.labels).map((t) => ({ index: t.index, probability: t.score, ...(t.label !== undefined ? { label: t.label } : {}) }));
    this.predictions.set(key, top);
    return top;
  }

  /** The cache key of a request (every field that changes the numbers). */
  static keyOf(r: ExplainRequest): string {
    return [r.model, r.image, r.method, r.baseline, r.steps ?? '', r.rule, r.target, r.seed].join('|');
  }

  /** How long `gradients` gradient evaluations of a model should take, from the last one computed (undefined before). */
  expectedMillis(kind: ModelKind, gradients: number): number | undefined {
    const ms = this.msPerGradient.get(kind);
    return ms === undefined ? undefined : ms * gradients;
  }

  /** Whether a request would be answered from the cache. */
  isCached(request: ExplainRequest): boolean {
    return this.cache.has(StudioSession.keyOf(request));
  }

  cached(key: string): StudioAttribution {
    const hit = this.cache.get(key);
    if (!hit) throw new LensError('NOT_FOUND', 'this attribution is no longer in the cache: explain again');
    return hit;
  }

  /** Parses a baseline spec as the CLI does, loading image:PATH baselines at the model's size. */
  async baselineSpec(text: string, model: ImageModel): Promise<attribution.BaselineSpec> {
    return attribution.resolveBaseline(attribution.parseBaseline(text), async (p) => (await loadModelImages([p], model, this.options.resize))[0]!);
  }

  /**
   * One attribution, from the cache or computed with `runMethod` and the settings `lens explain`
   * derives from the same flags (IG keeps its path for the explorer).
   */
  async explain(request: ExplainRequest, onProgress?: (p: Progress) => void, signal?: AbortSignal): Promise<StudioAttribution> {
    const key = StudioSession.keyOf(request);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return { ...hit, millis: 0 };
    }
    const model = this.model(request.model);
    const method = attribution.parseMethod(request.method);
    if (request.model === 'served' && !attribution.FORWARD_ONLY_METHODS.includes(method.name)) {
      throw new LensError('UNSUPPORTED', `method ${attribution.methodLabel(method)} needs gradients, which TF Serving does not compute: explain the local model, or use occlusion or rise on the served one`);
    }
    const image = this.image(request.image);
    const target = attribution.parseTarget(request.target);
    if (typeof target === 'object') throw new LensError('INVALID_ARGUMENT', 'the studio explains one target at a time: top1, a class index or a label');
    const settings: attribution.MethodSettings = {
      baseline: await this.baselineSpec(request.baseline, model),
      rule: attribution.parseIntegrationRule(request.rule),
      seed: request.seed,
      target,
      // F(x) once: the scores the studio shows are the method's input scores.
      inputScores: await this.scoresOf(request.model, image.id),
      ...(request.steps !== undefined ? { steps: request.steps } : {}),
      ...(method.name === 'ig' ? { returnPath: 'gradients' as const } : {}),
      ...(method.name === 'eg' ? { references: [...this.images.values()].filter((i) => i.id !== image.id).map((i) => i.pixels) } : {}),
      ...(onProgress ? { onProgress } : {}),
      ...(signal ? { signal } : {}),
    };
    const started = performance.now();
    const attr = await this.run(() => attribution.runMethod(method, model, image.pixels, settings));
    const entry: StudioAttribution = { key, request, attribution: attr, millis: performance.now() - started };
    if (attr.gradientEvaluations > 0) this.msPerGradient.set(request.model, entry.millis / attr.gradientEvaluations);
    this.cache.set(key, entry);
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }

  /** The baseline images an IG request integrated from (same seed, same construction as IG). */
  async baselineImages(request: ExplainRequest): Promise<Float32Array[]> {
    const model = this.model(request.model);
    const spec = await this.baselineSpec(request.baseline, model);
    return attribution.makeBaselines(model, this.image(request.image).pixels, spec, attribution.seededRandom(request.seed)).images;
  }

  /** The IG path of a cached attribution, reduced to what the path explorer draws. */
  async path(key: string): Promise<PathData> {
    const { attribution: attr, request } = this.cached(key);
    if (!attr.completeness) throw new LensError('INVALID_ARGUMENT', `the path explorer needs Integrated Gradients; this is ${attr.method}`);
    const { pointsPerBaseline: _, ...profile } = pathProfile(attr, this.image(request.image).pixels, await this.baselineImages(request));
    const c = attr.completeness;
    return { ...profile, inputScore: c.inputScore, baselineScore: c.baselineScore, delta: c.delta, relative: c.relative, rule: attr.rule ?? '' };
  }

  /** Deletion and insertion curves of cached attributions, on the image they explain. */
  async curves(keys: readonly string[], steps: number): Promise<{ key: string; deletion: attribution.Curve; insertion: attribution.Curve }[]> {
    const out = [];
    for (const key of keys) {
      const { attribution: attr, request } = this.cached(key);
      const hit = this.curveCache.get(`${key}|${steps}`);
      if (hit) {
        out.push({ key, ...hit });
        continue;
      }
      const model = this.model(request.model);
      const image = this.image(request.image).pixels;
      const [deletion, insertion] = await this.run(async () => [
        await attribution.attributionCurve(model, image, attr, 'deletion', { steps }),
        await attribution.attributionCurve(model, image, attr, 'insertion', { steps }),
      ]);
      out.push({ key, deletion: deletion!, insertion: insertion! });
      this.curveCache.set(`${key}|${steps}`, { deletion: deletion!, insertion: insertion! });
      // As many curve pairs are kept as attributions.
      while (this.curveCache.size > this.cacheSize) this.curveCache.delete(this.curveCache.keys().next().value!);
    }
    return out;
  }

  /** The quality metrics with 95% intervals over the given images (`lens compare`'s computation). */
  async compare(imageIds: readonly string[], baselines: readonly string[], options: { steps: number; rule: string; target: string; seed: number; curveSteps: number; onProgress?: (p: Progress) => void }): Promise<CompareResult> {
    const model = this.model('local');
    const items = imageIds.map((id) => {
      const i = this.image(id);
      return { name: i.name, image: i.pixels, ...(i.mask ? { mask: i.mask } : {}) };
    });
    const entries: attribution.BaselineEntry[] = [];
    for (const token of baselines) entries.push(token.toLowerCase() === 'expected' ? { name: 'expected', spec: 'expected' } : { name: token, spec: await this.baselineSpec(token, model) });
    const target = attribution.parseTarget(options.target);
    if (typeof target === 'object') throw new LensError('INVALID_ARGUMENT', 'metrics explain one target per image: top1, a class index or a label');
    return this.run(() =>
      attribution.compareBaselines(model, items, entries, {
        steps: options.steps,
        rule: attribution.parseIntegrationRule(options.rule),
        target,
        seed: options.seed,
        curveSteps: options.curveSteps,
        keep: 0,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      }),
    );
  }

  /** `lens verify`'s check, image by image. */
  async verify(tolerance: number): Promise<attribution.AgreementReport> {
    const local = this.model('local');
    const served = this.model('served');
    const images = [...this.images.values()];
    if (images.length === 0) throw new LensError('INVALID_ARGUMENT', 'open an image first');
    const files = images.map((i) => i.path);
    // As lens verify: a signature that decodes images gets the files' own bytes on both sides.
    if (this.served?.inputKind === 'jpeg' && files.every((f): f is string => f !== undefined)) {
      const localSavedModel = this.local?.info.format === 'savedmodel' ? this.local.info.path : undefined;
      return this.run(async () => (await attribution.checkEncodedParity({ served: this.served as RemoteImageModel, local, images: files, tolerance, ...(localSavedModel ? { localSavedModel } : {}) })).serving);
    }
    return this.run(() => attribution.compareModels(local, served, images.map((i) => ({ name: i.path ?? i.name, image: i.pixels })), { tolerance }));
  }

  /** Releases the models and removes uploaded files. */
  async close(): Promise<void> {
    this.closeServed();
    this.local?.dispose();
    if (this.uploadDir) await rm(this.uploadDir, { recursive: true, force: true });
  }
}
