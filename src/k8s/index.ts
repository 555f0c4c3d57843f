/**
 * Kubernetes manifests for serving-lens, built as typed objects (kubernetes-models) so they cannot
 * drift from the API schemas: TF Serving, the notebook workbench, batch attribution Jobs and
 * authenticated ingress; plus offline validation, security checks and a kustomize build.
 */
export * from './options.js';
export * from './crd.js';
export * from './serving.js';
export * from './kserve.js';
export * from './kserve-schema.js';
export * from './workbench.js';
export * from './batch.js';
export * from './ingress.js';
export * from './validate.js';
export * from './kustomize.js';
export * from './render.js';
export * from './sizing.js';
export * from './check.js';
