/**
 * Options of `lens k8s render` and their resolution to concrete, checked values (names, model
 * source, sizes), so that the builders never see a half-specified deployment.
 */
import { LensError } from '../core/errors.js';

/** TF Serving's BatchingParameters (text proto written to batching.config). */
export interface BatchingParameters {
  maxBatchSize: number;
  batchTimeoutMicros: number;
  maxEnqueuedBatches: number;
  numBatchThreads: number;
  /** Sizes batches are padded to; the last must equal maxBatchSize. */
  allowedBatchSizes?: number[];
}

/** An Ingress in front of the REST port, always behind an authenticating proxy. */
export interface IngressOptions {
  host: string;
  /** oauth2-proxy (any ingress controller) or Google's Identity-Aware Proxy (GKE Ingress). */
  auth: 'oauth2-proxy' | 'iap';
  /** IngressClass for oauth2-proxy mode. Default 'nginx'. */
  className?: string;
  /** Secret holding the TLS certificate for `host` (kubernetes.io/tls). Default `<name>-tls`. */
  tlsSecret?: string;
  /** OIDC issuer URL for oauth2-proxy, e.g. https://accounts.google.com. */
  oidcIssuerUrl?: string;
  /** Existing Secret with client-id, client-secret and cookie-secret keys for oauth2-proxy. Default 'oauth2-proxy'. */
  oauth2ProxySecret?: string;
  /** E-mail domain oauth2-proxy admits. Default '*' (anyone the issuer authenticates: narrow it). */
  emailDomain?: string;
}

/** The KubeFlow Notebook workbench. */
export interface WorkbenchOptions {
  /** Workbench image (k8s/workbench/Dockerfile). */
  image: string;
  name?: string;
  gpus?: number;
  /** Size of the home (workspace) volume the Notebook gets. Default '10Gi'. */
  workspaceSize?: string;
}

/** The batch attribution Job (Indexed) and its merge Job. */
export interface BatchJobOptions {
  /** Image with `lens` (the workbench image). */
  image: string;
  shards: number;
  /** Pods running at once. Default = shards. */
  parallelism?: number;
  /** Image list path inside the pod. Default /data/batch/images.txt. */
  list?: string;
  /** Output folder inside the pod. Default /data/batch/out/<model>. */
  out?: string;
  /** --model for lens batch. Default: the served model's base path on the shared volume. */
  model?: string;
  /** Extra flags for `lens batch` (e.g. ['--steps', '64', '--baseline', 'black']). */
  extraArgs?: string[];
  cpu?: string;
  memory?: string;
}

/** KServe settings of a render with `target: 'kserve'`. */
export interface KServeOptions {
  /** `rest` (protocol v1, port 8080, default) or `grpc` (grpc-v1, h2c port 9000): Knative routes one of them. */
  protocol?: 'rest' | 'grpc';
  /** Requests in flight per pod that Knative's autoscaler aims at. Default: from the profile, else 4. */
  concurrencyTarget?: number;
}

