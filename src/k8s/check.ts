/**
 * `lens k8s validate`: offline checks of manifest files, folders and kustomizations.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LensError, errorMessage } from '../core/errors.js';
import { buildKustomization, isKustomization } from './kustomize.js';
import { type K8sObject, type SecurityFinding, checkSecurity, parseManifests, validateManifest } from './validate.js';

/** Outcome of checking one path. */
export interface TargetResult {
  path: string;
  kustomization: boolean;
  objects: number;
  /** Objects failing their schema (or files failing to parse). */
  schemaErrors: string[];
  findings: SecurityFinding[];
  /** YAML files that hold no Kubernetes object (e.g. Helm values). */
  skipped: string[];
}

const isManifestDoc = (o: K8sObject) => typeof o.apiVersion === 'string' && typeof o.kind === 'string';
const KUSTOMIZE_KINDS = new Set(['Kustomization', 'Component']);

/**
 * Validates each path: a folder with a kustomization is built (in-process) and its objects checked
 * as one deployment; other folders and files are checked file by file, their objects together.
 *
 * @example
 * const [result] = await validateTargets(['k8s/overlays/gpu']);
 * if (result.schemaErrors.length > 0) process.exitCode = 1;
 */
export async function validateTargets(paths: readonly string[]): Promise<TargetResult[]> {
  const results: TargetResult[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch (e) {
      throw new LensError('NOT_FOUND', `cannot read ${path}: ${errorMessage(e)}`);
    }
    const result: TargetResult = { path, kustomization: false, objects: 0, schemaErrors: [], findings: [], skipped: [] };
    let objects: K8sObject[] = [];
    if (info.isDirectory() && (await isKustomization(path))) {
      result.kustomization = true;
      try {
        objects = await buildKustomization(path);
      } catch (e) {
        result.schemaErrors.push(errorMessage(e));
      }
    } else {
      const files = info.isDirectory() ? (await readdir(path)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(path, f)) : [path];
      for (const file of files) {
        try {
          const docs = parseManifests(await readFile(file, 'utf8'), file);
          const manifests = docs.filter((d) => isManifestDoc(d) && !KUSTOMIZE_KINDS.has(d.kind));
          if (manifests.length === 0) result.skipped.push(file);
          objects.push(...manifests);
        } catch (e) {
          result.schemaErrors.push(errorMessage(e));
        }
      }
    }
    for (const o of objects) {
      try {
        await validateManifest(o, path);
      } catch (e) {
        result.schemaErrors.push(errorMessage(e));
      }
    }
    result.objects = objects.length;
    result.findings = checkSecurity(objects);
    results.push(result);
  }
  return results;
}
