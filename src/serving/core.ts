/**
 * The serving core: TF Serving's request semantics, shared by the gRPC and REST front ends.
 * Each operation takes a request in its protobuf message shape (as protobufjs decodes it, or as
 * the REST layer builds it), validates it in the order the real server does, runs the servable,
 * and returns the reply message content. Errors are ServingErrors with the real server's codes
 * and messages (see ../shared/docs/tfserving-protocol.md).
 *
 * @example
 * const core = new ServingCore(manager);
 * const { outputs } = await core.predict({ model_spec: { name: 'half' }, inputs: { x } }, 'grpc');
 */
import { protoType } from '../proto/index.js';
import type { SignatureDefMessage } from '../savedmodel/savedmodel.js';
import { baseDataType, dataTypeName, decodeTensorProto, DEFAULT_TENSOR_LIMITS, type HostTensor, type TensorDecodeLimits, type TensorProtoMessage } from '../tensor/index.js';
import type { ModelManager, ModelSource, ServableHandle, VersionPolicy, VersionStatus } from './manager.js';
import type { ServingMetrics } from './metrics.js';
import { dataTypeOfHost, tfDtypeString } from './servable.js';
import {
  CLASSIFY_METHOD,
  DEFAULT_SIGNATURE,
  PREDICT_METHOD,
  REGRESS_METHOD,
  type SignatureSpec,
} from './signature.js';
import { ServingError, toServingError } from './status.js';

/** ModelSpec as decoded (protobufjs) or built by the REST layer. */
export interface ModelSpecMessage {
  name?: string;
  version?: { value?: number | string } | null;
  version_label?: string;
  signature_name?: string;
}

/** ModelSpec of a reply: the served name and version, and the signature when one was run. */
export interface ReplyModelSpec {
  name: string;
  version: number;
  signature_name?: string;
}

export type Entrypoint = 'GRPC' | 'REST';

export interface PredictRequestMessage {
  model_spec?: ModelSpecMessage | null;
  /** TensorProtos (gRPC) or host tensors already typed by the signature (REST). */
  inputs?: Record<string, TensorProtoMessage | HostTensor>;
  output_filter?: string[];
}

export interface PredictReply {
  model_spec: ReplyModelSpec;
  outputs: Record<string, HostTensor>;
}

/** tf.Example as a message object (features.feature map of bytes_list / float_list / int64_list). */
export interface ExampleMessage {
  features?: { feature?: Record<string, FeatureMessage> } | null;
}

/** One tf.train.Feature of an Example: a bytes, float or int64 list. */
export interface FeatureMessage {
  bytes_list?: { value?: Uint8Array[] } | null;
  float_list?: { value?: number[] } | null;
  int64_list?: { value?: number[] } | null;
}

export interface InputMessage {
  example_list?: { examples?: ExampleMessage[] } | null;
  example_list_with_context?: { examples?: ExampleMessage[]; context?: ExampleMessage | null } | null;
}

export interface ClassifyRequestMessage {
  model_spec?: ModelSpecMessage | null;
  input?: InputMessage | null;
}

export interface ClassificationResultMessage {
  classifications: { classes: { label: string; score: number }[] }[];
}

export interface RegressionResultMessage {
  regressions: { value: number }[];
}

export interface MultiInferenceRequestMessage {
  tasks?: { model_spec?: ModelSpecMessage | null; method_name?: string }[];
  input?: InputMessage | null;
}

export interface InferenceResultMessage {
  model_spec: ReplyModelSpec;
  classification_result?: ClassificationResultMessage;
  regression_result?: RegressionResultMessage;
}

export interface MetadataReply {
  model_spec: ReplyModelSpec;
  signatures: Record<string, SignatureSpec>;
  /** The servable's original SignatureDef messages, when it has them. */
  signatureDefs?: Record<string, SignatureDefMessage>;
}

/** ModelServerConfig as parsed from text format or decoded from a ReloadConfigRequest. */
export interface ModelServerConfigMessage {
  model_config_list?: {
    config?: {
      name?: string;
      base_path?: string;
      model_platform?: string;
      model_version_policy?: { latest?: { num_versions?: number } | null; all?: object | null; specific?: { versions?: (number | string)[] } | null } | null;
      version_labels?: Record<string, number | string>;
    }[];
  } | null;
  custom_model_config?: unknown;
}