/** What `lens k8s render` takes. Only `modelName` is required. */
export interface RenderOptions {
  /**
   * What serves the model: `deployment` (default: a Deployment of tensorflow/serving with Service,
   * HPA and NetworkPolicy) or `kserve` (a KServe InferenceService on KServe's TF Serving runtime).
   */
  target?: 'deployment' | 'kserve';
  kserve?: KServeOptions;
  /** TF Serving model name (as clients address it: /v1/models/NAME). */
  modelName: string;
  /** Where TF Serving finds the model's version folders: a path on the claim (default /models/NAME), gs://..., or s3://... */
  modelBasePath?: string;
  /** Existing PersistentVolumeClaim holding models/NAME/VERSION (e.g. JupyterHub's claim-USER); omitted: one is created. */
  pvc?: string;
  /** Folder of the claim mounted at /models in the serving pods. Default 'models'. */
  pvcSubPath?: string;
  /** Size of the claim created when --pvc is not given. Default '20Gi'. */
  pvcSize?: string;
  storageClass?: string;
  /** Access mode of the created claim. Default ReadWriteMany (serving, notebooks and jobs share it). */
  pvcAccessMode?: 'ReadWriteMany' | 'ReadWriteOnce';
  /** Secret with bucket credentials (gs://: key.json; s3://: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Prefer workload identity. */
  credentialsSecret?: string;
  /** For s3://: region and (for MinIO and the like) endpoint URL. */
  s3Region?: string;
  s3Endpoint?: string;
  /** Annotations of the serving ServiceAccount (GKE Workload Identity, EKS IRSA). */
  serviceAccountAnnotations?: Record<string, string>;
  namespace?: string;
  gpus?: number;
  /** Node labels the GPU pods require. Default { 'nvidia.com/gpu.present': 'true' } (NVIDIA GPU feature discovery). */
  gpuNodeSelector?: Record<string, string>;
  /** Minimum replicas (HPA). Default 1. */
  replicas?: number;
  /** Maximum replicas (HPA). Default max(3, replicas). */
  maxReplicas?: number;
  /** HPA target CPU utilisation in percent. Default 70. */
  targetCpuUtilization?: number;
  /** TF Serving image without tag. Default 'tensorflow/serving'. */
  servingImage?: string;
  /** TF Serving version tag ('-gpu' is appended for GPUs). Default {@link DEFAULT_SERVING_VERSION}. */
  servingVersion?: string;
  /** CPU cores per serving pod (requests = limits). Default 2 (4 with GPUs). */
  cpu?: number;
  /** Memory per serving pod (requests = limits). Default 3Gi (8Gi with GPUs). */
  memory?: string;
  /** Version labels (stable=1, canary=2): the served versions become exactly the labelled ones. */
  versionLabels?: Record<string, number>;
  /** Server-side batching; omitted = off. */
  batching?: Partial<BatchingParameters>;
  /** Prometheus metrics on the REST port. Default true. */
  monitoring?: boolean;
  /** Namespace of the Prometheus that scrapes the pods (admitted by the NetworkPolicy). Default 'monitoring'. */
  monitoringNamespace?: string;
  /** Other namespaces whose `serving-lens/client: "true"` pods may call the server (e.g. JupyterHub's). */
  clientNamespaces?: string[];
  ingress?: IngressOptions;
  workbench?: WorkbenchOptions;
  batch?: BatchJobOptions;
  /** Sizes measured by `lens profile` (see sizeFromProfile); explicit batching and replica options win. */
  sizing?: { summary: string; batching?: Partial<BatchingParameters>; minReplicas?: number; maxReplicas?: number; concurrency?: number };
}

/** TF Serving release the manifests pin (tags `2.18.0` and `2.18.0-gpu`). */
export const DEFAULT_SERVING_VERSION = '2.18.0';
/** Image the workbench Dockerfile builds, as referenced by the manifests (retag with kustomize `images:`). */
export const DEFAULT_WORKBENCH_IMAGE = 'serving-lens/workbench:0.1.0';
/** Label that marks pods allowed to call TF Serving (workbench, batch jobs). */
export const CLIENT_LABEL = 'serving-lens/client';
/** Label set on every object serving-lens renders. */
export const PART_OF = { 'app.kubernetes.io/part-of': 'serving-lens' } as const;
export const GRPC_PORT = 8500;
export const REST_PORT = 8501;
/** Where the serving container sees the model folder of the claim. */
export const MODELS_MOUNT = '/models';
/** Where workbench and batch pods see the shared claim. */
export const DATA_MOUNT = '/data';

export type ServingModelSource =
  | { kind: 'pvc'; basePath: string }
  | { kind: 'gcs'; url: string }
  | { kind: 's3'; url: string };

