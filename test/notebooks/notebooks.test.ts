/**
 * Every notebook in notebooks/ is committed executed, with its pictures and tables, so that it
 * shows on GitHub and in JupyterLab before anyone runs it; and it runs top to bottom, offline, with
 * the bundled model, in a real Jupyter (nbconvert) with the checkout's "serving-lens" kernel
 * (tslab; registered by scripts/setup-system.sh under .jupyter/, found through JUPYTER_PATH): no
 * cell may fail or write to stderr, the cells that show pictures and tables must show them, and
 * the stored outputs must be what a run gives now (see `normalise` for what may differ).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { ensureDist } from '../helpers/dist.js';

const NOTEBOOKS = join(REPO_ROOT, 'notebooks');
const PYTHON = '/usr/bin/python3';

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  id?: string;
  cell_type: string;
  metadata?: { tags?: string[] };
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
}
interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: { kernelspec?: { name?: string; display_name?: string; language?: string } };
  cells: Cell[];
}

/** Per notebook: cells that must show a PNG, cells that must show an HTML table, and text some output must contain. */
const EXPECTED: Record<string, { png: string[]; table: string[]; text: string[] }> = {
  '01-servable-model': {
    png: ['01-samples'],
    table: ['01-model', '01-layers', '01-samples', '01-export', '01-validate', '01-predictions'],
    text: ['servable checks: all passed', 'All assertions hold'],
  },
  '02-serving-and-profiling': {
    png: ['02-predict', '02-profile'],
    table: ['02-server', '02-predict', '02-rest', '02-profile'],
    text: ['local server (lens serve, in this process)', 'Measured here: batch 1 takes'],
  },
  '03-model-understanding': {
    png: ['03-setup', '03-path-pictures', '03-path-charts', '03-visualizations', '03-other-classes'],
    table: ['03-top5', '03-completeness', '03-other-classes'],
    text: ['completeness delta by integration rule and steps'],
  },
  '04-comparing-baselines': {
    png: ['04-baselines', '04-methods', '04-metrics', '04-shapes-set'],
    table: ['04-metrics', '04-files'],
    text: ['IG baselines on 10 shapes', 'text chunks of baselines.png'],
  },
};

const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : (v ?? ''));
const KERNEL_DIR = join(REPO_ROOT, '.jupyter');

/**
 * Output text with what legitimately differs between runs replaced: the output folder and the
 * checkout's own folder (absolute paths), loopback ports, thread counts, and durations and rates with their units. Cells tagged
 * `lens-volatile` (measurements: latencies, throughput) are compared by their output kinds only.
 */
