/**
 * KServe InferenceServices: the packaged schema is KServe's, the KServe overlays built by kubectl's
 * own kustomize validate against the CRD in ../shared, broken objects are refused with the field at
 * fault, and `lens k8s render --target kserve` writes CPU/GPU, PVC/GCS/S3 and REST/gRPC variants.
 */
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type K8sObject,
  KSERVE_SCHEMA_PATH,
  checkSecurity,
  inferenceServiceSchema,
  renderManifests,
  sizeFromProfile,
  structuralErrors,
  validateInferenceService,
} from '../../src/k8s/index.js';
import { createClient, startServer } from '../../src/serving/index.js';
import { REPO_ROOT, SHARED, runLens } from '../helpers/cli.js';
import { KUBECTL, kubectlKustomize, tempDir } from './helpers.js';

const CRD = resolve(SHARED, 'k8s-schemas/kserve/serving.kserve.io_inferenceservices.yaml');
const KSERVE_OVERLAYS = ['kserve', 'kserve-gpu', 'kserve-s3'].map((o) => join(REPO_ROOT, 'k8s/overlays', o));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const isvcOf = (objects: readonly K8sObject[]) => objects.find((o) => o.kind === 'InferenceService') as any;
const kindOf = (objects: readonly K8sObject[], kind: string) => objects.find((o) => o.kind === kind) as any;

describe('the packaged InferenceService schema', () => {
  it('is the v1beta1 schema of KServe\'s CRD, unchanged', () => {
    const crd = YAML.parse(readFileSync(CRD, 'utf8')) as { spec: { versions: { name: string; schema: { openAPIV3Schema: unknown } }[] } };
    expect(inferenceServiceSchema(KSERVE_SCHEMA_PATH)).toEqual(crd.spec.versions.find((v) => v.name === 'v1beta1')!.schema.openAPIV3Schema);
    expect(readdirSync(join(REPO_ROOT, 'schemas/kserve')).sort()).toEqual(['LICENSE-Apache-2.0.txt', 'SOURCES.md', 'inferenceservice-v1beta1.schema.json.gz']);
  });
});

