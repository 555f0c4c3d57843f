/**
 * Offline checks of Kubernetes manifests: each object against the API schema of its kind
 * (kubernetes-models' validators, and the serving-lens CRD schemas), removed API versions, and
 * the security rules serving-lens promises (no LoadBalancer, non-root, limits, probes, no secret
 * values, authenticated Ingress, NetworkPolicy on serving).
 */
import YAML from 'yaml';
import { LensError, errorMessage } from '../core/errors.js';
import { validateBackendConfig, validateNotebook } from './crd.js';
import { KSERVE_API_VERSION, validateInferenceService } from './kserve.js';

/** A parsed manifest object (apiVersion, kind, metadata, ...). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** One finding of {@link checkSecurity}. */
export interface SecurityFinding {
  severity: 'error' | 'warning';
  /** `Kind/name` (and container) at fault. */
  object: string;
  rule: string;
  message: string;
}

/** API versions the current Kubernetes releases no longer serve, with the release that removed them. */
export const REMOVED_API_VERSIONS: Record<string, string> = {
  'extensions/v1beta1': '1.22',
  'apps/v1beta1': '1.16',
  'apps/v1beta2': '1.16',
  'networking.k8s.io/v1beta1': '1.22',
  'batch/v1beta1': '1.25',
  'policy/v1beta1': '1.25',
  'autoscaling/v2beta1': '1.25',
  'autoscaling/v2beta2': '1.26',
  'rbac.authorization.k8s.io/v1beta1': '1.22',
};

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `Kind/name` of an object, for messages. */
export function describeObject(obj: Partial<K8sObject>): string {
  return `${obj.kind ?? '<no kind>'}/${obj.metadata?.name ?? '<no name>'}`;
}

type ModelClass = new (data: unknown) => { validate(): void };
const classCache = new Map<string, ModelClass | null>();

async function modelClass(apiVersion: string, kind: string): Promise<ModelClass | null> {
  const key = `${apiVersion}/${kind}`;
  if (classCache.has(key)) return classCache.get(key)!;
  let cls: ModelClass | null = null;
  if (/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    try {
      // A plain string (not a template) keeps bundlers from trying to enumerate the modules.
      const specifier = ['kubernetes-models', apiVersion, kind].join('/');
      const mod = (await import(specifier)) as Record<string, unknown>;
      cls = (mod[kind] as ModelClass | undefined) ?? null;
    } catch {
      cls = null;
    }
  }
  classCache.set(key, cls);
  return cls;
}

/**
 * Checks one object against the API schema of its kind; throws a LensError naming the object and
 * every violation. Kinds without a schema here (other CRDs) are refused rather than passed.
 *
 * @example
 * await validateManifest({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: [{ port: 80 }] } });
 */
export async function validateManifest(obj: unknown, source = 'manifest'): Promise<void> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new LensError('INVALID_ARGUMENT', `${source}: a manifest must be a mapping, got ${Array.isArray(obj) ? 'a list' : typeof obj}`);
  const o = obj as Partial<K8sObject>;
  const what = `${source}: ${describeObject(o)}`;
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') throw new LensError('INVALID_ARGUMENT', `${what} lacks apiVersion or kind`);
  const removedIn = REMOVED_API_VERSIONS[o.apiVersion];
  if (removedIn) throw new LensError('INVALID_ARGUMENT', `${what} uses ${o.apiVersion}, which Kubernetes ${removedIn} removed`);
  const name = o.metadata?.name;
  if (typeof name !== 'string' || !DNS1123_SUBDOMAIN.test(name) || name.length > 253) throw new LensError('INVALID_ARGUMENT', `${what}: metadata.name must be a lower-case DNS name`);
  if (o.apiVersion === 'kubeflow.org/v1' && o.kind === 'Notebook') return validateNotebook(obj);
  if (o.apiVersion === 'cloud.google.com/v1' && o.kind === 'BackendConfig') return validateBackendConfig(obj);
  if (o.apiVersion === KSERVE_API_VERSION && o.kind === 'InferenceService') return validateInferenceService(obj);
  const cls = await modelClass(o.apiVersion, o.kind);
  if (!cls) throw new LensError('INVALID_ARGUMENT', `${what}: no schema for ${o.apiVersion} ${o.kind} (not a built-in Kubernetes kind, nor a custom resource serving-lens knows)`);
  try {
    new cls(obj).validate();
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', `${what}: ${errorMessage(e)}`);
  }
}

/**
 * Parses a multi-document YAML text into objects (empty documents skipped), naming the document at
 * fault on syntax errors.
 *
 * @example
 * const objects = parseManifests(readFileSync('k8s/base/deployment.yaml', 'utf8'), 'k8s/base/deployment.yaml');
 */
