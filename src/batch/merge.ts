/**
 * Gathers the shard journals of a batch run into one report: one entry per image (duplicates from
 * reruns or changed shard counts collapse by image id), the images of the list that have no record,
 * and the same as JSON, markdown and CSV.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LensError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { csvField } from '../report/csv.js';
import type { BatchItem } from './list.js';
import {
  type BatchRecord,
  type JsonValue,
  isCompleteFile,
  listShardFiles,
  readJournal,
} from './store.js';

/** One image in the merged report. */
export interface ReportEntry {
  id: string;
  image: string;
  /** Position in the list (or in the records when no list was given). */
  index: number;
  /** 'missing' = in the list, but no shard has a record for it. */
  status: 'ok' | 'error' | 'missing';
  shard?: number;
  result?: { [key: string]: JsonValue };
  files?: Record<string, string>;
  /** Why the image failed (status 'error'). */
  error?: string;
  /** Attempts recorded for the image (status 'error': how often it failed). */
  attempts?: number;
}

/** A shard as seen in the output folder. */
export interface ShardState {
  shard: number;
  shards: number;
  records: number;
  /** The shard wrote its done marker. */
  done: boolean;
}

/** The merged result of a batch run. */
export interface MergeReport {
  createdAt: string;
  out: string;
  /** Images in the report (the list's size when a list was given). */
  images: number;
  ok: number;
  failed: number;
  missing: number;
  /** Records beyond the one kept per image (reruns, changed shard counts). */
  duplicateRecords: number;
  /** Records of images that are not in the given list (ignored). */
  extraRecords: number;
  /** Journal lines that were not records (torn or foreign lines). */
  badLines: number;
  shards: ShardState[];
  entries: ReportEntry[];
}

export interface WaitOptions {
  /** Shard count to wait for; inferred from the journal names when omitted. */
  shards?: number;
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Poll interval. Default 10 s. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Called after each poll that found shards still running. */
  onWaiting?: (doneShards: number, shards: number | undefined) => void;
}

export interface MergeOptions {
  out: string;
  /** The image list: the report follows its order and names the images without a record. */
  items?: readonly BatchItem[];
  /** Wait until every shard has written its done marker before merging. */
  wait?: WaitOptions;
  /** Write report.json, report.md and report.csv into `out`. Default true. */
  write?: boolean;
}

/**
 * Merges the shard journals under `out` into one report, and writes it as report.json, report.md
 * and report.csv (atomically).
 *
 * @example
 * const { items } = await readImageList('/data/images.txt');
 * const report = await mergeShards({ out: '/data/out', items });
 * if (report.missing > 0) console.error(`${report.missing} images have no result yet`);
 */
export async function mergeShards(options: MergeOptions): Promise<MergeReport> {
  const { out } = options;
  if (options.wait) await waitForShards(out, options.wait);
  const { journals, done } = await listShardFiles(out);
  const doneKeys = new Set(done.map((d) => `${d.shard}/${d.shards}`));
  const shards: ShardState[] = [];
  const byId = new Map<string, BatchRecord[]>();
  let badLines = 0;
  for (const j of journals) {
    const contents = await readJournal(j.path);
    badLines += contents.badLines + (contents.tornTail ? 1 : 0);
    shards.push({ shard: j.shard, shards: j.shards, records: contents.records.length, done: doneKeys.has(`${j.shard}/${j.shards}`) });
    for (const r of contents.records) {
      const list = byId.get(r.id);
      if (list) list.push(r);
      else byId.set(r.id, [r]);
    }
  }

  let duplicateRecords = 0;
  const chosen = new Map<string, ReportEntry>();
  for (const [id, records] of byId) {
    duplicateRecords += records.length - 1;
    chosen.set(id, await pickRecord(out, records));
  }

  let entries: ReportEntry[];
  let extraRecords = 0;
  if (options.items) {
    const listed = new Set(options.items.map((i) => i.id));
    for (const [id, records] of byId) if (!listed.has(id)) extraRecords += records.length;
    entries = options.items.map((item) => {
      const entry = chosen.get(item.id);
      return entry ? { ...entry, image: item.ref, index: item.index } : { id: item.id, image: item.ref, index: item.index, status: 'missing' as const };
    });
  } else {
    entries = [...chosen.values()].sort((a, b) => a.index - b.index || a.id.localeCompare(b.id));
  }

  const count = (s: ReportEntry['status']) => entries.filter((e) => e.status === s).length;
  const report: MergeReport = {
    createdAt: new Date().toISOString(),
    out,
    images: entries.length,
    ok: count('ok'),
    failed: count('error'),
    missing: count('missing'),
    duplicateRecords,
    extraRecords,
    badLines,
    shards,
    entries,
  };
  if (options.write ?? true) {
    await writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFileAtomic(join(out, 'report.md'), reportMarkdown(report));
    await writeFileAtomic(join(out, 'report.csv'), reportCsv(report));
  }
  return report;
}