function isHost(t: TensorProtoMessage | HostTensor): t is HostTensor {
  return (t as HostTensor).values !== undefined && typeof (t as HostTensor).dtype === 'string' && Array.isArray((t as HostTensor).shape);
}

function versionOf(spec: ModelSpecMessage): number | undefined {
  const v = spec.version;
  if (v === null || v === undefined) return undefined;
  return Number(v.value ?? 0);
}

function signatureKey(spec: ModelSpecMessage): string {
  return spec.signature_name ? spec.signature_name : DEFAULT_SIGNATURE;
}

function setString(keys: Iterable<string>): string {
  return [...keys].sort().join(',');
}

/** Model sources of a ModelServerConfig (only model_config_list is supported, as file configs use). */
export function modelSourcesOf(config: ModelServerConfigMessage, what: string): ModelSource[] {
  if (config.custom_model_config) throw new ServingError('UNIMPLEMENTED', `${what}: custom_model_config is not supported; use model_config_list`);
  const list = config.model_config_list?.config ?? [];
  return list.map((c, i) => {
    if (!c.name) throw new ServingError('INVALID_ARGUMENT', `${what}: config ${i + 1} has no name`);
    if (!c.base_path) throw new ServingError('INVALID_ARGUMENT', `${what}: model ${c.name} has no base_path`);
    if (c.model_platform && c.model_platform !== 'tensorflow') {
      throw new ServingError('INVALID_ARGUMENT', `${what}: model ${c.name} has model_platform "${c.model_platform}"; only "tensorflow" SavedModels are served`);
    }
    const p = c.model_version_policy;
    let policy: VersionPolicy | undefined;
    if (p?.all) policy = { all: true };
    else if (p?.specific) policy = { specific: (p.specific.versions ?? []).map(Number) };
    else if (p?.latest) policy = { latest: Number(p.latest.num_versions || 1) };
    const labels = Object.fromEntries(Object.entries(c.version_labels ?? {}).map(([k, v]) => [k, Number(v)]));
    return { name: c.name, basePath: c.base_path, ...(policy ? { policy } : {}), labels };
  });
}

/** Serialized tf.Examples of an Input, each merged with the context (concatenated bytes = proto merge). */
export function serializedExamples(input: InputMessage | null | undefined): Uint8Array[] {
  const Example = protoType('tensorflow.Example');
  const enc = (e: ExampleMessage) => Example.encode(Example.fromObject(e as Record<string, unknown>)).finish();
  if (input?.example_list_with_context) {
    const ctx = input.example_list_with_context.context ? enc(input.example_list_with_context.context) : new Uint8Array(0);
    return (input.example_list_with_context.examples ?? []).map((e) => Buffer.concat([ctx, enc(e)]));
  }
  return (input?.example_list?.examples ?? []).map(enc);
}

/** The `DT_*` name a TensorProto declares, or undefined when it has none or an unknown one (decoding reports it). */
function protoDataType(t: TensorProtoMessage): string | undefined {
  if (t.dtype === undefined || t.dtype === 0 || t.dtype === 'DT_INVALID') return undefined;
  try {
    return dataTypeName(baseDataType(t.dtype));
  } catch {
    return undefined;
  }
}

export interface ServingCoreOptions {
  /** Bounds on what request tensors may make the decoder allocate (broadcasts, strings); default {@link DEFAULT_TENSOR_LIMITS}. */
  tensorLimits?: TensorDecodeLimits;
  /** Receives one line per configuration reload (who asked, what, the outcome). */
  log?: (line: string) => void;
}

export class ServingCore {
  readonly tensorLimits: TensorDecodeLimits;
  private readonly log: (line: string) => void;

  constructor(
    readonly manager: ModelManager,
    private readonly metrics?: ServingMetrics,
    options: ServingCoreOptions = {},
  ) {
    this.tensorLimits = options.tensorLimits ?? DEFAULT_TENSOR_LIMITS;
    this.log = options.log ?? (() => {});
  }

  /** Times an API call and counts it by status, as the real server's request_count/request_latency. */
  private async measure<T>(api: string, entry: Entrypoint, spec: ModelSpecMessage | null | undefined, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    const model = spec?.name ?? '';
    try {
      const out = await fn();
      this.metrics?.record(model, api, entry, 'OK', performance.now() - start);
      return out;
    } catch (e) {
      const s = toServingError(e);
      this.metrics?.record(model, api, entry, s.status, performance.now() - start);
      throw s;
    }
  }

