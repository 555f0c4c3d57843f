// The import graph of src/ (and of the studio page, studio/src) against the layer order of
// .dependency-cruiser.mjs, read by dependency-cruiser itself: an import from a lower row to a
// higher one, between folders of one row (unless the table allows it), or closing a circle
// (type-only imports count) fails, one line per violation.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryOf } from '../.dependency-cruiser.mjs';
import { layerDiagramSvg, withLayerTable } from '../scripts/lib/architecture-docs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CRUISED = ['src', 'studio/src'];

/**
 * Violations allowed for now, each `from -> to`. Empty: the layer order holds. The list may only
 * shrink: an entry that no longer occurs fails the test, so a fixed violation cannot be left here.
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

/** Cruises `paths` under `baseDir` with the project's own dependency-cruiser configuration. */
async function cruiseLayers(baseDir: string): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(join(ROOT, '.dependency-cruiser.mjs'));
  const reported = await cruise(CRUISED, { ...options, baseDir }, undefined, { tsConfig: extractTSConfig(join(ROOT, 'tsconfig.json')) });
  return reported.output as ICruiseResult;
}

interface LayerCheck {
  /** Violations not in the known list, one line each: `from -> to (rule)`. */
  unexpected: string[];
  /** Known entries that no longer occur. */
  stale: string[];
  /** Source files under src/ that no row of the table owns. */
  unplaced: string[];
}

function checkLayers(result: ICruiseResult, known: readonly string[]): LayerCheck {
  const violations = result.summary.violations.map((v) => ({ key: `${v.from} -> ${v.to}`, line: `${v.from} -> ${v.to} (${v.rule.name})` }));
  const occurring = new Set(violations.map((v) => v.key));
  return {
    unexpected: violations.filter((v) => !known.includes(v.key)).map((v) => v.line),
    stale: known.filter((key) => !occurring.has(key)),
    unplaced: result.modules.map((m) => m.source).filter((source) => source.startsWith('src/') && entryOf(source) === undefined),
  };
}

describe('the import graph of src/ follows the layer order', () => {
  let result: ICruiseResult;
  beforeAll(async () => {
    result = await cruiseLayers(ROOT);
  });

  it('cruises every source file of src/ and the studio page', () => {
    const sources = new Set(result.modules.map((m) => m.source));
    expect(sources.has('src/core/model.ts')).toBe(true);
    expect(sources.has('src/cli/main.ts')).toBe(true);
    expect(sources.has('studio/src/main.tsx')).toBe(true);
    // type-only imports are edges: studio/src/api.ts imports nothing but types from the server
    const api = result.modules.find((m) => m.source === 'studio/src/api.ts');
    expect(api?.dependencies.map((d) => d.resolved)).toEqual(['src/studio/wire.ts']);
  });

  it('has no upward import, no import between folders of one row and no circle beyond the known violations', () => {
    const { unexpected, unplaced } = checkLayers(result, KNOWN_VIOLATIONS);
    expect(unplaced, 'files in a folder that no row of .dependency-cruiser.mjs lists').toEqual([]);
    expect(unexpected, 'imports that break the layer order (docs/architecture.md)').toEqual([]);
  });

  it('lists only known violations that still occur (the list only shrinks)', () => {
    expect(checkLayers(result, KNOWN_VIOLATIONS).stale, 'fixed: delete these lines from KNOWN_VIOLATIONS').toEqual([]);
  });
});

describe('the layer check fails on a planted violation', () => {
  let dir: string;
  const planted: Record<string, string> = {
    'src/core/errors.ts': 'export const CODE = 1;\n',
    // upward: core imports the CLI
    'src/core/planted.ts': "import { run } from '../cli/main.js';\nexport const planted = run;\n",
    'src/cli/main.ts': "import { CODE } from '../core/errors.js';\nexport const run = CODE;\n",
    // a circle made only of type imports
    'src/render/a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
    'src/render/b.ts': "import type { A } from './a.js';\nexport interface B { a?: A }\n",
    // sideways: attribution and export share row 9 and may not import each other
    'src/export/write.ts': "import { CODE } from '../attribution/ig.js';\nexport const written = CODE;\n",
    'src/attribution/ig.ts': "export { CODE } from '../core/errors.js';\n",
    // the library reaching into the studio page
    'src/core/page-use.ts': "export type { Page } from '../../studio/src/page.js';\n",
    // a folder no row lists
    'src/widgets/x.ts': "import { CODE } from '../core/errors.js';\nexport const x = CODE;\n",
    // the studio page reaching past the wire types
    'studio/src/page.ts': "import { CODE } from '../../src/core/errors.js';\nexport const page = CODE;\nexport type Page = typeof page;\n",
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lens-architecture-'));
    for (const [path, text] of Object.entries(planted)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports each planted import on one line with its rule, and a known entry that no longer occurs', async () => {
    const result = await cruiseLayers(dir);
    const check = checkLayers(result, ['src/core/planted.ts -> src/cli/main.ts', 'src/demo/gone.ts -> src/cli/main.ts']);
    expect(check.unexpected.sort()).toEqual([
      'src/core/page-use.ts -> studio/src/page.ts (src-imports-outside)',
      'src/export/write.ts -> src/attribution/ig.ts (layer-order:export)',
      'src/render/a.ts -> src/render/b.ts (no-circular)',
      'studio/src/page.ts -> src/core/errors.ts (studio-web-imports)',
    ]);
    expect(check.stale).toEqual(['src/demo/gone.ts -> src/cli/main.ts']);
    expect(check.unplaced).toEqual(['src/widgets/x.ts']);
    // without the known list, the upward import is reported too
    expect(checkLayers(result, []).unexpected).toContain('src/core/planted.ts -> src/cli/main.ts (layer-order:core)');
  });
});

describe('docs/architecture.md shows the enforced table', () => {
  it('has the layer table and the diagram generated from .dependency-cruiser.mjs (npm run docs:architecture)', async () => {
    const doc = await readFile(join(ROOT, 'docs/architecture.md'), 'utf8');
    expect(doc).toBe(withLayerTable(doc));
    expect(await readFile(join(ROOT, 'docs/architecture.svg'), 'utf8')).toBe(layerDiagramSvg());
    expect(doc).toContain('](architecture.svg)');
  });
});
