/**
 * Helpers for the manifest tests: the kubectl cross-check, normalisation of object lists for
 * comparison, and a strict unknown-field check through TypeScript's excess-property checking
 * against kubernetes-models' generated types.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import YAML from 'yaml';
import type { K8sObject } from '../../src/k8s/index.js';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * kubectl with a built-in kustomize that builds components (`kind: Component`, kustomize v4+,
 * kubectl 1.21+), when this machine has it; scripts/setup-system.sh requires it on CI.
 */
export const KUBECTL: string | undefined = (() => {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  const major = Number(/Kustomize Version: v?(\d+)/.exec(r.stdout ?? '')?.[1] ?? 0);
  return r.status === 0 && major >= 4 ? 'kubectl' : undefined;
})();

export function kubectlKustomize(dir: string): K8sObject[] {
  const out = execFileSync(KUBECTL!, ['kustomize', dir], { encoding: 'utf8' });
  return YAML.parseAllDocuments(out).map((d) => d.toJS() as K8sObject).filter(Boolean);
}

const MERGE_KEYS: Record<string, string> = { containers: 'name', initContainers: 'name', volumes: 'name', volumeMounts: 'mountPath', env: 'name' };

/** Sorts associative lists by their merge key and objects by kind/name, so that order-only differences vanish. */
export function normalise(objects: readonly K8sObject[]): unknown[] {
  const walk = (v: unknown, field = ''): unknown => {
    if (Array.isArray(v)) {
      const items = v.map((x) => walk(x));
      const key = MERGE_KEYS[field];
      return key ? items.sort((a, b) => String((a as Record<string, unknown>)[key]).localeCompare(String((b as Record<string, unknown>)[key]))) : items;
    }
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, walk((v as Record<string, unknown>)[k], k)]));
    }
    return v;
  };
  return [...objects].map((o) => walk(o)).sort((a, b) => describe(a).localeCompare(describe(b)));
}

function describe(o: unknown): string {
  const x = o as K8sObject;
  return `${x.kind}/${x.metadata?.namespace ?? ''}/${x.metadata?.name ?? ''}`;
}

/** The kubernetes-models type of a kind, as `import type` module and interface name. */
function typeOf(obj: K8sObject): { module: string; name: string } | undefined {
  if (obj.apiVersion === 'kubeflow.org/v1' && obj.kind === 'Notebook') return { module: join(REPO_ROOT, 'src/k8s/crd.js'), name: 'INotebook' };
  if (obj.apiVersion === 'cloud.google.com/v1' && obj.kind === 'BackendConfig') return { module: join(REPO_ROOT, 'src/k8s/crd.js'), name: 'IBackendConfig' };
  if (obj.apiVersion === 'serving.kserve.io/v1beta1' && obj.kind === 'InferenceService') return { module: join(REPO_ROOT, 'src/k8s/kserve.js'), name: 'IInferenceService' };
  if (!/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(obj.apiVersion)) return undefined;
  return { module: `kubernetes-models/${obj.apiVersion}/${obj.kind}`, name: `I${obj.kind}` };
}

/**
 * Type-checks every object as an object literal of its kind's TypeScript interface: an unknown
 * field anywhere (a typo such as `readinesProbe`) is an excess-property error. Returns the
 * diagnostics, each naming the object.
 */
export function strictFieldCheck(objects: ReadonlyArray<{ source: string; object: K8sObject }>): string[] {
  const dir = mkdtempSync(join(REPO_ROOT, 'test/k8s/.strict-'));
  try {
    const imports = new Map<string, string>();
    const lines: string[] = [];
    objects.forEach(({ object }, i) => {
      const t = typeOf(object);
      if (!t) {
        lines.push(`// ${i}: no type for ${object.apiVersion} ${object.kind}`);
        return;
      }
      const alias = `T${imports.size}`;
      const key = `${t.module}#${t.name}`;
      if (!imports.has(key)) imports.set(key, alias);
      lines.push(`export const o${i}: ${imports.get(key)} = ${JSON.stringify(object)};`);
    });
    const header = [...imports].map(([key, alias]) => {
      const [module, name] = key.split('#');
      return `import type { ${name} as ${alias} } from '${module}';`;
    });
    const file = join(dir, 'objects.ts');
    writeFileSync(file, `${header.join('\n')}\n${lines.join('\n')}\n`);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: [],
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
    return diagnostics.map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const m = /^export const o(\d+)/.exec(lines[line - header.length] ?? '');
      const which = m ? objects[Number(m[1])] : undefined;
      return `${which ? `${which.source}: ${which.object.kind}/${which.object.metadata?.name}` : `line ${line}`}: ${text}`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A temp folder for rendered kustomizations, removed by the caller. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
