/**
 * gRPC health checking (grpc.health.v1.Health, protos/grpc/health/v1/health.proto) for `lens serve`,
 * so that Kubernetes `grpc:` probes and load balancers can ask whether the server serves. The real
 * TensorFlow Serving does not implement this service; probe it over REST instead.
 *
 * Service names: "" is the whole server (SERVING while it runs, is not draining and has at least
 * one model with an AVAILABLE version); a model's name is that model (SERVING when one of its
 * versions is AVAILABLE). Check answers NOT_FOUND for any other name; Watch answers
 * SERVICE_UNKNOWN and keeps watching, in case a config reload adds the model. On shutdown every
 * service turns NOT_SERVING first, then every Watch stream ends.
 *
 * @example
 * const status = await checkHealth('127.0.0.1:8500');            // 'SERVING'
 * const model = await checkHealth('127.0.0.1:8500', 'resnet');   // the model 'resnet'
 * for await (const s of watchHealth('127.0.0.1:8500', '', { signal })) console.log(s);
 */
import * as grpc from '@grpc/grpc-js';
import { decodeMessage, protoEnum } from '../proto/index.js';
import type { ClientOptions } from './client-api.js';
import { encodeRaw, grpcChannel, grpcMetadata, MAX_MESSAGE_BYTES } from './grpc.js';
import type { ModelManager } from './manager.js';
import { noRouteProblem, reachProblem } from './reach.js';
import { ServingError, statusName, toServingError, truncateForGrpc } from './status.js';

export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** HealthCheckResponse.ServingStatus names. SERVICE_UNKNOWN comes only from Watch. */
export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const REQUEST = 'grpc.health.v1.HealthCheckRequest';
const RESPONSE = 'grpc.health.v1.HealthCheckResponse';

function servingStatusEnum() {
  return protoEnum(`${RESPONSE}.ServingStatus`);
}

function encodeStatus(status: HealthStatus): Buffer {
  return encodeRaw(RESPONSE, { status: servingStatusEnum().values[status] });
}

function decodeStatus(bytes: Uint8Array): HealthStatus {
  const { status } = decodeMessage<{ status?: number }>(RESPONSE, bytes, 'HealthCheckResponse');
  return (servingStatusEnum().valuesById[status ?? 0] ?? 'UNKNOWN') as HealthStatus;
}

interface Watcher {
  service: string;
  last?: HealthStatus;
  send(status: HealthStatus): void;
  end(): void;
}

/**
 * The health state of a running server, derived from its model manager and followed as models
 * load and unload. {@link startServer} makes one (`server.health`) and serves it over gRPC.
 *
 * @example
 * const health = new ServerHealth(manager);
 * health.status('');        // 'SERVING' | 'NOT_SERVING'
 * health.status('nope');    // null: not a service of this server
 */
export class ServerHealth {
  private shuttingDown = false;
  private readonly watchers = new Set<Watcher>();
  private readonly unsubscribe: () => void;

  constructor(private readonly manager: Pick<ModelManager, 'describe' | 'onChange'>) {
    this.unsubscribe = manager.onChange(() => this.notify());
  }

  /** The status of a service name ("" = the whole server, else a model's name); null when unknown. */
  status(service: string): 'SERVING' | 'NOT_SERVING' | null {
    const models = this.manager.describe();
    const serving = (m: { available: number[] }) => !this.shuttingDown && m.available.length > 0;
    if (service === '') return models.some(serving) ? 'SERVING' : 'NOT_SERVING';
    const model = models.find((m) => m.name === service);
    if (!model) return null;
    return serving(model) ? 'SERVING' : 'NOT_SERVING';
  }

  /**
   * Follows a service: `send` gets the current status at once (SERVICE_UNKNOWN for an unknown
   * name), then each change; `end` is called when the server shuts down. Returns the function that
   * stops watching.
   */
  watch(service: string, send: (status: HealthStatus) => void, end: () => void): () => void {
    const watcher: Watcher = { service, send, end };
    if (this.shuttingDown) {
      send('NOT_SERVING');
      end();
      return () => {};
    }
    this.watchers.add(watcher);
    this.update(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** Turns every service NOT_SERVING, tells the watchers, then ends their streams (the start of a drain). */
  shutdown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.notify();
    this.unsubscribe();
    const watchers = [...this.watchers];
    this.watchers.clear();
    for (const w of watchers) w.end();
  }

  private notify(): void {
    for (const w of [...this.watchers]) this.update(w);
  }

  private update(w: Watcher): void {
    const status = this.status(w.service) ?? 'SERVICE_UNKNOWN';
    if (status === w.last) return;
    w.last = status;
    w.send(status);
  }
}

function requestService(bytes: Uint8Array): string {
  return decodeMessage<{ service?: string }>(REQUEST, bytes, 'HealthCheckRequest').service ?? '';
}

/** grpc-js handlers of grpc.health.v1.Health (Check and the server-streaming Watch) over a ServerHealth. */
export function healthImplementation(health: ServerHealth): grpc.UntypedServiceImplementation {
  const check: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    try {
      const service = requestService(call.request);
      const status = health.status(service);
      if (status === null) {
        callback({ code: grpc.status.NOT_FOUND, details: truncateForGrpc(`unknown service "${service}": ask for "" (the whole server) or the name of a served model`) });
        return;
      }
      callback(null, encodeStatus(status));
    } catch (e) {
      const s = toServingError(e);
      callback({ code: s.grpcCode, details: truncateForGrpc(s.message) });
    }
  };
  const watch: grpc.handleServerStreamingCall<Buffer, Buffer> = (call) => {
    let service: string;
    try {
      service = requestService(call.request);
    } catch (e) {
      const s = toServingError(e);
      call.emit('error', { code: s.grpcCode, details: truncateForGrpc(s.message) });
      return;
    }
    const stop = health.watch(
      service,
      (status) => call.write(encodeStatus(status)),
      () => call.end(),
    );
    call.on('cancelled', stop);
  };
  return { Check: check, Watch: watch } as grpc.UntypedServiceImplementation;
}

