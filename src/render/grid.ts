/**
 * Comparison grids: rows of images, columns of methods or baselines, each cell titled (class and
 * probability, baseline, steps, completeness delta), with a colour bar, drawn with @napi-rs/canvas
 * and encoded with sharp.
 *
 * Layout in pixels, with f = fontSize (default 12), L = ceil(1.4 f), S = cellSize (default 160: the
 * longest edge of each drawn image, which keeps its aspect and is centred in an S x S box),
 * C columns and R rows:
 * - width  = 10 + [rowTitleWidth (default 120) + 10, with row titles] + C S + 10 (C - 1) + 10
 * - height = 10 + [(t + 1) L, with a title] + [c L + 4, with column titles] + R (T L + S + B) + 10 (R - 1)
 *   + [10 + 12 + 3 + L, + L when labelled, for a shared colour bar] + [10 + k L, with a caption] + 10,
 *   where titles wrap at spaces to their width (never cut): t, c, k are the wrapped lines of the
 *   title, the tallest column title and the caption, T the most wrapped title lines of any cell, and B = 6 + 8 + 3 + L (+ L when labelled) when
 *   cells draw their own colour bars, else 0.
 * `gridSize` computes the same numbers without drawing.
 *
 * @example
 * const png = await renderGrid({
 *   title: 'IG baselines',
 *   columnTitles: ['image', 'black', 'blur'],
 *   cells: [[{ image: rgbaFromImage(pixels) }, ...maps.map((m) => ({ image: visualize(m, { scale }), title: attributionTitle(m) }))]],
 * });
 * await writePngAtomic('out/grid.png', png, { method: 'integrated_gradients' });
 */
import { LensError } from '../core/errors.js';
import { drawColorbar, drawRgba, finishCanvas, fitText, newCanvas, wrapLines, type PictureFormat } from './draw.js';
import { fontSpec } from './fonts.js';
import { checkRgba, type RgbaImage } from './rgba.js';
import type { ColorbarSpec, Visualization } from './visualize.js';

/** One grid cell: an image (a `Visualization` brings its colour scale) and title lines above it. */
export interface GridCell {
  image: RgbaImage | Visualization;
  /** One line, or several (e.g. from `attributionTitle`). */
  title?: string | readonly string[];
}

export interface GridOptions {
  /** Rows of cells; a missing (null/undefined) cell is left blank. */
  cells: ReadonlyArray<ReadonlyArray<GridCell | null | undefined>>;
  title?: string;
  columnTitles?: readonly string[];
  rowTitles?: readonly string[];
  /** Longest edge of each drawn image, in pixels. Default 160. */
  cellSize?: number;
  /** Width of the row title column. Default 120. */
  rowTitleWidth?: number;
  /**
   * `auto` (default): one bar under the grid when every coloured cell shares a colour scale,
   * else a small bar under each coloured cell. `none`: no bars. A spec: that one bar.
   */
  colorbar?: ColorbarSpec | 'auto' | 'none';
  /** Default 12. */
  fontSize?: number;
  /** CSS colour. Default white. */
  background?: string;
  /** `png` (default) or `svg` (for papers: text as paths, pictures embedded). */
  format?: PictureFormat;
  /** A note under the grid (e.g. which colour scale the panels share); wraps to the grid's width. */
  caption?: string;
}

const MARGIN = 10;
const GAP = 10;
const SHARED_BAR_HEIGHT = 12;
const CELL_BAR_HEIGHT = 8;
const CELL_BAR_SPACING = 6;

function titleLines(cell: GridCell | null | undefined): readonly string[] {
  if (!cell?.title) return [];
  return typeof cell.title === 'string' ? [cell.title] : cell.title;
}

function sameScale(a: ColorbarSpec, b: ColorbarSpec): boolean {
  return a.colormap === b.colormap && a.from === b.from && a.to === b.to && a.label === b.label;
}

type BarMode = { kind: 'none' } | { kind: 'shared'; spec: ColorbarSpec } | { kind: 'cell' };

function barMode(options: GridOptions): BarMode {
  const choice = options.colorbar ?? 'auto';
  if (choice === 'none') return { kind: 'none' };
  if (choice !== 'auto') return { kind: 'shared', spec: choice };
  const specs = options.cells.flatMap((row) => row.map((c) => (c?.image as Visualization | undefined)?.colorbar)).filter((s): s is ColorbarSpec => !!s);
  const first = specs[0];
  if (!first) return { kind: 'none' };
  return specs.every((s) => sameScale(s, first)) ? { kind: 'shared', spec: first } : { kind: 'cell' };
}