/** Options with every default applied and checked. */
export interface ResolvedOptions {
  target: 'deployment' | 'kserve';
  /** Set for target kserve. */
  kserve?: { protocol: 'rest' | 'grpc'; concurrencyTarget: number; servingVersion: string };
  modelName: string;
  /** modelName made fit for object names (lower case, '-'). */
  slug: string;
  source: ServingModelSource;
  claim: { name: string; create: boolean; subPath: string; size: string; storageClass?: string; accessMode: 'ReadWriteMany' | 'ReadWriteOnce' };
  credentialsSecret?: string;
  s3Region?: string;
  s3Endpoint?: string;
  serviceAccountAnnotations: Record<string, string>;
  namespace?: string;
  gpus: number;
  gpuNodeSelector: Record<string, string>;
  replicas: number;
  maxReplicas: number;
  targetCpuUtilization: number;
  image: string;
  cpu: number;
  memory: string;
  versionLabels: Record<string, number>;
  batching?: BatchingParameters;
  monitoring: boolean;
  monitoringNamespace: string;
  clientNamespaces: string[];
  ingress?: Required<Omit<IngressOptions, 'oidcIssuerUrl'>> & { oidcIssuerUrl?: string };
  workbench?: Required<WorkbenchOptions>;
  batch?: Required<Omit<BatchJobOptions, 'extraArgs'>> & { extraArgs: string[] };
  /** Where the sizes came from, kept as a Deployment annotation. */
  sizingNote?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/;

function bad(message: string): never {
  throw new LensError('INVALID_ARGUMENT', message);
}

function positiveInt(value: number, flag: string, min = 1): number {
  if (!Number.isInteger(value) || value < min) bad(`${flag} must be an integer >= ${min}, got ${value}`);
  return value;
}

function quantity(value: string, flag: string): string {
  if (!QUANTITY.test(value)) bad(`${flag} must be a Kubernetes quantity such as 512Mi, 4Gi or 20Gi, got "${value}"`);
  return value;
}

function dnsLabel(value: string, flag: string, max = 63): string {
  if (!DNS_LABEL.test(value) || value.length > max) bad(`${flag} must be a lower-case DNS label (a-z, 0-9, '-', at most ${max} characters), got "${value}"`);
  return value;
}

/**
 * Turns a TF Serving model name into a name part for Kubernetes objects.
 *
 * @example
 * slugOf('half_plus_two'); // 'half-plus-two'
 */
export function slugOf(modelName: string): string {
  const slug = modelName.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '');
  if (slug === '') bad(`--model-name "${modelName}" has no letters or digits to name Kubernetes objects after`);
  return slug;
}

/**
 * Applies defaults and checks every option, naming the flag at fault.
 *
 * @example
 * const resolved = resolveOptions({ modelName: 'resnet', gpus: 1, pvc: 'claim-alice' });
 */
