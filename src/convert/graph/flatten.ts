/**
 * Flattening a TensorFlow graph: function calls (PartitionedCall, StatefulPartitionedCall, or a
 * node whose op is a library function) are replaced by the called function's body, recursively,
 * with body nodes renamed `<call node>/<body node>`, function arguments bound to the call's
 * inputs, and body references in "node:output_arg:index" form turned into flat "node:k" indexes
 * using the op definitions. Missing attrs are filled from op defaults (SavedModels written with
 * `stripped_default_attrs` leave them out).
 *
 * The result is a plain map of nodes whose inputs are all "node:k" tensor references, and an alias
 * table that maps each former call output ("call:k") to the tensor that now produces it.
 */
import { LensError } from '../../core/errors.js';
import { builtinOpDefs } from './builtin-ops.js';
import type {
  AttrValueMessage,
  FunctionDefMessage,
  GraphDefMessage,
  NodeDefMessage,
  OpDefMessage,
} from '../../savedmodel/savedmodel.js';

/** A node of the flat graph. `inputs` are "node:k" references; control inputs are node names. */
export interface FlatNode {
  name: string;
  op: string;
  inputs: string[];
  controlInputs: string[];
  attr: Record<string, AttrValueMessage>;
}

export const CALL_OPS = new Set(['PartitionedCall', 'StatefulPartitionedCall']);
const MAX_CALL_DEPTH = 64;

/** Op definitions (from the MetaGraph's stripped_op_list) and library functions, by name. */
export class OpRegistry {
  private readonly ops = new Map<string, OpDefMessage>();
  readonly functions = new Map<string, FunctionDefMessage>();

  constructor(opList: readonly OpDefMessage[], library: readonly FunctionDefMessage[]) {
    // The MetaGraph's own definitions win; built-in facts cover ops used only inside functions.
    for (const op of builtinOpDefs()) this.ops.set(op.name, op);
    for (const op of opList) this.ops.set(op.name, op);
    for (const f of library) this.functions.set(f.signature.name, f);
  }

  /** The op definition of `op`, or the signature of the library function called `op`. */
  opDef(op: string): OpDefMessage | undefined {
    return this.ops.get(op) ?? this.functions.get(op)?.signature;
  }

  /** Adds attrs the node leaves out with the op's default values (never overrides). */
  fillDefaults(node: { op: string; attr: Record<string, AttrValueMessage> }): void {
    for (const a of this.opDef(node.op)?.attr ?? []) {
      if (node.attr[a.name] === undefined && a.default_value !== undefined) node.attr[a.name] = a.default_value;
    }
  }

  /** Number of tensors an arg stands for on a node (lists: number_attr or type_list_attr). */
  private argSize(arg: { number_attr?: string; type_list_attr?: string }, attr: Record<string, AttrValueMessage>): number {
    if (arg.number_attr) return Number(attr[arg.number_attr]?.i ?? 0);
    if (arg.type_list_attr) return attr[arg.type_list_attr]?.list?.type?.length ?? 0;
    return 1;
  }

  /**
   * Flat output index of "node:argName:index". Unknown ops (no definition anywhere) are taken to
   * have one output arg, which holds for all common ops.
   */
  outputIndex(node: { name: string; op: string; attr: Record<string, AttrValueMessage> }, argName: string, index: number): number {
    if (CALL_OPS.has(node.op)) return index;
    const def = this.opDef(node.op);
    if (!def?.output_arg?.length) return index;
    let offset = 0;
    for (const arg of def.output_arg ?? []) {
      if (arg.name === argName) return offset + index;
      offset += this.argSize(arg, node.attr);
    }
    throw new LensError('SAVEDMODEL_CORRUPT', `node "${node.name}" (op ${node.op}) has no output "${argName}"`);
  }

