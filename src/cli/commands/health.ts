import type { Command } from 'commander';
import { addConnectionFlags, connectionOptions, type ConnectionFlagValues } from '../server-flags.js';

interface HealthFlags extends ConnectionFlagValues {
  service: string;
  timeout: string;
  json?: boolean;
}

/**
 * `lens health`: asks a `lens serve` server's grpc.health.v1.Health whether it (or one model)
 * serves. Prints the status and exits 0 only for SERVING, so it also works as an exec probe or in
 * scripts that wait for a server.
 */
export function register(program: Command): void {
  const command = program
    .command('health')
    .description('gRPC health check of a lens serve server (grpc.health.v1); exits 1 unless SERVING')
    .argument('<address>', 'gRPC address host:port')
    .option('--service <name>', 'a served model\'s name (default: the whole server)', '')
    .option('--timeout <ms>', 'deadline of the check', '5000');
  addConnectionFlags(command, { transport: false })
    .option('--json', 'print {"address", "service", "status"}')
    .action(async (address: string, flags: HealthFlags) => {
      const { LensError } = await import('../../errors.js');
      const timeoutMs = Number(flags.timeout);
      if (!(timeoutMs > 0)) throw new LensError('INVALID_ARGUMENT', `--timeout must be a positive number of ms, got "${flags.timeout}"`);
      const { checkHealth } = await import('../../serving/health.js');
      const { transport: _grpc, ...connection } = connectionOptions(flags);
      const status = await checkHealth(address, flags.service, { timeoutMs, ...connection });
      const what = flags.service ? `model ${flags.service}` : 'server';
      if (flags.json) process.stdout.write(`${JSON.stringify({ address, service: flags.service, status })}\n`);
      else process.stdout.write(`${status}\n`);
      if (status !== 'SERVING') throw new LensError('SERVING_ERROR', `${address}: the ${what} is ${status}`);
    });
}
