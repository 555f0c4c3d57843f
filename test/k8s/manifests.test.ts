/**
 * Every YAML file under k8s/ is checked: resources against the Kubernetes API schemas
 * (kubernetes-models) and, strictly, for unknown fields (TypeScript excess-property checks against
 * the generated types); kustomizations are built (in TS, and cross-checked with kubectl's kustomize
 * where installed); patches through the builds that use them; the JupyterHub values by structure.
 * The built deployments must keep the security promises.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { type K8sObject, buildKustomization, checkSecurity, parseManifests, validateManifest } from '../../src/k8s/index.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { KUBECTL, kubectlKustomize, normalise, strictFieldCheck } from './helpers.js';

const K8S = resolve(REPO_ROOT, 'k8s');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

const files = yamlFiles(K8S).sort();
const kustomizationFiles = files.filter((f) => /(^|\/)kustomization\.ya?ml$/.test(f));
const kustomizations = kustomizationFiles.map((f) => YAML.parse(readFileSync(f, 'utf8')) as { kind?: string; patches?: { path?: string }[]; resources?: string[] });
const patchFiles = new Set(kustomizations.flatMap((k, i) => (k.patches ?? []).filter((p) => p.path).map((p) => resolve(dirname(kustomizationFiles[i]!), p.path!))));
const valuesFiles = files.filter((f) => f.endsWith('jupyterhub/values.yaml'));
const resourceFiles = files.filter((f) => !kustomizationFiles.includes(f) && !patchFiles.has(f) && !valuesFiles.includes(f));
/** Kustomizations (not components) that can be built on their own. */
const buildable = kustomizationFiles.filter((_, i) => (kustomizations[i]!.kind ?? 'Kustomization') === 'Kustomization').map((f) => dirname(f));
const overlays = buildable.filter((d) => d.includes('/overlays/'));

const rel = (p: string) => relative(REPO_ROOT, p);
const built = new Map<string, K8sObject[]>();

beforeAll(async () => {
  for (const dir of buildable) built.set(dir, await buildKustomization(dir));
});

