/**
 * A kustomize build for the features serving-lens's manifests use, so that kustomizations can be
 * validated offline without a kustomize binary: `resources` (files and folders), `components`,
 * `patches` (strategic merge and JSON 6902, inline or from a file, with targets), `namespace`,
 * `labels` and `images`. Anything else is refused by name rather than ignored.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import jsonPatch, { type Operation } from 'fast-json-patch';
import YAML from 'yaml';
import { LensError, errorMessage } from '../core/errors.js';
import { type K8sObject, parseManifests } from './validate.js';

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'resources', 'components', 'patches', 'namespace', 'labels', 'images']);
const CLUSTER_SCOPED = new Set([
  'Namespace', 'Node', 'PersistentVolume', 'StorageClass', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition',
  'PriorityClass', 'IngressClass', 'RuntimeClass', 'VolumeSnapshotClass', 'CSIDriver', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration', 'APIService',
]);

/** Merge keys of the associative lists the strategic merge patch merges by (other lists are replaced). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  env: 'name',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
};

interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
}

interface PatchEntry {
  path?: string;
  patch?: string;
  target?: PatchTarget;
}

interface ImageEntry {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

interface LabelEntry {
  pairs: Record<string, string>;
  includeSelectors?: boolean;
  includeTemplates?: boolean;
}

interface KustomizationFile {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  components?: string[];
  patches?: PatchEntry[];
  namespace?: string;
  labels?: LabelEntry[];
  images?: ImageEntry[];
}

function fail(where: string, message: string): never {
  throw new LensError('INVALID_ARGUMENT', `${where}: ${message}`);
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readKustomization(dir: string, expected: 'Kustomization' | 'Component'): Promise<{ file: string; k: KustomizationFile }> {
  for (const name of KUSTOMIZATION_FILES) {
    const file = join(dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    const k = YAML.parse(text) as KustomizationFile | null;
    if (!k || typeof k !== 'object') fail(file, 'is empty or not a mapping');
    const kind = k.kind ?? 'Kustomization';
    if (kind !== expected) fail(file, `is a ${kind}, expected a ${expected}${expected === 'Component' ? ' (listed under components:)' : ''}`);
    const apiVersion = k.apiVersion ?? 'kustomize.config.k8s.io/v1beta1';
    const wanted = expected === 'Component' ? 'kustomize.config.k8s.io/v1alpha1' : 'kustomize.config.k8s.io/v1beta1';
    if (apiVersion !== wanted) fail(file, `apiVersion must be ${wanted}, got ${apiVersion}`);
    for (const field of Object.keys(k)) {
      if (!SUPPORTED_FIELDS.has(field)) fail(file, `field "${field}" is not supported by lens's kustomize build (it covers resources, components, patches, namespace, labels, images); use kubectl kustomize`);
    }
    return { file, k };
  }
  return fail(dir, `no ${KUSTOMIZATION_FILES.join(' or ')} found`);
}

function groupVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

function fullMatch(pattern: string, value: string): boolean {
  try {
    return new RegExp(`^(?:${pattern})$`).test(value);
  } catch {
    return pattern === value;
  }
}

function matchesTarget(obj: K8sObject, t: PatchTarget): boolean {
  const gv = groupVersion(obj.apiVersion);
  if (t.kind !== undefined && !fullMatch(t.kind, obj.kind)) return false;
  if (t.name !== undefined && !fullMatch(t.name, obj.metadata?.name ?? '')) return false;
  if (t.group !== undefined && t.group !== gv.group) return false;
  if (t.version !== undefined && t.version !== gv.version) return false;
  if (t.namespace !== undefined && t.namespace !== (obj.metadata?.namespace ?? '')) return false;
  if (t.labelSelector !== undefined) {
    const labels = obj.metadata?.labels ?? {};
    for (const term of t.labelSelector.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [k, v] = term.split('=');
      if (v === undefined ? !(k! in labels) : labels[k!.trim()] !== v.trim()) return false;
    }
  }
  return true;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isMap = (v: unknown): v is { [key: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Strategic merge of `patch` into `base` for the list semantics above; null deletes, `$patch: delete` removes list items. */
