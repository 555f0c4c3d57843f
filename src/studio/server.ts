/**
 * The studio's web server: an express app serving the bundled front end (built into
 * dist/studio-web by `npm run build`, nothing from a CDN) and a JSON/SSE API over a
 * {@link StudioSession}. It binds 127.0.0.1 unless told otherwise; on any other host every request
 * must carry the random token printed in the URL (kept in a cookie once the page is open).
 * Errors answer with `{ error }` and a line in the log; the server keeps serving.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { COMPARE_METRICS, IG_RULES, BASELINE_NAMES, METHOD_NAMES, type Attribution } from '../attribution/index.js';
import { splitBaselineList } from '../attribution/baselines.js';
import { LensError, errorMessage } from '../core/errors.js';
import { encodePng } from '../image/index.js';
import { ATTRIBUTION_SIGNS, DEFAULT_VIEW, VISUALIZATION_METHODS, createRgba, encodeRgbaPng, parseAttributionSign, parseVisualizationMethod, sharedScale } from '../render/index.js';
import { compareCommandLine, explainCommandLine, exportAttribution, exportCurvesView, exportPathView, gridSvg, panelPicture, shownMap, type ExportedFiles } from './export.js';
import { StudioSession, type ExplainRequest, type ModelKind, type SessionOptions, type StudioAttribution, type StudioImage } from './session.js';
import type { PanelResult } from './wire.js';

/** Where `npm run build` puts the front end (same relative place from src/studio and dist/studio). */
export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/studio-web');