export function resolveOptions(options: RenderOptions): ResolvedOptions {
  const modelName = options.modelName;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(modelName)) bad(`--model-name must start with a letter or digit and hold only letters, digits, '_', '.' or '-', got "${modelName}"`);
  const slug = slugOf(modelName);
  const gpus = positiveInt(options.gpus ?? 0, '--gpus', 0);
  const sizing = options.sizing;
  const replicas = positiveInt(options.replicas ?? sizing?.minReplicas ?? 1, '--replicas');
  const maxReplicas = positiveInt(options.maxReplicas ?? sizing?.maxReplicas ?? Math.max(3, replicas), '--max-replicas');
  if (maxReplicas < replicas) bad(`--max-replicas (${maxReplicas}) must be at least --replicas (${replicas})`);
  const targetCpuUtilization = positiveInt(options.targetCpuUtilization ?? 70, '--target-cpu');
  if (targetCpuUtilization > 100) bad(`--target-cpu is a percentage of the CPU request (1..100), got ${targetCpuUtilization}`);
  const cpu = options.cpu ?? (gpus > 0 ? 4 : 2);
  if (!(cpu > 0) || !Number.isInteger(cpu * 1000)) bad(`--cpu must be a positive number of cores (e.g. 2 or 0.5), got ${cpu}`);
  const memory = quantity(options.memory ?? (gpus > 0 ? '8Gi' : '3Gi'), '--memory');

  const base = options.modelBasePath;
  let source: ServingModelSource;
  if (base === undefined) source = { kind: 'pvc', basePath: `${MODELS_MOUNT}/${modelName}` };
  else if (/^gs:\/\/[^/]+/.test(base)) source = { kind: 'gcs', url: base.replace(/\/+$/, '') };
  else if (/^s3:\/\/[^/]+/.test(base)) source = { kind: 's3', url: base.replace(/\/+$/, '') };
  else if (base.startsWith('/')) {
    if (!base.startsWith(`${MODELS_MOUNT}/`)) bad(`--model-base-path ${base} must lie under ${MODELS_MOUNT}/ (where the claim's "${options.pvcSubPath ?? 'models'}" folder is mounted), or be a gs:// or s3:// URL`);
    source = { kind: 'pvc', basePath: base.replace(/\/+$/, '') };
  } else bad(`--model-base-path must be an absolute path under ${MODELS_MOUNT}/, gs://BUCKET/PATH or s3://BUCKET/PATH, got "${base}"`);
  if (source.kind === 'pvc' && options.credentialsSecret) bad('--credentials-secret applies to gs:// and s3:// model base paths only');

  const versionLabels: Record<string, number> = {};
  for (const [label, version] of Object.entries(options.versionLabels ?? {})) {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(label)) bad(`--version-label: label "${label}" must start with a letter and hold letters, digits, '_' or '-'`);
    versionLabels[label] = positiveInt(version, `--version-label ${label}`);
  }

  let batching: BatchingParameters | undefined;
  if (options.batching || sizing?.batching) {
    const b = { ...sizing?.batching, ...options.batching };
    const maxBatchSize = positiveInt(b.maxBatchSize ?? 32, '--max-batch-size');
    batching = {
      maxBatchSize,
      batchTimeoutMicros: positiveInt(b.batchTimeoutMicros ?? 2000, '--batch-timeout-micros', 0),
      maxEnqueuedBatches: positiveInt(b.maxEnqueuedBatches ?? 100, '--max-enqueued-batches'),
      numBatchThreads: positiveInt(b.numBatchThreads ?? Math.max(1, Math.ceil(cpu)), '--num-batch-threads'),
      ...(b.allowedBatchSizes ? { allowedBatchSizes: b.allowedBatchSizes } : {}),
    };
    const allowed = batching.allowedBatchSizes;
    if (allowed && (allowed.length === 0 || allowed.some((s, i) => !Number.isInteger(s) || s < 1 || (i > 0 && s <= allowed[i - 1]!)) || allowed[allowed.length - 1] !== maxBatchSize)) {
      bad(`--allowed-batch-sizes must be increasing positive integers ending with --max-batch-size (${maxBatchSize}), got ${allowed.join(',')}`);
    }
  }

  const namespace = options.namespace === undefined ? undefined : dnsLabel(options.namespace, '--namespace');
  const claimName = options.pvc === undefined ? 'serving-lens-shared' : dnsLabel(options.pvc, '--pvc', 253);
  const subPath = (options.pvcSubPath ?? 'models').replace(/^\/+|\/+$/g, '');
  if (subPath.split('/').includes('..')) bad(`--pvc-subpath must not contain "..", got "${options.pvcSubPath}"`);

  const ingress = options.ingress
    ? {
        host: options.ingress.host,
        auth: options.ingress.auth,
        className: options.ingress.className ?? 'nginx',
        tlsSecret: options.ingress.tlsSecret ?? `tf-serving-${slug}-tls`,
        oauth2ProxySecret: options.ingress.oauth2ProxySecret ?? 'oauth2-proxy',
        emailDomain: options.ingress.emailDomain ?? '*',
        ...(options.ingress.oidcIssuerUrl ? { oidcIssuerUrl: options.ingress.oidcIssuerUrl } : {}),
      }
    : undefined;
  if (ingress) {
    if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$/.test(ingress.host)) bad(`--ingress-host must be a DNS name such as models.example.com, got "${ingress.host}"`);
    if (ingress.auth !== 'oauth2-proxy' && ingress.auth !== 'iap') bad(`--auth must be oauth2-proxy or iap, got "${String(ingress.auth)}"`);
    if (ingress.auth === 'oauth2-proxy' && !ingress.oidcIssuerUrl) bad('--oidc-issuer-url is required with --auth oauth2-proxy (e.g. https://accounts.google.com)');
  }

  const workbench = options.workbench
    ? {
        image: options.workbench.image,
        name: dnsLabel(options.workbench.name ?? 'lens-workbench', '--workbench-name', 52),
        gpus: positiveInt(options.workbench.gpus ?? 0, '--workbench-gpus', 0),
        workspaceSize: quantity(options.workbench.workspaceSize ?? '10Gi', '--workspace-size'),
      }
    : undefined;

  let batch: ResolvedOptions['batch'];
  if (options.batch) {
    const b = options.batch;
    const shards = positiveInt(b.shards, '--batch-shards');
    const modelPath = source.kind === 'pvc' ? `${DATA_MOUNT}/${subPath ? `${subPath}/` : ''}${source.basePath.slice(MODELS_MOUNT.length + 1)}` : undefined;
    const model = b.model ?? modelPath;
    if (model === undefined) bad('--batch-model is required when the served model lives in a bucket (the batch pods read models from the shared volume)');
    batch = {
      image: b.image,
      shards,
      parallelism: positiveInt(b.parallelism ?? shards, '--batch-parallelism'),
      list: b.list ?? `${DATA_MOUNT}/batch/images.txt`,
      out: b.out ?? `${DATA_MOUNT}/batch/out/${slug}`,
      model,
      extraArgs: b.extraArgs ?? [],
      cpu: quantity(b.cpu ?? '2', '--batch-cpu'),
      memory: quantity(b.memory ?? '4Gi', '--batch-memory'),
    };
  }

  const target = options.target ?? 'deployment';
  if (target !== 'deployment' && target !== 'kserve') bad(`--target must be deployment or kserve, got "${String(target)}"`);
  let kserve: ResolvedOptions['kserve'];
  if (target === 'kserve') {
    if (ingress) bad('--ingress-host does not apply to --target kserve: KServe predictors are reached through the cluster\'s ingress gateway (see lens predict --host-header)');
    if (Object.keys(versionLabels).length > 0) bad('--version-label does not apply to --target kserve: KServe\'s TF Serving runtime serves the newest version under storageUri');
    const protocol = options.kserve?.protocol ?? 'rest';
    if (protocol !== 'rest' && protocol !== 'grpc') bad(`--kserve-protocol must be rest or grpc, got "${String(protocol)}"`);
    const concurrencyTarget = positiveInt(options.kserve?.concurrencyTarget ?? sizing?.concurrency ?? 4, '--concurrency-target');
    kserve = { protocol, concurrencyTarget, servingVersion: options.servingVersion ?? DEFAULT_SERVING_VERSION };
  } else if (options.kserve) bad('--kserve-protocol and --concurrency-target apply to --target kserve only');

  return {
    target,
    ...(kserve ? { kserve } : {}),
    modelName,
    slug,
    source,
    claim: {
      name: claimName,
      create: options.pvc === undefined,
      subPath,
      size: quantity(options.pvcSize ?? '20Gi', '--pvc-size'),
      ...(options.storageClass ? { storageClass: options.storageClass } : {}),
      accessMode: options.pvcAccessMode ?? 'ReadWriteMany',
    },
    ...(options.credentialsSecret ? { credentialsSecret: dnsLabel(options.credentialsSecret, '--credentials-secret', 253) } : {}),
    ...(options.s3Region ? { s3Region: options.s3Region } : {}),
    ...(options.s3Endpoint ? { s3Endpoint: options.s3Endpoint } : {}),
    serviceAccountAnnotations: options.serviceAccountAnnotations ?? {},
    ...(namespace ? { namespace } : {}),
    gpus,
    gpuNodeSelector: options.gpuNodeSelector ?? { 'nvidia.com/gpu.present': 'true' },
    replicas,
    maxReplicas,
    targetCpuUtilization,
    image: `${options.servingImage ?? 'tensorflow/serving'}:${options.servingVersion ?? DEFAULT_SERVING_VERSION}${gpus > 0 ? '-gpu' : ''}`,
    cpu,
    memory,
    versionLabels,
    ...(batching ? { batching } : {}),
    monitoring: options.monitoring ?? true,
    monitoringNamespace: dnsLabel(options.monitoringNamespace ?? 'monitoring', '--monitoring-namespace'),
    clientNamespaces: (options.clientNamespaces ?? []).map((n) => dnsLabel(n, '--client-namespace')),
    ...(ingress ? { ingress } : {}),
    ...(workbench ? { workbench } : {}),
    ...(batch ? { batch } : {}),
    ...(sizing ? { sizingNote: sizing.summary } : {}),
  };
}
