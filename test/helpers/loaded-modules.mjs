/**
 * Preloaded with `node --import` in a child process: records the URL of every module the process
 * loads (ESM resolutions through a loader hook, CommonJS ones from require.cache at exit) into the
 * file named by LENS_LOADED_MODULES, one per line, so a test can tell which packages a command
 * pulled in.
 */
import { createRequire, register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const file = process.env.LENS_LOADED_MODULES;
if (!file) throw new Error('loaded-modules.mjs needs LENS_LOADED_MODULES (the file to write)');
register('./loaded-modules-hooks.mjs', import.meta.url, { data: { file } });
process.on('exit', () => {
  const cjs = Object.keys(createRequire(import.meta.url).cache).map((path) => pathToFileURL(path).href);
  appendFileSync(file, cjs.map((url) => `${url}\n`).join(''));
});
