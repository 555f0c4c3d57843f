/**
 * lens studio's page: images (open, upload, URL, shapes samples) with top-k predictions, the explain
 * controls, panels on one colour scale, the IG path explorer, deletion/insertion curves, metrics,
 * served-vs-local verification and exports. Pictures come from the server (the CLI's rendering
 * code); charts and the interpolated image are drawn here from data, so the slider redraws at once.
 */
import { render } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { followEvents, fmt, getJson, postJson, query, type Agreement, type CurveData, type ImageInfo, type MetricsResult, type PanelResult, type PathData, type Prediction, type Progress, type State, type VerifyReport } from './api.js';
import { Chart, type Series } from './chart.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

interface ExplainForm {
  method: string;
  baselines: string[];
  extraBaselines: string;
  steps: string;
  rule: string;
  target: string;
  seed: string;
  model: 'local' | 'served';
}

function predictionText(p: Prediction | undefined): string {
  return p ? `${p.label ?? `class ${p.index}`} ${fmt(p.probability, 3)}` : '–';
}

function Thumb(props: { image: ImageInfo; selected: boolean; served: boolean; onSelect(): void; onError(message: string): void }) {
  const [local, setLocal] = useState<Prediction[] | null>(null);
  const [served, setServed] = useState<Prediction[] | null>(null);
  const [servedError, setServedError] = useState<string | null>(null);
  useEffect(() => {
    getJson<{ predictions: Prediction[] }>(`api/images/${props.image.id}/predictions?model=local`).then((r) => setLocal(r.predictions), (e: Error) => props.onError(e.message));
    if (props.served) getJson<{ predictions: Prediction[] }>(`api/images/${props.image.id}/predictions?model=served`).then((r) => setServed(r.predictions), (e: Error) => setServedError(e.message));
  }, [props.image.id, props.served]);
  const diff = local && served && local[0] && served[0] ? Math.abs(local[0].probability - (served.find((s) => s.index === local[0]!.index)?.probability ?? 0)) : null;
  return (
    <li>
      <button type="button" class={`thumb${props.selected ? ' selected' : ''}`} aria-pressed={props.selected} onClick={props.onSelect} data-image={props.image.id}>
        <img src={`api/images/${props.image.id}/image.png`} alt="" width={64} height={64} />
        <span class="thumb-text">
          <span class="thumb-name" title={props.image.name}>
            {props.image.name.split('/').pop()}
          </span>
          <span class="preds" data-kind="local">
            {local ? local.slice(0, 3).map((p) => <span key={p.index}>{predictionText(p)}</span>) : 'predicting…'}
          </span>
          {props.served && (
            <span class="preds served" data-kind="served">
              served: {servedError ? <span class="bad">{servedError}</span> : served ? predictionText(served[0]) : '…'}
              {diff !== null && <span> (|Δp| {fmt(diff, 2)})</span>}
            </span>
          )}
        </span>
      </button>
    </li>
  );
}