export function parseManifests(text: string, source = 'manifest'): K8sObject[] {
  const out: K8sObject[] = [];
  YAML.parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0) throw new LensError('INVALID_ARGUMENT', `${source} document ${i + 1}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) throw new LensError('INVALID_ARGUMENT', `${source} document ${i + 1} is not a mapping`);
    out.push(value as K8sObject);
  });
  return out;
}

/**
 * Writes objects as one multi-document YAML text.
 *
 * @example
 * process.stdout.write(toYaml(objects));
 */
export function toYaml(objects: readonly unknown[]): string {
  return objects.map((o) => YAML.stringify(JSON.parse(JSON.stringify(o)) as unknown, { lineWidth: 0 })).join('---\n');
}

interface PodTemplateView {
  spec: Record<string, unknown>;
  /** True for workloads that serve (probes expected). */
  serving: boolean;
}

function podTemplateOf(obj: K8sObject): PodTemplateView | undefined {
  const spec = obj.spec as Record<string, any> | undefined;
  switch (obj.kind) {
    case 'Pod':
      return spec ? { spec, serving: false } : undefined;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
    case 'Notebook':
      return spec?.template?.spec ? { spec: spec.template.spec, serving: obj.kind !== 'Job' && obj.kind !== 'Notebook' } : undefined;
    case 'CronJob':
      return spec?.jobTemplate?.spec?.template?.spec ? { spec: spec.jobTemplate.spec.template.spec, serving: false } : undefined;
    case 'InferenceService': {
      // The predictor is a pod spec whose container is the model (KServe merges it into the
      // runtime's container); Knative probes the pods itself, so no probes are required.
      const predictor = spec?.predictor as Record<string, any> | undefined;
      const container = predictor?.model ?? predictor?.tensorflow;
      if (!predictor || !container) return undefined;
      // Without an image the serving runtime's is used, pinned by runtimeVersion.
      const image = container.image ?? `${container.runtime ?? 'kserve-runtime'}:${container.runtimeVersion ?? 'latest'}`;
      return { spec: { ...predictor, containers: [{ name: 'kserve-container', ...container, image }] }, serving: false };
    }
    default:
      return undefined;
  }
}

function templateLabels(obj: K8sObject): Record<string, string> {
  const spec = obj.spec as Record<string, any> | undefined;
  return (spec?.template?.metadata?.labels as Record<string, string> | undefined) ?? {};
}

function selects(selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

const SECRET_NAME = /(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY)/i;

/**
 * Checks a set of objects (one deployment) against serving-lens's security rules. Errors break a
 * promise of the manifests; warnings are worth a look.
 *
 * @example
 * const errors = checkSecurity(objects).filter((f) => f.severity === 'error');
 */
export function checkSecurity(objects: readonly K8sObject[]): SecurityFinding[] {
  const findings: SecurityFinding[] = [];
  const add = (severity: SecurityFinding['severity'], object: string, rule: string, message: string) => findings.push({ severity, object, rule, message });

  for (const obj of objects) {
    const id = describeObject(obj);
    if (obj.kind === 'Service') {
      const type = (obj.spec as { type?: string } | undefined)?.type ?? 'ClusterIP';
      if (type !== 'ClusterIP') add('error', id, 'service-type', `type ${type} exposes pods outside the cluster without authentication: use ClusterIP with port-forward, or the authenticated Ingress`);
    }
    if (obj.kind === 'Secret') {
      const s = obj as { data?: object; stringData?: object };
      if ((s.data && Object.keys(s.data).length > 0) || (s.stringData && Object.keys(s.stringData).length > 0)) {
        add('error', id, 'secret-values', 'secret values do not belong in manifests: create the Secret with kubectl (or an external secret store) and reference it by name');
      }
    }
    const pod = podTemplateOf(obj);
    if (!pod) continue;
    const ps = pod.spec as Record<string, any>;
    if (ps.automountServiceAccountToken !== false) add('error', id, 'service-account-token', 'automountServiceAccountToken must be false: these pods do not call the Kubernetes API');
    for (const flag of ['hostNetwork', 'hostPID', 'hostIPC']) if (ps[flag] === true) add('error', id, 'host-namespaces', `${flag} must not be set`);
    for (const v of (ps.volumes ?? []) as Array<Record<string, unknown>>) if (v.hostPath) add('error', id, 'host-path', `volume ${String(v.name)} mounts a host path`);
    const podSc = (ps.securityContext ?? {}) as Record<string, any>;
    const containers = [...((ps.initContainers ?? []) as Array<Record<string, any>>), ...((ps.containers ?? []) as Array<Record<string, any>>)];
    const initNames = new Set(((ps.initContainers ?? []) as Array<{ name: string }>).map((c) => c.name));
    for (const c of containers) {
      const cid = `${id} container ${String(c.name)}`;
      const sc = (c.securityContext ?? {}) as Record<string, any>;
      if (!(sc.runAsNonRoot === true || (sc.runAsNonRoot === undefined && podSc.runAsNonRoot === true))) add('error', cid, 'run-as-non-root', 'runAsNonRoot must be true (pod or container security context)');
      if (sc.runAsUser === 0 || (sc.runAsUser === undefined && podSc.runAsUser === 0)) add('error', cid, 'run-as-non-root', 'runs as uid 0');
      const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') add('error', cid, 'seccomp', 'seccompProfile must be RuntimeDefault (or Localhost)');
      if (sc.privileged === true) add('error', cid, 'privileged', 'privileged containers are not allowed');
      if (sc.allowPrivilegeEscalation !== false) add('error', cid, 'privilege-escalation', 'allowPrivilegeEscalation must be false');
      if (!((sc.capabilities?.drop ?? []) as string[]).includes('ALL')) add('error', cid, 'capabilities', 'capabilities.drop must include ALL');
      if (((sc.capabilities?.add ?? []) as string[]).length > 0) add('error', cid, 'capabilities', `adds capabilities ${(sc.capabilities.add as string[]).join(', ')}`);
      if (sc.readOnlyRootFilesystem !== true) add('warning', cid, 'read-only-root', 'readOnlyRootFilesystem is not set: mount emptyDirs for the paths it writes');
      const limits = (c.resources?.limits ?? {}) as Record<string, unknown>;
      if (limits.cpu === undefined || limits.memory === undefined) add('error', cid, 'resource-limits', 'resources.limits must set cpu and memory');
      const requests = (c.resources?.requests ?? {}) as Record<string, unknown>;
      if (requests.cpu === undefined || requests.memory === undefined) add('warning', cid, 'resource-requests', 'resources.requests should set cpu and memory (the scheduler and the HPA use them)');
      const image = String(c.image ?? '');
      const tag = image.includes('@') ? 'digest' : image.slice(image.lastIndexOf('/') + 1).split(':')[1];
      if (!tag || tag === 'latest') add('warning', cid, 'image-tag', `image ${image} is not pinned to a version`);
      if (pod.serving && !initNames.has(String(c.name)) && (!c.readinessProbe || !c.livenessProbe)) add('error', cid, 'probes', 'serving containers need readiness and liveness probes');
      for (const e of (c.env ?? []) as Array<{ name: string; value?: string }>) {
        if (SECRET_NAME.test(e.name) && typeof e.value === 'string' && e.value !== '') add('error', cid, 'secret-values', `env ${e.name} holds a literal value: use valueFrom.secretKeyRef`);
      }
    }
  }

  // TF Serving pods must be fenced by a NetworkPolicy.
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  for (const obj of objects) {
    if (!['Deployment', 'StatefulSet'].includes(obj.kind)) continue;
    const labels = templateLabels(obj);
    if (labels['app.kubernetes.io/name'] !== 'tf-serving') continue;
    const fenced = policies.some((p) => {
      const spec = p.spec as { podSelector?: { matchLabels?: Record<string, string> }; policyTypes?: string[] } | undefined;
      return (spec?.policyTypes ?? ['Ingress']).includes('Ingress') && selects(spec?.podSelector, labels) && (p.metadata?.namespace ?? '') === (obj.metadata?.namespace ?? '');
    });
    if (!fenced) add('error', describeObject(obj), 'network-policy', 'no NetworkPolicy restricts who may connect to these TF Serving pods');
  }

  // Every Ingress must lead to an authenticating proxy.
  const services = new Map(objects.filter((o) => o.kind === 'Service').map((s) => [s.metadata?.name ?? '', s]));
  const workloads = objects.filter((o) => o.kind === 'Deployment');
  const iapConfigs = new Set(
    objects.filter((o) => o.kind === 'BackendConfig' && (o.spec as { iap?: { enabled?: boolean } } | undefined)?.iap?.enabled === true).map((o) => o.metadata?.name ?? ''),
  );
  for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
    const spec = ing.spec as { defaultBackend?: any; rules?: Array<{ http?: { paths?: Array<{ backend?: any }> } }> } | undefined;
    const backends = [spec?.defaultBackend, ...(spec?.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend))].filter(Boolean);
    for (const b of backends) {
      const svcName = String(b.service?.name ?? '');
      const svc = services.get(svcName);
      const selector = (svc?.spec as { selector?: Record<string, string> } | undefined)?.selector ?? {};
      const viaProxy = workloads.some((w) => {
        const labels = templateLabels(w);
        const images = ((w.spec as any)?.template?.spec?.containers ?? []).map((c: { image?: string }) => String(c.image ?? ''));
        return Object.keys(selector).length > 0 && selects({ matchLabels: selector }, labels) && images.some((i: string) => i.includes('oauth2-proxy'));
      });
      let viaIap = false;
      const backendConfig = svc?.metadata?.annotations?.['cloud.google.com/backend-config'];
      if (backendConfig) {
        try {
          const parsed = JSON.parse(backendConfig) as { default?: string };
          viaIap = parsed.default !== undefined && iapConfigs.has(parsed.default);
        } catch {
          viaIap = false;
        }
      }
      if (!viaProxy && !viaIap) add('error', describeObject(ing), 'ingress-auth', `routes to Service ${svcName} without an authenticating proxy (oauth2-proxy, or IAP through a BackendConfig)`);
    }
  }
  return findings;
}