  private acquire(spec: ModelSpecMessage | null | undefined): ServableHandle {
    if (!spec) throw new ServingError('INVALID_ARGUMENT', 'Missing ModelSpec');
    return this.manager.acquire({ name: spec.name ?? '', version: versionOf(spec), label: spec.version_label || undefined });
  }

  /**
   * Signature inputs of a model for the REST layer, which types JSON values by them. REST reports an
   * unknown signature as INVALID_ARGUMENT (gRPC Predict says FAILED_PRECONDITION).
   */
  restSignature(spec: ModelSpecMessage): SignatureSpec {
    const handle = this.acquire(spec);
    try {
      const key = signatureKey(spec);
      const sig = handle.servable.signatures[key];
      if (!sig) throw new ServingError('INVALID_ARGUMENT', `Serving signature name: "${key}" not found in signature def`);
      return sig;
    } finally {
      handle.release();
    }
  }

  predict(req: PredictRequestMessage, entry: Entrypoint): Promise<PredictReply> {
    return this.measure('Predict', entry, req.model_spec, async () => {
      const handle = this.acquire(req.model_spec);
      try {
        const spec = req.model_spec!;
        const key = signatureKey(spec);
        const sig = handle.servable.signatures[key];
        if (!sig) throw new ServingError('FAILED_PRECONDITION', `Serving signature key "${key}" not found.`);
        if (sig.methodName !== PREDICT_METHOD && sig.methodName !== CLASSIFY_METHOD && sig.methodName !== REGRESS_METHOD) {
          throw new ServingError(
            'INTERNAL',
            `Expected prediction signature method_name to be one of {${PREDICT_METHOD}, ${CLASSIFY_METHOD}, ${REGRESS_METHOD}}. Was: ${sig.methodName}`,
          );
        }
        const inputs = this.predictInputs(req.inputs ?? {}, sig, handle.name);
        const outputs = this.outputAliases(req.output_filter ?? [], sig);
        const result = await this.run(handle, key, inputs, outputs);
        return { model_spec: { name: handle.name, version: handle.version, signature_name: key }, outputs: result };
      } finally {
        handle.release();
      }
    });
  }

  private predictInputs(raw: Record<string, TensorProtoMessage | HostTensor>, sig: SignatureSpec, model: string): Record<string, HostTensor> {
    const sent = Object.keys(raw);
    const wanted = Object.keys(sig.inputs);
    const defaults = sig.defaults ?? {};
    const extra = sent.filter((k) => !(k in sig.inputs));
    const missing = wanted.filter((k) => !(k in raw) && !(k in defaults));
    if (sent.length > wanted.length || (sent.length < wanted.length && Object.keys(defaults).length === 0)) {
      throw new ServingError(
        'INVALID_ARGUMENT',
        `input size does not match signature: ${sent.length}!=${wanted.length} len({${setString(sent)}}) != len({${setString(wanted)}}). ` +
          `Sent extra: {${setString(extra)}}. Missing but required: {${setString(wanted.filter((k) => !(k in raw)))}}.`,
      );
    }
    if (extra.length || missing.length) {
      throw new ServingError(
        'INVALID_ARGUMENT',
        `Request inputs do not match required inputs for model \`${model}\`. Send extra: {${setString(extra)}}. Missing but required: {${setString(missing)}}.`,
      );
    }
    const out: Record<string, HostTensor> = {};
    const ordered = [...wanted].sort();
    for (const alias of ordered) {
      const given = raw[alias];
      const spec = sig.inputs[alias]!;
      // The dtype is checked before decoding: a tensor of the wrong type costs nothing.
      const sentType = given === undefined ? dataTypeOfHost(defaults[alias]!.dtype) : isHost(given) ? dataTypeOfHost(given.dtype) : protoDataType(given);
      if (sentType !== undefined && baseDataType(spec.dtype) !== baseDataType(sentType)) {
        throw new ServingError('INVALID_ARGUMENT', `Expects arg[${ordered.indexOf(alias)}] to be ${tfDtypeString(spec.dtype)} but ${tfDtypeString(sentType)} is provided`);
      }
      let t: HostTensor;
      if (given === undefined) t = defaults[alias]!;
      else if (isHost(given)) t = given;
      else {
        try {
          t = decodeTensorProto(given, `input "${alias}"`, this.tensorLimits);
        } catch (e) {
          throw new ServingError('INVALID_ARGUMENT', `tensor parsing error: ${alias} (${toServingError(e).message})`);
        }
      }
      // Shapes are not checked here: TF Serving feeds tensors to the graph as sent, and what the
      // graph cannot compute fails there (INVALID_ARGUMENT naming the node).
      out[alias] = t;
    }
    return out;
  }

