/**
 * TF1-style variables and the Saver that restores them, as `tf.compat.v1` SavedModelBuilder
 * exports have them:
 *
 * - each variable is a `VariableV2` node read through `<var>/read` (Identity), with a zeros
 *   initializer (`<var>/Initializer/zeros` = Fill, assigned by `<var>/Assign`) and a VariableDef
 *   in the `variables` and `trainable_variables` collections;
 * - a sharded V2 Saver under `save/`: `save/Const` (the checkpoint prefix TensorFlow feeds),
 *   SaveV2 -> MergeV2Checkpoints -> `save/Identity` for saving, and RestoreV2 feeding one Assign
 *   per variable, grouped by `save/restore_shard` and `save/restore_all`, described by a SaverDef.
 *
 * TensorFlow Serving restores a SavedModel by feeding `<export>/variables/variables` to
 * `saver_def.filename_tensor_name` and running `saver_def.restore_op_name`; the values come from
 * the TensorBundle under each variable's name.
 *
 * @example
 * const vars = new VariableSet();
 * const w = vars.add(g, 'dense/kernel', kernelHost);   // "dense/kernel/read"
 * const saverDef = vars.addSaver(g);
 */
import { randomBytes } from 'node:crypto';
import { LensError } from '../core/errors.js';
import { encodeMessage } from '../proto/index.js';
import { dataTypeName, dataTypeOfDtype, type HostTensor } from '../tensor/index.js';
import { GraphBuilder, tensorRef } from './builder.js';

/** A variable of the exported graph and the value stored for it in the bundle. */
export interface ExportVariable {
  /** Node name of the VariableV2 (= its key in the bundle). */
  name: string;
  /** Name of the Identity that reads it. */
  read: string;
  value: HostTensor;
}

/** SaverDef message fields (saver.proto). */
export interface SaverDefMessage {
  filename_tensor_name: string;
  save_tensor_name: string;
  restore_op_name: string;
  max_to_keep: number;
  sharded: boolean;
  keep_checkpoint_every_n_hours: number;
  version: number;
}

const colocate = (node: string) => ({ _class: { list: { s: [new TextEncoder().encode(`loc:@${node}`)] } } });

/**
 * Weights written as Const nodes instead of variables: the frozen graph a compiler reads.
 *
 * @example
 * const exporter = new LayersExporter(g, constantWeights);
 */
export const constantWeights: Pick<VariableSet, 'add'> = { add: (g, name, value) => g.constant(name, value) };

/** The variables of one graph, in creation order. */
export class VariableSet {
  readonly list: ExportVariable[] = [];

  /**
   * Adds a float variable named `name` (in the builder's current scope) holding `value`, and
   * returns the name of its read tensor.
   */
  add(g: GraphBuilder, name: string, value: HostTensor): string {
    if (value.dtype !== 'float32') throw new LensError('INTERNAL', `variable ${name}: only float32 variables are exported, got ${value.dtype}`);
    const dtype = dataTypeName(dataTypeOfDtype(value.dtype));
    const shape = [...value.shape];
    const variable = g.op('VariableV2', [], { shape, dtype }, { name });
    const at = (suffix: string) => ({ name: `${variable}/${suffix}`, absolute: true });
    const dims = g.int32(`${variable}/Initializer/zeros/shape_as_tensor`, shape, { absolute: true });
    const zero = g.float(`${variable}/Initializer/zeros/Const`, 0, { absolute: true });
    const zeros = g.op('Fill', [dims, zero], { T: dtype }, at('Initializer/zeros'));
    g.op('Assign', [variable, zeros], { T: dtype, validate_shape: true, use_locking: true }, { ...at('Assign'), internal: colocate(variable) });
    const read = g.op('Identity', [variable], { T: dtype }, { ...at('read'), internal: colocate(variable) });
    this.list.push({ name: variable, read, value });
    return read;
  }

