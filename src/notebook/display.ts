/**
 * Inline display for TypeScript notebooks run by the tslab kernel: show pictures, tables and
 * markdown inline, and a live progress line that rewrites itself. Outside a notebook (scripts,
 * tests) the same calls print a text form, so notebook cells can be tried from a terminal.
 *
 * @example
 * import { show, showTable, liveProgress } from 'serving-lens';
 * show(await readFile('out/grid.png'));
 * showTable([{ baseline: 'black', delta: 0.003 }, { baseline: 'blur', delta: 0.011 }]);
 * const p = liveProgress('IG steps', 64); for (...) p.update(i); p.done();
 */
import { createRequire } from 'node:module';
import { sniffImageFormat } from '../image/format.js';
import { csvField } from '../report/csv.js';

type TslabDisplay = {
  png(b: Uint8Array): void;
  jpeg(b: Uint8Array): void;
  svg(s: string): void;
  html(s: string): void;
  markdown(s: string): void;
  text(s: string): void;
};
type Tslab = { display: TslabDisplay; newDisplay(): TslabDisplay };

const require = createRequire(import.meta.url);
let tslab: Tslab | null | undefined;

/** The running tslab kernel's display API, or null outside a notebook. */
function kernel(): Tslab | null {
  if (tslab !== undefined) return tslab;
  try {
    // tslab's display calls throw "Not ready" unless its kernel serves this process; the kernel
    // sets this hook when it starts.
    const jupyter = require('tslab/dist/jupyter.js') as { lastWriteDisplayData: unknown };
    tslab = jupyter.lastWriteDisplayData ? (require('tslab') as Tslab) : null;
  } catch {
    tslab = null;
  }
  return tslab;
}

/** True inside a tslab notebook kernel. */
export function inNotebook(): boolean {
  return kernel() !== null;
}

/** Shows a PNG or JPEG image inline (outside a notebook: prints its size). */
export function show(image: Uint8Array, caption?: string): void {
  const k = kernel();
  if (!k) {
    process.stdout.write(`[image ${sniffImageFormat(image) === 'png' ? 'png' : 'jpeg'}, ${image.length} bytes]${caption ? ` ${caption}` : ''}\n`);
    return;
  }
  if (sniffImageFormat(image) === 'png') k.display.png(image);
  else k.display.jpeg(image);
  if (caption) k.display.markdown(`*${escapeMarkdown(caption)}*`);
}

/** Shows an SVG document inline. */
export function showSvg(svg: string): void {
  const k = kernel();
  if (k) k.display.svg(svg);
  else process.stdout.write(`[svg, ${svg.length} characters]\n`);
}

/** Shows markdown inline (outside a notebook: prints it). */
export function showMarkdown(markdown: string): void {
  const k = kernel();
  if (k) k.display.markdown(markdown);
  else process.stdout.write(`${markdown}\n`);
}

export type Row = Record<string, string | number | boolean | null | undefined>;

function formatCell(v: Row[string], digits: number): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(digits)));
  return String(v);
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function escapeMarkdown(s: string): string {
  return s.replace(/([\\`*_[\]|])/g, '\\$1');
}

/** A markdown table of rows (columns: the union of keys in order of appearance). */
export function markdownTable(rows: readonly Row[], digits = 4): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => escapeMarkdown(formatCell(r[c], digits)))))].join('\n');
}

/**
 * Rows as CSV (RFC 4180 quoting; columns: the union of keys in order of appearance), numbers at
 * full precision.
 *
 * @example
 * await saveFile('out/metrics.csv', csvTable(rows));
 */
export function csvTable(rows: readonly Row[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return `${[cols.map((c) => csvField(c)).join(','), ...rows.map((r) => cols.map((c) => csvField(r[c])).join(','))].join('\n')}\n`;
}

/** Shows rows as an HTML table inline (outside a notebook: a markdown table). */
export function showTable(rows: readonly Row[], options: { title?: string; digits?: number } = {}): void {
  const digits = options.digits ?? 4;
  const k = kernel();
  if (!k) {
    process.stdout.write(`${options.title ? `${options.title}\n` : ''}${markdownTable(rows, digits)}\n`);
    return;
  }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${cols.map((c) => `<td>${escapeHtml(formatCell(r[c], digits))}</td>`).join('')}</tr>`)
    .join('');
  const caption = options.title ? `<caption>${escapeHtml(options.title)}</caption>` : '';
  k.display.html(`<table class="serving-lens">${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`);
}

export interface LiveProgress {
  /** Sets the count done (and an optional note such as the current image; a new total when it changes). */
  update(done: number, note?: string, total?: number): void;
  /** Marks the work finished. */
  done(note?: string): void;
}

/**
 * A progress line that rewrites itself in place: one display entry in a notebook, a carriage-return
 * line on stderr elsewhere. Updates are throttled to a few per second. Give a total of 0 when it is
 * not known yet, and pass it with the first update (e.g. from a library progress callback).
 */
export function liveProgress(label: string, initialTotal: number): LiveProgress {
  let total = initialTotal;
  const k = kernel();
  const line = k?.newDisplay();
  const started = Date.now();
  let last = 0;
  const render = (n: number, note?: string) => {
    const frac = total > 0 ? Math.min(1, n / total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - started) / 1000;
    const eta = n > 0 && n < total ? ` eta ${((elapsed / n) * (total - n)).toFixed(0)}s` : '';
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${n}/${total} ${elapsed.toFixed(1)}s${eta}${note ? ` ${note}` : ''}`;
  };
  const emit = (text: string, final: boolean) => {
    if (line) line.text(text);
    else process.stderr.write(`\r${text}${final ? '\n' : ''}`);
  };
  return {
    update(n, note, newTotal) {
      if (newTotal !== undefined) total = newTotal;
      const now = Date.now();
      if (now - last < 200 && n < total) return;
      last = now;
      emit(render(n, note), false);
    },
    done(note) {
      emit(render(total, note ?? 'done'), true);
    },
  };
}