/** Pixel size of the grid `renderGrid` draws for these options (see the layout in the module comment). */
export function gridSize(options: GridOptions): { width: number; height: number } {
  return layout(options).size;
}

/** Where `renderGrid` draws one cell's image. */
export interface GridPanel {
  row: number;
  column: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The rectangles `renderGrid` draws the cell images into, row by row (blank cells left out): for
 * checking a rendered grid panel by panel, or for placing links over it.
 *
 * @example
 * for (const p of gridPanels(options)) console.log(p.row, p.column, p.left, p.top, p.width, p.height);
 */
export function gridPanels(options: GridOptions): GridPanel[] {
  return panelsOf(options, layout(options));
}

function panelsOf(options: GridOptions, g: ReturnType<typeof layout>): GridPanel[] {
  const panels: GridPanel[] = [];
  options.cells.forEach((row, r) => {
    const imageTop = g.gridTop + r * (g.rowHeight + GAP) + g.cellTitleLines * g.lineHeight;
    row.forEach((cell, c) => {
      if (!cell) return;
      const left = g.gridLeft + c * (g.cellSize + GAP);
      const scale = g.cellSize / Math.max(cell.image.width, cell.image.height);
      const width = Math.max(1, Math.round(cell.image.width * scale));
      const height = Math.max(1, Math.round(cell.image.height * scale));
      panels.push({ row: r, column: c, left: left + Math.floor((g.cellSize - width) / 2), top: imageTop + Math.floor((g.cellSize - height) / 2), width, height });
    });
  });
  return panels;
}

function layout(options: GridOptions) {
  const rows = options.cells.length;
  const columns = Math.max(0, ...options.cells.map((r) => r.length), options.columnTitles?.length ?? 0);
  if (rows === 0 || columns === 0) throw new LensError('INVALID_ARGUMENT', 'grid has no cells');
  if (options.rowTitles && options.rowTitles.length !== rows) {
    throw new LensError('INVALID_ARGUMENT', `grid has ${rows} rows but ${options.rowTitles.length} row titles`);
  }
  const fontSize = options.fontSize ?? 12;
  const cellSize = options.cellSize ?? 160;
  if (!(Number.isInteger(cellSize) && cellSize >= 8)) throw new LensError('INVALID_ARGUMENT', `grid cell size must be a whole number >= 8, got ${cellSize}`);
  const lineHeight = Math.ceil(fontSize * 1.4);
  const rowTitleWidth = options.rowTitles ? (options.rowTitleWidth ?? 120) + GAP : 0;
  const bars = barMode(options);
  const contentWidth = columns * cellSize + (columns - 1) * GAP;
  const widthAll = MARGIN + rowTitleWidth + contentWidth + MARGIN;
  const titleWrapped = options.title ? wrapLines([options.title], widthAll - 2 * MARGIN, fontSpec(Math.round(fontSize * 1.25), 'bold')) : [];
  const titleBand = options.title ? (titleWrapped.length + 1) * lineHeight : 0;
  const columnWrapped = (options.columnTitles ?? []).map((t) => wrapLines([t], cellSize, fontSpec(fontSize, 'bold')));
  const columnBand = options.columnTitles ? Math.max(1, ...columnWrapped.map((l) => l.length)) * lineHeight + 4 : 0;
  const cellTitles = options.cells.map((r) => r.map((c) => wrapLines(titleLines(c), cellSize, fontSpec(fontSize))));
  const cellTitleLines = Math.max(0, ...cellTitles.flatMap((r) => r.map((l) => l.length)));
  const captionLines = options.caption ? wrapLines([options.caption], widthAll - 2 * MARGIN, fontSpec(fontSize)) : [];
  const barLabelled = (spec: ColorbarSpec | undefined) => (spec?.label ? lineHeight : 0);
  const cellBarLabel = bars.kind === 'cell'
    ? Math.max(0, ...options.cells.flatMap((r) => r.map((c) => barLabelled((c?.image as Visualization | undefined)?.colorbar))))
    : 0;
  const cellBar = bars.kind === 'cell' ? CELL_BAR_SPACING + CELL_BAR_HEIGHT + 3 + lineHeight + cellBarLabel : 0;
  const rowHeight = cellTitleLines * lineHeight + cellSize + cellBar;
  const sharedBar = bars.kind === 'shared' ? GAP + SHARED_BAR_HEIGHT + 3 + lineHeight + barLabelled(bars.spec) : 0;
  const gridTop = MARGIN + titleBand + columnBand;
  const gridLeft = MARGIN + rowTitleWidth;
  const width = widthAll;
  const captionBand = captionLines.length > 0 ? GAP + captionLines.length * lineHeight : 0;
  const height = gridTop + rows * rowHeight + (rows - 1) * GAP + sharedBar + captionBand + MARGIN;
  return {
    rows, columns, fontSize, cellSize, lineHeight, rowTitleWidth, bars, titleBand, columnBand, cellTitleLines, rowHeight, gridTop, gridLeft,
    titleWrapped, columnWrapped, cellTitles, captionLines, sharedBar,
    size: { width, height },
  };
}

/**
 * Draws a grid and returns it as PNG bytes (add text chunks with `writePngAtomic` or `addPngText`),
 * or as SVG bytes with `format: 'svg'`.
 *
 * @example
 * const png = await renderGrid({ rowTitles: ['cat'], cells: [[{ image: visualize(attr), title: 'IG' }]] });
 */
export async function renderGrid(options: GridOptions): Promise<Buffer> {
  const g = layout(options);
  const panels = panelsOf(options, g);
  const { canvas, ctx } = newCanvas(g.size.width, g.size.height, options.background ?? '#ffffff', options.format ?? 'png');
  const contentWidth = g.columns * g.cellSize + (g.columns - 1) * GAP;
  ctx.fillStyle = '#111111';
  ctx.textBaseline = 'top';

  if (options.title) {
    ctx.font = fontSpec(Math.round(g.fontSize * 1.25), 'bold');
    ctx.textAlign = 'center';
    g.titleWrapped.forEach((line, i) => ctx.fillText(line, g.size.width / 2, MARGIN + Math.round(g.lineHeight * 0.3) + i * g.lineHeight));
  }
  if (options.columnTitles) {
    ctx.font = fontSpec(g.fontSize, 'bold');
    ctx.textAlign = 'center';
    g.columnWrapped.forEach((lines, c) => {
      const x = g.gridLeft + c * (g.cellSize + GAP);
      lines.forEach((line, i) => ctx.fillText(line, x + g.cellSize / 2, MARGIN + g.titleBand + i * g.lineHeight));
    });
  }

  options.cells.forEach((row, r) => {
    const top = g.gridTop + r * (g.rowHeight + GAP);
    const imageTop = top + g.cellTitleLines * g.lineHeight;
    if (options.rowTitles) {
      ctx.font = fontSpec(g.fontSize, 'bold');
      ctx.textAlign = 'left';
      const lines = options.rowTitles[r]!.split('\n');
      const y0 = imageTop + g.cellSize / 2 - (lines.length * g.lineHeight) / 2;
      lines.forEach((line, i) => ctx.fillText(fitText(ctx, line, g.rowTitleWidth - GAP), MARGIN, y0 + i * g.lineHeight));
    }
    row.forEach((cell, c) => {
      if (!cell) return;
      checkRgba(cell.image, `grid cell [${r}, ${c}]`);
      const left = g.gridLeft + c * (g.cellSize + GAP);
      ctx.font = fontSpec(g.fontSize);
      ctx.textAlign = 'center';
      ctx.fillStyle = '#111111';
      // Titles sit just above their image, whatever the number of lines.
      const lines = g.cellTitles[r]![c]!;
      const firstLine = g.cellTitleLines - lines.length;
      lines.forEach((line, i) => ctx.fillText(line, left + g.cellSize / 2, top + (firstLine + i) * g.lineHeight + 2));
      const p = panels.find((q) => q.row === r && q.column === c)!;
      drawRgba(ctx, cell.image, p.left, p.top, p.width, p.height);
      const spec = (cell.image as Visualization).colorbar;
      if (g.bars.kind === 'cell' && spec) {
        drawColorbar(ctx, spec, { x: left, y: imageTop + g.cellSize + CELL_BAR_SPACING, width: g.cellSize, barHeight: CELL_BAR_HEIGHT }, Math.max(8, g.fontSize - 2), g.lineHeight);
      }
    });
  });

  if (g.bars.kind === 'shared') {
    const barWidth = Math.min(contentWidth, 360);
    const y = g.gridTop + g.rows * g.rowHeight + (g.rows - 1) * GAP + GAP;
    drawColorbar(ctx, g.bars.spec, { x: g.gridLeft + Math.floor((contentWidth - barWidth) / 2), y, width: barWidth, barHeight: SHARED_BAR_HEIGHT }, g.fontSize, g.lineHeight);
  }
  if (g.captionLines.length > 0) {
    ctx.font = fontSpec(g.fontSize);
    ctx.textAlign = 'left';
    ctx.fillStyle = '#333333';
    const y = g.gridTop + g.rows * g.rowHeight + (g.rows - 1) * GAP + g.sharedBar + GAP;
    g.captionLines.forEach((line, i) => ctx.fillText(line, MARGIN, y + i * g.lineHeight));
  }
  return finishCanvas(canvas);
}
