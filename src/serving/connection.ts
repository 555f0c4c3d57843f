/**
 * Connection settings given as text (the client commands' flags, the studio's options) turned
 * into checked client options: transport, TLS, Host header, metadata, and the HOST:PORT target.
 * Only light modules load here, so CLI option parsing may use it.
 */
import { LensError } from '../core/errors.js';
import type { ClientOptions, Transport } from './client-api.js';

/** How to reach a server, as text (the client commands' connection flags, the studio's options). */
export interface ConnectionSettings {
  transport?: string;
  rest?: boolean;
  hostHeader?: string;
  tls?: boolean;
  header?: string[];
}

/**
 * The client options the connection flags ask for, checked.
 *
 * @example
 * createClient({ target: flags.server, ...connectionOptions(flags) });
 */
export function connectionOptions(flags: ConnectionSettings): Required<Pick<ClientOptions, 'transport' | 'metadata'>> & Pick<ClientOptions, 'tls' | 'hostHeader'> {
  const transport = flags.transport ?? (flags.rest ? 'rest' : 'grpc');
  if (transport !== 'grpc' && transport !== 'rest') throw new LensError('INVALID_ARGUMENT', `--transport must be grpc or rest, got "${transport}"`);
  if (flags.rest && transport !== 'rest') throw new LensError('INVALID_ARGUMENT', `--rest contradicts --transport ${transport}`);
  const metadata: Record<string, string> = {};
  for (const h of flags.header ?? []) {
    const i = h.indexOf('=');
    if (i <= 0) throw new LensError('INVALID_ARGUMENT', `--header expects key=value, got "${h}"`);
    metadata[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1);
  }
  if (flags.hostHeader !== undefined && 'host' in metadata) throw new LensError('INVALID_ARGUMENT', 'give the host name with --host-header, not --header host=...');
  return {
    transport: transport as Transport,
    metadata,
    ...(flags.tls ? { tls: true } : {}),
    ...(flags.hostHeader !== undefined ? { hostHeader: flags.hostHeader } : {}),
  };
}

/**
 * Checks a HOST:PORT target (or an http(s) URL) and returns it.
 *
 * @example
 * hostPort('localhost:8500'); // 'localhost:8500'
 * hostPort('localhost', '--server'); // throws: --server must be HOST:PORT, got "localhost"
 */
export function hostPort(value: string, flag = '--server'): string {
  if (!/^[^\s:]+:\d{1,5}$/.test(value) && !/^\[[0-9a-f:]+\]:\d{1,5}$/i.test(value) && !/^https?:\/\//.test(value)) {
    throw new LensError('INVALID_ARGUMENT', `${flag} must be HOST:PORT, got "${value}"`);
  }
  return value;
}