function normalise(value: string): string {
  return value
    .replace(/\/[^\s"'<>()]*\/out\/notebooks/g, '<out>')
    // Where the checkout (and ../shared beside it) lies: CI runs a fresh clone in another folder.
    .replace(/\/[^\s"'<>()]*\/(models|notebooks|shared)\//g, '<checkout>/$1/')
    .replace(/(127\.0\.0\.1|localhost):\d+/g, '$1:<port>')
    .replace(/\d+ threads?/g, '<n> threads')
    .replace(/\d[\d.,]*\s*(ms|µs|us|s|min)\b/g, '<time>');
}

/** Per code cell: the kinds of its outputs, and their normalised text unless the cell is volatile. */
function outputSignature(nb: Notebook): Record<string, { kinds: string[]; text: string[] }> {
  const out: Record<string, { kinds: string[]; text: string[] }> = {};
  for (const cell of nb.cells.filter((c) => c.cell_type === 'code')) {
    const volatile = cell.metadata?.tags?.includes('lens-volatile') ?? false;
    const outputs = cell.outputs ?? [];
    out[cell.id!] = {
      kinds: outputs.map((o) => [o.output_type, o.name ?? '', ...Object.keys(o.data ?? {}).sort()].join(':')),
      text: volatile
        ? []
        : outputs.map((o) => normalise([text(o.text), ...['text/plain', 'text/html', 'text/markdown'].map((m) => text(o.data?.[m]))].join('\n'))),
    };
  }
  return out;
}
const read = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Notebook;

function execute(name: string, outDir: string): Promise<{ code: number; log: string }> {
  return new Promise((resolve, reject) => {
    // The checkout's kernel spec (no machine-wide kernel, no PATH change); files under .../out/notebooks like a default run.
    const env: NodeJS.ProcessEnv = { ...process.env, JUPYTER_PATH: KERNEL_DIR, LENS_OUT: join(outDir, 'out', 'notebooks') };
    // Offline defaults: the bundled model, generated images, a local server.
    for (const k of ['LENS_MODEL', 'LENS_DATA', 'LENS_SERVER', 'LENS_SERVER_REST', 'LENS_SERVER_MODEL', 'LENS_IMAGE_URLS']) delete env[k];
    const args = ['-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', `${name}.ipynb`, '--output-dir', outDir, '--ExecutePreprocessor.timeout=600'];
    const child = spawn(PYTHON, args, { cwd: NOTEBOOKS, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, log }));
  });
}

const files = readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb')).sort();

describe('notebooks as committed', () => {
  it('are the four of the workbench', () => {
    expect(files).toEqual(Object.keys(EXPECTED).map((n) => `${n}.ipynb`));
  });

  it.each(files)('%s: the checkout\'s kernel, cell ids, stored executed with pictures, imports the built library', (file) => {
    const nb = read(join(NOTEBOOKS, file));
    expect(nb.nbformat).toBe(4);
    expect(nb.nbformat_minor).toBeGreaterThanOrEqual(5);
    expect(nb.metadata.kernelspec).toMatchObject({ name: 'serving-lens', display_name: 'TypeScript (serving-lens)', language: 'typescript' });
    const ids = nb.cells.map((c) => c.id);
    expect(ids.every((id) => typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const code = nb.cells.filter((c) => c.cell_type === 'code');
    // tslab leaves execution counts empty; executed cells show by their outputs (the re-run below
    // checks that every cell's stored outputs are current).
    expect(code.filter((c) => (c.outputs ?? []).length > 0).length, `${file} is stored without outputs`).toBeGreaterThan(code.length / 2);
    for (const cell of code) {
      for (const o of cell.outputs ?? []) {
        expect(o.output_type, `cell ${cell.id} of ${file} stored an error`).not.toBe('error');
        expect(o.name, `cell ${cell.id} of ${file} stored stderr`).not.toBe('stderr');
      }
    }
    // The cells that show pictures show them as stored.
    const expected = EXPECTED[file.replace('.ipynb', '')]!;
    for (const id of expected.png) {
      const cell = code.find((c) => c.id === id);
      expect((cell?.outputs ?? []).some((o) => text(o.data?.['image/png']).length > 100), `${id} stores a PNG`).toBe(true);
    }
    const source = code.map((c) => text(c.source)).join('\n');
    // tslab's TypeScript cannot resolve the package's own name: notebooks import the build.
    expect(source).toContain("from '../dist/index.js'");
    expect(source).not.toMatch(/from 'serving-lens'/);
  });

  it('normalises only what differs between runs', () => {
    expect(normalise('files go to /work/x/out/notebooks/01 in 1.3s, p50 179.2 ms at 127.0.0.1:41809 (wasm, 2 threads)')).toBe(
      'files go to <out>/01 in <time>, p50 <time> at 127.0.0.1:<port> (wasm, <n> threads)',
    );
    expect(normalise('disc 0.997, delta 0.0476 (1.2%)')).toBe('disc 0.997, delta 0.0476 (1.2%)');
  });

  it('the kernel spec is this checkout\'s tslab, by absolute path', () => {
    const specPath = join(KERNEL_DIR, 'kernels', 'serving-lens', 'kernel.json');
    expect(existsSync(specPath), `no kernel spec at ${specPath}: run bash scripts/setup-system.sh`).toBe(true);
    const spec = JSON.parse(readFileSync(specPath, 'utf8')) as { argv: string[]; display_name: string };
    expect(spec.argv[0]).toBe(join(REPO_ROOT, 'node_modules', '.bin', 'tslab'));
    expect(existsSync(spec.argv[0]!)).toBe(true);
    expect(spec.argv.slice(1)).toEqual(['kernel', '--config-path', '{connection_file}']);
  });
});

describe('notebooks run headlessly in Jupyter with the serving-lens (tslab) kernel', () => {
  let outRoot: string;
  beforeAll(async () => {
    await ensureDist();
    outRoot = mkdtempSync(join(tmpdir(), 'lens-notebooks-'));
  });
  afterAll(() => {
    if (outRoot) rmSync(outRoot, { recursive: true, force: true });
  });

  it.each(Object.keys(EXPECTED))('%s runs top to bottom, shows its pictures and tables, and matches its stored outputs', async (name) => {
    const outDir = join(outRoot, name);
    const run = await execute(name, outDir);
    expect(run.code, `nbconvert failed for ${name} (is the tslab kernel registered? run: bash scripts/setup-system.sh):\n${run.log.slice(-4000)}`).toBe(0);
    const nb = read(join(outDir, `${name}.ipynb`));
    const problems: string[] = [];
    for (const cell of nb.cells) {
      for (const o of cell.outputs ?? []) {
        if (o.output_type === 'error') problems.push(`${cell.id}: ${o.ename}: ${o.evalue}`);
        if (o.output_type === 'stream' && o.name === 'stderr') problems.push(`${cell.id} wrote to stderr: ${text(o.text).slice(0, 2000)}`);
      }
    }
    expect(problems).toEqual([]);
    const byId = new Map(nb.cells.map((c) => [c.id, c]));
    const mimes = (id: string) => (byId.get(id)?.outputs ?? []).flatMap((o) => Object.keys(o.data ?? {}));
    const expected = EXPECTED[name]!;
    for (const id of expected.png) expect(mimes(id), `${id} shows a PNG`).toContain('image/png');
    for (const id of expected.table) {
      const html = (byId.get(id)?.outputs ?? []).map((o) => text(o.data?.['text/html'])).join('');
      expect(html, `${id} shows an HTML table`).toContain('<table');
    }
    const everything = nb.cells.flatMap((c) => c.outputs ?? []).map((o) => [text(o.text), ...Object.values(o.data ?? {}).map(text)].join('\n')).join('\n');
    for (const t of expected.text) expect(everything).toContain(t);
    // Pictures are real PNGs.
    const png = (byId.get(expected.png[0]!)?.outputs ?? []).map((o) => text(o.data?.['image/png'])).find((b) => b.length > 0)!;
    expect(Buffer.from(png, 'base64').subarray(1, 4).toString('latin1')).toBe('PNG');
    // Stale stored outputs fail: re-run the notebook (README, Notebooks) and commit it.
    const stored = outputSignature(read(join(NOTEBOOKS, `${name}.ipynb`)));
    expect(outputSignature(nb), `stored outputs of ${name}.ipynb are stale: re-execute it in place (README, Notebooks) and commit`).toEqual(stored);
  }, 300_000);
});
