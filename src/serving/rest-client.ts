/**
 * The REST transport of {@link ServingClient}: TF Serving's JSON API over node:http(s) with a
 * keep-alive agent. Output dtypes are taken from the model's metadata (fetched once per model and
 * version), since JSON alone cannot tell float from int64.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { LensError } from '../core/errors.js';
import {
  withRetries,
  type CallOptions,
  type ClassifyResult,
  type ClientOptions,
  type ExampleFeatures,
  type ExamplesCall,
  type ModelMetadata,
  type ModelRef,
  type ModelVersionStatusJson,
  type MultiInferenceResult,
  type PredictCall,
  type PredictResult,
  type RegressResult,
  type ServingClient,
} from './client-api.js';
import { MAX_MESSAGE_BYTES } from './grpc.js';
import { formatFloat, parseServingJson } from './json.js';
import { outputsFromReply, predictRequestJson } from './rest-json.js';
import { signatureFromJson, type SignatureDefJson } from './signature.js';
import { hostOfHeader, noRouteProblem, reachProblem } from './reach.js';
import { ServingError, statusOfHttp } from './status.js';

function featureJson(v: ExampleFeatures[string]): string {
  const bytes = (b: string | Uint8Array) => (typeof b === 'string' ? JSON.stringify(b) : `{"b64":"${Buffer.from(b).toString('base64')}"}`);
  const floats = (xs: number[]) => `[${xs.map((x) => formatFloat(x, 'float32')).join(',')}]`;
  if (typeof v === 'number') return formatFloat(v, 'float32');
  if (typeof v === 'string' || v instanceof Uint8Array) return bytes(v);
  if (Array.isArray(v)) return (v as unknown[]).every((x) => typeof x === 'number') ? floats(v as number[]) : `[${(v as string[]).map(bytes).join(',')}]`;
  if ('float' in v) return floats(v.float);
  if ('int64' in v) return `[${v.int64.map((x) => String(Math.trunc(x))).join(',')}]`;
  return `[${v.bytes.map(bytes).join(',')}]`;
}

function exampleJson(e: ExampleFeatures): string {
  return `{${Object.entries(e).map(([k, v]) => `${JSON.stringify(k)}:${featureJson(v)}`).join(',')}}`;
}

/** The version-or-label part of a REST path. */
function restModelPath(ref: Omit<ModelRef, 'signature'>): string {
  if (ref.version !== undefined && ref.label !== undefined) {
    throw new LensError('INVALID_ARGUMENT', `give a version (${ref.version}) or a label (${ref.label}), not both`);
  }
  const name = encodeURIComponent(ref.model);
  if (ref.version !== undefined) return `/v1/models/${name}/versions/${ref.version}`;
  if (ref.label !== undefined) return `/v1/models/${name}/labels/${encodeURIComponent(ref.label)}`;
  return `/v1/models/${name}`;
}

export class RestServingClient implements ServingClient {
  readonly transport = 'rest' as const;
  readonly target: string;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly maxBytes: number;
  private readonly metadataCache = new Map<string, Promise<ModelMetadata | null>>();

