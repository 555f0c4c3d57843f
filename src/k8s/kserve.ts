/**
 * KServe, KubeFlow's serving layer: the InferenceService (serving.kserve.io/v1beta1) that runs a
 * SavedModel on KServe's TensorFlow Serving runtime, its ServiceAccount (what the storage
 * initializer reads credentials from) and the ConfigMap of TF Serving's own settings; plus the
 * check of any InferenceService against KServe's CRD schema (schemas/kserve, Apache-2.0).
 *
 * KServe's `kserve-tensorflow-serving` runtime starts `tensorflow_model_server --model_name=NAME
 * --port=9000 --rest_api_port=8080 --model_base_path=/mnt/models`, where NAME is the
 * InferenceService's name and /mnt/models what the storage initializer fetched from `storageUri`:
 * a TF Serving base path (numbered version folders, as `lens export` writes them).
 */
import { ConfigMap, ServiceAccount, type IContainer, type IPodSecurityContext, type IToleration, type IVolume } from 'kubernetes-models/v1';
import { LensError } from '../core/errors.js';
import { TMP_MOUNT, TMP_VOLUME, componentLabels, containerSecurityContext, cpuQuantity, gpuScheduling, guaranteed, meta, podSecurityContext } from './common.js';
import { CustomResource, type ObjectMeta } from './crd.js';
import { inferenceServiceSchema, structuralErrors } from './kserve-schema.js';
import { MODELS_MOUNT, type ResolvedOptions } from './options.js';
import { CONFIG_MOUNT, METRICS_PATH, batchingConfigText, monitoringConfigText } from './serving.js';

export const KSERVE_API_VERSION = 'serving.kserve.io/v1beta1';
/** Ports of KServe's TensorFlow Serving runtime: REST (protocol v1) and gRPC (grpc-v1). */
export const KSERVE_REST_PORT = 8080;
export const KSERVE_GRPC_PORT = 9000;

/** A predictor's model: a container (KServe merges it into the runtime's) plus what to serve. */
export type IKServeModelSpec = Omit<IContainer, 'name'> & {
  name?: string;
  modelFormat: { name: string; version?: string };
  runtime?: string;
  runtimeVersion?: string;
  storageUri?: string;
  protocolVersion?: 'v1' | 'v2' | 'grpc-v1' | 'grpc-v2';
};

/** The predictor fields serving-lens writes (KServe's PredictorSpec has many more). */
export interface IKServePredictorSpec {
  minReplicas?: number;
  maxReplicas?: number;
  scaleMetric?: 'cpu' | 'memory' | 'concurrency' | 'rps';
  scaleTarget?: number;
  containerConcurrency?: number;
  timeout?: number;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: IPodSecurityContext;
  nodeSelector?: Record<string, string>;
  tolerations?: IToleration[];
  volumes?: IVolume[];
  model?: IKServeModelSpec;
  /** KServe's older TensorFlow predictor; `model` with `modelFormat: tensorflow` replaces it. */
  tensorflow?: Omit<IKServeModelSpec, 'modelFormat'>;
}

/** A KServe InferenceService (serving.kserve.io/v1beta1), the part serving-lens writes. */
export interface IInferenceService {
  apiVersion: typeof KSERVE_API_VERSION;
  kind: 'InferenceService';
  metadata: ObjectMeta;
  spec: { predictor: IKServePredictorSpec };
}

/** InferenceService names: KServe's rule (a DNS-1035 label), short enough for Knative's `NAME-predictor-00001`. */
const ISVC_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_ISVC_NAME = 63 - '-predictor-00001'.length;

/** The predictor implementations KServe accepts; exactly one must be given (or custom `containers`). */
const PREDICTOR_IMPLEMENTATIONS = ['model', 'tensorflow', 'pytorch', 'sklearn', 'xgboost', 'onnx', 'triton', 'pmml', 'lightgbm', 'paddle', 'huggingface', 'containers'];

/**
 * Checks a plain InferenceService object against KServe's CRD schema (unknown fields refused, as
 * the API server does), KServe's name rule and its one-predictor rule; throws a LensError naming
 * every violation. `schemaPath` picks another copy of the schema (see {@link inferenceServiceSchema}).
 *
 * @example
 * validateInferenceService(YAML.parse(readFileSync('isvc.yaml', 'utf8')));
 */
