/**
 * How every client command (`predict`, `profile`, `verify`, `explain --server`, `health`) reaches
 * a server: the connection flags, defined once with their parsing, so that each command spells and
 * checks them alike. Only light modules load here, which keeps `lens --help` fast.
 */
import type { Command } from 'commander';
import { LensError } from '../core/errors.js';
import type { ClientOptions, Transport } from '../serving/client-api.js';

/** Values of the flags {@link addConnectionFlags} adds. */
export interface ConnectionFlagValues {
  transport?: string;
  rest?: boolean;
  hostHeader?: string;
  tls?: boolean;
  header?: string[];
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * Adds the connection flags: `--transport grpc|rest` (with `--rest` as its shorthand), `--host-header`,
 * `--tls` and the repeatable `--header`. `transport: false` leaves out the transport flags (gRPC-only
 * commands such as `lens health`).
 *
 * @example
 * addConnectionFlags(program.command('predict'));
 */
export function addConnectionFlags(command: Command, options: { transport?: boolean } = {}): Command {
  if (options.transport !== false) {
    command.option('--transport <t>', 'grpc or rest (default grpc)').option('--rest', 'same as --transport rest');
  }
  return command
    .option('--host-header <name>', 'Host header (REST) and :authority (gRPC) to send, e.g. a KServe predictor\'s host name behind the ingress (also the TLS server name with --tls)')
    .option('--tls', 'use TLS (system roots)')
    .option('--header <k=v>', 'metadata/header sent with each request (repeatable), e.g. authorization=Bearer...', collect, []);
}

/**
 * The client options the connection flags ask for, checked.
 *
 * @example
 * createClient({ target: flags.server, ...connectionOptions(flags) });
 */
export function connectionOptions(flags: ConnectionFlagValues): Required<Pick<ClientOptions, 'transport' | 'metadata'>> & Pick<ClientOptions, 'tls' | 'hostHeader'> {
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
