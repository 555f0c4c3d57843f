/**
 * HandleReloadConfigRequest as TF Serving does it, with lens serve's two state fixes (issue 12): a
 * model pointed back at its original base path serves the original versions again, and a model
 * whose configuration fails is not polled; every reload is logged with the caller's address, and
 * serving beyond loopback warns that reload is unauthenticated.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, startServer, type RunningServer, type ServingClient } from '../../src/serving/index.js';
import { isLoopbackHost } from '../../src/serving/server.js';
import { SHARED } from '../helpers/cli.js';

const models = resolve(SHARED, 'testdata/savedmodels');
const TWO = resolve(models, 'saved_model_half_plus_two_cpu');
const THREE = resolve(models, 'saved_model_half_plus_three');
const lines: string[] = [];
let server: RunningServer;
let client: ServingClient;

const x = { dtype: 'float32' as const, shape: [1, 1], values: new Float32Array([1]) };
const predict = async () => (await client.predict({ model: 'half', inputs: { x } })).outputs.y!.values[0];

beforeAll(async () => {
  server = await startServer({ port: 0, restApiPort: false, modelName: 'half', modelBasePath: TWO, fileSystemPollWaitSeconds: 0, log: (l) => lines.push(l) });
  client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
}, 60_000);

afterAll(async () => {
  client?.close();
  await server?.close();
});

describe('HandleReloadConfigRequest', () => {
  it('pointing a model at another base path and back serves each path\'s own version 123', async () => {
    expect(await predict()).toBe(2.5);
    await client.reloadConfig([{ name: 'half', basePath: THREE }]);
    expect(await predict()).toBe(3.5);
    await client.reloadConfig([{ name: 'half', basePath: TWO }]);
    expect(await predict()).toBe(2.5);
    expect(await client.getModelStatus({ model: 'half' })).toEqual([{ version: '123', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }]);
  });

  it('logs every reload with the peer address and its outcome', async () => {
    const reloads = lines.filter((l) => l.startsWith('HandleReloadConfigRequest'));
    expect(reloads[0]).toMatch(new RegExp(`^HandleReloadConfigRequest from 127\\.0\\.0\\.1:\\d+: half \\(${THREE}\\)$`));
    expect(reloads[1]).toMatch(/^HandleReloadConfigRequest from 127\.0\.0\.1:\d+: done$/);
  });

  it('a model whose configuration fails keeps serving its previous path, or when new is marked and not polled', async () => {
    await expect(client.reloadConfig([{ name: 'half', basePath: resolve(models, 'missing') }])).rejects.toThrow(/Could not find base path/);
    expect(lines.at(-2)).toBe(`Model half keeps serving from ${TWO}: Could not find base path ${resolve(models, 'missing')} for servable half`);
    expect(await predict()).toBe(2.5);
    await expect(
      client.reloadConfig([
        { name: 'half', basePath: TWO },
        { name: 'bad', basePath: resolve(models, 'bad_half_plus_two') },
      ]),
    ).rejects.toThrow(/^Loading servable: {name: bad version: 123} failed: /);
    expect(lines.at(-2)).toMatch(/^Model bad is not served and not polled: /);
    expect((await client.getModelStatus({ model: 'bad' }))[0]!.state).toBe('END');
    const before = lines.length;
    await server.manager.poll();
    expect(lines.slice(before)).toEqual([]);
    expect(await predict()).toBe(2.5);
  });
});

describe('serving beyond loopback', () => {
  it('warns that ModelService reload is unauthenticated and names the NetworkPolicy that closes it', async () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1'].some(isLoopbackHost)).toBe(false);
    const warned: string[] = [];
    const open = await startServer({ host: '0.0.0.0', port: 0, restApiPort: false, modelName: 'half', modelBasePath: TWO, fileSystemPollWaitSeconds: 0, log: (l) => warned.push(l) });
    await open.close();
    expect(warned[0]).toMatch(/^WARNING: serving on 0\.0\.0\.0: ModelService\/HandleReloadConfigRequest is unauthenticated .*NetworkPolicy tf-serving-resnet-clients of k8s\/base\/networkpolicy\.yaml\)\.$/);
  });
});
