/**
 * The local TensorFlow Serving-compatible server: gRPC (PredictionService, ModelService, and the
 * standard grpc.health.v1.Health that the real server lacks) and REST on top of one model manager. `startServer` is what `lens serve` runs and what tests and
 * notebooks call in-process (port 0 picks free ports).
 *
 * @example
 * const server = await startServer({
 *   port: 0, restApiPort: 0,
 *   modelName: 'half', modelBasePath: '../shared/testdata/savedmodels/saved_model_half_plus_two_cpu',
 * });
 * console.log(server.grpcPort, server.restPort);
 * await server.close();
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { LensError, errorMessage } from '../core/errors.js';
import { batchingServable, resolveBatchingOptions, type BatchingOptions } from './batching.js';
import { readBatchingParametersFile, readModelConfigFile, readMonitoringConfigFile } from './config-files.js';
import { ServingCore } from './core.js';
import { MAX_MESSAGE_BYTES, MODEL_SERVICE, PREDICTION_SERVICE, serviceDefinition } from './grpc.js';
import { grpcImplementations } from './grpc-server.js';
import { HEALTH_SERVICE, healthImplementation, ServerHealth } from './health.js';
import { ModelManager, type ModelSource, type ServableLoader } from './manager.js';
import { DEFAULT_METRICS_PATH, ServingMetrics } from './metrics.js';
import { answerClientError, restApp } from './rest-server.js';
import { DEFAULT_TENSOR_LIMITS, type TensorDecodeLimits } from '../tensor/index.js';

export interface ServerOptions {
  /** gRPC port (default 8500; 0 picks a free port). */
  port?: number;
  /** REST port (default 8501; 0 picks a free port; false disables REST). */
  restApiPort?: number | false;
  /** Address to bind (default 127.0.0.1; "0.0.0.0" serves other machines). */
  host?: string;
  /** Single-model mode: the model's name (default "default") and the folder of its versions. */
  modelName?: string;
  modelBasePath?: string;
  /** Several models with policies and labels, as a text-format ModelServerConfig file... */
  modelConfigFile?: string;
  /** ...or given directly. */
  models?: ModelSource[];
  /** Loads one version folder; default: the SavedModel loader. */
  loader?: ServableLoader;
  /** Batch concurrent requests (--enable_batching), with these parameters or those of a file. */
  enableBatching?: boolean;
  batching?: BatchingOptions;
  batchingParametersFile?: string;
  /** Prometheus metrics on the REST port: a MonitoringConfig file, or the path directly. */
  monitoringConfigFile?: string;
  monitoring?: { path?: string };
  /** Seconds between polls for new versions (default 1; 0 = load once). */
  fileSystemPollWaitSeconds?: number;
  /** REST request timeout (default 30000 ms). */
  restApiTimeoutMs?: number;
  /** Largest REST body (--rest_api_max_body_bytes; default 64 MiB, see DEFAULT_REST_MAX_BODY_BYTES). */
  maxRestBodyBytes?: number;
  /** Most JSON values outside number lists in one REST body (--rest_api_max_json_nodes; default 1 Mi). */
  restMaxJsonNodes?: number;
  /** Bounds on request tensors: broadcasts, strings (--max_broadcast_elements, --max_string_elements, --max_string_bytes). */
  tensorLimits?: TensorDecodeLimits;
  /** REST connections: headers, whole request, idle keep-alive timeouts and the connection cap (see {@link DEFAULT_REST_CONNECTION_LIMITS}). */
  restConnections?: Partial<RestConnectionLimits>;
  /** gRPC server channel arguments over {@link DEFAULT_GRPC_CHANNEL_ARGUMENTS} (--grpc_channel_arguments). */
  grpcChannelArguments?: Record<string, number | string>;
  /** Reply with tensor_content (--enable_serialization_as_tensor_content). */
  tensorContent?: boolean;
  /** TLS for gRPC (PEM): server certificate chain and key, and a CA to require client certificates. */
  ssl?: { cert: string | Buffer; key: string | Buffer; clientCa?: string | Buffer };
  /** Lifecycle log lines (loading, unloading, polling problems). */
  log?: (line: string) => void;
}