function ImagesPane(props: { state: State; selected: string | null; onSelect(id: string): void; onAdded(images: ImageInfo[]): void; onError(message: string): void }) {
  const [url, setUrl] = useState('');
  const [dragging, setDragging] = useState(false);
  const upload = async (files: FileList | File[]) => {
    for (const file of Array.from(files)) {
      if (file.size > props.state.maxUploadBytes) {
        props.onError(`${file.name}: ${file.size} bytes is over the upload limit of ${props.state.maxUploadBytes}`);
        continue;
      }
      try {
        const r = await getJson<{ images: ImageInfo[] }>(`api/images?${query({ name: file.name })}`, { method: 'POST', body: file, headers: { 'content-type': 'application/octet-stream' } });
        props.onAdded(r.images);
      } catch (e) {
        props.onError((e as Error).message);
      }
    }
  };
  const add = (promise: Promise<{ images: ImageInfo[] }>) => promise.then((r) => props.onAdded(r.images), (e: Error) => props.onError(e.message));
  return (
    <section class="images" aria-label="Images">
      <h2>Images</h2>
      <div
        class={`drop${dragging ? ' dragging' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          if (e.dataTransfer?.files.length) void upload(e.dataTransfer.files);
        }}
      >
        <label for="upload">Open image files (or drop them here)</label>
        <input id="upload" type="file" accept="image/*" multiple onChange={(e) => void upload((e.currentTarget as HTMLInputElement).files ?? [])} />
        <label for="upload-folder">Open a folder of images</label>
        <input
          id="upload-folder"
          type="file"
          multiple
          ref={(input) => input?.setAttribute('webkitdirectory', '')}
          onChange={(e) => void upload(Array.from((e.currentTarget as HTMLInputElement).files ?? []).filter((f) => f.type.startsWith('image/') && !/\.mask\.[a-z]+$/i.test(f.name)))}
        />
      </div>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (url) add(postJson('api/images/url', { url }));
        }}
      >
        <label for="image-url">URL</label>
        <input id="image-url" type="url" value={url} placeholder="https://…/cat.jpg" onInput={(e) => setUrl((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit">Add</button>
      </form>
      <button type="button" onClick={() => add(postJson('api/images/shapes', { count: 4, seed: props.state.images.length }))}>
        Add 4 shapes samples (with masks)
      </button>
      <ul class="thumbs">
        {props.state.images.map((image) => (
          <Thumb key={image.id} image={image} selected={image.id === props.selected} served={props.state.server !== null && props.state.served !== null} onSelect={() => props.onSelect(image.id)} onError={props.onError} />
        ))}
      </ul>
    </section>
  );
}

function Field(props: { id: string; label: string; children: preact.ComponentChildren }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
    </div>
  );
}

function Select(props: { id: string; label: string; value: string; options: readonly string[]; onChange(v: string): void }) {
  return (
    <Field id={props.id} label={props.label}>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
        {props.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </Field>
  );
}

/**
 * A view's downloads as the CLI writes them (PNG with text chunks, .npy, JSON, drawn on the server
 * by the CLI's code) and the `lens` command line that writes the same files.
 */
function ViewExports(props: { base: string; params: Record<string, string | number | undefined>; what: string; detail?: string; onError(m: string): void }) {
  const [command, setCommand] = useState<string | null>(null);
  const params = query(props.params);
  const showCommand = () =>
    getJson<{ command: string; generated: boolean }>(`${props.base}/command?${params}`).then(
      (r) => setCommand(r.generated ? `# generated image: write it with lens shapes first\n${r.command}` : r.command),
      (e: Error) => props.onError(e.message),
    );
  return (
    <div class="view-exports" role="group" aria-label={`Export the ${props.what}`}>
      <div class="links">
        <span class="note">
          Download the {props.what}
          {props.detail ? ` (${props.detail})` : ''}:
        </span>{' '}
        <a href={`${props.base}/png?${params}`} download>
          PNG
        </a>
        <a href={`${props.base}/npy?${params}`} download>
          .npy
        </a>
        <a href={`${props.base}/json?${params}`} download>
          JSON
        </a>
        <button type="button" onClick={showCommand}>
          lens command
        </button>
      </div>
      {command !== null && <textarea readOnly rows={2} aria-label={`Command line that writes the ${props.what}`} value={command} />}
    </div>
  );
}

/** The interpolated image x' + alpha (x - x') is canvas alpha compositing: baseline, then the image at opacity alpha. */
function PathExplorer(props: { panel: PanelResult; imageId: string; viz: string; sign: string; onError(m: string): void }) {
  const [path, setPath] = useState<PathData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [alpha, setAlpha] = useState(0.5);
  const canvas = useRef<HTMLCanvasElement>(null);
  const pictures = useRef<{ image: HTMLImageElement; baseline: HTMLImageElement } | null>(null);
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    setPath(null);
    setLoaded(false);
    getJson<PathData>(`api/path?${query({ key: props.panel.key })}`).then(setPath, (e: Error) => setError(e.message));
    const image = new Image();
    const baseline = new Image();
    let count = 0;
    const ready = () => {
      count += 1;
      if (count === 2) setLoaded(true);
    };
    image.onload = ready;
    baseline.onload = ready;
    image.src = `api/images/${props.imageId}/image.png`;
    baseline.src = `api/baseline.png?${query({ key: props.panel.key })}`;
    pictures.current = { image, baseline };
  }, [props.panel.key]);
  // Drawn in the same task as the render (a layout effect), so the picture and the charts change in one frame.
  useLayoutEffect(() => {
    const c = canvas.current;
    const p = pictures.current;
    if (!c || !p || !loaded) return;
    const ctx = c.getContext('2d')!;
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 1;
    ctx.drawImage(p.baseline, 0, 0, c.width, c.height);
    ctx.globalAlpha = alpha;
    ctx.drawImage(p.image, 0, 0, c.width, c.height);
    ctx.globalAlpha = 1;
    c.dataset.alpha = String(alpha);
    performance.mark(`lens-path-drawn-${alpha}`);
  }, [alpha, loaded]);
  const view = useMemo(() => {
    if (!path) return null;
    // Points of the first baseline (fixed rules lay points out baseline by baseline).
    const n = path.alphas.length % path.baselines === 0 ? path.alphas.length / path.baselines : path.alphas.length;
    const order = path.alphas.slice(0, n).map((_, i) => i).sort((a, b) => path.alphas[a]! - path.alphas[b]!);
    return { xs: order.map((i) => path.alphas[i]!), fs: order.map((i) => path.scores[i]!), integrand: order.map((i) => path.integrand[i]!), magnitude: order.map((i) => path.gradientMagnitude[i]!) };
  }, [path]);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!path || !view) return <p>Loading the path…</p>;
  // F(alpha) between the points: linear interpolation, with F(x') and F(x) at the ends.
  const xs = [0, ...view.xs, 1];
  const fs = [path.baselineScore, ...view.fs, path.inputScore];
  let k = 0;
  while (k < xs.length - 2 && xs[k + 1]! < alpha) k++;
  const t = xs[k + 1]! === xs[k]! ? 0 : (alpha - xs[k]!) / (xs[k + 1]! - xs[k]!);
  const fAlpha = fs[k]! + Math.min(1, Math.max(0, t)) * (fs[k + 1]! - fs[k]!);
  let nearest = 0;
  view.xs.forEach((x, i) => {
    if (Math.abs(x - alpha) < Math.abs(view.xs[nearest]! - alpha)) nearest = i;
  });
  return (
    <section class="path" aria-label="Integrated Gradients path explorer">
      <h3>
        Path explorer: {props.panel.baseline} → image ({path.rule}, {path.alphas.length} points)
      </h3>
      <div class="path-body">
        <div>
          <canvas ref={canvas} width={192} height={192} class="interp" aria-label={`interpolated image at alpha ${alpha.toFixed(2)}`} />
          <div class="field">
            <label for="alpha">alpha = {alpha.toFixed(2)}</label>
            <input id="alpha" type="range" min={0} max={1} step={0.01} value={alpha} onInput={(e) => setAlpha(Number((e.currentTarget as HTMLInputElement).value))} />
          </div>
          <dl class="facts">
            <dt>F(α)</dt>
            <dd data-fact="f-alpha">{fmt(fAlpha)}</dd>
            <dt>integrand at nearest point</dt>
            <dd>
              {fmt(view.integrand[nearest])} (α={fmt(view.xs[nearest], 3)})
            </dd>
            <dt>F(x) − F(x′)</dt>
            <dd>{fmt(path.inputScore - path.baselineScore)}</dd>
            <dt>completeness Δ</dt>
            <dd data-fact="delta">
              {fmt(path.delta)} ({fmt(path.relative * 100, 3)}%)
            </dd>
          </dl>
        </div>
        <div>
          <Chart
            title="F(α) along the path, integrand dF/dα per point"
            xLabel="α"
            yLabel={`F (${props.panel.output})`}
            xRange={[0, 1]}
            series={[{ name: 'F(α) at the rule’s points', x: xs, y: fs, color: '#1f77b4', dots: true }]}
            bars={{ name: '|dF/dα|', x: view.xs, y: view.integrand, color: '#d62728' }}
            marker={alpha}
          />
          <Chart title="gradient magnitude per point (saturation)" xLabel="α" yLabel="mean |∂F/∂x|" xRange={[0, 1]} series={[{ name: 'mean |gradient|', x: view.xs, y: view.magnitude, color: '#2ca02c', dots: true }]} marker={alpha} height={180} />
        </div>
      </div>
      <ViewExports base="api/export/path" params={{ key: props.panel.key, alpha, viz: props.viz, sign: props.sign }} what="path view" detail={`α = ${alpha.toFixed(2)}`} onError={props.onError} />
    </section>
  );
}

