/**
 * docs/architecture.md's layer table and its diagram (docs/architecture.svg), both drawn from the
 * one table of layers in .dependency-cruiser.mjs, so the picture, the doc and the enforced rules
 * cannot drift apart (test/architecture.test.ts checks the committed files are current).
 *
 * @example
 * const doc = withLayerTable(await readFile('docs/architecture.md', 'utf8'));
 * await writeFileAtomic('docs/architecture.svg', layerDiagramSvg());
 */
import { LAYERS, type Layer } from '../../.dependency-cruiser.mjs';

/** The table's place in docs/architecture.md. */
export const TABLE_BEGIN = '<!-- layers:begin (generated from .dependency-cruiser.mjs by `npm run docs:architecture`) -->';
export const TABLE_END = '<!-- layers:end -->';

/** The data flow, stage by stage, with the folder that owns each stage. */
export const DATA_FLOW = [
  { stage: 'image', folder: 'image' },
  { stage: 'tensor', folder: 'tensor' },
  { stage: 'model', folder: 'models' },
  { stage: 'attribution', folder: 'attribution' },
  { stage: 'picture', folder: 'render' },
] as const;

const sameRowNote = (layer: Layer): string =>
  Object.entries(layer.sameRow ?? {})
    .map(([from, tos]) => `${from} may import ${tos.join(', ')}`)
    .join('; ');

/** The layer table in Markdown, lowest row first, as the rules read it. */
export function layerTableMarkdown(): string {
  const rows = LAYERS.map((layer, i) => {
    const folders = layer.folders.map((f) => `\`${f}\``).join(', ');
    const note = sameRowNote(layer);
    return `| ${i + 1} | ${folders}${note ? ` (${note})` : ''} | ${layer.owns.replaceAll('|', '\\|')} |`;
  });
  return ['| # | folder(s) of `src/` | owns |', '|---|---|---|', ...rows].join('\n');
}

/** `doc` with the text between the table markers replaced by the current table. */
export function withLayerTable(doc: string): string {
  const begin = doc.indexOf(TABLE_BEGIN);
  const end = doc.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`docs/architecture.md lacks the markers ${TABLE_BEGIN} ... ${TABLE_END}`);
  return `${doc.slice(0, begin + TABLE_BEGIN.length)}\n${layerTableMarkdown()}\n${doc.slice(end)}`;
}

const xml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Greedy word wrap at `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

const WIDTH = 1000;
const BOX_X = 78;
const BOX_GAP = 22;
const OWNS_X = 500;
const OWNS_CHARS = 74;
const LINE = 14;
const FLOW_COLOUR = '#d9480f';
const boxWidth = (name: string): number => Math.max(84, name.length * 8 + 26);

/**
 * The layer diagram as SVG: one band per row, the top row (`cli`, the package entry) at the top
 * and `core` at the bottom, so every allowed import points down; the folders of the data flow
 * image -> tensor -> model -> attribution -> picture are outlined and drawn again as a strip.
 */
export function layerDiagramSvg(): string {
  const flowFolders = new Set<string>(DATA_FLOW.map((s) => s.folder));
  const parts: string[] = [];
  const top = 58;
  let y = top;
  const bands = [...LAYERS.entries()].reverse();
  for (const [i, layer] of bands) {
    const owns = wrap(layer.owns, OWNS_CHARS);
    const height = Math.max(40, owns.length * LINE + 18);
    const mid = y + height / 2;
    parts.push(`<rect x="44" y="${y}" width="${WIDTH - 60}" height="${height}" rx="6" fill="${i % 2 ? '#eef2f7' : '#f7f9fc'}" stroke="#c9d3e0"/>`);
    parts.push(`<text x="61" y="${mid + 5}" text-anchor="middle" class="row">${i + 1}</text>`);
    let x = BOX_X;
    const centres = new Map<string, number>();
    for (const folder of layer.folders) {
      const w = boxWidth(folder);
      const flow = flowFolders.has(folder);
      parts.push(`<rect x="${x}" y="${mid - 13}" width="${w}" height="26" rx="4" fill="#ffffff" stroke="${flow ? FLOW_COLOUR : '#5b6b80'}" stroke-width="${flow ? 2.5 : 1.2}"/>`);
      parts.push(`<text x="${x + w / 2}" y="${mid + 5}" text-anchor="middle" class="folder">${xml(folder)}</text>`);
      centres.set(folder, x + w / 2);
      x += w + BOX_GAP;
    }
    for (const [from, tos] of Object.entries(layer.sameRow ?? {})) {
      for (const to of tos) {
        const fx = centres.get(from);
        const tx = centres.get(to);
        if (fx === undefined || tx === undefined) continue;
        parts.push(`<path d="M ${fx} ${mid - 13} Q ${(fx + tx) / 2} ${mid - 26} ${tx} ${mid - 14}" fill="none" stroke="#5b6b80" stroke-width="1.2" marker-end="url(#head)"/>`);
      }
    }
    owns.forEach((line, k) => parts.push(`<text x="${OWNS_X}" y="${mid + 4 - ((owns.length - 1) * LINE) / 2 + k * LINE}" class="owns">${xml(line)}</text>`));
    y += height + 6;
  }
  const bottom = y - 6;
  // The import direction, down the left margin.
  parts.push(`<line x1="24" y1="${top + 4}" x2="24" y2="${bottom - 8}" stroke="#5b6b80" stroke-width="2" marker-end="url(#head)"/>`);
  parts.push(`<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" class="note">imports point down only; no circles</text>`);
  // The data-flow strip.
  const flowY = bottom + 40;
  parts.push(`<text x="44" y="${flowY - 14}" class="note">data flow (outlined folders above)</text>`);
  const stageW = 150;
  const stageGap = (WIDTH - 60 - DATA_FLOW.length * stageW) / (DATA_FLOW.length - 1);
  DATA_FLOW.forEach((s, k) => {
    const x = 44 + k * (stageW + stageGap);
    parts.push(`<rect x="${x}" y="${flowY}" width="${stageW}" height="40" rx="6" fill="#fff4e6" stroke="${FLOW_COLOUR}" stroke-width="2"/>`);
    parts.push(`<text x="${x + stageW / 2}" y="${flowY + 17}" text-anchor="middle" class="folder">${s.stage}</text>`);
    parts.push(`<text x="${x + stageW / 2}" y="${flowY + 32}" text-anchor="middle" class="owns">src/${s.folder}/</text>`);
    if (k > 0) parts.push(`<line x1="${x - stageGap + 4}" y1="${flowY + 20}" x2="${x - 6}" y2="${flowY + 20}" stroke="${FLOW_COLOUR}" stroke-width="2" marker-end="url(#flow)"/>`);
  });
  const height = flowY + 56;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    '<defs>',
    '<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#5b6b80"/></marker>',
    `<marker id="flow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="${FLOW_COLOUR}"/></marker>`,
    '<style>text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; fill: #1f2933; } .folder { font-size: 13px; font-weight: bold; } .owns { font-size: 11px; fill: #3e4c59; } .row { font-size: 13px; fill: #5b6b80; } .note { font-size: 12px; fill: #5b6b80; } .title { font-size: 17px; font-weight: bold; }</style>',
    '</defs>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    '<text x="44" y="34" class="title">serving-lens: the layers of src/ (generated from .dependency-cruiser.mjs)</text>',
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