  /** The DataType of output k of a node (from its op definition), or undefined when unknown. */
  outputType(node: { op: string; attr: Record<string, AttrValueMessage> }, k: number): number | undefined {
    if (CALL_OPS.has(node.op)) return node.attr['Tout']?.list?.type?.[k];
    const def = this.opDef(node.op);
    if (!def?.output_arg?.length) {
      // Single-output ops without a definition here: their dtype attr names the output type.
      return k === 0 ? (node.attr['T']?.type ?? node.attr['dtype']?.type ?? node.attr['DstT']?.type) : undefined;
    }
    let offset = 0;
    for (const arg of def?.output_arg ?? []) {
      const size = this.argSize(arg, node.attr);
      if (k < offset + size) {
        if (arg.type) return arg.type;
        if (arg.type_attr) return node.attr[arg.type_attr]?.type;
        if (arg.type_list_attr) return node.attr[arg.type_list_attr]?.list?.type?.[k - offset];
        return undefined;
      }
      offset += size;
    }
    return undefined;
  }
}

/** "node", "node:1" -> ["node", 1]; control inputs are handled by the caller. */
export function parseTensorRef(ref: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? [m[1]!, Number(m[2])] : [ref, 0];
}

/** The called function of a call node, or undefined when the node is not a call. */
function calledFunction(node: { op: string; attr: Record<string, AttrValueMessage> }, registry: OpRegistry): string | undefined {
  if (CALL_OPS.has(node.op)) return node.attr['f']?.func?.name;
  return registry.functions.has(node.op) ? node.op : undefined;
}

/** Replaces attr placeholders (polymorphic function bodies) with the caller's attr values. */
function bindPlaceholders(attr: Record<string, AttrValueMessage>, bound: Record<string, AttrValueMessage>, where: string): Record<string, AttrValueMessage> {
  const out: Record<string, AttrValueMessage> = {};
  for (const [k, v] of Object.entries(attr)) {
    if (v.placeholder) {
      const value = bound[v.placeholder];
      if (!value) throw new LensError('SAVEDMODEL_CORRUPT', `${where}: attr "${k}" refers to function attr "${v.placeholder}", which the call does not set`);
      out[k] = value;
    } else {
      out[k] = v;
    }
  }
  return out;
}

export interface FlatGraph {
  nodes: Map<string, FlatNode>;
  /** Former call outputs ("call:k") -> the "node:k" that now computes them. */
  aliases: Map<string, string>;
  registry: OpRegistry;
  /** Follows aliases to the tensor that really computes `ref` ("node" is read as "node:0"). */
  resolve(ref: string): string;
}

/**
 * Flattens `graph`: inlines every function call reachable from `roots` (node names; all nodes
 * when omitted). Top-level nodes keep their names.
 *
 * @example
 * const flat = flattenGraph(metaGraph.graph_def, opList, ['StatefulPartitionedCall_5']);
 * flat.resolve('StatefulPartitionedCall_5:0'); // 'StatefulPartitionedCall_5/add:0'
 */