function Panels(props: { panels: PanelResult[]; image: ImageInfo; viz: string; sign: string; onExplore(p: PanelResult): void; onError(m: string): void }) {
  const [scale, setScale] = useState<number | null>(null);
  const [own, setOwn] = useState<Set<string>>(new Set());
  const [mask, setMask] = useState(false);
  const [command, setCommand] = useState<{ key: string; text: string } | null>(null);
  const keys = props.panels.map((p) => p.key).join('~');
  useEffect(() => {
    if (!keys) return;
    getJson<{ scale: number | null }>(`api/scale?${query({ keys, viz: props.viz, sign: props.sign })}`).then((r) => setScale(r.scale), (e: Error) => props.onError(e.message));
  }, [keys, props.viz, props.sign]);
  const rq = (p: PanelResult) => query({ key: p.key, viz: props.viz, sign: props.sign });
  return (
    <section class="panels-wrap" aria-label="Explanations">
      <div class="row">
        {props.image.hasMask && (
          <label>
            <input type="checkbox" checked={mask} onChange={(e) => setMask((e.currentTarget as HTMLInputElement).checked)} /> show ground-truth mask
          </label>
        )}
        <a class="button" href={`api/export/grid.svg?${query({ keys, viz: props.viz, sign: props.sign, own: [...own].join('~') })}`} download="grid.svg">
          Export grid (SVG)
        </a>
        <span class="note">{scale !== null ? `one colour scale: ${fmt(scale, 3)}` : 'each panel on its own scale'}</span>
      </div>
      <div class="panels">
        {props.panels.map((p) => {
          const ownScale = own.has(p.key) || scale === null;
          return (
            <figure class={`panel${p.preview ? ' preview' : ''}`} key={p.panel} data-key={p.key} data-preview={String(p.preview)}>
              <div class="stack">
                <img
                  src={p.picture ?? `api/panel.png?${query({ key: p.key, viz: props.viz, sign: props.sign, scale: ownScale ? undefined : scale ?? undefined })}`}
                  alt={`${p.method} with baseline ${p.baseline}${p.preview ? ' (coarse preview)' : ''}`}
                  width={192}
                  height={192}
                  onLoad={() => performance.mark(p.preview ? 'lens-preview-drawn' : 'lens-final-drawn', { detail: p.key })}
                />
                {mask && <img class="mask" src={`api/images/${props.image.id}/mask.png`} alt="ground-truth mask" width={192} height={192} />}
              </div>
              <figcaption>
                <strong>{p.baseline}</strong> · {p.target.label ?? `class ${p.target.index}`} {fmt(p.target.probability, 3)}
                <br />
                {p.method}
                {p.steps !== null ? ` · ${p.steps} steps` : ''}
                {p.rule ? ` · ${p.rule}` : ''}
                {p.completeness && (
                  <>
                    <br />Δ {fmt(p.completeness.delta, 3)} ({fmt(p.completeness.relative * 100, 3)}%)
                  </>
                )}
                <br />
                <span class="note">{p.preview ? `preview (${p.steps} steps), refining… · ` : ''}{p.millis > 0 ? `${fmt(p.millis / 1000, 3)} s` : 'cached'}</span>
              </figcaption>
              <label>
                <input
                  type="checkbox"
                  checked={ownScale}
                  disabled={scale === null}
                  onChange={(e) => {
                    const next = new Set(own);
                    if ((e.currentTarget as HTMLInputElement).checked) next.add(p.key);
                    else next.delete(p.key);
                    setOwn(next);
                  }}
                />{' '}
                own scale
              </label>
              <div class="links">
                <a href={`api/export/png?${rq(p)}`} download>
                  PNG
                </a>
                <a href={`api/export/npy?${rq(p)}`} download>
                  .npy
                </a>
                <a href={`api/export/json?${rq(p)}`} download>
                  JSON
                </a>
                <button
                  type="button"
                  onClick={() => getJson<{ command: string; generated: boolean }>(`api/export/command?${rq(p)}`).then((r) => setCommand({ key: p.key, text: r.generated ? `# generated image: write it with lens shapes first\n${r.command}` : r.command }), (e: Error) => props.onError(e.message))}
                >
                  lens command
                </button>
                {p.hasPath && (
                  <button type="button" onClick={() => props.onExplore(p)}>
                    Explore path
                  </button>
                )}
              </div>
            </figure>
          );
        })}
      </div>
      {command && (
        <div class="field">
          <label for="command-line">Command line that reproduces this panel</label>
          <textarea id="command-line" readOnly rows={3} value={command.text} />
        </div>
      )}
    </section>
  );
}