/** Time and count limits of REST connections. */
export interface RestConnectionLimits {
  /** A request's headers must arrive within this (--rest_api_header_timeout_in_ms). */
  headersTimeoutMs: number;
  /** A whole request, body included, must arrive within this (--rest_api_body_timeout_in_ms). */
  requestTimeoutMs: number;
  /** A keep-alive connection with no request is closed after this (--rest_api_idle_timeout_in_ms). */
  idleTimeoutMs: number;
  /** Connections beyond this many are refused (--rest_api_max_connections). */
  maxConnections: number;
}

export const DEFAULT_REST_CONNECTION_LIMITS: RestConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
  maxConnections: 1024,
};

/**
 * gRPC server settings of `lens serve` unless --grpc_channel_arguments says otherwise: keepalive
 * pings find dead peers within 80 s, a connection carries at most 256 concurrent calls, a connection
 * idle for 10 minutes is closed, and messages up to 2 GiB are accepted as TF Serving does.
 */
export const DEFAULT_GRPC_CHANNEL_ARGUMENTS: Readonly<Record<string, number>> = {
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.max_concurrent_streams': 256,
  'grpc.max_connection_idle_ms': 600_000,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}

export interface RunningServer {
  grpcPort: number;
  /** null when REST is disabled. */
  restPort: number | null;
  host: string;
  manager: ModelManager;
  core: ServingCore;
  metrics: ServingMetrics;
  /** What grpc.health.v1.Health answers: "" = the server, or a model's name. */
  health: ServerHealth;
  /** Models with their available versions, for the startup message. */
  models(): ReturnType<ModelManager['describe']>;
  /**
   * Turns every health status NOT_SERVING and ends health Watch streams, then stops accepting
   * requests, lets in-flight ones finish, and unloads every model.
   */
  close(): Promise<void>;
}

async function defaultLoader(): Promise<ServableLoader> {
  const { savedModelLoader } = await import('./savedmodel-servable.js');
  return savedModelLoader();
}

async function sources(o: ServerOptions): Promise<ModelSource[]> {
  const given = [o.models, o.modelConfigFile, o.modelBasePath].filter((x) => x !== undefined).length;
  if (given === 0) throw new LensError('INVALID_ARGUMENT', 'no model to serve: give --model_base_path (with --model_name) or --model_config_file');
  if (given > 1) throw new LensError('INVALID_ARGUMENT', 'give only one of --model_base_path, --model_config_file (or models)');
  if (o.models) return o.models;
  if (o.modelConfigFile) return readModelConfigFile(o.modelConfigFile);
  return [{ name: o.modelName ?? 'default', basePath: o.modelBasePath! }];
}