  private outputAliases(filter: readonly string[], sig: SignatureSpec): string[] {
    const seen = new Set<string>();
    for (const alias of filter) {
      if (!(alias in sig.outputs)) {
        throw new ServingError(
          'INVALID_ARGUMENT',
          `output tensor alias not found in signature: ${alias} Outputs expected to be in the set {${setString(Object.keys(sig.outputs))}}.`,
        );
      }
      if (seen.has(alias)) throw new ServingError('INVALID_ARGUMENT', `duplicate output tensor alias: ${alias}`);
      seen.add(alias);
    }
    return filter.length ? [...filter] : Object.keys(sig.outputs);
  }

  private async run(handle: ServableHandle, key: string, inputs: Record<string, HostTensor>, outputs: readonly string[]): Promise<Record<string, HostTensor>> {
    try {
      const result = await handle.servable.run(key, inputs, outputs);
      for (const alias of outputs) {
        if (!result[alias]) throw new ServingError('INTERNAL', `model ${handle.name} version ${handle.version} did not return output "${alias}" of signature "${key}"`);
      }
      return Object.fromEntries(outputs.map((a) => [a, result[a]!]));
    } catch (e) {
      // Runtime errors of the graph (shapes, values) are the request's fault, as in TensorFlow.
      if (e instanceof Error && !(e instanceof ServingError) && e.name === 'Error') throw new ServingError('INVALID_ARGUMENT', e.message, { cause: e });
      throw e;
    }
  }

  classify(req: ClassifyRequestMessage, entry: Entrypoint): Promise<{ model_spec: ReplyModelSpec; result: ClassificationResultMessage }> {
    return this.examplesCall('Classify', req, entry, (handle, key) => this.classifyWith(handle, key, req.input));
  }

  regress(req: ClassifyRequestMessage, entry: Entrypoint): Promise<{ model_spec: ReplyModelSpec; result: RegressionResultMessage }> {
    return this.examplesCall('Regress', req, entry, (handle, key) => this.regressWith(handle, key, req.input));
  }

  /** Classify or Regress: `run` on the requested model version and signature, answered with its model_spec. */
  private examplesCall<R>(api: string, req: ClassifyRequestMessage, entry: Entrypoint, run: (handle: ServableHandle, key: string) => Promise<R>): Promise<{ model_spec: ReplyModelSpec; result: R }> {
    return this.measure(api, entry, req.model_spec, async () => {
      const handle = this.acquire(req.model_spec);
      try {
        const key = signatureKey(req.model_spec!);
        const result = await run(handle, key);
        return { model_spec: { name: handle.name, version: handle.version, signature_name: key }, result };
      } finally {
        handle.release();
      }
    });
  }