describe('KServe overlays built by kubectl kustomize', () => {
  // Tests never skip silently on CI: there kubectl must be present (scripts/setup-system.sh checks it).
  it.skipIf(!KUBECTL && !process.env.CI)('yield InferenceServices that validate against KServe\'s CRD schema and keep the security rules', () => {
    expect(KUBECTL, 'kubectl with kustomize is required (see scripts/setup-system.sh)').toBeDefined();
    const seen = new Set<string>();
    for (const dir of KSERVE_OVERLAYS) {
      const objects = kubectlKustomize(dir);
      const isvc = isvcOf(objects);
      expect(isvc, dir).toBeDefined();
      expect(() => validateInferenceService(isvc, CRD), dir).not.toThrow();
      expect(checkSecurity(objects).filter((f) => f.severity === 'error'), dir).toEqual([]);
      seen.add(isvc.spec.predictor.model.storageUri.split(':')[0]);
      expect(isvc.spec.predictor.model.modelFormat).toEqual({ name: 'tensorflow' });
    }
    expect([...seen].sort()).toEqual(['gs', 'pvc', 's3']);
    const gpu = isvcOf(kubectlKustomize(KSERVE_OVERLAYS[1]!)).spec.predictor;
    expect(gpu.model.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(gpu.model.runtimeVersion).toMatch(/-gpu$/);
    expect(gpu.model).toMatchObject({ protocolVersion: 'grpc-v1', ports: [{ name: 'h2c', containerPort: 9000 }] });
    const sa = kindOf(kubectlKustomize(KSERVE_OVERLAYS[2]!), 'ServiceAccount');
    expect(sa.metadata.annotations).toMatchObject({ 'serving.kserve.io/s3-endpoint': 's3.amazonaws.com', 'eks.amazonaws.com/role-arn': expect.stringMatching(/^arn:aws:iam::/) });
  });
});

describe('InferenceService validation', () => {
  const good = async () => structuredClone(isvcOf((await renderManifests({ modelName: 'resnet', target: 'kserve' })).objects));

  it('accepts a rendered object and KServe\'s own TensorFlow sample (spec.predictor.tensorflow)', async () => {
    const rendered = await good();
    expect(() => validateInferenceService(rendered, CRD)).not.toThrow();
    const sample = { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'flower-sample' }, spec: { predictor: { tensorflow: { storageUri: 'gs://kfserving-examples/models/tensorflow/flowers' } } } };
    expect(() => validateInferenceService(sample, CRD)).not.toThrow();
  });

  it.each([
    ['a misspelt field', (o: any) => (o.spec.predictor.model.storageUrl = o.spec.predictor.model.storageUri), /\/spec\/predictor\/model\/storageUrl is not a known field/],
    ['a number as a string', (o: any) => (o.spec.predictor.minReplicas = '2'), /\/spec\/predictor\/minReplicas must be integer/],
    ['a model format without its name', (o: any) => (o.spec.predictor.model.modelFormat = { version: '2' }), /\/spec\/predictor\/model\/modelFormat needs the field name/],
    ['a scale metric KServe does not know', (o: any) => (o.spec.predictor.scaleMetric = 'gpu'), /\/spec\/predictor\/scaleMetric must be one of "cpu", "memory", "concurrency", "rps"/],
    ['two predictors', (o: any) => (o.spec.predictor.tensorflow = { storageUri: 'gs://b/m' }), /exactly one implementation .* got model and tensorflow/],
    ['no predictor', (o: any) => delete o.spec.predictor, /spec\.predictor is required/],
    ['a name that is not a DNS-1035 label', (o: any) => (o.metadata.name = '2resnet'), /metadata\.name must start with a letter/],
    ['a resource quantity of the wrong type', (o: any) => (o.spec.predictor.model.resources.limits.cpu = true), /limits\/cpu must be integer or string/],
  ])('refuses %s, naming the field', async (_what, breakIt, message) => {
    const o = await good();
    breakIt(o);
    expect(() => validateInferenceService(o, CRD)).toThrow(message);
  });

  it('checks plain structural schemas like the API server', () => {
    const schema = { type: 'object' as const, properties: { a: { type: 'integer' as const, minimum: 1 }, m: { type: 'object' as const, additionalProperties: { type: 'string' as const } } } };
    expect(structuralErrors(schema, { a: 0, m: { x: 1 }, b: 2 })).toEqual(['/a must be >= 1', '/m/x must be string', '/b is not a known field']);
    expect(structuralErrors(schema, null)).toEqual(['/ must be object, not null']);
  });

  it('fails lens k8s validate on a broken InferenceService, with the field at fault', async () => {
    const dir = tempDir('lens-kserve-bad-');
    dirs.push(dir);
    const o = await good();
    o.spec.predictor.model.storageUrl = 'gs://x/y';
    const file = join(dir, 'isvc.yaml');
    writeFileSync(file, YAML.stringify(o));
    const r = await runLens(['k8s', 'validate', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/error: .*InferenceService resnet: \/spec\/predictor\/model\/storageUrl is not a known field/);
  });
});

describe('lens export output as a storageUri', () => {
  it('is a TF Serving base path: what KServe copies to /mnt/models serves with --model_base_path=/mnt/models', async () => {
    const dir = tempDir('lens-kserve-export-');
    dirs.push(dir);
    const base = join(dir, 'resnet');
    const r = await runLens(['export', 'default', base, '--version', '3']);
    expect(r.code, r.stderr).toBe(0);
    // Only numbered version folders at the base path (storageUri points here).
    expect(readdirSync(base)).toEqual(['3']);
    expect(readdirSync(join(base, '3'))).toContain('saved_model.pb');
    // The storage initializer copies storageUri's content to /mnt/models; the runtime serves it under the InferenceService's name.
    const mnt = join(dir, 'mnt/models');
    cpSync(base, mnt, { recursive: true });
    const server = await startServer({ port: 0, restApiPort: 0, modelName: 'resnet', modelBasePath: mnt, fileSystemPollWaitSeconds: 0 });
    const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
    try {
      expect(await client.getModelStatus({ model: 'resnet' })).toMatchObject([{ version: '3', state: 'AVAILABLE' }]);
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('lens k8s render --target kserve', () => {
  it('serves a model from the claim on CPU, over REST, restricted, scraped by Prometheus', async () => {
    const { objects } = await renderManifests({ modelName: 'half_plus_two', target: 'kserve', pvc: 'claim-alice', namespace: 'kubeflow-user-example-com' });
    expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'ConfigMap', 'InferenceService']);
    const isvc = isvcOf(objects);
    // TF Serving serves the model under the InferenceService's name (KServe's --model_name={{.Name}}).
    expect(isvc.metadata).toMatchObject({ name: 'half-plus-two', namespace: 'kubeflow-user-example-com' });
    expect(isvc.metadata.annotations).toMatchObject({
      'serving.kserve.io/enable-prometheus-scraping': 'true',
      'prometheus.kserve.io/port': '8080',
      'prometheus.kserve.io/path': '/monitoring/prometheus/metrics',
      'serving-lens/served-model-name': 'half-plus-two',
    });
    const p = isvc.spec.predictor;
    expect(p.model).toMatchObject({ modelFormat: { name: 'tensorflow' }, storageUri: 'pvc://claim-alice/models/half_plus_two', protocolVersion: 'v1', runtimeVersion: '2.18.0' });
    expect(p.model.args).toContain('--monitoring_config_file=/etc/tf-serving/monitoring.config');
    expect(p.model.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(p.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(p.automountServiceAccountToken).toBe(false);
    expect(p.serviceAccountName).toBe(kindOf(objects, 'ServiceAccount').metadata.name);
    expect(kindOf(objects, 'ConfigMap').data['monitoring.config']).toContain('enable: true');
    expect(() => validateInferenceService(isvc, CRD)).not.toThrow();
  });

  it('uses a GPU, a bucket with its credentials, gRPC, and sizes from a profile', async () => {
    const row = (batchSize: number, concurrency: number, p99Ms: number, imagesPerSec: number) => ({ batchSize, concurrency, requests: 20, errors: 0, p99Ms, imagesPerSec }) as any;
    const sizing = sizeFromProfile({ model: 'resnet', rows: [row(1, 1, 10, 90), row(8, 4, 60, 400), row(32, 4, 180, 600)] }, { latencySloMs: 100, targetImagesPerSec: 1000 });
    const { objects } = await renderManifests({
      modelName: 'resnet',
      target: 'kserve',
      kserve: { protocol: 'grpc' },
      gpus: 1,
      modelBasePath: 's3://models/resnet',
      s3Region: 'eu-west-1',
      s3Endpoint: 'http://minio.minio:9000',
      credentialsSecret: 'minio-creds',
      sizing: { summary: sizing.summary, batching: sizing.batching!, minReplicas: sizing.minReplicas!, maxReplicas: sizing.maxReplicas!, concurrency: sizing.row.concurrency },
    });
    const isvc = isvcOf(objects);
    const p = isvc.spec.predictor;
    // 1000 / (400 * 0.7) = 3.6 -> 4 pods at peak, 2 standing; Knative keeps 4 requests in flight per pod.
    expect([p.minReplicas, p.maxReplicas]).toEqual([2, 4]);
    expect(isvc.metadata.annotations).toMatchObject({ 'autoscaling.knative.dev/metric': 'concurrency', 'autoscaling.knative.dev/target': '4', 'serving-lens/sizing': sizing.summary });
    expect(p.model).toMatchObject({ storageUri: 's3://models/resnet', protocolVersion: 'grpc-v1', ports: [{ name: 'h2c', containerPort: 9000 }], runtimeVersion: '2.18.0-gpu' });
    expect(p.model.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(p.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(p.model.args).toEqual(expect.arrayContaining(['--enable_batching=true', '--batching_parameters_file=/etc/tf-serving/batching.config']));
    expect(kindOf(objects, 'ConfigMap').data['batching.config']).toContain('max_batch_size { value: 8 }');
    const sa = kindOf(objects, 'ServiceAccount');
    expect(sa.secrets).toEqual([{ name: 'minio-creds' }]);
    expect(sa.metadata.annotations).toEqual({ 'serving.kserve.io/s3-endpoint': 'minio.minio:9000', 'serving.kserve.io/s3-usehttps': '0', 'serving.kserve.io/s3-region': 'eu-west-1' });
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
    expect(() => validateInferenceService(isvc, CRD)).not.toThrow();
    const gcs = isvcOf((await renderManifests({ modelName: 'resnet', target: 'kserve', modelBasePath: 'gs://bucket/models/resnet/' })).objects);
    expect(gcs.spec.predictor.model.storageUri).toBe('gs://bucket/models/resnet');
  });

  it.each([
    [{ ingress: { host: 'models.example.com', auth: 'iap' as const } }, /--ingress-host does not apply to --target kserve/],
    [{ versionLabels: { stable: 1 } }, /--version-label does not apply to --target kserve/],
    [{ modelName: '2024-resnet' }, /InferenceService name "2024-resnet": it must start with a letter/],
  ])('refuses options KServe cannot honour (%#)', async (extra, message) => {
    await expect(renderManifests({ modelName: 'resnet', target: 'kserve', ...extra })).rejects.toThrow(message);
  });

  it('writes a kustomization that lens k8s validate accepts, and says how to reach the predictor', async () => {
    const dir = tempDir('lens-kserve-render-');
    dirs.push(dir);
    const r = await runLens(['k8s', 'render', '--target', 'kserve', '--model-name', 'resnet', '--model-base-path', 'gs://bucket/resnet', '--gpus', '1', '--out', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('lens predict --server INGRESS:80 --host-header HOST --model resnet --transport rest IMAGE');
    expect(readdirSync(dir).sort()).toEqual(['configmap-kserve-resnet-config.yaml', 'inferenceservice-resnet.yaml', 'kustomization.yaml', 'serviceaccount-kserve-resnet.yaml']);
    const v = await runLens(['k8s', 'validate', dir]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toBe(`${dir}: 3 objects (kustomization)\n`);
  });

  it('--kserve-protocol grpc exposes TF Serving\'s gRPC port, and a wrong protocol is one line', async () => {
    const r = await runLens(['k8s', 'render', '--target', 'kserve', '--model-name', 'resnet', '--model-base-path', 'gs://bucket/resnet', '--kserve-protocol', 'grpc', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(isvcOf(JSON.parse(r.stdout) as K8sObject[]).spec.predictor.model).toMatchObject({ protocolVersion: 'grpc-v1', ports: [{ name: 'h2c', containerPort: 9000 }] });
    const bad = await runLens(['k8s', 'render', '--target', 'kserve', '--model-name', 'resnet', '--model-base-path', 'gs://bucket/resnet', '--kserve-protocol', 'http2']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--kserve-protocol must be rest or grpc, got "http2"');
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('sizes Knative\'s target and the replicas from a profile file', async () => {
    const dir = tempDir('lens-kserve-profile-');
    dirs.push(dir);
    const row = (batchSize: number, concurrency: number, p99Ms: number, imagesPerSec: number) => ({ batchSize, concurrency, requests: 20, errors: 0, p99Ms, imagesPerSec });
    writeFileSync(join(dir, 'profile.json'), JSON.stringify({ model: 'resnet', rows: [row(1, 1, 10, 90), row(1, 8, 45, 500), row(1, 16, 150, 700)] }));
    const r = await runLens(['k8s', 'render', '--target', 'kserve', '--model-name', 'resnet', '--from-profile', join(dir, 'profile.json'), '--latency-slo-ms', '100', '--target-images-per-sec', '1400', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const isvc = isvcOf(JSON.parse(r.stdout) as K8sObject[]);
    // batch 1 x 8 in flight meets p99 <= 100 ms at 500 images/s: 1400 / (500 * 0.7) = 4 pods at peak, 2 standing.
    expect(isvc.metadata.annotations['autoscaling.knative.dev/target']).toBe('8');
    expect([isvc.spec.predictor.minReplicas, isvc.spec.predictor.maxReplicas]).toEqual([2, 4]);
  });
});