  /**
   * Adds the `save/` subgraph for every variable and returns its SaverDef. Variable names are
   * saved in sorted order, as TensorFlow's Saver does.
   */
  addSaver(g: GraphBuilder): SaverDefMessage {
    const sorted = [...this.list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const names = sorted.map((v) => v.name);
    const dtypes = sorted.map((v) => dataTypeName(dataTypeOfDtype(v.value.dtype)));
    const slices = names.map(() => '');
    return g.scope('save', () => {
      const filenameInput = g.string('filename/input', 'model');
      const filename = g.op('PlaceholderWithDefault', [filenameInput], { dtype: 'DT_STRING', shape: [] }, { name: 'filename' });
      const prefix = g.op('PlaceholderWithDefault', [filename], { dtype: 'DT_STRING', shape: [] }, { name: 'Const' });
      let saveTensor = prefix;
      let restoreAll: string;
      if (names.length === 0) {
        // An empty Saver still needs a restore op: TensorFlow Serving runs it.
        restoreAll = g.op('NoOp', [], {}, { name: 'restore_all' });
      } else {
        // Sharded saving writes <prefix>_temp_<id>/part-00000-of-00001 and merges it into <prefix>.
        const tempSuffix = g.string('StringJoin/inputs_1', `_temp_${randomBytes(16).toString('hex')}/part`);
        const joined = g.op('StringJoin', [prefix, tempSuffix], { N: 2, separator: '' }, { name: 'StringJoin' });
        const numShards = g.int32('num_shards', 1);
        const shard = g.int32('ShardedFilename/shard', 0);
        const sharded = g.op('ShardedFilename', [joined, shard, numShards], {}, { name: 'ShardedFilename' });
        const saveNames = g.string('SaveV2/tensor_names', names);
        const saveSlices = g.string('SaveV2/shape_and_slices', slices);
        const save = g.op('SaveV2', [sharded, saveNames, saveSlices, ...sorted.map((v) => v.name)], { dtypes }, { name: 'SaveV2' });
        const controlDependency = g.op('Identity', [sharded], { T: 'DT_STRING' }, { name: 'control_dependency', control: [save], internal: colocate(sharded) });
        const prefixes = g.op('Pack', [sharded], { N: 1, T: 'DT_STRING', axis: 0 }, { name: 'MergeV2Checkpoints/checkpoint_prefixes', control: [controlDependency] });
        const merge = g.op('MergeV2Checkpoints', [prefixes, prefix], { delete_old_dirs: true }, { name: 'MergeV2Checkpoints' });
        saveTensor = g.op('Identity', [prefix], { T: 'DT_STRING' }, { name: 'Identity', control: [merge, controlDependency] });
        const restoreNames = g.string('RestoreV2/tensor_names', names);
        const restoreSlices = g.string('RestoreV2/shape_and_slices', slices);
        const restore = g.op('RestoreV2', [prefix, restoreNames, restoreSlices], { dtypes }, { name: 'RestoreV2' });
        const assigns = sorted.map((v, k) =>
          g.op('Assign', [v.name, tensorRef(restore, k)], { T: dtypes[k]!, validate_shape: true, use_locking: true }, { name: 'Assign', internal: colocate(v.name) }),
        );
        const shardRestore = g.op('NoOp', [], {}, { name: 'restore_shard', control: assigns });
        restoreAll = g.op('NoOp', [], {}, { name: 'restore_all', control: [shardRestore] });
      }
      return {
        filename_tensor_name: `${prefix}:0`,
        save_tensor_name: `${saveTensor}:0`,
        restore_op_name: restoreAll,
        max_to_keep: 5,
        sharded: true,
        keep_checkpoint_every_n_hours: 10000,
        version: 2,
      };
    });
  }

  /** The `variables` / `trainable_variables` collection: one serialized VariableDef per variable. */
  collection(): { bytes_list: { value: Uint8Array[] } } {
    return {
      bytes_list: {
        value: this.list.map((v) =>
          encodeMessage('tensorflow.VariableDef', {
            variable_name: `${v.name}:0`,
            initial_value_name: `${v.name}/Initializer/zeros:0`,
            initializer_name: `${v.name}/Assign`,
            snapshot_name: `${v.read}:0`,
            trainable: true,
          }),
        ),
      },
    };
  }
}
