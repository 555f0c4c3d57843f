import type { Command } from 'commander';
import { positiveInt } from '../attribution-support.js';
import { addConnectionFlags } from '../server-flags.js';
import { connectionOptions, type ConnectionSettings } from '../../serving/connection.js';

interface PredictFlags extends ConnectionSettings {
  server: string;
  model: string;
  version?: string;
  label?: string;
  signature?: string;
  topK: string;
  labels?: string;
  input?: string;
  output?: string;
  resize: string;
  timeout: string;
  json?: boolean;
}

/**
 * `lens predict`: top-k classes of images (paths or URLs) from a model served by TF Serving
 * or `lens serve`, over gRPC (default) or REST; several images go in one batch.
 */
export function register(program: Command): void {
  const command = program
    .command('predict')
    .description('classify images with a served model: top-k classes with probabilities')
    .argument('<images...>', 'image paths or http(s) URLs')
    .requiredOption('--server <host:port>', 'TF Serving address (gRPC port, or REST port with --transport rest)');
  addConnectionFlags(command)
    .requiredOption('--model <name>', 'served model name')
    .option('--version <n>', 'model version')
    .option('--label <label>', 'model version label')
    .option('--signature <name>', 'signature (default serving_default)')
    .option('--top-k <k>', 'classes to show per image', '5')
    .option('--labels <file>', 'class names: text (one per line) or JSON array (default: ImageNet for 1000/1001 classes)')
    .option('--input <alias>', 'input tensor alias (default: the image input)')
    .option('--output <alias>', 'output tensor alias (default: probabilities/scores/logits)')
    .option('--resize <mode>', 'pad (keep aspect, as the TF Serving ResNet tutorial), crop or squash', 'pad')
    .option('--timeout <ms>', 'deadline per request', '30000')
    .option('--json', 'print [{"image", "top_k": [{"index", "label", "probability"}]}]')
    .action(async (images: string[], flags: PredictFlags) => {
      const { LensError } = await import('../../core/errors.js');
      const bad = (m: string) => new LensError('INVALID_ARGUMENT', m);
      const k = positiveInt(flags.topK, '--top-k');
      if (flags.version !== undefined && flags.label !== undefined) throw bad('give --version or --label, not both');
      const version = flags.version === undefined ? undefined : Number(flags.version);
      if (version !== undefined && !Number.isSafeInteger(version)) throw bad(`--version must be an integer, got "${flags.version}"`);
      const timeoutMs = Number(flags.timeout);
      if (!(timeoutMs > 0)) throw bad(`--timeout must be a positive number of ms, got "${flags.timeout}"`);
      const connection = connectionOptions(flags);
      const tf = await import('@tensorflow/tfjs-core');
      const { initBackend } = await import('../../engines/tfjs/index.js');
      const { loadPixels, parseResizeMode, pixelsToTensor, readImageBytes } = await import('../../image/index.js');
      const { readLabelsFile } = await import('../../models/labels.js');
      const { topK } = await import('../../core/model.js');
      const { createClient } = await import('../../serving/client.js');
      const { createRemoteModel } = await import('../../models/remote.js');
      const resize = parseResizeMode(flags.resize);
      await initBackend();
      const client = createClient({ target: flags.server, timeoutMs, ...connection });
      try {
        const labels = flags.labels ? await readLabelsFile(flags.labels) : undefined;
        const { describeImageInput } = await import('../../serving/image-input.js');
        const { bytesForDecodeJpeg } = await import('../../image/format.js');
        const ref = {
          model: flags.model,
          ...(version !== undefined ? { version } : {}),
          ...(flags.label !== undefined ? { label: flags.label } : {}),
          ...(flags.signature ? { signature: flags.signature } : {}),
        };
        const described = await describeImageInput(client, { ...ref, ...(flags.input ? { input: flags.input } : {}), timeoutMs });
        // Encoded-image signatures get the files' own bytes (lossless PNG for formats DecodeJpeg does not read).
        const encoded = described.inputKind === 'jpeg' ? await Promise.all(images.map(async (src) => bytesForDecodeJpeg(await readImageBytes(src), src))) : undefined;
        const model = await createRemoteModel({
          client,
          ...ref,
          ...(flags.input ? { input: flags.input } : {}),
          ...(flags.output ? { output: flags.output } : {}),
          ...(labels ? { labels } : {}),
          // The image size matters only for pixels; files sent as they are need none.
          ...(encoded && !described.inputShape ? { inputShape: [1, 1, 3] as const } : {}),
          timeoutMs,
        });
        let scores;
        if (encoded) scores = await model.forwardEncoded(encoded);
        else {
          const [h, w, c] = model.inputShape;
          const pixels = await Promise.all(images.map((src) => loadPixels(src, { size: [h, w], resize, channels: c === 1 ? 1 : 3 })));
          const batch = pixelsToTensor(pixels);
          scores = await model.forward(batch);
          batch.dispose();
        }
        // An output whose name does not say logits (e.g. "Output") may still hold them: values outside [0, 1]
        // are no probabilities, so they go through a softmax too, and the user is told.
        const outside = model.output !== 'logit' && ((await scores.array()) as number[][]).some((row) => row.some((v) => !(v >= 0 && v <= 1)));
        if (outside) process.stderr.write(`lens: output ${model.outputAlias} of ${flags.model} holds values outside [0, 1]: read as logits, probabilities are their softmax\n`);
        const probs = model.output === 'logit' || outside ? tf.softmax(scores) : scores;
        const rows = (await probs.array()) as number[][];
        tf.dispose([scores, probs]);
        const result = images.map((image, i) => ({
          image,
          top_k: topK(rows[i]!, k, model.labels).map((t) => ({ index: t.index, label: t.label ?? null, probability: t.score })),
        }));
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return;
        }
        // A label that only repeats the index (an export's `classes` of a model without names) is no label;
        // the label column is as wide as the longest label shown, and absent when there is none.
        const named = (t: { index: number; label: string | null }) => (t.label !== null && t.label !== String(t.index) ? t.label.slice(0, 40) : '');
        const labelWidth = Math.max(0, ...result.flatMap((r) => r.top_k.map((t) => named(t).length)));
        const out: string[] = [];
        for (const r of result) {
          out.push(r.image);
          r.top_k.forEach((t, j) => out.push(`  ${j + 1}. ${String(t.index).padStart(5)}  ${labelWidth > 0 ? `${named(t).padEnd(labelWidth)}  ` : ''}${t.probability.toFixed(4)}`));
        }
        process.stdout.write(`${out.join('\n')}\n`);
      } finally {
        client.close();
      }
    });
}