describe('k8s/ YAML files', () => {
  it('are all accounted for: resources, patches, kustomizations or Helm values', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(resourceFiles.length + patchFiles.size + kustomizationFiles.length + valuesFiles.length).toBe(files.length);
    for (const p of patchFiles) expect(files, `patch ${rel(p)} is missing`).toContain(p);
    expect(overlays.map(rel).sort()).toEqual([
      'k8s/overlays/eks',
      'k8s/overlays/gke-iap',
      'k8s/overlays/gpu',
      'k8s/overlays/kserve',
      'k8s/overlays/kserve-gpu',
      'k8s/overlays/kserve-s3',
      'k8s/overlays/kubeflow',
      'k8s/overlays/local',
    ]);
  });

  it('resources validate against the Kubernetes API schemas', async () => {
    let count = 0;
    for (const file of resourceFiles) {
      for (const obj of parseManifests(readFileSync(file, 'utf8'), rel(file))) {
        await validateManifest(obj, rel(file));
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(resourceFiles.length);
  });

  it('resources and built overlays have no unknown fields (strict check against the generated types)', () => {
    const objects = [
      ...resourceFiles.flatMap((f) => parseManifests(readFileSync(f, 'utf8'), rel(f)).map((object) => ({ source: rel(f), object }))),
      ...[...built].flatMap(([dir, objs]) => objs.map((object) => ({ source: rel(dir), object }))),
    ];
    expect(strictFieldCheck(objects)).toEqual([]);
  });

  it('the strict check catches a misspelt field', () => {
    const deployment = parseManifests(readFileSync(join(K8S, 'base/deployment.yaml'), 'utf8'))[0]!;
    const container = (deployment.spec as any).template.spec.containers[0];
    container.readinesProbe = container.readinessProbe;
    const diagnostics = strictFieldCheck([{ source: 'typo', object: deployment }]);
    expect(diagnostics.join('\n')).toMatch(/readinesProbe/);
  });

  it('every patch file is used by a kustomization that builds', () => {
    expect(patchFiles.size).toBeGreaterThanOrEqual(4);
    const usedBy = (patch: string) =>
      buildable.some((dir) => {
        const k = YAML.parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as { components?: string[] };
        const componentDirs = (k.components ?? []).map((c) => resolve(dir, c));
        return dirname(patch) === dir || componentDirs.includes(dirname(patch));
      });
    for (const p of patchFiles) expect(usedBy(p), `${rel(p)} is used by no overlay`).toBe(true);
  });

  it('the JupyterHub values snippet admits the notebooks to TF Serving', () => {
    const values = YAML.parse(readFileSync(valuesFiles[0]!, 'utf8')) as any;
    const egress = values.singleuser.networkPolicy.egress[0];
    expect(egress.ports.map((p: { port: number }) => p.port)).toEqual([8500, 8501]);
    expect(egress.to[0].podSelector.matchLabels['app.kubernetes.io/name']).toBe('tf-serving');
    for (const profile of values.singleuser.profileList) {
      expect(profile.kubespawner_override.extra_labels['serving-lens/client']).toBe('true');
      expect(profile.kubespawner_override.uid).toBe(1000);
      expect(profile.kubespawner_override.container_security_context.allowPrivilegeEscalation).toBe(false);
    }
  });
});

describe('kustomizations', () => {
  it('build, and every built object validates', async () => {
    expect(buildable.length).toBeGreaterThanOrEqual(9);
    for (const [dir, objects] of built) {
      expect(objects.length, rel(dir)).toBeGreaterThan(0);
      for (const o of objects) await validateManifest(o, rel(dir));
    }
  });

  it('overlays keep the security promises', () => {
    for (const dir of overlays) {
      const objects = built.get(dir)!;
      const errors = checkSecurity(objects).filter((f) => f.severity === 'error');
      expect(errors, rel(dir)).toEqual([]);
      expect(objects.filter((o) => o.kind === 'Service').every((s) => ((s.spec as { type?: string }).type ?? 'ClusterIP') === 'ClusterIP')).toBe(true);
      expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
      for (const o of objects) if (o.kind !== 'Namespace') expect(o.metadata?.namespace, `${rel(dir)} ${o.kind}/${o.metadata?.name}`).toBeTruthy();
    }
  });

  it('overlays compose the components as intended', () => {
    const deployment = (dir: string) => built.get(join(K8S, dir))!.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'tf-serving-resnet') as any;
    const gpu = deployment('overlays/gpu').spec.template.spec;
    expect(gpu.containers[0].image).toBe('tensorflow/serving:2.18.0-gpu');
    expect(gpu.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
    expect(gpu.tolerations[0].key).toBe('nvidia.com/gpu');
    expect(gpu.containers[0].args).toContain('--enable_batching=true');
    expect(gpu.containers[0].args).toContain('--tensorflow_intra_op_parallelism=4');
    const gke = deployment('overlays/gke-iap').spec.template.spec;
    expect(gke.volumes.map((v: { name: string }) => v.name).sort()).toEqual(['config', 'tmp']);
    expect(gke.nodeSelector).toEqual({ 'cloud.google.com/gke-accelerator': 'nvidia-l4' });
    const cm = built.get(join(K8S, 'overlays/gke-iap'))!.find((o) => o.kind === 'ConfigMap') as any;
    expect(cm.data['models.config']).toContain('base_path: "gs://');
    const eks = deployment('overlays/eks').spec.template.spec;
    expect(eks.initContainers[0].command.slice(0, 3)).toEqual(['aws', 's3', 'sync']);
    expect(eks.volumes.find((v: { name: string }) => v.name === 'models')).toEqual({ name: 'models', emptyDir: { sizeLimit: '10Gi' } });
    expect(eks.containers[0].volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/models').subPath).toBeUndefined();
    const local = built.get(join(K8S, 'overlays/local'))!;
    expect((local.find((o) => o.kind === 'PersistentVolumeClaim') as any).spec.accessModes).toEqual(['ReadWriteOnce']);
    const kubeflow = built.get(join(K8S, 'overlays/kubeflow'))!;
    expect(kubeflow.map((o) => o.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'Job', 'NetworkPolicy', 'Notebook', 'PersistentVolumeClaim', 'PersistentVolumeClaim', 'Service', 'ServiceAccount'].sort(),
    );
  });

  // On CI kubectl must be there (scripts/setup-system.sh makes sure): the test fails instead of skipping.
  it.skipIf(!KUBECTL && !process.env.CI)('build exactly as kubectl kustomize does', () => {
    expect(KUBECTL, 'kubectl 1.21+ (kustomize v4+) on the PATH; see scripts/setup-system.sh').toBeDefined();
    for (const [dir, objects] of built) {
      expect(normalise(objects), rel(dir)).toEqual(normalise(kubectlKustomize(dir)));
    }
  });
});

describe('workbench image', () => {
  const dockerfile = readFileSync(join(K8S, 'workbench/Dockerfile'), 'utf8');

  it('copies only paths that exist in the repository', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) expect(() => statSync(join(REPO_ROOT, s)), s).not.toThrow();
  });

  it('runs as the non-root notebook user and can add the tfjs native backend', () => {
    expect(dockerfile).toMatch(/^USER 1000:100$/m);
    expect(dockerfile).toMatch(/^ARG TFJS=none$/m);
    expect(dockerfile).toContain('@tensorflow/tfjs-node-gpu@4.22.0');
    expect(dockerfile).toMatch(/FROM node:20|NODE_IMAGE=node:20/);
    expect(dockerfile).toContain('tslab install');
  });

  it('has a start script that is valid shell', () => {
    const r = spawnSync('sh', ['-n', join(K8S, 'workbench/start-notebook.sh')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
