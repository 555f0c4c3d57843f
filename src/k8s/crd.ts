/**
 * Typed objects for the custom resources serving-lens writes (KubeFlow's Notebook, GKE's
 * BackendConfig), checked like the built-in kinds: a JSON schema of the resource (ajv) plus the
 * kubernetes-models schema of every embedded core type (the Notebook's pod spec).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { PodSpec, type IPod, type IPodSpec } from 'kubernetes-models/v1';
import { LensError } from '../core/errors.js';

/** Object metadata as the built-in kinds have it. */
export type ObjectMeta = NonNullable<IPod['metadata']>;

const ajv = new Ajv({ allErrors: true, strict: true });

const DNS1123_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

const metadataSchema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', maxLength: 253, pattern: DNS1123_SUBDOMAIN },
    namespace: { type: 'string', maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 63 } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
  additionalProperties: false,
} as const;

function formatErrors(what: string, fn: ValidateFunction): string {
  return (fn.errors ?? []).map((e) => `${what}${e.instancePath} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`).join(', ');
}

/**
 * What the custom resources here share: a fixed apiVersion and kind, metadata, a spec, and the
 * plain object (toJSON) that YAML and the validators see.
 */
export abstract class CustomResource<T extends { apiVersion: string; kind: string; metadata: ObjectMeta; spec: unknown }> {
  abstract readonly apiVersion: T['apiVersion'];
  abstract readonly kind: T['kind'];
  metadata: ObjectMeta;
  spec: T['spec'];

  constructor(data: { metadata: ObjectMeta; spec: T['spec'] }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /** Throws a LensError naming every schema violation. */
  abstract validate(): void;

  toJSON(): T {
    return { apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, spec: this.spec } as T;
  }
}

/** The KubeFlow Notebook resource (notebooks.kubeflow.org, version v1). */
export interface INotebook {
  apiVersion: 'kubeflow.org/v1';
  kind: 'Notebook';
  metadata: ObjectMeta;
  spec: {
    template: {
      metadata?: Pick<ObjectMeta, 'labels' | 'annotations'>;
      spec: IPodSpec;
    };
  };
}

const notebookSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'kubeflow.org/v1' },
    kind: { const: 'Notebook' },
    metadata: metadataSchema,
    spec: {
      type: 'object',
      required: ['template'],
      properties: {
        template: {
          type: 'object',
          required: ['spec'],
          properties: {
            metadata: { type: 'object', properties: { labels: { type: 'object' }, annotations: { type: 'object' } }, additionalProperties: false },
            // The pod spec is checked with the Kubernetes schema below; here only its presence and
            // what the notebook controller needs: a first container with an image.
            spec: {
              type: 'object',
              required: ['containers'],
              properties: {
                containers: {
                  type: 'array',
                  minItems: 1,
                  items: { type: 'object', required: ['name', 'image'], properties: { name: { type: 'string' }, image: { type: 'string', minLength: 1 } } },
                },
              },
            },
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    status: { type: 'object' },
  },
  additionalProperties: false,
} as const;

const validateNotebookSchema = ajv.compile(notebookSchema);

/**
 * A KubeFlow Notebook (kubeflow.org/v1): the notebook controller runs `spec.template.spec` as a
 * StatefulSet pod, serves its first container's port (8888) under `/notebook/NAMESPACE/NAME/`, and
 * copies the Notebook's labels to the pod.
 *
 * @example
 * const nb = new Notebook({ metadata: { name: 'lens' }, spec: { template: { spec: { containers: [{ name: 'lens', image: 'serving-lens/workbench:0.1.0' }] } } } });
 * nb.validate();
 */
export class Notebook extends CustomResource<INotebook> {
  static readonly apiVersion = 'kubeflow.org/v1';
  static readonly kind = 'Notebook';
  readonly apiVersion = 'kubeflow.org/v1' as const;
  readonly kind = 'Notebook' as const;
  validate(): void {
    validateNotebook(this);
  }
}

/**
 * Checks a plain Notebook object (e.g. parsed from YAML) against the resource schema and its pod
 * spec against the Kubernetes PodSpec schema.
 *
 * @example
 * validateNotebook(YAML.parse(text));
 */
export function validateNotebook(data: unknown): void {
  const name = (data as { metadata?: { name?: unknown } })?.metadata?.name;
  const what = `Notebook ${typeof name === 'string' ? name : '<unnamed>'}`;
  if (!validateNotebookSchema(data)) throw new LensError('INVALID_ARGUMENT', `${what}: ${formatErrors('data', validateNotebookSchema)}`);
  try {
    new PodSpec((data as INotebook).spec.template.spec).validate();
  } catch (e) {
    throw new LensError('INVALID_ARGUMENT', `${what}: spec.template.spec: ${(e as Error).message}`);
  }
}

/** GKE's BackendConfig (cloud.google.com/v1), used here only to switch on Identity-Aware Proxy. */
export interface IBackendConfig {
  apiVersion: 'cloud.google.com/v1';
  kind: 'BackendConfig';
  metadata: ObjectMeta;
  spec: {
    iap?: { enabled: boolean; oauthclientCredentials?: { secretName: string } };
    healthCheck?: { type?: 'HTTP' | 'HTTPS' | 'HTTP2'; requestPath?: string; port?: number; checkIntervalSec?: number; timeoutSec?: number };
    timeoutSec?: number;
  };
}

const backendConfigSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'cloud.google.com/v1' },
    kind: { const: 'BackendConfig' },
    metadata: metadataSchema,
    spec: {
      type: 'object',
      properties: {
        iap: {
          type: 'object',
          required: ['enabled'],
          properties: {
            enabled: { type: 'boolean' },
            oauthclientCredentials: { type: 'object', required: ['secretName'], properties: { secretName: { type: 'string', minLength: 1 } }, additionalProperties: false },
          },
          additionalProperties: false,
        },
        healthCheck: {
          type: 'object',
          properties: {
            type: { enum: ['HTTP', 'HTTPS', 'HTTP2'] },
            requestPath: { type: 'string', pattern: '^/' },
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            checkIntervalSec: { type: 'integer', minimum: 1 },
            timeoutSec: { type: 'integer', minimum: 1 },
          },
          additionalProperties: false,
        },
        timeoutSec: { type: 'integer', minimum: 1 },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;

const validateBackendConfigSchema = ajv.compile(backendConfigSchema);

/**
 * Checks a plain BackendConfig object against its schema.
 *
 * @example
 * validateBackendConfig({ apiVersion: 'cloud.google.com/v1', kind: 'BackendConfig', metadata: { name: 'iap' }, spec: { iap: { enabled: true } } });
 */
export function validateBackendConfig(data: unknown): void {
  if (!validateBackendConfigSchema(data)) {
    const name = (data as { metadata?: { name?: unknown } })?.metadata?.name;
    throw new LensError('INVALID_ARGUMENT', `BackendConfig ${typeof name === 'string' ? name : '<unnamed>'}: ${formatErrors('data', validateBackendConfigSchema)}`);
  }
}

/**
 * A GKE BackendConfig that puts Identity-Aware Proxy in front of a Service's load balancer backend.
 *
 * @example
 * new BackendConfig({ metadata: { name: 'tf-serving-iap' }, spec: { iap: { enabled: true } } }).validate();
 */
export class BackendConfig extends CustomResource<IBackendConfig> {
  static readonly apiVersion = 'cloud.google.com/v1';
  static readonly kind = 'BackendConfig';
  readonly apiVersion = 'cloud.google.com/v1' as const;
  readonly kind = 'BackendConfig' as const;
  validate(): void {
    validateBackendConfig(this.toJSON());
  }
}