export function flattenGraph(graph: GraphDefMessage, opList: readonly OpDefMessage[], roots?: readonly string[]): FlatGraph {
  const registry = new OpRegistry(opList, graph.library?.function ?? []);
  const top = new Map<string, NodeDefMessage>();
  for (const n of graph.node ?? []) top.set(n.name, n);
  const nodes = new Map<string, FlatNode>();
  const aliases = new Map<string, string>();

  const emit = (node: FlatNode, depth: number): void => {
    registry.fillDefaults(node);
    const fname = calledFunction(node, registry);
    if (fname === undefined) {
      if (nodes.has(node.name)) throw new LensError('SAVEDMODEL_CORRUPT', `two nodes are named "${node.name}" after inlining`);
      nodes.set(node.name, node);
      return;
    }
    inline(node, fname, depth + 1);
  };

  const inline = (call: FlatNode, fname: string, depth: number): void => {
    if (depth > MAX_CALL_DEPTH) throw new LensError('SAVEDMODEL_UNSUPPORTED', `function calls nest deeper than ${MAX_CALL_DEPTH} at node "${call.name}" (recursive function?)`);
    const fdef = registry.functions.get(fname);
    if (!fdef) throw new LensError('SAVEDMODEL_CORRUPT', `node "${call.name}" calls function "${fname}", which is not in the graph's library`);
    const args = fdef.signature.input_arg ?? [];
    if (args.length !== call.inputs.length) {
      throw new LensError('SAVEDMODEL_CORRUPT', `node "${call.name}" passes ${call.inputs.length} inputs to function "${fname}", which takes ${args.length}`);
    }
    const bindings = new Map(args.map((a, i) => [a.name, call.inputs[i]!]));
    const body = new Map((fdef.node_def ?? []).map((n) => [n.name, n]));
    const prefix = `${call.name}/`;
    const boundAttrs = { ...(fdef.attr ?? {}), ...(call.attr['f']?.func?.attr ?? {}), ...(CALL_OPS.has(call.op) ? {} : call.attr) };
    const attrsOf = new Map<string, Record<string, AttrValueMessage>>();
    for (const n of body.values()) {
      const attr = bindPlaceholders(n.attr ?? {}, boundAttrs, `function ${fname}, node "${n.name}"`);
      registry.fillDefaults({ op: n.op, attr });
      attrsOf.set(n.name, attr);
    }
    // A body reference is an argument name, "node:output_arg:index", or (rarely) "node"/"node:k".
    const translate = (ref: string): string => {
      const parts = ref.split(':');
      const bound = bindings.get(parts[0]!);
      if (bound !== undefined && !body.has(parts[0]!)) return bound;
      const target = body.get(parts[0]!);
      if (!target) throw new LensError('SAVEDMODEL_CORRUPT', `function ${fname} refers to "${ref}", which is neither an argument nor a node`);
      if (parts.length >= 3) {
        const k = registry.outputIndex({ name: target.name, op: target.op, attr: attrsOf.get(target.name)! }, parts[1]!, Number(parts[2]));
        return `${prefix}${target.name}:${k}`;
      }
      return `${prefix}${target.name}:${parts.length === 2 ? Number(parts[1]) : 0}`;
    };
    for (const n of body.values()) {
      const inputs: string[] = [];
      const controlInputs: string[] = [];
      for (const ref of n.input ?? []) {
        if (ref.startsWith('^')) {
          if (body.has(ref.slice(1))) controlInputs.push(prefix + ref.slice(1));
        } else {
          inputs.push(translate(ref));
        }
      }
      emit({ name: prefix + n.name, op: n.op, inputs, controlInputs, attr: attrsOf.get(n.name)! }, depth);
    }
    (fdef.signature.output_arg ?? []).forEach((arg, k) => {
      const ret = fdef.ret?.[arg.name];
      if (ret === undefined) throw new LensError('SAVEDMODEL_CORRUPT', `function ${fname} does not say which tensor its output "${arg.name}" is`);
      aliases.set(`${call.name}:${k}`, translate(ret));
    });
  };

  const topNode = (n: NodeDefMessage): FlatNode => {
    const inputs: string[] = [];
    const controlInputs: string[] = [];
    for (const ref of n.input ?? []) {
      if (ref.startsWith('^')) controlInputs.push(ref.slice(1));
      else {
        const [name, k] = parseTensorRef(ref);
        inputs.push(`${name}:${k}`);
      }
    }
    return { name: n.name, op: n.op, inputs, controlInputs, attr: { ...(n.attr ?? {}) } };
  };

  // Top-level nodes reachable from the roots (all when no roots), following data and control edges.
  const wanted = new Set<string>();
  const stack = roots ? [...roots] : [...top.keys()];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (wanted.has(name)) continue;
    const n = top.get(name);
    if (!n) continue;
    wanted.add(name);
    for (const ref of n.input ?? []) stack.push(ref.startsWith('^') ? ref.slice(1) : parseTensorRef(ref)[0]);
  }
  for (const n of graph.node ?? []) if (wanted.has(n.name)) emit(topNode(n), 0);

  const resolve = (ref: string): string => {
    const [name, k] = parseTensorRef(ref);
    let cur = `${name}:${k}`;
    for (let hops = 0; aliases.has(cur); hops++) {
      if (hops > 10_000) throw new LensError('SAVEDMODEL_CORRUPT', `tensor "${ref}" is defined in a cycle of function outputs`);
      cur = aliases.get(cur)!;
    }
    return cur;
  };
  for (const node of nodes.values()) node.inputs = node.inputs.map(resolve);
  return { nodes, aliases, registry, resolve };
}
