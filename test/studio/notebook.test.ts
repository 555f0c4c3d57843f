/**
 * Opening the studio from Jupyter: the notebook helper `studio()` (a `lens studio` process for the
 * notebook's model, linked through jupyter-server-proxy) and the workbench image's proxy entry.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { proxiedStudioUrl, studio } from '../../src/notebook/index.js';
import { REPO_ROOT, SHARED } from '../helpers/cli.js';
import { ensureDist } from '../helpers/dist.js';
import { buildStudioWeb, startStudioCli } from './helpers.js';

const BIRD = resolve(SHARED, 'images/bird.bmp');

describe('studio() in a notebook', () => {
  beforeAll(async () => {
    await ensureDist();
    buildStudioWeb();
  });

  it('links through jupyter-server-proxy under JupyterHub and KubeFlow, directly elsewhere', () => {
    expect(proxiedStudioUrl(41234, { JUPYTERHUB_SERVICE_PREFIX: '/user/alice/' })).toBe('/user/alice/proxy/41234/');
    expect(proxiedStudioUrl(41234, { NB_PREFIX: '/notebook/team/alice' })).toBe('/notebook/team/alice/proxy/41234/');
    expect(proxiedStudioUrl(41234, {})).toBeUndefined();
  });

  it('starts lens studio for the notebook’s model and images, and stops it', async () => {
    const handle = await studio({ model: { info: { spec: 'default' } }, images: [BIRD], env: { NB_PREFIX: '/notebook/team/alice' } });
    try {
      expect(handle.url).toBe(`/notebook/team/alice/proxy/${handle.port}/`);
      expect(handle.localUrl).toBe(`http://127.0.0.1:${handle.port}/`);
      const state = (await (await fetch(new URL('api/state', handle.localUrl))).json()) as { local: { name: string }; images: { name: string }[] };
      expect(state.local.name).toBe('shapes-resnet');
      expect(state.images.map((i) => i.name)).toEqual([BIRD]);
    } finally {
      await handle.stop();
    }
    await expect(fetch(new URL('api/state', handle.localUrl))).rejects.toThrow();
  });

  it('reports a studio that cannot start', async () => {
    await expect(studio({ model: '/no/such/model' })).rejects.toThrow(/lens studio exited with 1: lens: .*\/no\/such\/model/);
  });
});

describe('the workbench image’s jupyter-server-proxy entry', () => {
  it('starts lens studio on the port the proxy gives, on loopback', async () => {
    const config = JSON.parse(readFileSync(resolve(REPO_ROOT, 'k8s/workbench/lens-studio-proxy.json'), 'utf8')) as { ServerProxy: { servers: Record<string, { command: string[]; launcher_entry: { title: string } }> } };
    const entry = config.ServerProxy.servers['lens-studio']!;
    expect(entry.launcher_entry.title).toBe('lens studio');
    expect(entry.command.slice(0, 2)).toEqual(['lens', 'studio']);
    expect(entry.command).toContain('{port}');
    const running = await startStudioCli(entry.command.slice(2).map((a) => (a === '{port}' ? '0' : a)));
    try {
      expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect((await fetch(running.url)).status).toBe(200);
    } finally {
      expect(await running.stop()).toBe(0);
    }
  });
});
