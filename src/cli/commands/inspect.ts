import type { Command } from 'commander';
import { GRAPH_MODEL_FLAGS, addAttributionFlags } from '../attribution-support.js';
import { graphModelFlags } from '../../models/load-settings.js';

interface InspectOptions {
  json?: boolean;
  tags?: string;
  nodes?: string;
  cut?: string[];
  checkpoint?: string;
  inputTensor?: string;
  outputTensor?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** "(-1, 1)" as saved_model_cli prints shapes; "unknown_rank" when the rank is unknown. */
function shapeText(shape: number[] | null): string {
  if (shape === null) return 'unknown_rank';
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

/**
 * `lens inspect DIR`: tags, signatures (as `saved_model_cli show --all` prints them), variables
 * and the op histogram of a SavedModel; `--nodes SIGNATURE` lists the converted graph of one
 * signature (to find tensor names for `--cut`).
 */
export function register(program: Command): void {
  const command = program
    .command('inspect')
    .description('show the tags, signatures, variables and op histogram of a SavedModel; the layers of a .keras archive; the checkpoints, nodes and cut of a TF1 checkpoint or frozen .pb')
    .argument('<dir>', 'SavedModel export directory (the folder holding saved_model.pb), .keras archive, TF1 checkpoint dir or model.ckpt-N prefix, or frozen .pb')
    .option('--json', 'print JSON')
    .option('--tags <tags>', 'with --nodes: MetaGraph tag set, comma-separated', 'serve')
    .option('--nodes <signature>', 'list the nodes of this signature after conversion to TensorFlow.js')
    .option('--cut <tensor>', 'with --nodes: feed this inner tensor instead of computing it (repeatable)', collect);
  addAttributionFlags(command, GRAPH_MODEL_FLAGS);
  command.action(async (dir: string, opts: InspectOptions) => {
      if (/\.keras$/i.test(dir)) return inspectKerasArchive(dir, opts);
      const { graphFileKind } = await import('../../convert/checkpoint/checkpoint.js');
      if (graphFileKind(dir)) return inspectGraphFile(dir, opts);
      const sm = await import('../../savedmodel/index.js');
      const info = await sm.readSavedModel(dir);
      if (opts.nodes !== undefined) {
        const { loadSavedModel } = await import('../../engines/tfjs/savedmodel.js');
        const model = await loadSavedModel(dir, { tags: (opts.tags ?? 'serve').split(','), signature: opts.nodes, ...(opts.cut ? { cutAt: opts.cut } : {}) });
        try {
          const g = await model.graph();
          const nodes = (g.converted.artifacts.modelTopology as { node: { name: string; op: string; input: string[] }[] }).node;
          if (opts.json) {
            process.stdout.write(`${JSON.stringify({ signature: opts.nodes, inputs: g.inputs, outputs: g.outputs, nodes: nodes.map((n) => ({ name: n.name, op: n.op, input: n.input })) }, null, 2)}\n`);
          } else {
            const lines = [`signature "${opts.nodes}": ${nodes.length} nodes, ${g.converted.weightBytes} weight bytes`];
            for (const n of nodes) lines.push(`${n.op.padEnd(24)} ${n.name}${n.input.length ? `  <- ${n.input.join(', ')}` : ''}`);
            process.stdout.write(`${lines.join('\n')}\n`);
          }
        } finally {
          model.dispose();
        }
        return;
      }
      let variables: { count: number; bytes: number; shards: number } | null = null;
      if (info.hasVariables) {
        const bundle = await sm.readTensorBundle(info.dir);
        let bytes = 0;
        for (const e of bundle.entries.values()) bytes += e.size;
        variables = { count: bundle.names.length, bytes, shards: bundle.header.numShards };
      }
      const metaGraphs = info.metaGraphs.map((mg) => ({
        tags: mg.tags,
        tensorflowVersion: mg.tensorflowVersion,
        strippedDefaultAttrs: mg.strippedDefaultAttrs,
        signatures: mg.signatures,
        opHistogram: sm.opHistogram(mg),
      }));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ dir: info.dir, kind: info.kind, schemaVersion: info.schemaVersion, variables, metaGraphs }, null, 2)}\n`);
        return;
      }
      const out: string[] = [`SavedModel ${info.dir} (${info.kind === 'tf2' ? 'TF2 object graph' : 'TF1 graph'})`];
      out.push(variables ? `variables: ${variables.count} tensors, ${variables.bytes} bytes in ${variables.shards} shard(s)` : 'variables: none');
      for (const mg of metaGraphs) {
        out.push('', `MetaGraphDef with tag-set: '${mg.tags.join(', ')}' contains the following SignatureDefs:  (TensorFlow ${mg.tensorflowVersion || 'unknown'})`);
        for (const s of mg.signatures) {
          out.push('', `signature_def['${s.name}']:`, '  The given SavedModel SignatureDef contains the following input(s):');
          for (const t of s.inputs) out.push(`    inputs['${t.alias}'] tensor_info:`, `        dtype: ${t.dataType}`, `        shape: ${shapeText(t.shape)}`, `        name: ${t.name}`);
          out.push('  The given SavedModel SignatureDef contains the following output(s):');
          for (const t of s.outputs) out.push(`    outputs['${t.alias}'] tensor_info:`, `        dtype: ${t.dataType}`, `        shape: ${shapeText(t.shape)}`, `        name: ${t.name}`);
          out.push(`  Method name is: ${s.methodName}`);
        }
        const hist = (h: Record<string, number>) => Object.entries(h).map(([op, n]) => `${op}(${n})`).join(' ') || 'none';
        out.push('', `ops in the graph: ${hist(mg.opHistogram.graph)}`, `ops in functions: ${hist(mg.opHistogram.library)}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}

async function inspectKerasArchive(path: string, opts: InspectOptions): Promise<void> {
  const { readKerasArchive } = await import('../../convert/keras/keras3.js');
  const a = await readKerasArchive(path);
  const inputShape = (a.config.build_config as { input_shape?: (number | null)[] } | undefined)?.input_shape;
  const last = a.layers[a.layers.length - 1];
  const summary = {
    path: a.path,
    format: 'keras3',
    kerasVersion: a.metadata.keras_version,
    dateSaved: a.metadata.date_saved,
    modelClass: a.config.class_name,
    input: inputShape ?? null,
    output: last ? { layer: last.name, className: last.className } : null,
    layers: a.layers,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const params = a.layers.reduce((n, l) => n + l.weightShapes.reduce((m, s) => m + s.reduce((x, y) => x * y, 1), 0), 0);
  const out = [
    `Keras 3 archive ${a.path} (Keras ${summary.kerasVersion ?? 'unknown'}, saved ${summary.dateSaved ?? 'unknown'})`,
    `${summary.modelClass}: input [${(inputShape ?? []).map((d) => d ?? '?').join(',')}], output from ${last?.name ?? '?'} (${last?.className ?? '?'}), ${a.layers.length} layers, ${params} parameters`,
    '',
    `${'layer'.padEnd(28)} ${'class'.padEnd(22)} ${'weights in model.weights.h5'.padEnd(34)} shapes`,
  ];
  for (const l of a.layers) {
    out.push(`${l.name.padEnd(28)} ${l.className.padEnd(22)} ${(l.weightShapes.length ? l.weightsPath : '-').padEnd(34)} ${l.weightShapes.map((s) => `[${s.join(',')}]`).join(' ')}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function inspectGraphFile(spec: string, opts: InspectOptions): Promise<void> {
  const { describeGraphFile } = await import('../../convert/checkpoint/describe.js');
  const d = await describeGraphFile(spec, graphModelFlags(opts));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
    return;
  }
  const out = [`${d.kind === 'checkpoint' ? 'TF1 checkpoint' : 'frozen GraphDef'} ${d.path}${d.tensorflowVersion ? ` (TensorFlow ${d.tensorflowVersion})` : ''}: ${d.nodes} nodes`];
  if (d.checkpoints) {
    out.push('', 'checkpoints:');
    for (const c of d.checkpoints) {
      const mark = c.prefix === d.chosen?.prefix ? '*' : ' ';
      out.push(`${mark} ${(c.step !== undefined ? `step ${c.step}` : 'no step').padEnd(14)} ${(c.date ?? '').padEnd(25)} ${c.prefix}${c.v1 ? '  (V1: not readable)' : c.complete ? '' : '  (incomplete)'}`);
    }
  }
  if (d.variables) {
    out.push('', `variables of ${d.chosen?.prefix}: ${d.variables.length}`);
    for (const v of d.variables) out.push(`  ${v.name.padEnd(32)} ${v.dataType.padEnd(10)} [${v.shape.join(',')}]`);
  }
  out.push('', 'placeholders:');
  for (const p of d.placeholders) out.push(`  ${p.name.padEnd(32)} ${p.dataType.padEnd(10)} ${shapeText(p.shape)}`);
  out.push('');
  if (d.cut) {
    out.push(`input:  ${d.cut.input.name} (${d.cut.input.op}, ${shapeText(d.cut.input.shape)}): ${d.cut.input.chosenBy}`);
    out.push(`output: ${d.cut.output.name} (${d.cut.output.op}): ${d.cut.output.chosenBy}`);
  } else {
    out.push(`cut: ${d.cutError}`);
  }
  out.push('', `ops: ${Object.entries(d.ops).map(([op, n]) => `${op}(${n})`).join(' ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
