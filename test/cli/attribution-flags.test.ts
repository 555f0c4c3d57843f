/**
 * The attribution flags `lens explain` and `lens batch` share: defined once in
 * src/cli/attribution-support.ts, so both commands list and parse them alike.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addAttributionFlags, attributionNumbers, wantsProgressBar } from '../../src/cli/attribution-support.js';
import { modelLoadFlags } from '../../src/models/load-settings.js';
import { runLens } from '../helpers/cli.js';

describe('shared attribution flags', () => {
  it('parse into commander values with their defaults', () => {
    const command = new Command('x').exitOverride();
    addAttributionFlags(command, ['method', 'baseline', 'steps', 'rule', 'singleTarget', 'seed', 'batchSize', 'progress']);
    command.parse(['--steps', '32', '--no-progress', '--batch-size', '4'], { from: 'user' });
    expect(command.opts()).toEqual({ method: 'ig', baseline: 'black', steps: '32', rule: 'gausslegendre', target: 'top1', seed: '0', batchSize: '4', progress: false });
    expect(attributionNumbers(command.opts() as { steps: string; batchSize: string; seed: string })).toEqual({ steps: 32, batchSize: 4, seed: 0 });
  });

  it('check numbers and name the flag at fault', () => {
    expect(attributionNumbers({ seed: '7' })).toEqual({ seed: 7 });
    expect(() => attributionNumbers({ seed: '1.5' })).toThrow('--seed must be an integer, got "1.5"');
    expect(() => attributionNumbers({ seed: '0', steps: '0' })).toThrow('--steps must be a positive integer, got "0"');
    expect(() => attributionNumbers({ seed: '0', batchSize: 'many' })).toThrow('--batch-size must be a positive integer, got "many"');
  });

  it('pass only the model-loading flags that were given', () => {
    expect(modelLoadFlags({})).toEqual({});
    expect(modelLoadFlags({ preprocess: 'torch', labels: 'l.txt', backend: 'cpu' })).toEqual({ preprocess: 'torch', labels: 'l.txt', backend: 'cpu' });
    expect(wantsProgressBar({ progress: false })).toBe(false);
    expect(wantsProgressBar({ progress: true, json: true })).toBe(false);
  });
});

describe('lens explain and lens batch', () => {
  it('list each shared flag with the same help', async () => {
    const [explain, batch] = await Promise.all([runLens(['explain', '--help']), runLens(['batch', '--help'])]);
    // An option's help: its line and the wrapped lines under it, with spacing folded (the column width differs).
    const entry = (help: string, flag: string) => {
      const lines = help.split('\n');
      const start = lines.findIndex((l) => l.trimStart().startsWith(`${flag} `));
      if (start < 0) return undefined;
      let end = start + 1;
      while (end < lines.length && /^ {6,}\S/.test(lines[end]!)) end++;
      return lines.slice(start, end).join(' ').replace(/\s+/g, ' ').trim();
    };
    for (const flag of ['--method', '--baseline', '--steps', '--rule', '--viz', '--sign', '--preprocess', '--resize', '--labels', '--batch-size', '--seed', '--backend', '--no-progress']) {
      expect(entry(batch.stdout, flag), flag).toBeDefined();
      expect(entry(batch.stdout, flag)).toBe(entry(explain.stdout, flag));
    }
    // Batch writes one explanation per image: one target, not top-k.
    expect(entry(explain.stdout, '--target')).toBe('--target <target> top1, topK (each of the k best), a class index, or a label (default: "top1")');
    expect(entry(batch.stdout, '--target')).toBe('--target <target> top1, a class index or a label (default: "top1")');
  });

  it('refuse the same bad numbers with the same message', async () => {
    const explain = await runLens(['explain', 'x.png', '--model', 'default', '--steps', '0']);
    const batch = await runLens(['batch', '--list', 'l.txt', '--model', 'default', '--out', 'o', '--steps', '0']);
    expect([explain.code, explain.stderr]).toEqual([1, 'lens: --steps must be a positive integer, got "0"\n']);
    expect([batch.code, batch.stderr]).toEqual([1, 'lens: --steps must be a positive integer, got "0"\n']);
    const seed = await runLens(['batch', '--list', 'l.txt', '--model', 'default', '--out', 'o', '--seed', 'x']);
    expect(seed.stderr).toBe('lens: --seed must be an integer, got "x"\n');
  });
});