export function strategicMerge(base: Json | undefined, patch: Json, field = ''): Json | undefined {
  if (patch === null) return undefined;
  if (isMap(patch)) {
    if (patch.$patch === 'delete') return undefined;
    if (patch.$patch === 'replace') {
      const { $patch: _directive, ...rest } = patch;
      return rest;
    }
    const out: { [key: string]: Json } = isMap(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(patch)) {
      const merged = strategicMerge(out[key], value, key);
      if (merged === undefined) delete out[key];
      else out[key] = merged;
    }
    return out;
  }
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (!key || !Array.isArray(base) || !patch.every(isMap)) return patch.map((p) => strip(p));
    const out: Json[] = [...base];
    for (const item of patch as Array<{ [key: string]: Json }>) {
      const at = out.findIndex((b) => isMap(b) && b[key] === item[key]);
      if (item.$patch === 'delete') {
        if (at >= 0) out.splice(at, 1);
        continue;
      }
      if (at >= 0) out[at] = strategicMerge(out[at], item) as Json;
      else out.push(strip(item));
    }
    return out;
  }
  return patch;
}

/** Removes patch directives and nulls from a value that is added rather than merged. */
function strip(value: Json): Json {
  if (Array.isArray(value)) return value.map(strip);
  if (!isMap(value)) return value;
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) if (k !== '$patch' && v !== null) out[k] = strip(v);
  return out;
}

type JsonPatchOp = Operation;

/** Messages for the JSON patch failures a kustomization author makes most. */
const JSON_PATCH_MESSAGES: Record<string, (op: JsonPatchOp) => string> = {
  OPERATION_PATH_UNRESOLVABLE: (op) => `path ${op.path} does not exist`,
  OPERATION_PATH_CANNOT_ADD: (op) => `path ${op.path} does not exist`,
  OPERATION_VALUE_OUT_OF_BOUNDS: (op) => `index ${op.path.split('/').pop()} is out of range for ${op.path}`,
  TEST_OPERATION_FAILED: (op) => `test of ${op.path} failed`,
};

/** Applies RFC 6902 operations (add, remove, replace, test, move, copy) to a copy of `doc`. */
export function applyJsonPatch(doc: Json, ops: readonly JsonPatchOp[], where: string): Json {
  if (ops.some((op) => op.op === 'remove' && op.path === '')) fail(where, 'cannot remove the whole document');
  try {
    return jsonPatch.applyPatch(doc, structuredClone(ops) as JsonPatchOp[], true, false).newDocument;
  } catch (e) {
    if (!(e instanceof jsonPatch.JsonPatchError)) throw e;
    const op = e.operation as JsonPatchOp;
    return fail(where, JSON_PATCH_MESSAGES[e.name]?.(op) ?? `${e.message.split('\n')[0]} (${JSON.stringify(op)})`);
  }
}

async function loadPatch(dir: string, entry: PatchEntry, where: string): Promise<{ content: unknown; source: string }> {
  if (entry.patch !== undefined && entry.path !== undefined) fail(where, 'a patch has either path or patch, not both');
  if (entry.patch !== undefined) return { content: YAML.parse(entry.patch), source: `${where} (inline patch)` };
  if (entry.path === undefined) fail(where, 'a patch needs path or patch');
  const file = resolve(dir, entry.path);
  try {
    return { content: YAML.parse(await readFile(file, 'utf8')), source: file };
  } catch (e) {
    return fail(where, `cannot read patch ${entry.path}: ${errorMessage(e)}`);
  }
}

