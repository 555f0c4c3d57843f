/**
 * What both TensorFlow Serving clients (grpc-client.ts, rest-client.ts) share and their callers
 * see: the ServingClient interface, its calls and replies, connection options, and retries.
 */
import type { HostTensor } from '../tensor/index.js';
import type { SignatureDefJson, SignatureSpec } from './signature.js';
import { ServingError, type StatusName } from './status.js';
import type { ModelSource } from './manager.js';

export type Transport = 'grpc' | 'rest';

export interface TlsOptions {
  /** PEM CA certificate(s) to trust (default: the system roots). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for servers that require them. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify in the server certificate, when it differs from the target host. */
  servername?: string;
}

export interface RetryOptions {
  /** Retries after the first attempt (default 3; 0 disables). */
  retries?: number;
  /** First backoff in ms (default 100), doubled each retry up to maxBackoffMs (default 2000), with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ClientOptions {
  /** host:port (http(s)://host:port also accepted for REST). */
  target: string;
  transport?: Transport;
  /** Use TLS (true: system roots). */
  tls?: boolean | TlsOptions;
  /**
   * Host name the server is addressed by, when it differs from `target`: sent as the `Host`
   * header (REST) and the `:authority` (gRPC), and with TLS also as the server name (SNI and
   * certificate check) unless `tls.servername` says otherwise. Ingress gateways route by it:
   * a KServe predictor is reached at the ingress's address with the InferenceService's host name,
   * e.g. `{ target: '10.0.0.5:80', hostHeader: 'resnet.models.example.com' }`.
   */
  hostHeader?: string;
  /** Sent with every call: gRPC metadata or HTTP headers (e.g. { authorization: 'Bearer ...' }). */
  metadata?: Record<string, string>;
  /** Default deadline of a call in ms (default 30000). */
  timeoutMs?: number;
  /** Largest message sent or received (default 2 GiB - 1). */
  maxMessageBytes?: number;
  retry?: RetryOptions;
  /** REST predict body format (default 'columnar'). */
  restFormat?: 'row' | 'columnar';
}

/** Which model, version (or label) and signature a call is for. */
export interface ModelRef {
  model: string;
  version?: number;
  label?: string;
  /** Default "serving_default" (sent as empty, as real clients do). */
  signature?: string;
}

export interface CallOptions {
  /** Deadline of this call in ms. */
  timeoutMs?: number;
  /** Extra metadata / headers for this call. */
  metadata?: Record<string, string>;
}

/** Sizes of one call on the wire (request and reply bodies, without transport framing). */
export interface WireSizes {
  requestBytes: number;
  responseBytes: number;
}

export interface PredictCall extends ModelRef, CallOptions {
  inputs: Record<string, HostTensor>;
  /** Output aliases to compute (default: all). */
  outputFilter?: string[];
}

export interface ServedModelSpec {
  name: string;
  version: number | null;
  signature: string;
}

export interface PredictResult extends WireSizes {
  outputs: Record<string, HostTensor>;
  modelSpec: ServedModelSpec;
}

/** A tf.Example feature: numbers are floats unless given as { int64 }. */
export type FeatureValue =
  | number
  | number[]
  | string
  | string[]
  | Uint8Array
  | { float: number[] }
  | { int64: number[] }
  | { bytes: (string | Uint8Array)[] };

export type ExampleFeatures = Record<string, FeatureValue>;

export interface ExamplesCall extends ModelRef, CallOptions {
  examples: ExampleFeatures[];
  context?: ExampleFeatures;
}

export interface ClassifyResult extends WireSizes {
  /** Per example: the classes with scores. */
  classifications: { label: string; score: number }[][];
  modelSpec: ServedModelSpec;
}

export interface RegressResult extends WireSizes {
  values: number[];
  modelSpec: ServedModelSpec;
}

export interface MultiInferenceCall extends CallOptions {
  tasks: (ModelRef & { method: 'classify' | 'regress' })[];
  examples: ExampleFeatures[];
  context?: ExampleFeatures;
}

export interface MultiInferenceResult extends WireSizes {
  results: ({ modelSpec: ServedModelSpec } & ({ classifications: { label: string; score: number }[][] } | { values: number[] }))[];
}

/** GetModelMetadata in TF Serving's REST JSON form (same content over gRPC), plus parsed signatures. */
export interface ModelMetadata {
  model_spec: { name: string; signature_name: string; version: string };
  metadata: { signature_def: { signature_def: Record<string, SignatureDefJson> } };
  signatures: Record<string, SignatureSpec>;
}

/** GetModelStatus entry in TF Serving's REST JSON form. */
export interface ModelVersionStatusJson {
  version: string;
  state: 'UNKNOWN' | 'START' | 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'END';
  status: { error_code: StatusName; error_message: string };
}

export interface ServingClient {
  readonly transport: Transport;
  readonly target: string;
  predict(call: PredictCall): Promise<PredictResult>;
  classify(call: ExamplesCall): Promise<ClassifyResult>;
  regress(call: ExamplesCall): Promise<RegressResult>;
  multiInference(call: MultiInferenceCall): Promise<MultiInferenceResult>;
  getModelMetadata(ref: ModelRef & CallOptions): Promise<ModelMetadata>;
  getModelStatus(ref: Omit<ModelRef, 'signature'> & CallOptions): Promise<ModelVersionStatusJson[]>;
  /** Replaces the server's models (gRPC ModelService only; REST has no such route). */
  reloadConfig(models: ModelSource[], call?: CallOptions): Promise<void>;
  close(): void;
}

/** Runs `attempt` and retries it with exponential backoff while it fails with UNAVAILABLE. */
export async function withRetries<T>(retry: RetryOptions | undefined, attempt: () => Promise<T>): Promise<T> {
  const retries = retry?.retries ?? 3;
  const initial = retry?.initialBackoffMs ?? 100;
  const max = retry?.maxBackoffMs ?? 2000;
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof ServingError) || e.status !== 'UNAVAILABLE' || i >= retries) throw e;
      const backoff = Math.min(max, initial * 2 ** i) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, backoff));
    }
  }
}