  multiInference(req: MultiInferenceRequestMessage, entry: Entrypoint): Promise<{ results: InferenceResultMessage[] }> {
    const first = req.tasks?.[0]?.model_spec;
    return this.measure('MultiInference', entry, first, async () => {
      const tasks = req.tasks ?? [];
      if (tasks.length === 0) throw new ServingError('INVALID_ARGUMENT', 'MultiInferenceRequest must contain at least one task');
      const name = tasks[0]!.model_spec?.name ?? '';
      const version = tasks[0]!.model_spec ? versionOf(tasks[0]!.model_spec) : undefined;
      const seen = new Set<string>();
      for (const t of tasks) {
        if (!t.model_spec) throw new ServingError('INVALID_ARGUMENT', 'Missing ModelSpec');
        if ((t.model_spec.name ?? '') !== name) throw new ServingError('INVALID_ARGUMENT', 'All ModelSpecs in a MultiInferenceRequest must access the same model name.');
        if (versionOf(t.model_spec) !== version) throw new ServingError('INVALID_ARGUMENT', 'ModelSpec version should match across all tasks.');
        const key = signatureKey(t.model_spec);
        if (seen.has(key)) throw new ServingError('INVALID_ARGUMENT', `Duplicate evaluation of signature: ${key}`);
        seen.add(key);
        if (t.method_name !== CLASSIFY_METHOD && t.method_name !== REGRESS_METHOD) {
          throw new ServingError('UNIMPLEMENTED', `Unsupported signature method_name: ${t.method_name ?? ''}`);
        }
      }
      const handle = this.acquire(tasks[0]!.model_spec);
      try {
        const results: InferenceResultMessage[] = [];
        for (const t of tasks) {
          const key = signatureKey(t.model_spec!);
          const model_spec = { name: handle.name, version: handle.version, signature_name: key };
          if (t.method_name === CLASSIFY_METHOD) results.push({ model_spec, classification_result: await this.classifyWith(handle, key, req.input) });
          else results.push({ model_spec, regression_result: await this.regressWith(handle, key, req.input) });
        }
        return { results };
      } finally {
        handle.release();
      }
    });
  }

  private exampleSignature(handle: ServableHandle, key: string, method: string, kind: 'classification' | 'regression'): SignatureSpec {
    const sig = handle.servable.signatures[key];
    if (!sig) throw new ServingError('INVALID_ARGUMENT', `No signature was found with the name: ${key}`);
    if (sig.methodName !== method) {
      throw new ServingError('INVALID_ARGUMENT', `Expected ${kind} signature method_name to be ${method}. Was: ${sig.methodName}`);
    }
    if (Object.keys(sig.inputs).length !== 1) throw new ServingError('INVALID_ARGUMENT', 'Expected one input Tensor.');
    if (!sig.inputs.inputs) throw new ServingError('FAILED_PRECONDITION', `No ${kind} inputs found in SignatureDef: ${key}`);
    return sig;
  }

  private examplesTensor(input: InputMessage | null | undefined): HostTensor {
    const examples = serializedExamples(input);
    if (examples.length === 0) throw new ServingError('INVALID_ARGUMENT', 'Input is empty.');
    return { dtype: 'string', shape: [examples.length], values: examples };
  }

  private async classifyWith(handle: ServableHandle, key: string, input: InputMessage | null | undefined): Promise<ClassificationResultMessage> {
    const sig = this.exampleSignature(handle, key, CLASSIFY_METHOD, 'classification');
    const outs = Object.keys(sig.outputs);
    if (outs.length !== 1 && outs.length !== 2) throw new ServingError('INVALID_ARGUMENT', `Expected one or two output Tensors, found ${outs.length}`);
    const wanted = ['classes', 'scores'].filter((k) => k in sig.outputs);
    if (wanted.length === 0) {
      throw new ServingError('FAILED_PRECONDITION', `Expected classification signature outputs to contain at least one of "classes" or "scores". Signature was: ${key}`);
    }
    const examples = this.examplesTensor(input);
    const n = examples.shape[0]!;
    const result = await this.run(handle, key, { inputs: examples }, wanted);
    const classes = result.classes;
    const scores = result.scores;
    for (const [name, t, dtype] of [['classes', classes, 'string'], ['scores', scores, 'float32']] as const) {
      if (!t) continue;
      if (t.shape.length !== 2) throw new ServingError('INVALID_ARGUMENT', `Expected Tensor shape: [batch_size num_classes] but got [${t.shape.join(',')}]`);
      if (t.dtype !== dtype) throw new ServingError('INVALID_ARGUMENT', `Expected ${name} Tensor of ${dtype === 'string' ? 'DT_STRING' : 'DT_FLOAT'}. Got: ${dataTypeOfHost(t.dtype)}`);
      if (t.shape[0] !== n) throw new ServingError('INVALID_ARGUMENT', `Expected ${name} output batch size of ${n}. Got: ${t.shape[0]}`);
    }
    if (classes && scores && classes.shape[1] !== scores.shape[1]) {
      throw new ServingError('INVALID_ARGUMENT', `Tensors class and score should match in dim_size(1). Got ${classes.shape[1]} vs. ${scores.shape[1]}`);
    }
    const k = (classes ?? scores)!.shape[1]!;
    const dec = new TextDecoder();
    const classifications = Array.from({ length: n }, (_, i) => ({
      classes: Array.from({ length: k }, (_, c) => ({
        label: classes ? dec.decode((classes.values as Uint8Array[])[i * k + c]) : '',
        score: scores ? (scores.values as Float32Array)[i * k + c]! : 0,
      })),
    }));
    return { classifications };
  }