export interface StudioOptions extends SessionOptions {
  /** Images (paths, folders, URLs) opened at start. */
  images?: readonly string[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Token required on every request; default: random when the host is not loopback, none otherwise. */
  token?: string;
}

export interface RunningStudio {
  /** The address to open (with `?token=` when a token is required). */
  url: string;
  port: number;
  session: StudioSession;
  close(): Promise<void>;
}

/** IG requests of at least this many steps may show a coarse preview first. */
export const PREVIEW_MIN_STEPS = 24;
/** Steps of the coarse preview. */
export const PREVIEW_STEPS = 8;
/** A request the model should finish within this many milliseconds needs no preview (it would only delay the picture). */
export const PREVIEW_WORTH_MS = 1000;

/**
 * The steps of a coarse first pass for an IG request, or undefined when it needs none: few steps,
 * or a model fast enough (by its last computation) to show the final picture at once.
 */
function previewSteps(session: StudioSession, request: Omit<ExplainRequest, 'baseline'>): number | undefined {
  if (request.method !== 'ig' || request.steps === undefined || request.steps < PREVIEW_MIN_STEPS) return undefined;
  const expected = session.expectedMillis(request.model, request.steps);
  return expected !== undefined && expected < PREVIEW_WORTH_MS ? undefined : PREVIEW_STEPS;
}

/** What the page shows of one explained panel (wire.ts `PanelResult`). */
function panelResult(entry: StudioAttribution, panel: number, preview: boolean): PanelResult {
  const a = entry.attribution;
  return {
    key: entry.key,
    panel,
    preview,
    baseline: entry.request.baseline,
    millis: entry.millis,
    method: a.method,
    target: a.target,
    output: a.output,
    steps: a.steps ?? null,
    rule: a.rule ?? null,
    description: a.baseline ?? null,
    completeness: a.completeness ?? null,
    hasPath: a.path !== undefined && a.completeness !== undefined,
    gradientEvaluations: a.gradientEvaluations,
  };
}

const EXPORT_TYPES = { png: 'png', npy: 'application/octet-stream', json: 'application/json' } as const;

const isLoopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');

function status(e: unknown): number {
  if (e instanceof LensError) {
    if (e.code === 'NOT_FOUND') return 404;
    if (e.code === 'IMAGE_TOO_LARGE') return 413;
    if (e.code === 'SERVING_ERROR') return 502;
    if (e.code === 'INTERNAL') return 500;
    return 400;
  }
  return 500;
}

/** Query parameters as text (first value). */
function q(req: Request, name: string, fallback?: string): string {
  const v = req.query[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (typeof s === 'string' && s !== '') return s;
  if (fallback !== undefined) return fallback;
  throw new LensError('INVALID_ARGUMENT', `missing parameter "${name}"`);
}

function qInt(req: Request, name: string, fallback?: number): number | undefined {
  const raw = q(req, name, '');
  if (raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new LensError('INVALID_ARGUMENT', `${name} must be a whole number, got "${raw}"`);
  return n;
}

function modelKind(req: Request): ModelKind {
  const kind = q(req, 'model', 'local');
  if (kind !== 'local' && kind !== 'served') throw new LensError('INVALID_ARGUMENT', `model must be local or served, got "${kind}"`);
  return kind;
}

function rendering(req: Request) {
  return { viz: parseVisualizationMethod(q(req, 'viz', DEFAULT_VIEW.viz)), sign: parseAttributionSign(q(req, 'sign', DEFAULT_VIEW.sign)) };
}

/** The scale the maps share, or undefined for conventions without a value scale (outline, masked pictures of PAIR's kinds), which draw each map alone. */
function optionalSharedScale(maps: readonly Attribution[], view: ReturnType<typeof rendering>): number | undefined {
  try {
    return sharedScale(maps.map((m) => shownMap(m, view.viz)), { method: view.viz, sign: view.sign });
  } catch (e) {
    if (!(e instanceof LensError)) throw e;
    return undefined;
  }
}

/** The settings of `lens compare` as the metrics view's query gives them. */
function compareSettings(req: Request) {
  return {
    steps: qInt(req, 'steps', 32)!,
    rule: q(req, 'rule', 'gausslegendre'),
    target: q(req, 'target', 'top1'),
    seed: qInt(req, 'seed', 0)!,
    curveSteps: qInt(req, 'curveSteps', 16)!,
  };
}

/**
 * Server-sent events on a response; `signal` aborts when the browser goes away. `send` resolves
 * once the event is handed to the socket, which matters before a long synchronous computation.
 */
function eventStream(req: Request, res: Response) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const abort = new AbortController();
  req.on('close', () => abort.abort());
  return {
    signal: abort.signal,
    send(event: string, data: unknown): Promise<void> {
      if (res.writableEnded) return Promise.resolve();
      return new Promise((resolve) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`, () => resolve()));
    },
    end() {
      if (!res.writableEnded) res.end();
    },
  };
}

/** The mask's outline (object pixels with a neighbour outside), yellow on clear, so the map under it stays visible. */
/**
 * Runs `job` on an event stream: `done` when it ends, `failure` (and a log line) when it throws
 * while the client is still there, and the stream closed either way.
 */
function streamJob(req: Request, res: Response, what: string, log: (line: string) => void, job: (stream: ReturnType<typeof eventStream>) => Promise<void>): void {
  const stream = eventStream(req, res);
  job(stream)
    .then(() => void stream.send('done', {}))
    .catch((e: unknown) => {
      if (stream.signal.aborted) return;
      log(`studio: ${what} failed: ${errorMessage(e)}`);
      stream.send('failure', { error: errorMessage(e) });
    })
    .finally(() => stream.end());
}

function maskOutline(mask: Uint8Array, width: number, height: number) {
  const out = createRgba(width, height);
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] === 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (inside(x, y) && !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) out.data.set([255, 214, 0, 255], (y * width + x) * 4);
    }
  }
  return out;
}

/**
 * Builds the studio app over a session (no listening; see {@link startStudio}).
 *
 * @example
 * const app = studioApp(await StudioSession.open({ model: 'default' }), { token: undefined });
 */
export function studioApp(session: StudioSession, options: { token?: string } = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const log = session.log;

  if (options.token) {
    const expected = Buffer.from(options.token);
    const matches = (given: string | undefined) => given !== undefined && given.length === expected.length && timingSafeEqual(Buffer.from(given), expected);
    app.use((req, res, next) => {
      const cookie = /(?:^|;\s*)lens_studio_token=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
      const fromQuery = typeof req.query.token === 'string' ? req.query.token : undefined;
      if (matches(fromQuery)) {
        res.cookie('lens_studio_token', fromQuery, { httpOnly: true, sameSite: 'strict' });
        return next();
      }
      if (matches(cookie) || matches(req.get('x-lens-token'))) return next();
      res.status(401).type('text/plain').send('lens studio: open the URL printed at start (it carries the access token)\n');
    });
  }

  const imageJson = async (image: StudioImage) => ({
    id: image.id,
    name: image.name,
    hasMask: image.mask !== undefined,
    size: [image.pixels.height, image.pixels.width],
  });

  app.get(
    '/api/state',
    async (_req, res) => {
      const describe = (m: typeof session.local | typeof session.served) =>
        m ? { name: m.name, inputShape: m.inputShape, classes: m.classes, output: m.output, preprocessing: m.preprocessing, labels: m.labels ?? null } : null;
      res.json({
        local: describe(session.local),
        engine: session.local?.engine.detail ?? null,
        served: describe(session.served),
        server: session.options.server ?? null,
        servedError: session.servedError ?? null,
        images: await Promise.all([...session.images.values()].map(imageJson)),
        choices: { methods: METHOD_NAMES, baselines: BASELINE_NAMES, rules: IG_RULES, viz: VISUALIZATION_METHODS, signs: ATTRIBUTION_SIGNS, metrics: COMPARE_METRICS },
        defaults: DEFAULT_VIEW,
        maxUploadBytes: session.maxUploadBytes,
      });
    },
  );

  app.post(
    '/api/images',
    express.raw({ type: () => true, limit: session.maxUploadBytes }),
    async (req, res) => {
      const name = q(req, 'name', 'upload');
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      res.json({ images: [await imageJson(await session.addUpload(name, body))] });
    },
  );
  app.post(
    '/api/images/url',
    express.json({ limit: '16kb' }),
    async (req, res) => {
      const url = (req.body as { url?: unknown })?.url;
      if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new LensError('INVALID_ARGUMENT', 'give an http(s) URL');
      res.json({ images: await Promise.all((await session.addPaths([url])).map(imageJson)) });
    },
  );
  app.post(
    '/api/images/shapes',
    express.json({ limit: '1kb' }),
    async (req, res) => {
      const body = (req.body ?? {}) as { count?: unknown; seed?: unknown };
      const count = typeof body.count === 'number' ? body.count : 4;
      if (!Number.isInteger(count) || count < 1 || count > 64) throw new LensError('INVALID_ARGUMENT', 'count must be 1..64');
      const seed = typeof body.seed === 'number' && Number.isInteger(body.seed) ? body.seed : 0;
      res.json({ images: await Promise.all((await session.addShapes(count, seed)).map(imageJson)) });
    },
  );
  app.get(
    '/api/images/:id/image.png',
    async (req, res) => {
      const image = session.image(String(req.params.id));
      res.type('png').send(await encodePng(image.pixels));
    },
  );
  app.get(
    '/api/images/:id/mask.png',
    async (req, res) => {
      const image = session.image(String(req.params.id));
      if (!image.mask) throw new LensError('NOT_FOUND', `image ${image.name} has no ground-truth mask`);
      res.type('png').send(await encodeRgbaPng(maskOutline(image.mask, image.pixels.width, image.pixels.height)));
    },
  );
  app.get(
    '/api/images/:id/predictions',
    async (req, res) => {
      res.json({ predictions: await session.predict(modelKind(req), String(req.params.id)) });
    },
  );

  app.get('/api/explain', (req, res) => {
    streamJob(req, res, 'explain', log, async (stream) => {
      const baselines = splitBaselineList(q(req, 'baselines', 'black'));
      if (baselines.length === 0) throw new LensError('INVALID_ARGUMENT', 'choose at least one baseline');
      const base: Omit<ExplainRequest, 'baseline'> = {
        image: q(req, 'image'),
        model: modelKind(req),
        method: q(req, 'method', 'ig'),
        rule: q(req, 'rule', 'gausslegendre'),
        target: q(req, 'target', 'top1'),
        seed: qInt(req, 'seed', 0)!,
        ...(qInt(req, 'steps') !== undefined ? { steps: qInt(req, 'steps')! } : {}),
      };
      session.image(base.image);
      const view = rendering(req);
      const panels = baselines.length;
      const run = async (request: ExplainRequest, b: number, preview: boolean) => {
        stream.send('progress', { done: 0, total: 1, stage: `${preview ? 'preview: ' : ''}${request.method} ${request.baseline}`, panel: b, panels });
        const entry = await session.explain(request, (p) => stream.send('progress', { ...p, ...(preview ? { stage: `preview: ${p.stage ?? request.method}` } : {}), panel: b, panels }), stream.signal);
        const a = entry.attribution;
        log(`studio: ${preview ? 'preview ' : ''}${a.method} ${a.baseline ?? ''} on ${session.image(base.image).name}: ${entry.millis > 0 ? `${entry.millis.toFixed(0)} ms` : 'cached'}`);
        if (!preview) return stream.send('result', panelResult(entry, b, false));
        // The coarse picture travels in the event: a request for it would wait behind the final computation.
        const picture = await encodeRgbaPng(panelPicture(a, session.image(base.image).pixels, view));
        // Flushed before the next computation, which may hold the event loop (tfjs on wasm) for its whole length.
        await stream.send('preview', { ...panelResult(entry, b, true), picture: `data:image/png;base64,${picture.toString('base64')}` });
      };
      // A coarse pass over every panel first, so pictures appear at once even on slow models.
      const coarse = previewSteps(session, base);
      if (coarse !== undefined) {
        for (let b = 0; b < panels; b++) {
          if (!session.isCached({ ...base, baseline: baselines[b]! })) await run({ ...base, baseline: baselines[b]!, steps: coarse }, b, true);
        }
      }
      for (let b = 0; b < panels; b++) await run({ ...base, baseline: baselines[b]! }, b, false);
    });
  });

  const keysOf = (req: Request) => q(req, 'keys').split('~').filter(Boolean);
  const entriesOf = (req: Request) => {
    const entries = keysOf(req).map((k) => session.cached(k));
    if (entries.length === 0) throw new LensError('INVALID_ARGUMENT', 'nothing to export');
    return entries;
  };
  const curveSteps = (req: Request) => {
    const steps = qInt(req, 'steps', 16)!;
    if (steps < 2 || steps > 256) throw new LensError('INVALID_ARGUMENT', 'steps must be 2..256');
    return steps;
  };

  app.get(
    '/api/scale',
    async (req, res) => {
      res.json({ scale: optionalSharedScale(keysOf(req).map((k) => session.cached(k).attribution), rendering(req)) ?? null });
    },
  );
  app.get(
    '/api/panel.png',
    async (req, res) => {
      const { viz, sign } = rendering(req);
      const entry = session.cached(q(req, 'key'));
      const scaleText = q(req, 'scale', '');
      const scale = scaleText === '' ? undefined : Number(scaleText);
      if (scale !== undefined && !(scale > 0)) throw new LensError('INVALID_ARGUMENT', `scale must be a positive number, got "${scaleText}"`);
      const picture = panelPicture(entry.attribution, session.image(entry.request.image).pixels, { viz, sign, ...(scale !== undefined ? { scale } : {}) });
      res.type('png').send(await encodeRgbaPng(picture));
    },
  );
  app.get(
    '/api/path',
    async (req, res) => {
      res.json(await session.path(q(req, 'key')));
    },
  );
  app.get(
    '/api/baseline.png',
    async (req, res) => {
      const entry = session.cached(q(req, 'key'));
      const [first] = await session.baselineImages(entry.request);
      const { height, width, channels } = session.image(entry.request.image).pixels;
      res.type('png').send(await encodePng({ data: first!, height, width, channels }));
    },
  );
  app.get(
    '/api/curves',
    async (req, res) => {
      const curves = await session.curves(keysOf(req), curveSteps(req));
      res.json({
        curves: curves.map((c) => ({
          key: c.key,
          deletion: { fractions: Array.from(c.deletion.fractions), scores: Array.from(c.deletion.scores), auc: c.deletion.auc },
          insertion: { fractions: Array.from(c.insertion.fractions), scores: Array.from(c.insertion.scores), auc: c.insertion.auc },
        })),
      });
    },
  );

  app.get('/api/metrics', (req, res) => {
    streamJob(req, res, 'metrics', log, async (stream) => {
      const ids = q(req, 'images', [...session.images.keys()].join('~')).split('~').filter(Boolean);
      const result = await session.compare(ids, splitBaselineList(q(req, 'baselines', 'black')), { ...compareSettings(req), onProgress: (p) => stream.send('progress', p) });
      stream.send('result', { baselines: result.baselines, summary: result.summary, rows: result.rows, images: ids.length });
    });
  });

  app.get(
    '/api/compare-command',
    async (req, res) => {
      const images = q(req, 'images', [...session.images.keys()].join('~')).split('~').filter(Boolean).map((id) => session.image(id));
      res.json(
        compareCommandLine(images, splitBaselineList(q(req, 'baselines', 'black')), { ...session.options, ...compareSettings(req), ...rendering(req) }),
      );
    },
  );

  app.get(
    '/api/verify',
    async (req, res) => {
      const tolerance = Number(q(req, 'tolerance', '0.001'));
      if (!(tolerance >= 0)) throw new LensError('INVALID_ARGUMENT', 'tolerance must be a number >= 0');
      const report = await session.verify(tolerance);
      log(`studio: verify ${report.ok ? 'ok' : 'DIFF'}: local ${report.local} vs served ${report.served} on ${report.images.length} image(s)`);
      res.json(report);
    },
  );
  app.post(
    '/api/served/reconnect',
    async (_req, res) => {
      await session.connectServed();
      if (session.servedError) throw new LensError('SERVING_ERROR', `the served model is not available: ${session.servedError}`);
      res.json({ served: session.served?.name });
    },
  );

  /** Sends one of a view's files, or the command line that writes them. */
  const sendView = async (res: Response, kind: string, image: StudioImage, command: () => string, files: () => Promise<ExportedFiles>, kinds = 'png, npy, json or command') => {
    if (kind === 'command') return void res.json({ command: command(), generated: image.path === undefined });
    if (kind !== 'png' && kind !== 'npy' && kind !== 'json') throw new LensError('NOT_FOUND', `unknown export "${kind}": ${kinds}`);
    const exported = await files();
    res.type(EXPORT_TYPES[kind]).attachment(`${exported.stem}.${kind}`).send(exported[kind]);
  };
  app.get(
    '/api/export/path/:kind',
    async (req, res) => {
      const entry = session.cached(q(req, 'key'));
      const image = session.image(entry.request.image);
      const alpha = Number(q(req, 'alpha', '0.5'));
      if (!(alpha >= 0 && alpha <= 1)) throw new LensError('INVALID_ARGUMENT', `alpha must be between 0 and 1, got "${q(req, 'alpha')}"`);
      await sendView(
        res,
        String(req.params.kind),
        image,
        () => explainCommandLine(entry, image, { ...session.options, ...rendering(req), pathView: alpha }),
        async () => exportPathView(entry, image, await session.baselineImages(entry.request), { alpha, model: session.model(entry.request.model).name }),
      );
    },
  );
  app.get(
    '/api/export/curves/:kind',
    async (req, res) => {
      const entries = entriesOf(req);
      const image = session.image(entries[0]!.request.image);
      const steps = curveSteps(req);
      await sendView(
        res,
        String(req.params.kind),
        image,
        () => explainCommandLine(entries, image, { ...session.options, ...rendering(req), curves: steps }),
        async () => {
          const curves = await session.curves(entries.map((e) => e.key), steps);
          return exportCurvesView(entries, image, curves.map((c, i) => ({ name: entries[i]!.request.baseline, deletion: c.deletion, insertion: c.insertion })), { model: session.model(entries[0]!.request.model).name });
        },
      );
    },
  );
  app.get(
    '/api/export/:kind',
    async (req, res) => {
      const kind = String(req.params.kind);
      const { viz, sign } = rendering(req);
      if (kind === 'grid.svg') {
        const entries = entriesOf(req);
        const image = session.image(entries[0]!.request.image);
        const scale = optionalSharedScale(entries.map((e) => e.attribution), { viz, sign });
        const own = new Set(q(req, 'own', '').split('~').filter(Boolean));
        const title = `${session.model(entries[0]!.request.model).name}: ${entries[0]!.attribution.method} (${viz}, ${sign})`;
        const svg = await gridSvg(image, entries, { viz, sign, ...(scale !== undefined ? { scale } : {}), ownScale: own, title });
        res.type('image/svg+xml').attachment('grid.svg').send(svg);
        return;
      }
      const entry = session.cached(q(req, 'key'));
      const image = session.image(entry.request.image);
      await sendView(
        res,
        kind,
        image,
        () => explainCommandLine(entry, image, { ...session.options, viz, sign }),
        () => exportAttribution(entry, image, { viz, sign, model: session.model(entry.request.model).name }),
        'png, npy, json, grid.svg or command',
      );
    },
  );

  if (existsSync(WEB_DIR)) app.use(express.static(WEB_DIR, { index: 'index.html', fallthrough: true }));
  else {
    app.get('/', (_req, res) => {
      res.status(500).type('text/plain').send('lens studio: the front end is not built (run npm run build)\n');
    });
  }

  app.use('/api', (req, res) => {
    res.status(404).json({ error: `no such API: ${req.method} ${req.path}` });
  });
  app.use((e: unknown, req: Request, res: Response, _next: NextFunction) => {
    const bodyTooLarge = (e as { type?: string }).type === 'entity.too.large';
    const message = bodyTooLarge ? `upload over the limit of ${session.maxUploadBytes} bytes` : errorMessage(e);
    log(`studio: ${req.method} ${req.path} failed: ${message}`);
    if (!res.headersSent) res.status(bodyTooLarge ? 413 : status(e)).json({ error: message });
  });
  return app;
}

/**
 * Opens the session and listens; prints nothing (the CLI prints {@link RunningStudio.url}).
 *
 * @example
 * const studio = await startStudio({ model: 'default', images: ['photos/'] });
 * console.log(studio.url); // http://127.0.0.1:41234/
 * await studio.close();
 */
export async function startStudio(options: StudioOptions): Promise<RunningStudio> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? (isLoopback(host) ? undefined : randomBytes(18).toString('base64url'));
  const session = await StudioSession.open(options);
  try {
    if (options.images?.length) await session.addPaths(options.images);
    const app = studioApp(session, token ? { token } : {});
    const server = await new Promise<import('node:http').Server>((resolveListen, reject) => {
      const s = app.listen(options.port ?? 0, host, (e?: Error) => {
        if (!e) return resolveListen(s);
        const busy = (e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ': the port is in use (another lens studio?); give another --port, or --port 0 for a free one' : `: ${errorMessage(e)}`;
        reject(new LensError('INVALID_ARGUMENT', `cannot listen on ${host}:${options.port ?? 0} (--port)${busy}`));
      });
    });
    const port = (server.address() as AddressInfo).port;
    const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    return {
      url: `http://${shownHost}:${port}/${token ? `?token=${token}` : ''}`,
      port,
      session,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        await session.close();
      },
    };
  } catch (e) {
    await session.close();
    throw e;
  }
}