const CURVE_STEPS = 16;

function Curves(props: { panels: PanelResult[]; viz: string; sign: string; onError(m: string): void }) {
  const [curves, setCurves] = useState<{ key: string; deletion: CurveData; insertion: CurveData }[] | null>(null);
  const [busy, setBusy] = useState(false);
  const load = () => {
    setBusy(true);
    getJson<{ curves: { key: string; deletion: CurveData; insertion: CurveData }[] }>(`api/curves?${query({ keys: props.panels.map((p) => p.key).join('~'), steps: CURVE_STEPS })}`)
      .then((r) => setCurves(r.curves), (e: Error) => props.onError(e.message))
      .finally(() => setBusy(false));
  };
  const names = new Map(props.panels.map((p) => [p.key, p.baseline]));
  const series: Series[] = (curves ?? []).flatMap((c, i) => [
    { name: `${names.get(c.key) ?? '?'} deletion (AUC ${fmt(c.deletion.auc, 3)})`, x: c.deletion.fractions, y: c.deletion.scores, color: COLORS[i % COLORS.length]! },
    { name: `${names.get(c.key) ?? '?'} insertion (AUC ${fmt(c.insertion.auc, 3)})`, x: c.insertion.fractions, y: c.insertion.scores, color: COLORS[i % COLORS.length]!, dashed: true },
  ]);
  return (
    <section aria-label="Deletion and insertion curves">
      <button type="button" onClick={load} disabled={busy || props.panels.length === 0}>
        {busy ? 'Computing curves…' : 'Deletion / insertion curves'}
      </button>
      {curves && <Chart title="deletion (solid) and insertion (dashed) on the same axes" xLabel="share of pixels removed / inserted" yLabel="probability of the target" series={series} xRange={[0, 1]} width={640} height={280} />}
      {curves && <ViewExports base="api/export/curves" params={{ keys: curves.map((c) => c.key).join('~'), steps: CURVE_STEPS, viz: props.viz, sign: props.sign }} what="curves" onError={props.onError} />}
    </section>
  );
}