/** How {@link checkHealth} and {@link watchHealth} reach a server: TLS, metadata and host header as in {@link ClientOptions}. */
export type HealthClientOptions = Pick<ClientOptions, 'tls' | 'metadata' | 'hostHeader'>;

function healthError(e: unknown, target: string, hostHeader: string | undefined): ServingError {
  const err = e as Partial<grpc.ServiceError>;
  const status = statusName(err.code ?? 2);
  const details = err.details || err.message || String(e);
  const where = { transport: 'grpc' as const, target, hostHeader };
  const unreachable = status === 'UNAVAILABLE' ? reachProblem({ ...where, cause: details }) : undefined;
  if (unreachable) return new ServingError('UNAVAILABLE', unreachable, { cause: e });
  if (status === 'UNIMPLEMENTED' && /^Received HTTP status code 404\b/.test(details)) return new ServingError('NOT_FOUND', noRouteProblem(where), { cause: e });
  if (status === 'UNIMPLEMENTED') {
    return new ServingError('UNIMPLEMENTED', `${target} does not implement ${HEALTH_SERVICE} (TensorFlow Serving does not; lens serve does): ${details}`, { cause: e });
  }
  return new ServingError(status === 'OK' ? 'UNKNOWN' : status, `${target}: ${details}`, { cause: e });
}

const identity = (b: Buffer): Buffer => b;

/**
 * Asks a server's grpc.health.v1.Health/Check for a service ("" = the whole server, or a model's
 * name). Resolves with SERVING or NOT_SERVING; rejects with a ServingError: NOT_FOUND for a name
 * the server does not know, UNIMPLEMENTED for a server without the service (TF Serving),
 * UNAVAILABLE when nothing answers, DEADLINE_EXCEEDED after `timeoutMs` (default 5000).
 *
 * @example
 * if ((await checkHealth('localhost:8500', 'resnet')) !== 'SERVING') process.exitCode = 1;
 */
export async function checkHealth(target: string, service = '', options: HealthClientOptions & { timeoutMs?: number } = {}): Promise<HealthStatus> {
  const channel = grpcChannel(target, options.tls, MAX_MESSAGE_BYTES, options.hostHeader);
  const request = encodeRaw(REQUEST, { service });
  try {
    const reply = await new Promise<Buffer>((resolve, reject) =>
      channel.makeUnaryRequest<Buffer, Buffer>(
        `/${HEALTH_SERVICE}/Check`,
        identity,
        identity,
        request,
        grpcMetadata(options.metadata),
        { deadline: Date.now() + (options.timeoutMs ?? 5000) },
        (err, bytes) => (err ? reject(healthError(err, target, options.hostHeader)) : resolve(bytes!)),
      ),
    );
    return decodeStatus(reply);
  } finally {
    channel.close();
  }
}

/**
 * Follows a service with grpc.health.v1.Health/Watch: yields the current status, then every change,
 * and ends when the server shuts down (after NOT_SERVING) or when `signal` aborts. Errors are
 * ServingErrors as for {@link checkHealth}.
 *
 * @example
 * const stop = new AbortController();
 * for await (const status of watchHealth('localhost:8500', 'resnet', { signal: stop.signal })) {
 *   console.log(status);      // SERVING, ..., NOT_SERVING when the server drains
 * }
 */
export async function* watchHealth(target: string, service = '', options: HealthClientOptions & { signal?: AbortSignal } = {}): AsyncGenerator<HealthStatus> {
  const channel = grpcChannel(target, options.tls, MAX_MESSAGE_BYTES, options.hostHeader);
  const call = channel.makeServerStreamRequest<Buffer, Buffer>(`/${HEALTH_SERVICE}/Watch`, identity, identity, encodeRaw(REQUEST, { service }), grpcMetadata(options.metadata), {});
  const cancel = () => call.cancel();
  options.signal?.addEventListener('abort', cancel, { once: true });
  try {
    if (options.signal?.aborted) return;
    for await (const reply of call as AsyncIterable<Buffer>) yield decodeStatus(reply);
  } catch (e) {
    if (options.signal?.aborted) return;
    throw healthError(e, target, options.hostHeader);
  } finally {
    options.signal?.removeEventListener('abort', cancel);
    call.cancel();
    channel.close();
  }
}