export function validateInferenceService(data: unknown, schemaPath?: string | URL): void {
  const obj = data as Partial<IInferenceService> | null;
  const name = obj?.metadata?.name;
  const what = `InferenceService ${typeof name === 'string' ? name : '<unnamed>'}`;
  const problems: string[] = [];
  if (typeof name !== 'string' || !ISVC_NAME.test(name) || name.length > MAX_ISVC_NAME) {
    problems.push(`metadata.name must start with a letter, hold only a-z, 0-9 and '-', and have at most ${MAX_ISVC_NAME} characters (KServe names the Knative service NAME-predictor)`);
  }
  problems.push(...structuralErrors(inferenceServiceSchema(schemaPath), data));
  const predictor = (obj?.spec as { predictor?: Record<string, unknown> } | undefined)?.predictor;
  if (predictor && typeof predictor === 'object') {
    const given = PREDICTOR_IMPLEMENTATIONS.filter((k) => predictor[k] !== undefined);
    if (given.length !== 1) problems.push(`spec.predictor needs exactly one implementation (model, tensorflow, ... or containers), got ${given.length === 0 ? 'none' : given.join(' and ')}`);
  } else problems.push('spec.predictor is required');
  if (problems.length > 0) throw new LensError('INVALID_ARGUMENT', `${what}: ${problems.join(', ')}`);
}

/**
 * A KServe InferenceService object.
 *
 * @example
 * const isvc = new InferenceService({ metadata: { name: 'resnet' }, spec: { predictor: { model: { modelFormat: { name: 'tensorflow' }, storageUri: 'gs://bucket/resnet' } } } });
 * isvc.validate();
 */
export class InferenceService extends CustomResource<IInferenceService> {
  static readonly apiVersion = KSERVE_API_VERSION;
  static readonly kind = 'InferenceService';
  readonly apiVersion = KSERVE_API_VERSION;
  readonly kind = 'InferenceService' as const;
  validate(): void {
    validateInferenceService(this.toJSON());
  }
}

/** Names of the KServe objects of a model slug. */
export function kserveNames(slug: string): { isvc: string; serviceAccount: string; config: string } {
  return { isvc: slug, serviceAccount: `kserve-${slug}`, config: `kserve-${slug}-config` };
}

/**
 * The `storageUri` of the resolved model source: `pvc://CLAIM/PATH` for a folder on a claim, else
 * the gs:// or s3:// URL; each points at a TF Serving base path (numbered version folders).
 *
 * @example
 * kserveStorageUri(resolveOptions({ modelName: 'resnet', pvc: 'claim-alice' })); // 'pvc://claim-alice/models/resnet'
 */
export function kserveStorageUri(resolved: Pick<ResolvedOptions, 'source' | 'claim'>): string {
  const { source, claim } = resolved;
  if (source.kind !== 'pvc') return source.url;
  const inClaim = [claim.subPath, source.basePath.slice(MODELS_MOUNT.length + 1)].filter(Boolean).join('/');
  return `pvc://${claim.name}/${inClaim}`;
}

/** The Knative autoscaling and Prometheus annotations of the InferenceService. */
function kserveAnnotations(resolved: ResolvedOptions): Record<string, string> {
  const k = resolved.kserve!;
  return {
    // Knative's autoscaler: keep about `target` requests in flight per pod (what `lens profile` measured as meeting the latency target).
    'autoscaling.knative.dev/metric': 'concurrency',
    'autoscaling.knative.dev/target': String(k.concurrencyTarget),
    'autoscaling.knative.dev/target-utilization-percentage': String(resolved.targetCpuUtilization),
    ...(resolved.monitoring
      ? {
          'serving.kserve.io/enable-prometheus-scraping': 'true',
          'prometheus.kserve.io/port': String(KSERVE_REST_PORT),
          'prometheus.kserve.io/path': METRICS_PATH,
        }
      : {}),
    'serving-lens/served-model-name': resolved.slug,
    ...(resolved.sizingNote ? { 'serving-lens/sizing': resolved.sizingNote } : {}),
  };
}

/**
 * The KServe objects for the resolved options: ServiceAccount (credentials for the storage
 * initializer), ConfigMap (TF Serving's monitoring and batching settings) and the InferenceService.
 * TF Serving serves the model under the InferenceService's name (the slug).
 *
 * @example
 * const objects = kserveObjects(resolveOptions({ modelName: 'resnet', target: 'kserve', modelBasePath: 'gs://bucket/resnet' }));
 */
