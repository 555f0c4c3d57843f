/**
 * Pieces every rendered workload shares: labels, the restricted security contexts (Pod Security
 * Standards "restricted"), resource blocks and the shared claim.
 */
import { PersistentVolumeClaim, type IContainer, type IPodSecurityContext, type ISecurityContext, type IResourceRequirements } from 'kubernetes-models/v1';
import type { ObjectMeta } from './crd.js';
import { PART_OF, type ResolvedOptions } from './options.js';

/** uid/gid of the notebook user convention (jovyan:users) that every serving-lens pod runs as. */
export const RUN_AS_USER = 1000;
export const RUN_AS_GROUP = 100;

/** Labels of one component; `selector` is the stable subset used in selectors. */
export function componentLabels(name: string, instance: string, component: string): { selector: Record<string, string>; all: Record<string, string> } {
  const selector = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': instance };
  return { selector, all: { ...selector, 'app.kubernetes.io/component': component, ...PART_OF } };
}

/** Metadata with the namespace when one is set. */
export function meta(resolved: Pick<ResolvedOptions, 'namespace'>, name: string, labels: Record<string, string>, annotations?: Record<string, string>): ObjectMeta {
  return {
    name,
    ...(resolved.namespace ? { namespace: resolved.namespace } : {}),
    labels,
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/** Pod security context: non-root, fixed ids, RuntimeDefault seccomp, cheap volume ownership changes. */
export function podSecurityContext(): IPodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_USER,
    runAsGroup: RUN_AS_GROUP,
    fsGroup: RUN_AS_GROUP,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Container security context: no privilege escalation, no capabilities, read-only root unless told. */
export function containerSecurityContext(readOnlyRootFilesystem = true): ISecurityContext {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** CPU cores as a Kubernetes quantity: whole cores as '2', fractions in millicores ('500m'). */
export function cpuQuantity(cores: number): string {
  return Number.isInteger(cores) ? String(cores) : `${Math.round(cores * 1000)}m`;
}

/** Requests equal to limits (Guaranteed QoS), plus GPUs as limits when asked for. */
export function guaranteed(cpu: string, memory: string, gpus = 0): IResourceRequirements {
  return {
    requests: { cpu, memory },
    limits: { cpu, memory, ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}) },
  };
}

/** A writable /tmp for containers with a read-only root filesystem. */
export const TMP_VOLUME = { name: 'tmp', emptyDir: { sizeLimit: '1Gi' } };
export const TMP_MOUNT = { name: 'tmp', mountPath: '/tmp' };

/** Scheduling for GPU pods: the GPU node label and the taint GPU node pools carry. */
export function gpuScheduling(resolved: Pick<ResolvedOptions, 'gpuNodeSelector'>): { nodeSelector: Record<string, string>; tolerations: { key: string; operator: 'Exists'; effect: 'NoSchedule' }[] } {
  return { nodeSelector: resolved.gpuNodeSelector, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] };
}

/** The claim shared by serving (read-only), the workbench and the batch jobs, when serving-lens creates it. */
export function sharedClaim(resolved: ResolvedOptions): PersistentVolumeClaim {
  const { claim } = resolved;
  return new PersistentVolumeClaim({
    metadata: meta(resolved, claim.name, { 'app.kubernetes.io/name': 'serving-lens-storage', 'app.kubernetes.io/component': 'storage', ...PART_OF }),
    spec: {
      accessModes: [claim.accessMode],
      resources: { requests: { storage: claim.size } },
      ...(claim.storageClass ? { storageClassName: claim.storageClass } : {}),
    },
  });
}

/** Environment entry helper keeping container literals short. */
export function env(name: string, value: string): NonNullable<IContainer['env']>[number] {
  return { name, value };
}