/** Keeps one record per image: a success whose files are all present, the newest first; else the newest failure. */
async function pickRecord(out: string, records: readonly BatchRecord[]): Promise<ReportEntry> {
  const newestFirst = [...records].sort((a, b) => b.finishedAt.localeCompare(a.finishedAt));
  let lostFiles: string | undefined;
  for (const r of newestFirst) {
    if (r.status !== 'ok') continue;
    const missing = [];
    for (const f of Object.values(r.files ?? {})) if (!(await isCompleteFile(join(out, f)))) missing.push(f);
    if (missing.length === 0) {
      return { id: r.id, image: r.image, index: r.index, status: 'ok', shard: r.shard, ...(r.result ? { result: r.result } : {}), files: r.files ?? {} };
    }
    lostFiles ??= `output files missing: ${missing.join(', ')}`;
  }
  const r = newestFirst[0]!;
  const failure = newestFirst.find((x) => x.status === 'error');
  const attempts = Math.max(...records.map((x) => x.attempt ?? 1));
  return { id: r.id, image: r.image, index: r.index, status: 'error', shard: (failure ?? r).shard, error: failure?.error ?? lostFiles ?? 'no usable record', attempts };
}

/** Polls `OUT/shards` until every shard of the run has written its done marker. */
async function waitForShards(out: string, wait: WaitOptions): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    const { journals, done } = await listShardFiles(out);
    let shards = wait.shards;
    if (shards === undefined) {
      const counts = new Set([...journals, ...done].map((f) => f.shards));
      if (counts.size > 1) throw new LensError('INVALID_ARGUMENT', `${join(out, 'shards')} holds journals of runs with ${[...counts].join(' and ')} shards: pass --shards`);
      shards = counts.values().next().value;
    }
    const finished = shards === undefined ? 0 : new Set(done.filter((d) => d.shards === shards).map((d) => d.shard)).size;
    if (shards !== undefined && finished >= shards) return;
    if (Date.now() >= deadline) {
      throw new LensError('INTERNAL', `gave up waiting for the shards in ${join(out, 'shards')} after ${Math.round(wait.timeoutMs / 1000)} s: ${finished} of ${shards ?? 'an unknown number of'} shards done`);
    }
    wait.onWaiting?.(finished, shards);
    await sleep(Math.min(wait.pollMs ?? 10_000, Math.max(0, deadline - Date.now())), undefined, wait.signal ? { signal: wait.signal } : {});
  }
}

/** Flattens nested result objects to `a.b` columns; arrays become JSON text. */
function flatten(value: { [key: string]: JsonValue } | undefined, prefix = '', into: Map<string, string> = new Map()): Map<string, string> {
  for (const [key, v] of Object.entries(value ?? {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v, name, into);
    else into.set(name, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return into;
}

function tableOf(report: MergeReport): { header: string[]; rows: string[][] } {
  const flat = report.entries.map((e) => flatten(e.result));
  const resultColumns = [...new Set(flat.flatMap((m) => [...m.keys()]))];
  const fileColumns = [...new Set(report.entries.flatMap((e) => Object.keys(e.files ?? {})))].sort();
  const header = ['index', 'id', 'image', 'status', 'shard', ...resultColumns, ...fileColumns.map((k) => `file.${k}`), 'error'];
  const rows = report.entries.map((e, i) => [
    String(e.index),
    e.id,
    e.image,
    e.status,
    e.shard === undefined ? '' : String(e.shard),
    ...resultColumns.map((c) => flat[i]!.get(c) ?? ''),
    ...fileColumns.map((k) => e.files?.[k] ?? ''),
    e.error ?? '',
  ]);
  return { header, rows };
}

/**
 * The report as CSV (RFC 4180 quoting): one row per image, result fields flattened to `a.b` columns.
 *
 * @example
 * await writeFile('report.csv', reportCsv(report));
 */
export function reportCsv(report: MergeReport): string {
  const { header, rows } = tableOf(report);
  return `${[header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n')}\r\n`;
}

/**
 * The report as markdown: a summary, then a table with one row per image.
 *
 * @example
 * process.stdout.write(reportMarkdown(report));
 */
export function reportMarkdown(report: MergeReport): string {
  const { header, rows } = tableOf(report);
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const failures = report.entries.filter((e) => e.status === 'error');
  const lines = [
    '# Batch attribution report',
    '',
    `- images: ${report.images} (ok ${report.ok}, failed ${report.failed}, missing ${report.missing})`,
    `- shards: ${report.shards.length} journals, ${report.shards.filter((s) => s.done).length} done`,
    `- duplicate records collapsed: ${report.duplicateRecords}; records not in the list: ${report.extraRecords}; unreadable lines: ${report.badLines}`,
    `- created: ${report.createdAt}`,
    '',
    ...(failures.length > 0
      ? ['## Failures', '', ...failures.map((e) => `- ${cell(e.image)}: ${cell(e.error ?? 'unknown error')} (${e.attempts ?? 1} ${e.attempts === 1 || e.attempts === undefined ? 'attempt' : 'attempts'})`), '', '## Images', '']
      : []),
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map((v, i) => (header[i]!.startsWith('file.') && v ? `[${cell(v.split('/').pop()!)}](${encodeURI(v)})` : cell(v))).join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}