  private async regressWith(handle: ServableHandle, key: string, input: InputMessage | null | undefined): Promise<RegressionResultMessage> {
    const sig = this.exampleSignature(handle, key, REGRESS_METHOD, 'regression');
    if (Object.keys(sig.outputs).length !== 1) throw new ServingError('INVALID_ARGUMENT', 'Expected one output Tensor.');
    if (!sig.outputs.outputs) throw new ServingError('FAILED_PRECONDITION', `No regression outputs found in SignatureDef: ${key}`);
    const examples = this.examplesTensor(input);
    const n = examples.shape[0]!;
    const { outputs } = await this.run(handle, key, { inputs: examples }, ['outputs']);
    const t = outputs!;
    if (!(t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1)) || t.shape[0] !== n) {
      throw new ServingError('INVALID_ARGUMENT', `Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got [${t.shape.join(',')}]`);
    }
    if (t.dtype !== 'float32') throw new ServingError('INVALID_ARGUMENT', `Expected output Tensor of DT_FLOAT.  Got: ${dataTypeOfHost(t.dtype)}`);
    return { regressions: Array.from(t.values as Float32Array, (value) => ({ value })) };
  }

  getModelMetadata(req: { model_spec?: ModelSpecMessage | null; metadata_field?: string[] }, entry: Entrypoint): Promise<MetadataReply> {
    return this.measure('GetModelMetadata', entry, req.model_spec, async () => {
      if (!req.model_spec) throw new ServingError('INVALID_ARGUMENT', 'Missing ModelSpec');
      const fields = req.metadata_field ?? [];
      if (fields.length === 0) throw new ServingError('INVALID_ARGUMENT', 'GetModelMetadataRequest must specify at least one metadata_field');
      for (const f of fields) if (f !== 'signature_def') throw new ServingError('INVALID_ARGUMENT', `Metadata field ${f} is not supported`);
      const handle = this.acquire(req.model_spec);
      try {
        const defs = handle.servable.signatureDefs;
        return { model_spec: { name: handle.name, version: handle.version }, signatures: { ...handle.servable.signatures }, ...(defs ? { signatureDefs: { ...defs } } : {}) };
      } finally {
        handle.release();
      }
    });
  }

  getModelStatus(req: { model_spec?: ModelSpecMessage | null }, entry: Entrypoint): Promise<VersionStatus[]> {
    return this.measure('GetModelStatus', entry, req.model_spec, async () => {
      if (!req.model_spec) throw new ServingError('INVALID_ARGUMENT', 'Missing ModelSpec');
      const spec = req.model_spec;
      let version = versionOf(spec);
      if (spec.version_label) {
        version = this.manager.labelVersion(spec.name ?? '', spec.version_label);
        if (version === undefined) throw new ServingError('INVALID_ARGUMENT', `Unrecognized servable version label: ${spec.version_label}`);
      }
      return this.manager.status(spec.name ?? '', version);
    });
  }

  /**
   * ModelService/HandleReloadConfigRequest: serve exactly the models of `config`. Unauthenticated,
   * as in TF Serving; every call is logged with `peer` (the caller's address) and its outcome.
   */
  reloadConfig(config: ModelServerConfigMessage | null | undefined, entry: Entrypoint, peer = 'unknown peer'): Promise<void> {
    return this.measure('HandleReloadConfigRequest', entry, null, async () => {
      try {
        if (!config) throw new ServingError('INVALID_ARGUMENT', 'ReloadConfigRequest has no config');
        const sources = modelSourcesOf(config, 'ReloadConfigRequest.config');
        this.log(`HandleReloadConfigRequest from ${peer}: ${sources.map((s) => `${s.name} (${s.basePath})`).join(', ') || 'no models'}`);
        await this.manager.configure(sources);
        this.log(`HandleReloadConfigRequest from ${peer}: done`);
      } catch (e) {
        this.log(`HandleReloadConfigRequest from ${peer} failed: ${toServingError(e).message}`);
        throw e;
      }
    });
  }
}
