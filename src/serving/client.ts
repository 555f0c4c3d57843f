/**
 * One client for TensorFlow Serving (real or `lens serve`), two transports: gRPC (@grpc/grpc-js,
 * the protos of protos/) and REST (JSON over HTTP). Both return the same shapes and throw
 * ServingErrors with the server's status and message, so code does not care which one it uses.
 *
 * - model selection by version or version label, and signature;
 * - deadlines (`timeoutMs`), TLS, metadata/auth headers;
 * - message limits raised to 2 GiB by default (a reply still too large is a MESSAGE_TOO_LARGE error);
 * - retries with exponential backoff, only on UNAVAILABLE.
 *
 * @example
 * const client = createClient({ target: 'localhost:8500' });            // or { target: 'localhost:8501', transport: 'rest' }
 * const { outputs } = await client.predict({ model: 'half_plus_two', inputs: { x: { dtype: 'float32', shape: [3, 1], values: new Float32Array([1, 2, 5]) } } });
 * outputs.y.values; // Float32Array [2.5, 3, 4.5]
 * client.close();
 */
import { LensError } from '../core/errors.js';
import type { ClientOptions, ServingClient } from './client-api.js';
import { GrpcServingClient } from './grpc-client.js';
import { RestServingClient } from './rest-client.js';
import { isHostHeader } from './reach.js';

/**
 * A client for `options.target` over gRPC (default) or REST.
 *
 * @example
 * const rest = createClient({ target: 'localhost:8501', transport: 'rest', restFormat: 'row' });
 * // A KServe predictor behind the cluster's ingress gateway, routed by host name:
 * const kserve = createClient({ target: '10.0.0.5:80', hostHeader: 'resnet.models.example.com' });
 */
export function createClient(options: ClientOptions): ServingClient {
  if (!options.target) throw new LensError('INVALID_ARGUMENT', 'client target is empty: expected host:port');
  if (options.hostHeader !== undefined && !isHostHeader(options.hostHeader)) {
    throw new LensError('INVALID_ARGUMENT', `host header "${options.hostHeader}" is not a host name with an optional port (e.g. resnet.models.example.com)`);
  }
  return (options.transport ?? 'grpc') === 'grpc' ? new GrpcServingClient(options) : new RestServingClient(options);
}
