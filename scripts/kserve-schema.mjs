#!/usr/bin/env node
// Extracts the InferenceService v1beta1 OpenAPI schema from KServe's CRD file
// (config/crd/full/serving.kserve.io_inferenceservices.yaml of kserve/kserve) into the compact
// file src/k8s/kserve.ts reads: schemas/kserve/inferenceservice-v1beta1.schema.json.gz.
// Parsing the 2 MB YAML takes seconds; the extracted JSON loads in milliseconds.
//   node scripts/kserve-schema.mjs [CRD.yaml]      (default: ../shared/k8s-schemas/kserve/...)
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import YAML from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = process.argv[2] ?? join(root, '../shared/k8s-schemas/kserve/serving.kserve.io_inferenceservices.yaml');
const crd = YAML.parse(readFileSync(source, 'utf8'));
const schema = crd?.spec?.versions?.find((v) => v.name === 'v1beta1')?.schema?.openAPIV3Schema;
if (!schema) throw new Error(`${source} has no InferenceService v1beta1 schema`);
const out = join(root, 'schemas/kserve/inferenceservice-v1beta1.schema.json.gz');
writeFileSync(`${out}.tmp`, gzipSync(JSON.stringify(schema), { level: 9 }));
renameSync(`${out}.tmp`, out);
console.log(`wrote ${out}`);
