/**
 * KServe's InferenceService schema (from its CRD, packaged in schemas/kserve with its license and
 * source) and the check of objects against it, as the API server's strict field validation does.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import YAML from 'yaml';
import { LensError } from '../core/errors.js';

/** Where the packaged InferenceService schema of KServe's CRD lies (see schemas/kserve/SOURCES.md). */
export const KSERVE_SCHEMA_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../schemas/kserve', 'inferenceservice-v1beta1.schema.json.gz');

/** The keywords of a Kubernetes structural schema that carry a check (format and x-kubernetes-list-* do not, here). */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, StructuralSchema>;
  additionalProperties?: StructuralSchema | boolean;
  required?: string[];
  items?: StructuralSchema;
  anyOf?: StructuralSchema[];
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  minimum?: number;
  maximum?: number;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

const TYPE_CHECKS: Record<NonNullable<StructuralSchema['type']>, (v: unknown) => boolean> = {
  object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  array: Array.isArray,
  string: (v) => typeof v === 'string',
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  boolean: (v) => typeof v === 'boolean',
};

/**
 * Checks a value against a structural schema the way the API server does with strict field
 * validation (what `kubectl apply` uses): unknown fields are errors unless the schema keeps them.
 * Returns the problems as `path message` strings. (KServe's schema is 2 MB of nested pod specs:
 * JSON-schema compilers spend tens of seconds compiling it; walking the object instead costs
 * microseconds.)
 *
 * @example
 * structuralErrors({ type: 'object', properties: { a: { type: 'integer' } } }, { a: 'x', b: 1 });
 * // ['/a must be integer', '/b is not a known field']
 */
export function structuralErrors(schema: StructuralSchema, value: unknown, path = ''): string[] {
  const at = path || '/';
  if (schema.anyOf && !schema.anyOf.some((s) => structuralErrors(s, value, path).length === 0)) {
    return [`${at} must be ${schema.anyOf.map((s) => s.type ?? 'valid').join(' or ')}`];
  }
  if (schema['x-kubernetes-int-or-string'] && !Number.isInteger(value) && typeof value !== 'string') return [`${at} must be an integer or a string`];
  if (schema.type && !TYPE_CHECKS[schema.type](value)) return [`${at} must be ${schema.type}${value === null ? ', not null' : ''}`];
  const errors: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at} must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${at} must match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at} must have at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at} must have at most ${schema.maxLength} characters`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at} must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at} must be <= ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at} must have at least ${schema.minItems} items`);
    if (schema.items) value.forEach((item, i) => errors.push(...structuralErrors(schema.items!, item, `${path}/${i}`)));
  } else if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (obj[r] === undefined) errors.push(`${at} needs the field ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      const child = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (child) errors.push(...structuralErrors(child, v, `${path}/${k}`));
      else if (schema.additionalProperties !== true && !schema['x-kubernetes-preserve-unknown-fields'] && (schema.properties || schema.additionalProperties === false)) {
        errors.push(`${path}/${k} is not a known field`);
      }
    }
  }
  return errors;
}

const schemas = new Map<string, StructuralSchema>();

/**
 * The InferenceService v1beta1 schema: the packaged one (schemas/kserve), or the one inside a CRD
 * file (KServe's `serving.kserve.io_inferenceservices.yaml`). Read once per file.
 *
 * @example
 * const schema = inferenceServiceSchema('../shared/k8s-schemas/kserve/serving.kserve.io_inferenceservices.yaml');
 */
export function inferenceServiceSchema(path: string | URL = KSERVE_SCHEMA_PATH): StructuralSchema {
  const key = String(path);
  const cached = schemas.get(key);
  if (cached) return cached;
  let schema: StructuralSchema | undefined;
  try {
    const bytes = readFileSync(path);
    const text = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
    const doc = /^\s*\{/.test(text) ? JSON.parse(text) : YAML.parse(text);
    schema = doc?.kind === 'CustomResourceDefinition' ? doc.spec?.versions?.find((v: { name: string }) => v.name === 'v1beta1')?.schema?.openAPIV3Schema : doc;
  } catch (e) {
    throw new LensError('INTERNAL', `cannot read KServe's InferenceService schema ${key}: ${(e as Error).message}`);
  }
  if (!schema || typeof schema !== 'object' || schema.type !== 'object') throw new LensError('INTERNAL', `${key} holds no InferenceService v1beta1 schema`);
  schemas.set(key, schema);
  return schema;
}
