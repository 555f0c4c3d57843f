import type { Command } from 'commander';
import { addConnectionFlags } from '../server-flags.js';
import { connectionOptions, type ConnectionSettings } from '../../serving/connection.js';

interface HealthFlags extends ConnectionSettings {
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
    .description('health check: gRPC grpc.health.v1 of lens serve, or over REST the model status any TF Serving answers (KServe included); exits 1 unless SERVING')
    .argument('<address>', 'server address host:port (gRPC, or REST with --transport rest)')
    .option('--service <name>', 'a served model\'s name (default: the whole server)', '')
    .option('--timeout <ms>', 'deadline of the check', '5000');
  addConnectionFlags(command)
    .option('--json', 'print {"address", "service", "status"}')
    .action(async (address: string, flags: HealthFlags) => {
      const { LensError } = await import('../../core/errors.js');
      const timeoutMs = Number(flags.timeout);
      if (!(timeoutMs > 0)) throw new LensError('INVALID_ARGUMENT', `--timeout must be a positive number of ms, got "${flags.timeout}"`);
      const { transport, ...connection } = connectionOptions(flags);
      let status: string;
      if (transport === 'rest') {
        // TF Serving has no health service; its REST model status is what probes and KServe use.
        if (!flags.service) throw new LensError('INVALID_ARGUMENT', 'over REST, give --service MODEL: TF Serving\'s REST API reports the status of one model');
        const { createClient } = await import('../../serving/client.js');
        const client = createClient({ target: address, transport, timeoutMs, retry: { retries: 0 }, ...connection });
        try {
          const versions = await client.getModelStatus({ model: flags.service });
          status = versions.some((v) => v.state === 'AVAILABLE') ? 'SERVING' : 'NOT_SERVING';
        } finally {
          client.close();
        }
      } else {
        const { checkHealth } = await import('../../serving/health.js');
        status = await checkHealth(address, flags.service, { timeoutMs, ...connection });
      }
      const what = flags.service ? `model ${flags.service}` : 'server';
      if (flags.json) process.stdout.write(`${JSON.stringify({ address, service: flags.service, status })}\n`);
      else process.stdout.write(`${status}\n`);
      if (status !== 'SERVING') throw new LensError('SERVING_ERROR', `${address}: the ${what} is ${status}`);
    });
}