async function applyPatches(objects: K8sObject[], dir: string, patches: readonly PatchEntry[], where: string): Promise<K8sObject[]> {
  let out = objects;
  for (const entry of patches) {
    const { content, source } = await loadPatch(dir, entry, where);
    if (Array.isArray(content)) {
      if (!entry.target) fail(source, 'a JSON 6902 patch needs a target');
      let hits = 0;
      out = out.map((o) => {
        if (!matchesTarget(o, entry.target!)) return o;
        hits++;
        return applyJsonPatch(o as unknown as Json, content as JsonPatchOp[], source) as unknown as K8sObject;
      });
      if (hits === 0) fail(source, `matches no resource (target ${JSON.stringify(entry.target)})`);
    } else if (isMap(content)) {
      const target: PatchTarget = entry.target ?? {
        kind: String(content.kind ?? ''),
        name: String((content.metadata as { name?: string } | undefined)?.name ?? ''),
        ...groupVersion(String(content.apiVersion ?? '')),
      };
      let hits = 0;
      out = out.map((o) => {
        if (!matchesTarget(o, entry.target ? target : { ...target, name: escapeRegex(target.name ?? '') })) return o;
        hits++;
        const { metadata: patchMeta, ...rest } = content as { metadata?: { [key: string]: Json } } & { [key: string]: Json };
        // With an explicit target the patch's own name is only a placeholder: keep the target's.
        const meta = entry.target && patchMeta ? { ...patchMeta, name: o.metadata?.name ?? null } : patchMeta;
        return strategicMerge(o as unknown as Json, { ...rest, ...(meta ? { metadata: meta } : {}) }) as unknown as K8sObject;
      });
      if (hits === 0) fail(source, `matches no resource (${target.kind}/${target.name})`);
    } else fail(source, 'is neither a strategic merge patch (a mapping) nor a JSON 6902 patch (a list)');
  }
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function setImages(value: unknown, images: readonly ImageEntry[]): void {
  if (Array.isArray(value)) {
    for (const v of value) setImages(v, images);
    return;
  }
  if (!isMap(value)) return;
  for (const [key, v] of Object.entries(value)) {
    if ((key === 'containers' || key === 'initContainers') && Array.isArray(v)) {
      for (const c of v) {
        if (!isMap(c) || typeof c.image !== 'string') continue;
        const image = c.image;
        const at = image.indexOf('@');
        const colon = image.lastIndexOf(':');
        const slash = image.lastIndexOf('/');
        const name = at >= 0 ? image.slice(0, at) : colon > slash ? image.slice(0, colon) : image;
        const tag = at >= 0 ? undefined : colon > slash ? image.slice(colon + 1) : undefined;
        const rule = images.find((i) => i.name === name);
        if (!rule) continue;
        const newName = rule.newName ?? name;
        c.image = rule.digest ? `${newName}@${rule.digest}` : rule.newTag ? `${newName}:${rule.newTag}` : tag ? `${newName}:${tag}` : newName;
      }
    }
    setImages(v, images);
  }
}

async function accumulate(dir: string, kind: 'Kustomization' | 'Component', objects: K8sObject[], seen: Set<string>): Promise<K8sObject[]> {
  const { file, k } = await readKustomization(dir, kind);
  const where = relative(process.cwd(), file) || file;
  let out = objects;
  for (const r of k.resources ?? []) {
    if (/^[a-z]+:\/\//.test(r) || r.startsWith('github.com/')) fail(where, `remote resource ${r} is not supported offline`);
    const path = resolve(dir, r);
    if (await isDir(path)) {
      if (seen.has(path)) fail(where, `resource ${r} is included twice (cycle or duplicate)`);
      seen.add(path);
      out = [...out, ...(await accumulate(path, 'Kustomization', [], seen))];
    } else {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        return fail(where, `cannot read resource ${r}: ${errorMessage(e)}`);
      }
      out = [...out, ...parseManifests(text, relative(process.cwd(), path) || path)];
    }
  }
  for (const c of k.components ?? []) out = await accumulate(resolve(dir, c), 'Component', out, seen);
  out = await applyPatches(out, dir, k.patches ?? [], where);
  if (k.namespace) {
    out = out.map((o) => (CLUSTER_SCOPED.has(o.kind) ? o : { ...o, metadata: { ...o.metadata, namespace: k.namespace } }));
  }
  for (const l of k.labels ?? []) {
    if (l.includeSelectors) fail(where, 'labels with includeSelectors are not supported (selectors are immutable after the first apply); use includeTemplates');
    out = out.map((o) => {
      const copy = structuredClone(o);
      copy.metadata = { ...copy.metadata, labels: { ...copy.metadata?.labels, ...l.pairs } };
      const template = (copy.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined)?.template;
      if (l.includeTemplates && template && ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(copy.kind)) {
        template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, ...l.pairs } };
      }
      return copy;
    });
  }
  if (k.images && k.images.length > 0) {
    out = out.map((o) => {
      const copy = structuredClone(o);
      setImages(copy, k.images!);
      return copy;
    });
  }
  const ids = new Set<string>();
  for (const o of out) {
    const id = `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    if (ids.has(id)) fail(where, `resource ${o.kind}/${o.metadata?.name} appears twice`);
    ids.add(id);
  }
  return out;
}

/**
 * Builds the kustomization in `dir` (as `kubectl kustomize dir` would, for the supported fields)
 * and returns its objects.
 *
 * @example
 * const objects = await buildKustomization('k8s/overlays/gpu');
 */
export async function buildKustomization(dir: string): Promise<K8sObject[]> {
  return accumulate(resolve(dir), 'Kustomization', [], new Set([resolve(dir)]));
}

/** True when `dir` holds a kustomization file. */
export async function isKustomization(dir: string): Promise<boolean> {
  for (const name of KUSTOMIZATION_FILES) {
    try {
      if ((await stat(join(dir, name))).isFile()) return true;
    } catch {
      /* try the next name */
    }
  }
  return false;
}