export function kserveObjects(resolved: ResolvedOptions): Array<ServiceAccount | ConfigMap | InferenceService> {
  const k = resolved.kserve;
  if (!k) throw new LensError('INTERNAL', 'kserveObjects needs options resolved with target kserve');
  if (!ISVC_NAME.test(resolved.slug) || resolved.slug.length > MAX_ISVC_NAME) {
    throw new LensError('INVALID_ARGUMENT', `--model-name ${resolved.modelName} gives the InferenceService name "${resolved.slug}": it must start with a letter and have at most ${MAX_ISVC_NAME} characters`);
  }
  const names = kserveNames(resolved.slug);
  const labels = componentLabels('kserve-predictor', resolved.slug, 'serving').all;
  const { source } = resolved;
  // KServe's storage initializer reads S3 settings from these annotations (on the ServiceAccount
  // for IRSA, or on the Secret the account lists) and credentials from the Secrets it lists.
  const s3 =
    source.kind === 's3'
      ? {
          'serving.kserve.io/s3-endpoint': (resolved.s3Endpoint ?? 's3.amazonaws.com').replace(/^https?:\/\//, ''),
          'serving.kserve.io/s3-usehttps': resolved.s3Endpoint?.startsWith('http://') ? '0' : '1',
          ...(resolved.s3Region ? { 'serving.kserve.io/s3-region': resolved.s3Region } : {}),
        }
      : {};
  const serviceAccount = new ServiceAccount({
    metadata: meta(resolved, names.serviceAccount, labels, { ...resolved.serviceAccountAnnotations, ...s3 }),
    automountServiceAccountToken: false,
    ...(resolved.credentialsSecret ? { secrets: [{ name: resolved.credentialsSecret }] } : {}),
  });
  const data: Record<string, string> = {
    ...(resolved.monitoring ? { 'monitoring.config': monitoringConfigText() } : {}),
    ...(resolved.batching ? { 'batching.config': batchingConfigText(resolved.batching) } : {}),
  };
  const configMap = new ConfigMap({ metadata: meta(resolved, names.config, labels), data });
  const threads = Math.max(1, Math.ceil(resolved.cpu));
  // Appended to the runtime's own flags (--model_name, --port, --rest_api_port, --model_base_path).
  const args = [
    `--tensorflow_intra_op_parallelism=${threads}`,
    `--tensorflow_inter_op_parallelism=${threads}`,
    ...(resolved.monitoring ? [`--monitoring_config_file=${CONFIG_MOUNT}/monitoring.config`] : []),
    ...(resolved.batching ? ['--enable_batching=true', `--batching_parameters_file=${CONFIG_MOUNT}/batching.config`] : []),
  ];
  const grpc = k.protocol === 'grpc';
  const model: IKServeModelSpec = {
    modelFormat: { name: 'tensorflow' },
    // Pins the tensorflow/serving image tag the runtime runs (the -gpu image for GPUs).
    runtimeVersion: `${k.servingVersion}${resolved.gpus > 0 ? '-gpu' : ''}`,
    storageUri: kserveStorageUri(resolved),
    protocolVersion: grpc ? 'grpc-v1' : 'v1',
    args,
    // Knative routes one port: gRPC predictors name theirs h2c.
    ...(grpc ? { ports: [{ name: 'h2c', containerPort: KSERVE_GRPC_PORT, protocol: 'TCP' as const }] } : {}),
    ...(resolved.gpus > 0 ? { env: [{ name: 'HOME', value: '/tmp' }, { name: 'CUDA_CACHE_PATH', value: '/tmp/.nv' }] } : {}),
    resources: guaranteed(cpuQuantity(resolved.cpu), resolved.memory, resolved.gpus),
    securityContext: { ...containerSecurityContext(true), runAsUser: podSecurityContext().runAsUser! },
    volumeMounts: [{ name: 'config', mountPath: CONFIG_MOUNT, readOnly: true }, TMP_MOUNT],
  };
  const isvc = new InferenceService({
    metadata: meta(resolved, names.isvc, labels, kserveAnnotations(resolved)),
    spec: {
      predictor: {
        minReplicas: resolved.replicas,
        maxReplicas: resolved.maxReplicas,
        serviceAccountName: names.serviceAccount,
        automountServiceAccountToken: false,
        securityContext: podSecurityContext(),
        ...(resolved.gpus > 0 ? gpuScheduling(resolved) : {}),
        volumes: [{ name: 'config', configMap: { name: names.config } }, TMP_VOLUME],
        model,
      },
    },
  });
  return [serviceAccount, configMap, isvc];
}
