/**
 * Regenerates docs/architecture.md's layer table and docs/architecture.svg from the one table of
 * layers in .dependency-cruiser.mjs. Run after changing that table:
 *
 *   npm run docs:architecture
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../src/fs/atomic.js';
import { layerDiagramSvg, withLayerTable } from './lib/architecture-docs.js';

const docs = join(dirname(fileURLToPath(import.meta.url)), '../docs');
const doc = join(docs, 'architecture.md');
await writeFileAtomic(doc, withLayerTable(await readFile(doc, 'utf8')));
await writeFileAtomic(join(docs, 'architecture.svg'), layerDiagramSvg());
console.log(`wrote ${doc} (layer table) and ${join(docs, 'architecture.svg')}`);