function Metrics(props: { form: ExplainForm; baselines: string[]; imageCount: number; viz: string; sign: string; onError(m: string): void }) {
  const [result, setResult] = useState<MetricsResult | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [command, setCommand] = useState<string | null>(null);
  const f = props.form;
  const params = query({ baselines: props.baselines.join(','), steps: f.steps || 32, rule: f.rule, target: f.target, seed: f.seed, viz: props.viz, sign: props.sign });
  const showCommand = () =>
    getJson<{ command: string; generated: number }>(`api/compare-command?${params}`).then(
      (r) => setCommand(r.generated > 0 ? `# ${r.generated} generated image(s) left out: lens compare --shapes N makes its own\n${r.command}` : r.command),
      (e: Error) => props.onError(e.message),
    );
  const run = () => {
    setResult(null);
    setProgress({ done: 0, total: 1 });
    const stream = followEvents<MetricsResult>(`api/metrics?${params}`, { progress: setProgress, result: setResult });
    stream.done.catch((e: Error) => props.onError(e.message)).finally(() => setProgress(null));
  };
  const metrics = result ? [...new Set(Object.values(result.summary).flatMap((m) => Object.keys(m)))] : [];
  return (
    <section aria-label="Quality metrics">
      <button type="button" onClick={run} disabled={progress !== null || props.imageCount === 0}>
        Metrics over all {props.imageCount} open images (95% intervals)
      </button>
      <button type="button" onClick={showCommand} disabled={props.imageCount === 0}>
        lens compare command
      </button>
      {progress && <progress max={progress.total} value={progress.done} aria-label="metrics progress" />}
      {command && (
        <div class="field">
          <label for="compare-command">Command line that computes these metrics</label>
          <textarea id="compare-command" readOnly rows={3} value={command} />
        </div>
      )}
      {result && (
        <table class="metrics">
          <caption>IG baselines on {result.images} images: mean [95% interval]</caption>
          <thead>
            <tr>
              <th scope="col">baseline</th>
              {metrics.map((m) => (
                <th scope="col" key={m}>
                  {m}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {result.baselines.map((b) => (
              <tr key={b}>
                <th scope="row">{b}</th>
                {metrics.map((m) => {
                  const v = result.summary[b]?.[m];
                  return <td key={m}>{v ? `${fmt(v.mean, 3)} [${fmt(v.low, 3)}, ${fmt(v.high, 3)}]` : '–'}</td>;
                })}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Served(props: { state: State; onError(m: string): void; onReconnected(): void }) {
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [tolerance, setTolerance] = useState('0.001');
  if (!props.state.server) return null;
  const verify = () => {
    setBusy(true);
    getJson<VerifyReport>(`api/verify?${query({ tolerance })}`)
      .then(setReport, (e: Error) => props.onError(e.message))
      .finally(() => setBusy(false));
  };
  return (
    <section class="served" aria-label="Served versus local">
      <h2>Served vs local</h2>
      <p>
        {props.state.served ? `served model ${props.state.served.name} at ${props.state.server}` : <span class="bad">served model at {props.state.server} not available: {props.state.servedError}</span>}{' '}
        <button type="button" onClick={() => postJson('api/served/reconnect', {}).then(props.onReconnected, (e: Error) => props.onError(e.message))}>
          Reconnect
        </button>
      </p>
      <div class="row">
        <Field id="tolerance" label="Tolerance (largest probability difference)">
          <input id="tolerance" type="number" min={0} step="any" value={tolerance} onInput={(e) => setTolerance((e.currentTarget as HTMLInputElement).value)} />
        </Field>
      </div>
      <button type="button" onClick={verify} disabled={busy || !props.state.served || !props.state.local}>
        {busy ? 'Verifying…' : 'Verify served vs local'}
      </button>
      {report && (
        <table class="verify" data-ok={String(report.ok)}>
          <caption>
            {report.ok ? 'OK' : 'DIFFERENT'}: top-{report.topK}, tolerance {report.tolerance}
          </caption>
          <thead>
            <tr>
              <th scope="col">image</th>
              <th scope="col">local</th>
              <th scope="col">served</th>
              <th scope="col">max |Δp|</th>
              <th scope="col">result</th>
            </tr>
          </thead>
          <tbody>
            {report.images.map((r: Agreement) => (
              <tr key={r.image}>
                <td>{r.image.split('/').pop()}</td>
                <td>{predictionText(r.local[0])}</td>
                <td>{predictionText(r.served[0])}</td>
                <td>{fmt(r.maxProbabilityDifference, 3)}</td>
                <td class={r.ok ? 'good' : 'bad'}>{r.ok ? 'ok' : r.sameTopK ? 'probabilities differ' : 'top-k differ'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {report?.warnings.map((w) => (
        <p class="bad" key={w}>
          {w}
        </p>
      ))}
    </section>
  );
}

function App() {
  const [state, setState] = useState<State | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState<ExplainForm>({ method: 'ig', baselines: ['black'], extraBaselines: '', steps: '50', rule: 'gausslegendre', target: 'top1', seed: '0', model: 'local' });
  // Unset until the user picks one: the server's default view (the CLI's) applies.
  const [chosenViz, setViz] = useState<string | null>(null);
  const [chosenSign, setSign] = useState<string | null>(null);
  const [panels, setPanels] = useState<PanelResult[]>([]);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [explored, setExplored] = useState<PanelResult | null>(null);
  const cancel = useRef<(() => void) | null>(null);
  const refresh = () => getJson<State>('api/state').then(setState, (e: Error) => setError(e.message));
  useEffect(() => void refresh(), []);
  useEffect(() => {
    if (state && !selected && state.images[0]) setSelected(state.images[0].id);
  }, [state]);
  if (!state) return <main>{error ? <p role="alert">{error}</p> : <p>Loading…</p>}</main>;
  const viz = chosenViz ?? state.defaults.viz;
  const sign = chosenSign ?? state.defaults.sign;
  const model = state.local ?? state.served;
  const image = state.images.find((i) => i.id === selected) ?? null;
  const baselines = [...form.baselines, ...form.extraBaselines.split(/,(?![a-z_]+=)/i).map((s) => s.trim()).filter(Boolean)];
  const set = (patch: Partial<ExplainForm>) => setForm({ ...form, ...patch });
  const showError = (m: string) => {
    setError(m);
  };
  const explain = () => {
    if (!image) return;
    cancel.current?.();
    delete document.body.dataset.explained;
    setError(null);
    setPanels([]);
    setExplored(null);
    setProgress({ done: 0, total: 1 });
    const started = performance.now();
    const url = `api/explain?${query({ image: image.id, model: form.model, method: form.method, baselines: baselines.join(','), steps: form.steps, rule: form.rule, target: form.target, seed: form.seed, viz, sign })}`;
    // Panel by panel: a coarse preview first (IG with many steps), replaced by the final result.
    const shown: PanelResult[] = [];
    const show = () => setPanels(shown.filter((p) => p !== undefined));
    let results = 0;
    const stream = followEvents<PanelResult>(url, {
      progress: setProgress,
      preview: (r) => {
        if (shown[r.panel] && !shown[r.panel]!.preview) return;
        shown[r.panel] = r;
        show();
        if (!performance.getEntriesByName('lens-first-preview').some((m) => m.startTime >= started)) performance.measure('lens-first-preview', { start: started });
      },
      result: (r) => {
        shown[r.panel] = r;
        show();
        results += 1;
        if (results === 1) performance.measure('lens-first-panel', { start: started });
      },
    });
    cancel.current = stream.cancel;
    stream.done.then(
      () => {
        document.body.dataset.explained = String(results);
        setProgress(null);
      },
      (e: Error) => {
        setProgress(null);
        setError(e.message);
      },
    );
  };
  return (
    <main>
      <header>
        <h1>lens studio</h1>
        <p class="note">
          {state.local ? `${state.local.name}: ${state.local.inputShape.join('×')}, ${state.local.classes} classes, ${state.local.output}, ${state.engine ?? ''}` : 'no local model'}
          {state.server && ` · server ${state.server}`}
        </p>
      </header>
      <div role="alert" aria-live="assertive" class={error ? 'error' : 'error empty'}>
        {error && (
          <>
            {error}{' '}
            <button type="button" onClick={() => setError(null)} aria-label="dismiss the error">
              ×
            </button>
          </>
        )}
      </div>
      <div class="layout">
        <ImagesPane state={state} selected={selected} onSelect={setSelected} onAdded={(imgs) => {
          void refresh();
          if (imgs[0]) setSelected(imgs[0].id);
        }} onError={showError} />
        <div class="work">
          <form
            class="controls"
            aria-label="Explain"
            onSubmit={(e) => {
              e.preventDefault();
              explain();
            }}
          >
            <Select id="method" label="Method" value={form.method} options={[...state.choices.methods, 'smoothgrad:ig', 'vargrad:ig']} onChange={(method) => set({ method })} />
            <fieldset>
              <legend>Baselines</legend>
              {state.choices.baselines.map((b) => (
                <label key={b} class="check">
                  <input type="checkbox" name="baseline" value={b} checked={form.baselines.includes(b)} onChange={(e) => set({ baselines: (e.currentTarget as HTMLInputElement).checked ? [...form.baselines, b] : form.baselines.filter((x) => x !== b) })} />
                  {b}
                </label>
              ))}
              <div class="field">
                <label for="more-baselines">More (comma-separated specs)</label>
                <input id="more-baselines" value={form.extraBaselines} placeholder="gaussian:sigma=0.3, black+white, image:PATH" onInput={(e) => set({ extraBaselines: (e.currentTarget as HTMLInputElement).value })} />
              </div>
            </fieldset>
            <Field id="steps" label="Steps">
              <input id="steps" type="number" min={1} max={4096} value={form.steps} onInput={(e) => set({ steps: (e.currentTarget as HTMLInputElement).value })} />
            </Field>
            <Select id="rule" label="Rule" value={form.rule} options={state.choices.rules} onChange={(rule) => set({ rule })} />
            <Field id="target" label="Target (top1, index or label)">
              <input id="target" list="labels" value={form.target} onInput={(e) => set({ target: (e.currentTarget as HTMLInputElement).value })} />
              <datalist id="labels">
                <option value="top1" />
                {(model?.labels ?? []).map((l) => (
                  <option key={l} value={l} />
                ))}
              </datalist>
            </Field>
            <Field id="seed" label="Seed">
              <input id="seed" type="number" value={form.seed} onInput={(e) => set({ seed: (e.currentTarget as HTMLInputElement).value })} />
            </Field>
            {state.server && <Select id="which-model" label="Model" value={form.model} options={['local', 'served']} onChange={(m) => set({ model: m as 'local' | 'served' })} />}
            <Select id="viz" label="Visualization" value={viz} options={state.choices.viz} onChange={setViz} />
            <Select id="sign" label="Sign" value={sign} options={state.choices.signs} onChange={setSign} />
            <button type="submit" class="primary" disabled={!image || baselines.length === 0}>
              Explain
            </button>
            <div class="progress" aria-live="polite">
              {progress && (
                <>
                  <progress id="explain-progress" max={progress.total} value={progress.done} aria-label="explanation progress" />{' '}
                  <span>
                    {progress.panels ? `panel ${(progress.panel ?? 0) + 1}/${progress.panels} · ` : ''}
                    {progress.stage ?? ''} {progress.done}/{progress.total}
                  </span>
                </>
              )}
            </div>
          </form>
          {image && panels.length > 0 && <Panels panels={panels} image={image} viz={viz} sign={sign} onExplore={setExplored} onError={showError} />}
          {explored && image && <PathExplorer panel={explored} imageId={image.id} viz={viz} sign={sign} onError={showError} />}
          {panels.length > 0 && <Curves panels={panels} viz={viz} sign={sign} onError={showError} />}
          {state.local && <Metrics form={form} baselines={baselines} imageCount={state.images.length} viz={viz} sign={sign} onError={showError} />}
          <Served state={state} onError={showError} onReconnected={() => void refresh()} />
        </div>
      </div>
    </main>
  );
}

render(<App />, document.getElementById('app')!);
