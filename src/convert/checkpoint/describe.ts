/**
 * What `lens inspect` shows of a TF1 checkpoint or a frozen GraphDef: the checkpoints of a model
 * directory (steps, dates, whether their files are complete), the graph's size and ops, its
 * placeholders, the variables of the chosen checkpoint, and where the graph would be cut.
 *
 * @example
 * const d = await describeGraphFile('../shared/models-external/tf1-checkpoint-cifar-dotnet');
 * d.cut?.input.name;  // 'Input:0'
 * d.checkpoints?.[0]; // { prefix: '.../model.ckpt', date: '2018-...', complete: true, ... }
 */
import { readTensorBundle } from '../../savedmodel/bundle.js';
import { tensorShapeOf } from '../../savedmodel/savedmodel.js';
import { dataTypeName } from '../../tensor/index.js';
import { errorMessage } from '../../core/errors.js';
import { listCheckpoints, type GraphFileKind } from './checkpoint.js';
import { cutTensors, readGraphFile, type CutTensor, type GraphFileOptions } from './graph-file.js';

export interface GraphFileDescription {
  kind: GraphFileKind;
  /** The graph file read (a checkpoint's .meta, or the .pb). */
  path: string;
  tensorflowVersion?: string;
  nodes: number;
  /** Ops and how often they occur, by name. */
  ops: Record<string, number>;
  placeholders: { name: string; dataType: string; shape: number[] | null }[];
  /** Every checkpoint of the model directory (checkpoints only). */
  checkpoints?: { prefix: string; step?: number; date?: string; complete: boolean; v1: boolean }[];
  /** The checkpoint whose variables would be frozen. */
  chosen?: { prefix: string; step?: number };
  /** Its variables (name, dtype, shape). */
  variables?: { name: string; dataType: string; shape: number[] }[];
  /** Where the graph would be cut, or why that cannot be inferred (then --input-tensor/--output-tensor are needed). */
  cut?: { input: CutTensor; output: CutTensor };
  cutError?: string;
}

/**
 * Describes a checkpoint (directory or prefix) or frozen graph without converting it.
 *
 * @example
 * const d = await describeGraphFile('../shared/models-external/frozen-graph-customvision-fruits/fruits_model.pb');
 * d.ops.Conv2D; // 25
 */
export async function describeGraphFile(spec: string, options: GraphFileOptions = {}): Promise<GraphFileDescription> {
  const file = await readGraphFile(spec, options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {});
  const nodes = file.graph.node ?? [];
  const ops: Record<string, number> = {};
  for (const n of nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;
  const placeholders = nodes
    .filter((n) => n.op === 'Placeholder')
    .map((n) => ({ name: `${n.name}:0`, dataType: dataTypeName(n.attr?.['dtype']?.type ?? 0), shape: tensorShapeOf(n.attr?.['shape']?.shape) }));
  const out: GraphFileDescription = {
    kind: file.kind,
    path: file.path,
    ...(file.metaGraph?.meta_info_def?.tensorflow_version ? { tensorflowVersion: file.metaGraph.meta_info_def.tensorflow_version } : {}),
    nodes: nodes.length,
    ops: Object.fromEntries(Object.entries(ops).sort(([a], [b]) => a.localeCompare(b))),
    placeholders,
  };
  if (file.checkpoint) {
    out.checkpoints = listCheckpoints(file.checkpoint.dir).map((c) => ({
      prefix: c.prefix,
      ...(c.step !== undefined ? { step: c.step } : {}),
      ...(c.date ? { date: c.date.toISOString() } : {}),
      complete: c.meta && c.index && c.shards.length > 0,
      v1: c.v1,
    }));
    out.chosen = { prefix: file.checkpoint.prefix, ...(file.checkpoint.step !== undefined ? { step: file.checkpoint.step } : {}) };
    const bundle = await readTensorBundle(file.checkpoint.prefix);
    out.variables = [...bundle.entries.values()].map((e) => ({ name: e.name, dataType: dataTypeName(e.dataType), shape: e.shape }));
  }
  try {
    out.cut = cutTensors(file, options);
  } catch (e) {
    out.cutError = errorMessage(e);
  }
  return out;
}
