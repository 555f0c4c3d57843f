/**
 * How every client command (`predict`, `profile`, `verify`, `explain --server`, `health`) reaches
 * a server: the connection flags, defined once, so that each command spells them alike; their
 * parsing is serving/connection.ts. Only light modules load here, which keeps `lens --help` fast.
 */
import type { Command } from 'commander';

/** Commander argument parser of a repeatable flag: each use adds one value (`--header a=1 --header b=2`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

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