function listen(server: HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new LensError('INVALID_ARGUMENT', `cannot listen on ${host}:${port} (--rest_api_port): ${errorMessage(e)}`)));
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * Starts the server: loads the configured models (rejecting when none can be served), then binds
 * gRPC and REST.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const metrics = new ServingMetrics();
  const log = options.log ?? (() => {});
  if (!isLoopbackHost(host)) {
    log(
      `WARNING: serving on ${host}: ModelService/HandleReloadConfigRequest is unauthenticated (as in TensorFlow Serving), so anyone who ` +
        'reaches the gRPC port can unload models or serve any SavedModel on this machine. Admit only trusted clients ' +
        '(in Kubernetes the NetworkPolicy tf-serving-resnet-clients of k8s/base/networkpolicy.yaml).',
    );
  }
  let batching: BatchingOptions | undefined;
  if (options.enableBatching) {
    batching = { ...(options.batchingParametersFile ? await readBatchingParametersFile(options.batchingParametersFile) : {}), ...options.batching };
    resolveBatchingOptions(batching);
  }
  let monitoringPath: string | null = null;
  if (options.monitoringConfigFile) monitoringPath = (await readMonitoringConfigFile(options.monitoringConfigFile))?.path ?? null;
  else if (options.monitoring) monitoringPath = options.monitoring.path ?? DEFAULT_METRICS_PATH;

  const baseLoader = options.loader ?? (await defaultLoader());
  const loader: ServableLoader = async (dir, id) => {
    try {
      const s = await baseLoader(dir, id);
      metrics.recordLoad(id.name, true);
      return s;
    } catch (e) {
      metrics.recordLoad(id.name, false);
      throw e;
    }
  };
  const manager = new ModelManager({
    loader,
    pollWaitSeconds: options.fileSystemPollWaitSeconds ?? 1,
    log,
    ...(batching
      ? { wrap: (s, id) => batchingServable(s, { ...batching, onBatch: (size) => metrics.recordBatch(id.name, size) }) }
      : {}),
  });
  try {
    // A model that fails here fails the start, and the caller reports it: no log line for it too.
    await manager.configure(await sources(options), { logFailures: false });
  } catch (e) {
    await manager.close();
    throw e;
  }
  const core = new ServingCore(manager, metrics, { tensorLimits: { ...DEFAULT_TENSOR_LIMITS, ...options.tensorLimits }, log });

  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    const done = () => inFlight.delete(work);
    work.then(done, done);
    return work;
  };

  const grpcServer = new grpc.Server({ ...DEFAULT_GRPC_CHANNEL_ARGUMENTS, ...options.grpcChannelArguments });
  const impl = grpcImplementations(core, { tensorContent: options.tensorContent ?? false, track });
  grpcServer.addService(serviceDefinition(PREDICTION_SERVICE), impl[PREDICTION_SERVICE]!);
  grpcServer.addService(serviceDefinition(MODEL_SERVICE), impl[MODEL_SERVICE]!);
  const health = new ServerHealth(manager);
  grpcServer.addService(serviceDefinition(HEALTH_SERVICE), healthImplementation(health));
  const creds = options.ssl
    ? grpc.ServerCredentials.createSsl(
        options.ssl.clientCa ? Buffer.from(options.ssl.clientCa) : null,
        [{ cert_chain: Buffer.from(options.ssl.cert), private_key: Buffer.from(options.ssl.key) }],
        !!options.ssl.clientCa,
      )
    : grpc.ServerCredentials.createInsecure();
  const grpcHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let grpcPort: number;
  try {
    grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(`${grpcHost}:${options.port ?? 8500}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
  } catch (e) {
    await manager.close();
    throw new LensError('INVALID_ARGUMENT', `cannot listen on ${host}:${options.port ?? 8500} (--port): ${errorMessage(e)}`);
  }

  let http: HttpServer | null = null;
  let restPort: number | null = null;
  if (options.restApiPort !== false) {
    const app = restApp(core, {
      timeoutMs: options.restApiTimeoutMs ?? 30_000,
      ...(options.maxRestBodyBytes !== undefined ? { maxBodyBytes: options.maxRestBodyBytes } : {}),
      ...(options.restMaxJsonNodes !== undefined ? { maxJsonNodes: options.restMaxJsonNodes } : {}),
      track,
      ...(monitoringPath ? { metrics: { registry: metrics, path: monitoringPath } } : {}),
    });
    const limits = { ...DEFAULT_REST_CONNECTION_LIMITS, ...options.restConnections };
    http = createServer(
      {
        // Node requires headers to be due no later than the whole request; timeouts are checked every 250 ms.
        headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: 250,
      },
      app,
    );
    http.maxConnections = limits.maxConnections;
    http.on('clientError', answerClientError);
    try {
      restPort = await listen(http, options.restApiPort ?? 8501, host);
    } catch (e) {
      grpcServer.forceShutdown();
      await manager.close();
      throw e;
    }
  }
  manager.startPolling();

  let closing: Promise<void> | null = null;
  return {
    grpcPort,
    restPort,
    host,
    manager,
    core,
    metrics,
    health,
    models: () => manager.describe(),
    close() {
      closing ??= (async () => {
        // Probes and load balancers see NOT_SERVING before the server stops answering.
        health.shutdown();
        const grpcDone = new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
        const httpDone = http
          ? new Promise<void>((resolve) => {
              http!.close(() => resolve());
              http!.closeIdleConnections();
            })
          : Promise.resolve();
        await Promise.allSettled([...inFlight]);
        http?.closeAllConnections();
        await Promise.all([grpcDone, httpDone]);
        await manager.close();
      })();
      return closing;
    },
  };
}
