/**
 * `lens k8s render`: typed objects for the requested deployment, validated against the Kubernetes
 * schemas and the security rules, written as a kustomization (one file per object) or as YAML.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { writeFileAtomic } from '../fs/atomic.js';
import { LensError } from '../core/errors.js';
import { batchObjects } from './batch.js';
import { sharedClaim } from './common.js';
import { ingressObjects } from './ingress.js';
import { kserveObjects } from './kserve.js';
import { type RenderOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { servingObjects } from './serving.js';
import { type K8sObject, checkSecurity, describeObject, toYaml, validateManifest } from './validate.js';
import { jupyterhubValues, workbenchObjects } from './workbench.js';

/** First line of every file `lens k8s render` writes; re-rendering replaces only such files. */
export const RENDER_HEADER = '# Rendered by `lens k8s render` (serving-lens).';

/** What a render produced. */
export interface RenderedManifests {
  resolved: ResolvedOptions;
  /** The objects as plain JSON, in apply order. */
  objects: K8sObject[];
  /** Files of the kustomization by relative path (kustomization.yaml, one YAML per object, extras). */
  files: Map<string, string>;
}

/** File name of an object in a rendered kustomization, e.g. `deployment-tf-serving-resnet.yaml`. */
export function objectFileName(obj: K8sObject): string {
  return `${obj.kind.toLowerCase()}-${obj.metadata?.name ?? 'unnamed'}.yaml`;
}

function commandLine(options: RenderOptions): string {
  const parts = [`--model-name ${options.modelName}`];
  if (options.target === 'kserve') parts.push('--target kserve');
  if (options.gpus) parts.push(`--gpus ${options.gpus}`);
  if (options.pvc) parts.push(`--pvc ${options.pvc}`);
  if (options.modelBasePath) parts.push(`--model-base-path ${options.modelBasePath}`);
  if (options.namespace) parts.push(`--namespace ${options.namespace}`);
  return parts.join(' ');
}

/**
 * Builds, validates and lays out the manifests for `options`. Throws a LensError for bad options;
 * an object failing its schema or the security rules here is a bug and throws INTERNAL.
 *
 * @example
 * const { files } = await renderManifests({ modelName: 'resnet', gpus: 1, pvc: 'claim-alice' });
 * for (const [name, text] of files) console.log(name, text.length);
 */
export async function renderManifests(options: RenderOptions): Promise<RenderedManifests> {
  const resolved = resolveOptions(options);
  const needsClaim = resolved.source.kind === 'pvc' || resolved.workbench !== undefined || resolved.batch !== undefined;
  const typed: Array<{ toJSON(): unknown }> = [
    ...(resolved.claim.create && needsClaim ? [sharedClaim(resolved)] : []),
    ...(resolved.target === 'kserve' ? kserveObjects(resolved) : [...servingObjects(resolved), ...ingressObjects(resolved)]),
    ...(resolved.workbench ? workbenchObjects(resolved) : []),
    ...(resolved.batch ? batchObjects(resolved) : []),
  ];
  const objects = typed.map((o) => JSON.parse(JSON.stringify(o.toJSON())) as K8sObject);
  for (const o of objects) {
    try {
      await validateManifest(o, 'lens k8s render');
    } catch (e) {
      throw new LensError('INTERNAL', `rendered ${describeObject(o)} fails its schema (a serving-lens bug): ${(e as Error).message}`);
    }
  }
  const errors = checkSecurity(objects).filter((f) => f.severity === 'error');
  if (errors.length > 0) throw new LensError('INTERNAL', `rendered manifests break security rules (a serving-lens bug): ${errors.map((f) => `${f.object}: ${f.message}`).join('; ')}`);

  const header = `${RENDER_HEADER}\n# lens k8s render ${commandLine(options)}\n`;
  const files = new Map<string, string>();
  for (const o of objects) files.set(objectFileName(o), `${header}${toYaml([o])}`);
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    ...(resolved.namespace ? { namespace: resolved.namespace } : {}),
    resources: objects.map(objectFileName),
  };
  files.set('kustomization.yaml', `${header}# Apply with: kubectl apply -k .   (check first: lens k8s validate .)\n${YAML.stringify(kustomization)}`);
  if (resolved.workbench) {
    files.set(
      'jupyterhub-values.yaml',
      `${header}# Not a Kubernetes object: merge into your zero-to-jupyterhub values (helm upgrade ... -f jupyterhub-values.yaml).\n${YAML.stringify(jupyterhubValues(resolved))}`,
    );
  }
  return { resolved, objects, files };
}

/**
 * Writes rendered files into `dir` atomically, removing files an earlier render wrote that this
 * one no longer has (files without the render header are never touched).
 *
 * @example
 * await writeRendered('deploy/resnet', (await renderManifests({ modelName: 'resnet' })).files);
 */
export async function writeRendered(dir: string, files: ReadonlyMap<string, string>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) {
    if (files.has(name) || !/\.ya?ml$/.test(name)) continue;
    const first = (await readFile(join(dir, name), 'utf8')).split('\n', 1)[0];
    if (first === RENDER_HEADER) await rm(join(dir, name));
  }
  const written: string[] = [];
  for (const [name, text] of files) {
    await writeFileAtomic(join(dir, name), text);
    written.push(join(dir, name));
  }
  return written;
}