  constructor(private readonly options: ClientOptions) {
    const tls = options.tls === true ? {} : options.tls || null;
    const withScheme = /^https?:\/\//i.test(options.target) ? options.target : `${tls ? 'https' : 'http'}://${options.target}`;
    this.base = new URL(withScheme);
    this.target = this.base.host;
    this.maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    const servername = tls?.servername ?? (options.hostHeader !== undefined ? hostOfHeader(options.hostHeader) : undefined);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}), ...(servername ? { servername } : {}) })
        : new http.Agent({ keepAlive: true });
  }

  private once(method: 'GET' | 'POST', path: string, body: string | null, call: CallOptions): Promise<{ text: string; bytes: number }> {
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    const lib = this.base.protocol === 'https:' ? https : http;
    const payload = body === null ? null : Buffer.from(body, 'utf8');
    return new Promise((resolve, reject) => {
      const req = lib.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          path,
          method,
          agent: this.agent,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.byteLength) } : {}),
            ...this.options.metadata,
            ...call.metadata,
            ...(this.options.hostHeader !== undefined ? { host: this.options.hostHeader } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > this.maxBytes) {
              req.destroy();
              reject(
                new ServingError('RESOURCE_EXHAUSTED', `Received message larger than max (${size}+ vs. ${this.maxBytes}): raise maxMessageBytes or send smaller batches`, {
                  code: 'MESSAGE_TOO_LARGE',
                }),
              );
              return;
            }
            chunks.push(c);
          });
          res.on('error', (e) => reject(new ServingError('UNAVAILABLE', `${method} ${path}: ${e.message}`, { cause: e })));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) return resolve({ text, bytes: size });
            let message = text.trim() || `HTTP ${code} ${res.statusMessage ?? ''}`.trim();
            let servingReply = false;
            try {
              const doc = JSON.parse(text) as { error?: unknown };
              if (typeof doc.error === 'string') {
                message = doc.error;
                servingReply = true;
              }
            } catch {
              // Not JSON: keep the body text.
            }
            // TF Serving answers every error with {"error": ...}; a bare 404 comes from a gateway.
            if (code === 404 && !servingReply) return reject(new ServingError('NOT_FOUND', noRouteProblem(this.where())));
            const status = statusOfHttp(code);
            reject(new ServingError(status === 'OK' ? 'UNKNOWN' : status, message));
          });
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new ServingError('DEADLINE_EXCEEDED', `${method} ${path}: Deadline Exceeded after ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof ServingError) return reject(e);
        const unreachable = reachProblem({ ...this.where(), cause: `${e.code ?? ''} ${e.message}` });
        reject(new ServingError('UNAVAILABLE', unreachable ?? `${method} ${this.base.host}${path}: ${e.message}`, { cause: e }));
      });
      req.end(payload ?? undefined);
    });
  }

  private where(): { transport: 'rest'; target: string; hostHeader: string | undefined } {
    return { transport: 'rest', target: this.base.host, hostHeader: this.options.hostHeader };
  }

  private request(method: 'GET' | 'POST', path: string, body: string | null, call: CallOptions): Promise<{ text: string; bytes: number }> {
    if (body !== null && Buffer.byteLength(body) > this.maxBytes) {
      throw new ServingError('RESOURCE_EXHAUSTED', `Sent message larger than max (${Buffer.byteLength(body)} vs. ${this.maxBytes})`, { code: 'MESSAGE_TOO_LARGE' });
    }
    return withRetries(this.options.retry, () => this.once(method, path, body, call));
  }

  private json(text: string, what: string): Record<string, unknown> {
    try {
      return parseServingJson(text) as Record<string, unknown>;
    } catch (e) {
      throw new ServingError('INTERNAL', `${what}: the server's reply is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private cachedMetadata(ref: ModelRef & CallOptions): Promise<ModelMetadata | null> {
    const key = restModelPath(ref);
    let p = this.metadataCache.get(key);
    if (!p) {
      p = this.getModelMetadata(ref).catch(() => null);
      this.metadataCache.set(key, p);
      void p.then((m) => m === null && this.metadataCache.delete(key));
    }
    return p;
  }

  async predict(call: PredictCall): Promise<PredictResult> {
    const format = this.options.restFormat ?? 'columnar';
    const body = predictRequestJson(call.inputs, format, call.signature);
    if (call.outputFilter?.length) {
      throw new LensError('UNSUPPORTED', 'TF Serving\'s REST API has no output filter: use the gRPC transport to select outputs');
    }
    const meta = await this.cachedMetadata(call);
    const { text, bytes } = await this.request('POST', `${restModelPath(call)}:predict`, body, call);
    const sig = meta?.signatures[call.signature || 'serving_default'];
    const outputs = outputsFromReply(this.json(text, 'predict'), sig?.outputs, sig ? Object.keys(sig.outputs) : []);
    return {
      outputs,
      modelSpec: { name: call.model, version: call.version ?? (meta ? Number(meta.model_spec.version) : null), signature: call.signature || 'serving_default' },
      requestBytes: Buffer.byteLength(body),
      responseBytes: bytes,
    };
  }

  private examplesBody(call: { examples: ExampleFeatures[]; context?: ExampleFeatures; signature?: string }): string {
    const parts = [];
    if (call.signature) parts.push(`"signature_name":${JSON.stringify(call.signature)}`);
    if (call.context) parts.push(`"context":${exampleJson(call.context)}`);
    parts.push(`"examples":[${call.examples.map(exampleJson).join(',')}]`);
    return `{${parts.join(',')}}`;
  }

  async classify(call: ExamplesCall): Promise<ClassifyResult> {
    const body = this.examplesBody(call);
    const { text, bytes } = await this.request('POST', `${restModelPath(call)}:classify`, body, call);
    const results = (this.json(text, 'classify').results ?? []) as [string, number][][];
    return {
      classifications: results.map((row) => row.map(([label, score]) => ({ label, score }))),
      modelSpec: { name: call.model, version: call.version ?? null, signature: call.signature || 'serving_default' },
      requestBytes: Buffer.byteLength(body),
      responseBytes: bytes,
    };
  }

  async regress(call: ExamplesCall): Promise<RegressResult> {
    const body = this.examplesBody(call);
    const { text, bytes } = await this.request('POST', `${restModelPath(call)}:regress`, body, call);
    return {
      values: (this.json(text, 'regress').results ?? []) as number[],
      modelSpec: { name: call.model, version: call.version ?? null, signature: call.signature || 'serving_default' },
      requestBytes: Buffer.byteLength(body),
      responseBytes: bytes,
    };
  }

  async multiInference(): Promise<MultiInferenceResult> {
    throw new ServingError('UNIMPLEMENTED', 'TF Serving\'s REST API has no MultiInference route: use the gRPC transport');
  }

  async getModelMetadata(ref: ModelRef & CallOptions): Promise<ModelMetadata> {
    const { text } = await this.request('GET', `${restModelPath(ref)}/metadata`, null, ref);
    const doc = this.json(text, 'metadata') as unknown as Omit<ModelMetadata, 'signatures'>;
    const defs = doc.metadata?.signature_def?.signature_def ?? {};
    const signatures = Object.fromEntries(Object.entries(defs).map(([k, d]) => [k, signatureFromJson(d as SignatureDefJson)]));
    return { model_spec: doc.model_spec, metadata: doc.metadata, signatures };
  }

  async getModelStatus(ref: Omit<ModelRef, 'signature'> & CallOptions): Promise<ModelVersionStatusJson[]> {
    const { text } = await this.request('GET', restModelPath(ref), null, ref);
    return (this.json(text, 'status').model_version_status ?? []) as ModelVersionStatusJson[];
  }

  async reloadConfig(): Promise<void> {
    throw new ServingError('UNIMPLEMENTED', 'TF Serving\'s REST API cannot reload the model config: use the gRPC transport (ModelService/HandleReloadConfigRequest)');
  }

  close(): void {
    this.agent.destroy();
  }
}
