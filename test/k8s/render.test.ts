/**
 * `lens k8s render` output: valid kustomizations (built here and by kubectl when installed), every
 * object schema-valid and strictly typed, the security rules kept, and the requested features
 * really present. Also the security checker's own rules, the kustomize builder's patch semantics,
 * and the CLI.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type K8sObject,
  type RenderOptions,
  applyJsonPatch,
  buildKustomization,
  checkSecurity,
  modelConfigText,
  parseManifests,
  renderManifests,
  resolveOptions,
  sizeFromProfile,
  strategicMerge,
  validateManifest,
  writeRendered,
} from '../../src/k8s/index.js';
import { isLensError } from '../../src/core/errors.js';
import { runLens } from '../helpers/cli.js';
import { KUBECTL, kubectlKustomize, normalise, strictFieldCheck, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const CASES: Record<string, RenderOptions> = {
  'cpu, created claim': { modelName: 'resnet' },
  'kserve, gpu, gcs, grpc': { modelName: 'resnet', target: 'kserve', kserve: { protocol: 'grpc' }, gpus: 1, modelBasePath: 'gs://bucket/resnet' },
  'gpu, JupyterHub claim': { modelName: 'resnet', gpus: 1, pvc: 'claim-alice', namespace: 'jhub', clientNamespaces: ['jhub'] },
  'gcs with workload identity, IAP': {
    modelName: 'resnet',
    modelBasePath: 'gs://bucket/models/resnet',
    serviceAccountAnnotations: { 'iam.gke.io/gcp-service-account': 'tf@p.iam.gserviceaccount.com' },
    ingress: { host: 'models.example.com', auth: 'iap' },
  },
  'gcs with a key Secret': { modelName: 'resnet', modelBasePath: 'gs://bucket/resnet', credentialsSecret: 'gcs-key' },
  's3 with a Secret, oauth2-proxy': {
    modelName: 'half_plus_two',
    modelBasePath: 's3://bucket/models/hp2',
    credentialsSecret: 'tf-serving-s3',
    s3Region: 'eu-west-1',
    ingress: { host: 'models.example.com', auth: 'oauth2-proxy', oidcIssuerUrl: 'https://accounts.google.com' },
  },
  'everything: batching, labels, HA, workbench, batch jobs': {
    modelName: 'resnet',
    gpus: 2,
    namespace: 'kubeflow-user-example-com',
    replicas: 2,
    maxReplicas: 6,
    batching: { maxBatchSize: 64, allowedBatchSizes: [16, 32, 64] },
    versionLabels: { stable: 1, canary: 2 },
    workbench: { image: 'registry.example.com/serving-lens/workbench:0.1.0', gpus: 1 },
    batch: { image: 'registry.example.com/serving-lens/workbench:0.1.0', shards: 8, extraArgs: ['--steps', '64'] },
  },
};

const rendered = new Map<string, { objects: K8sObject[]; dir: string }>();

async function render(name: string): Promise<{ objects: K8sObject[]; dir: string }> {
  const cached = rendered.get(name);
  if (cached) return cached;
  const r = await renderManifests(CASES[name]!);
  const dir = tempDir('lens-render-');
  dirs.push(dir);
  await writeRendered(dir, r.files);
  const result = { objects: r.objects, dir };
  rendered.set(name, result);
  return result;
}

const find = (objects: K8sObject[], kind: string, name?: string): any => objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));

describe('lens k8s render', () => {
  it.each(Object.keys(CASES))('%s: a kustomization whose objects validate and keep the security rules', async (name) => {
    const { objects, dir } = await render(name);
    const built = await buildKustomization(dir);
    expect(normalise(built)).toEqual(normalise(objects));
    for (const o of built) await validateManifest(o, name);
    expect(checkSecurity(built).filter((f) => f.severity === 'error')).toEqual([]);
    expect(built.filter((o) => o.kind === 'Service').every((s) => (s.spec as { type: string }).type === 'ClusterIP')).toBe(true);
    // Without kubectl the cross-check is left out, except on CI (where setup-system.sh requires it).
    if (KUBECTL || process.env.CI) expect(normalise(kubectlKustomize(dir))).toEqual(normalise(objects));
  });

  it('rendered objects have no unknown fields', async () => {
    const all = [];
    for (const name of Object.keys(CASES)) for (const object of (await render(name)).objects) all.push({ source: name, object });
    expect(strictFieldCheck(all)).toEqual([]);
  });

  it('GPU serving: -gpu image, GPU limit, node selector and toleration, model read-only from the claim', async () => {
    const { objects } = await render('gpu, JupyterHub claim');
    const pod = find(objects, 'Deployment', 'tf-serving-resnet').spec.template.spec;
    const c = pod.containers[0];
    expect(c.image).toBe('tensorflow/serving:2.18.0-gpu');
    expect(c.resources.limits).toEqual({ cpu: '4', memory: '8Gi', 'nvidia.com/gpu': '1' });
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(pod.volumes.find((v: any) => v.name === 'models').persistentVolumeClaim).toEqual({ claimName: 'claim-alice', readOnly: true });
    expect(c.volumeMounts.find((m: any) => m.name === 'models')).toEqual({ name: 'models', mountPath: '/models', readOnly: true, subPath: 'models' });
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) expect(probe.httpGet).toEqual({ path: '/v1/models/resnet', port: 'http' });
    expect(find(objects, 'PersistentVolumeClaim')).toBeUndefined();
    const policy = find(objects, 'NetworkPolicy').spec;
    expect(policy.ingress[0].from).toEqual([
      { podSelector: { matchLabels: { 'serving-lens/client': 'true' } } },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'jhub' } }, podSelector: { matchLabels: { 'serving-lens/client': 'true' } } },
    ]);
    expect(objects.every((o) => o.metadata?.namespace === 'jhub')).toBe(true);
  });

  it('CPU default: created ReadWriteMany claim, Guaranteed 2 cores, thread pools sized to the limit, HPA owns replicas', async () => {
    const { objects } = await render('cpu, created claim');
    expect(find(objects, 'PersistentVolumeClaim', 'serving-lens-shared').spec.accessModes).toEqual(['ReadWriteMany']);
    const deployment = find(objects, 'Deployment', 'tf-serving-resnet');
    expect(deployment.spec.replicas).toBeUndefined();
    const c = deployment.spec.template.spec.containers[0];
    expect(c.image).toBe('tensorflow/serving:2.18.0');
    expect(c.resources.requests).toEqual(c.resources.limits);
    expect(c.args).toEqual(expect.arrayContaining(['--tensorflow_intra_op_parallelism=2', '--monitoring_config_file=/etc/tf-serving/monitoring.config']));
    expect(c.args.some((a: string) => a.startsWith('--enable_batching'))).toBe(false);
    const hpa = find(objects, 'HorizontalPodAutoscaler').spec;
    expect([hpa.minReplicas, hpa.maxReplicas, hpa.metrics[0].resource.target.averageUtilization]).toEqual([1, 3, 70]);
    expect(find(objects, 'PodDisruptionBudget')).toBeUndefined();
    expect(find(objects, 'ConfigMap').data['monitoring.config']).toContain('/monitoring/prometheus/metrics');
  });

  it('gs:// is read by TF Serving itself, with Workload Identity or a key file from a Secret', async () => {
    const wi = (await render('gcs with workload identity, IAP')).objects;
    expect(find(wi, 'ConfigMap').data['models.config']).toContain('base_path: "gs://bucket/models/resnet"');
    expect(find(wi, 'ServiceAccount').metadata.annotations).toEqual({ 'iam.gke.io/gcp-service-account': 'tf@p.iam.gserviceaccount.com' });
    expect(find(wi, 'Deployment').spec.template.spec.volumes.map((v: any) => v.name)).toEqual(['config', 'tmp']);
    expect(find(wi, 'PersistentVolumeClaim')).toBeUndefined();
    const key = (await render('gcs with a key Secret')).objects;
    const pod = find(key, 'Deployment').spec.template.spec;
    expect(pod.volumes.find((v: any) => v.name === 'gcp-credentials').secret.secretName).toBe('gcs-key');
    expect(pod.containers[0].env).toContainEqual({ name: 'GOOGLE_APPLICATION_CREDENTIALS', value: '/var/secrets/google/key.json' });
  });

  it('s3:// is copied by an init container with credentials from a Secret reference', async () => {
    const { objects } = await render('s3 with a Secret, oauth2-proxy');
    const pod = find(objects, 'Deployment', 'tf-serving-half-plus-two').spec.template.spec;
    const init = pod.initContainers[0];
    expect(init.command).toEqual(['aws', 's3', 'sync', '--only-show-errors', 's3://bucket/models/hp2', '/models/half_plus_two']);
    expect(init.env).toContainEqual({ name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'tf-serving-s3', key: 'AWS_SECRET_ACCESS_KEY' } } });
    expect(find(objects, 'ConfigMap').data['models.config']).toContain('name: "half_plus_two"');
    expect(pod.containers[0].readinessProbe.httpGet.path).toBe('/v1/models/half_plus_two');
  });

  it('external access goes through oauth2-proxy (a serving client) or IAP, never a LoadBalancer', async () => {
    const proxy = (await render('s3 with a Secret, oauth2-proxy')).objects;
    const ingress = find(proxy, 'Ingress');
    expect(ingress.spec.rules[0].http.paths[0].backend.service.name).toBe('oauth2-proxy-half-plus-two');
    const proxyPod = find(proxy, 'Deployment', 'oauth2-proxy-half-plus-two').spec.template;
    expect(proxyPod.metadata.labels['serving-lens/client']).toBe('true');
    expect(proxyPod.spec.containers[0].args).toContain('--upstream=http://tf-serving-half-plus-two:8501/');
    const iap = (await render('gcs with workload identity, IAP')).objects;
    expect(find(iap, 'BackendConfig').spec.iap).toEqual({ enabled: true });
    expect(find(iap, 'Service', 'tf-serving-resnet').metadata.annotations['cloud.google.com/backend-config']).toBe('{"default":"tf-serving-resnet-iap"}');
    expect(find(iap, 'NetworkPolicy').spec.ingress[1].from).toEqual([{ ipBlock: { cidr: '35.191.0.0/16' } }, { ipBlock: { cidr: '130.211.0.0/22' } }]);
  });

  it('batching, version labels, PDB, workbench Notebook and the batch Jobs', async () => {
    const { objects, dir } = await render('everything: batching, labels, HA, workbench, batch jobs');
    const cm = find(objects, 'ConfigMap').data;
    expect(cm['batching.config']).toBe('max_batch_size { value: 64 }\nbatch_timeout_micros { value: 2000 }\nmax_enqueued_batches { value: 100 }\nnum_batch_threads { value: 4 }\nallowed_batch_sizes: 16\nallowed_batch_sizes: 32\nallowed_batch_sizes: 64\n');
    expect(cm['models.config']).toContain('model_version_policy { specific { versions: 1 versions: 2 } }');
    expect(cm['models.config']).toContain('version_labels { key: "canary" value: 2 }');
    const args = find(objects, 'Deployment', 'tf-serving-resnet').spec.template.spec.containers[0].args;
    expect(args).toEqual(expect.arrayContaining(['--enable_batching=true', '--batching_parameters_file=/etc/tf-serving/batching.config', '--allow_version_labels_for_unavailable_models=true']));
    expect(find(objects, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    const nb = find(objects, 'Notebook');
    expect(nb.metadata.labels['serving-lens/client']).toBe('true');
    expect(nb.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
    const job = find(objects, 'Job', 'lens-attribute-resnet').spec;
    expect([job.completionMode, job.completions, job.parallelism, job.podReplacementPolicy]).toEqual(['Indexed', 8, 8, 'Failed']);
    expect(job.template.spec.containers[0].args).toEqual([
      'batch', '--shard', '$(JOB_COMPLETION_INDEX)', '--shards', '8', '--list', '/data/batch/images.txt', '--model', '/data/models/resnet', '--out', '/data/batch/out/resnet', '--steps', '64',
    ]);
    const merge = find(objects, 'Job', 'lens-merge-resnet').spec.template.spec.containers[0].args;
    expect(merge).toEqual(['merge', '--out', '/data/batch/out/resnet', '--list', '/data/batch/images.txt', '--wait', '--shards', '8', '--timeout', '48h']);
    const values = readFileSync(join(dir, 'jupyterhub-values.yaml'), 'utf8');
    expect(values).toContain('serving-lens/client: "true"');
    expect(values).toContain('LENS_SERVER: tf-serving-resnet.kubeflow-user-example-com:8500');
  });

  it('model config text for the server', () => {
    expect(modelConfigText({ name: 'm"x', basePath: '/models/m' })).toBe(
      'model_config_list {\n  config {\n    name: "m\\"x"\n    base_path: "/models/m"\n    model_platform: "tensorflow"\n    model_version_policy { latest { num_versions: 1 } }\n  }\n}\n',
    );
  });

  it.each([
    [{ modelName: 'bad name' }, /--model-name must start with a letter or digit/],
    [{ modelName: 'resnet', pvc: 'Claim_Alice' }, /--pvc must be a lower-case DNS label/],
    [{ modelName: 'resnet', modelBasePath: 'relative/path' }, /--model-base-path must be an absolute path/],
    [{ modelName: 'resnet', modelBasePath: '/srv/models/resnet' }, /must lie under \/models\//],
    [{ modelName: 'resnet', credentialsSecret: 'x' }, /--credentials-secret applies to gs:\/\/ and s3:\/\//],
    [{ modelName: 'resnet', replicas: 4, maxReplicas: 2 }, /--max-replicas \(2\) must be at least --replicas \(4\)/],
    [{ modelName: 'resnet', memory: 'lots' }, /--memory must be a Kubernetes quantity/],
    [{ modelName: 'resnet', batching: { maxBatchSize: 32, allowedBatchSizes: [8, 16] } }, /--allowed-batch-sizes must be increasing .* ending with --max-batch-size \(32\)/],
    [{ modelName: 'resnet', ingress: { host: 'models.example.com', auth: 'oauth2-proxy' } }, /--oidc-issuer-url is required/],
    [{ modelName: 'resnet', modelBasePath: 'gs://b/m', batch: { image: 'x:1', shards: 2 } }, /--batch-model is required/],
  ] as Array<[RenderOptions, RegExp]>)('refuses bad options, naming the flag: %o', (options, message) => {
    try {
      resolveOptions(options);
      expect.unreachable();
    } catch (e) {
      expect(isLensError(e, 'INVALID_ARGUMENT')).toBe(true);
      expect((e as Error).message).toMatch(message);
    }
  });

  it('re-rendering removes files of the earlier render only', async () => {
    const dir = tempDir('lens-rerender-');
    dirs.push(dir);
    writeFileSync(join(dir, 'mine.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n');
    await writeRendered(dir, (await renderManifests({ modelName: 'resnet', batch: { image: 'x:1', shards: 2 } })).files);
    expect(readdirSync(dir)).toContain('job-lens-attribute-resnet.yaml');
    await writeRendered(dir, (await renderManifests({ modelName: 'resnet' })).files);
    const names = readdirSync(dir);
    expect(names).not.toContain('job-lens-attribute-resnet.yaml');
    expect(names).toContain('mine.yaml');
  });
});

describe('sizing from lens profile', () => {
  const row = (batchSize: number, p99Ms: number, imagesPerSec: number, errors = 0) => ({
    batchSize, concurrency: 4, requests: 20, errors, p50Ms: p99Ms / 2, p90Ms: p99Ms * 0.8, p95Ms: p99Ms * 0.9, p99Ms, meanMs: p99Ms / 2, minMs: 1, maxMs: p99Ms,
    imagesPerSec, requestsPerSec: imagesPerSec / batchSize, requestBytes: 1, responseBytes: 1, wallMs: 1000,
  });
  const profile = { model: 'resnet', rows: [row(1, 12, 80), row(8, 40, 300), row(16, 70, 420), row(32, 130, 500), row(64, 90, 900, 3)] };

  it('picks the fastest error-free batch size within the p99 target and the replicas for the load', () => {
    const s = sizeFromProfile(profile, { latencySloMs: 100, targetImagesPerSec: 2000 });
    expect(s.row.batchSize).toBe(16);
    expect(s.batching).toEqual({ maxBatchSize: 16, batchTimeoutMicros: 10000 });
    // 2000 / (420 * 0.7) = 6.8 -> 7 pods at peak; half the peak standing -> 4.
    expect([s.minReplicas, s.maxReplicas]).toEqual([4, 7]);
    expect(s.summary).toBe(
      'batch 16 x concurrency 4: p99 70.0 ms <= 100 ms, 420 images/s per pod; 2000 images/s -> 4..7 replicas; left out failed batch 64 x concurrency 4 (3 of 23 requests failed)',
    );
    expect(s.failed.map((r) => r.batchSize)).toEqual([64]);
  });

  it('says what the fastest p99 was when nothing meets the target', () => {
    expect(() => sizeFromProfile(profile, { latencySloMs: 5 })).toThrow(/lowest p99 was 12\.0 ms \(batch 1\)/);
  });

  it('feeds the rendered batching config, HPA and an annotation; explicit flags win', async () => {
    const s = sizeFromProfile(profile, { latencySloMs: 100, targetImagesPerSec: 2000 });
    const { objects } = await renderManifests({ modelName: 'resnet', maxReplicas: 10, sizing: { summary: s.summary, batching: s.batching!, minReplicas: s.minReplicas!, maxReplicas: s.maxReplicas! } });
    expect(find(objects, 'ConfigMap').data['batching.config']).toContain('max_batch_size { value: 16 }');
    expect([find(objects, 'HorizontalPodAutoscaler').spec.minReplicas, find(objects, 'HorizontalPodAutoscaler').spec.maxReplicas]).toEqual([4, 10]);
    expect(find(objects, 'Deployment').spec.template.metadata.annotations['serving-lens/sizing']).toBe(s.summary);
  });

  it('reads a profile file through the CLI', async () => {
    const dir = tempDir('lens-profile-');
    dirs.push(dir);
    writeFileSync(join(dir, 'profile.json'), JSON.stringify(profile));
    const r = await runLens(['k8s', 'render', '--model-name', 'resnet', '--from-profile', join(dir, 'profile.json'), '--latency-slo-ms', '50', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('sizing from');
    const objects = JSON.parse(r.stdout) as K8sObject[];
    expect(find(objects, 'ConfigMap').data['batching.config']).toContain('max_batch_size { value: 8 }');
  });

  it('sizes from the rows that succeeded of a real profile with failed rows (p99Ms null), and says which failed', async () => {
    const dir = tempDir('lens-profile-');
    dirs.push(dir);
    // What `lens profile` writes when every request of a cell failed: NaN latencies, null in JSON.
    const failedRow = { ...row(256, Number.NaN, 0, 20), requests: 0, p50Ms: Number.NaN, p90Ms: Number.NaN, p95Ms: Number.NaN, meanMs: Number.NaN, minMs: Number.NaN, maxMs: Number.NaN };
    writeFileSync(join(dir, 'profile.json'), JSON.stringify({ ...profile, rows: [...profile.rows.slice(0, 3), failedRow] }));
    expect(readFileSync(join(dir, 'profile.json'), 'utf8')).toContain('"p99Ms":null');
    const r = await runLens(['k8s', 'render', '--model-name', 'resnet', '--from-profile', join(dir, 'profile.json'), '--latency-slo-ms', '100', '--target-images-per-sec', '2000', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `sizing from ${join(dir, 'profile.json')}: batch 16 x concurrency 4: p99 70.0 ms <= 100 ms, 420 images/s per pod; 2000 images/s -> 4..7 replicas; left out failed batch 256 x concurrency 4 (20 of 20 requests failed)\n`,
    );
    const objects = JSON.parse(r.stdout) as K8sObject[];
    expect(find(objects, 'HorizontalPodAutoscaler').spec.minReplicas).toBe(4);
    writeFileSync(join(dir, 'all-failed.json'), JSON.stringify({ model: 'resnet', rows: [failedRow] }));
    const none = await runLens(['k8s', 'render', '--model-name', 'resnet', '--from-profile', join(dir, 'all-failed.json')]);
    expect(none.stderr).toBe('lens: the profile of resnet has no error-free measurements: batch 256 x concurrency 4 (20 of 20 requests failed)\n');
  });
});

describe('security checks', () => {
  const good = async () => (await render('cpu, created claim')).objects.map((o) => structuredClone(o));

  it('flag a LoadBalancer, root, missing limits and probes, secret values, and an unfenced TF Serving', async () => {
    const objects = await good();
    find(objects, 'Service').spec.type = 'LoadBalancer';
    const pod = find(objects, 'Deployment').spec.template.spec;
    delete pod.securityContext.runAsNonRoot;
    delete pod.containers[0].securityContext.runAsNonRoot;
    delete pod.containers[0].resources.limits;
    delete pod.containers[0].livenessProbe;
    pod.containers[0].env = [{ name: 'AWS_SECRET_ACCESS_KEY', value: 'abc' }];
    pod.automountServiceAccountToken = true;
    const withoutPolicy = objects.filter((o) => o.kind !== 'NetworkPolicy');
    withoutPolicy.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: 'dg==' } });
    const rules = new Set(checkSecurity(withoutPolicy).filter((f) => f.severity === 'error').map((f) => f.rule));
    expect([...rules].sort()).toEqual(['network-policy', 'probes', 'resource-limits', 'run-as-non-root', 'secret-values', 'service-account-token', 'service-type']);
  });

  it('flag an Ingress without an authenticating proxy', async () => {
    const objects = await good();
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'open' },
      spec: { rules: [{ host: 'x.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'tf-serving-resnet', port: { number: 8501 } } } }] } }] },
    });
    expect(checkSecurity(objects).map((f) => f.rule)).toContain('ingress-auth');
  });

  it('schema validation names the object and field, and refuses removed API versions and unknown kinds', async () => {
    await expect(validateManifest({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { template: {} } })).rejects.toThrow(/Deployment\/x: data\/spec must have required property selector/);
    await expect(validateManifest({ apiVersion: 'extensions/v1beta1', kind: 'Ingress', metadata: { name: 'x' } })).rejects.toThrow(/Kubernetes 1\.22 removed/);
    await expect(validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'x' } })).rejects.toThrow(/no schema for example\.com\/v1 Widget/);
    await expect(validateManifest({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'Bad_Name' } })).rejects.toThrow(/metadata\.name must be a lower-case DNS name/);
    await expect(
      validateManifest({ apiVersion: 'kubeflow.org/v1', kind: 'Notebook', metadata: { name: 'nb' }, spec: { template: { spec: { containers: [{ name: 'a', image: 'i', resources: { limits: { cpu: 'many' } } }] } } } }),
    ).rejects.toThrow(/Notebook nb: spec\.template\.spec: .*cpu must match format "quantity"/);
  });
});

describe('kustomize builder', () => {
  it('merges lists by key, deletes with null and $patch: delete, replaces other lists', () => {
    const base = { containers: [{ name: 'a', image: 'x:1', args: ['1', '2'], env: [{ name: 'A', value: '1' }] }], volumes: [{ name: 'v', emptyDir: {} }, { name: 'w', emptyDir: {} }] };
    const patch = { containers: [{ name: 'a', args: ['3'], env: [{ name: 'B', value: '2' }], image: null }], volumes: [{ name: 'w', $patch: 'delete' }] };
    expect(strategicMerge(base, patch)).toEqual({
      containers: [{ name: 'a', args: ['3'], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }],
      volumes: [{ name: 'v', emptyDir: {} }],
    });
  });

  it('applies JSON 6902 operations and names a bad path', () => {
    const doc = { a: { list: [1, 2] } };
    expect(applyJsonPatch(doc, [{ op: 'add', path: '/a/list/-', value: 3 }, { op: 'replace', path: '/a/list/0', value: 0 }, { op: 'add', path: '/b~1c', value: true }], 'p')).toEqual({ a: { list: [0, 2, 3] }, 'b/c': true });
    expect(() => applyJsonPatch(doc, [{ op: 'remove', path: '/a/nope' }], 'patch.yaml')).toThrow(/patch\.yaml: path \/a\/nope does not exist/);
  });

  it('refuses fields it does not implement instead of ignoring them', async () => {
    const dir = tempDir('lens-kustomize-');
    dirs.push(dir);
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources: []\nconfigMapGenerator:\n  - name: x\n');
    await expect(buildKustomization(dir)).rejects.toThrow(/field "configMapGenerator" is not supported/);
  });
});

describe('CLI', () => {
  it('lens k8s render --gpus 1 --pvc claim-alice --out DIR, then lens k8s validate DIR', async () => {
    const dir = tempDir('lens-cli-render-');
    dirs.push(dir);
    const r = await runLens(['k8s', 'render', '--model-name', 'resnet', '--gpus', '1', '--pvc', 'claim-alice', '--replicas', '2', '--enable-batching', '--version-label', 'stable=1', '--out', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`apply with: kubectl apply -k ${dir}`);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['kustomization.yaml', 'deployment-tf-serving-resnet.yaml', 'poddisruptionbudget-tf-serving-resnet.yaml']));
    const v = await runLens(['k8s', 'validate', dir, '--json']);
    expect(v.code, v.stderr).toBe(0);
    const [result] = JSON.parse(v.stdout) as Array<{ kustomization: boolean; objects: number; schemaErrors: string[] }>;
    expect(result).toMatchObject({ kustomization: true, objects: 7, schemaErrors: [] });
  });

  it('prints YAML without --out, and validate fails on a bad manifest with its name', async () => {
    const r = await runLens(['k8s', 'render', '--model-name', 'resnet']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseManifests(r.stdout).map((o) => o.kind)).toContain('Deployment');
    const dir = tempDir('lens-cli-validate-');
    dirs.push(dir);
    writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: open\nspec:\n  type: LoadBalancer\n  ports:\n    - port: 8501\n');
    const v = await runLens(['k8s', 'validate', join(dir, 'svc.yaml')]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/error: Service\/open: type LoadBalancer exposes pods/);
    const bad = await runLens(['k8s', 'render', '--model-name', 'resnet', '--gpus', 'two']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--gpus must be an integer, got "two"/);
  });
});
