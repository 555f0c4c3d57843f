/**
 * Building a TensorFlow GraphDef node by node, through the op-definition table: every node's
 * op, attrs (names, types, allowed values, minimums, required ones) and input count are checked
 * as it is added, and attrs equal to the op's default are left out (the MetaGraph then says
 * `stripped_default_attrs`). Names follow TensorFlow's conventions: `scope/Op`, then `Op_1`, `Op_2`.
 *
 * @example
 * const g = new GraphBuilder();
 * const x = g.op('Placeholder', [], { dtype: 'DT_FLOAT', shape: [-1, 3] }, { name: 'x' });
 * const y = g.op('Relu', [x], { T: 'DT_FLOAT' });           // "Relu"
 * g.nodes; // NodeDef messages, ready for encodeMessage('tensorflow.GraphDef', ...)
 */
import { LensError } from '../core/errors.js';
import type { AttrValueMessage, NodeDefMessage } from '../savedmodel/savedmodel.js';
import { dataTypeName, encodeTensorProto, type HostTensor } from '../tensor/index.js';
import { attrValueOf, defaultAttrValue, listItems, sameAttrValue, type AttrInput } from './attrs.js';
import { opDef, type OpArgFact, type OpDefFact } from './op-defs.js';

/** Options of {@link GraphBuilder.op}. */
export interface NodeOptions {
  /** Node name within the current scope (made unique); default: the op name. */
  name?: string;
  /** `name` is a full node name (no scope prefix); it is still made unique. */
  absolute?: boolean;
  /** Nodes that must run first (control inputs, "^name"). */
  control?: readonly string[];
  /** TensorFlow-internal attrs ("_class" colocation and the like), passed through unchecked. */
  internal?: Record<string, AttrValueMessage>;
}

/** Characters TensorFlow allows in node names after the first: [A-Za-z0-9_.\-/>]. */
export function sanitizeNodeName(name: string): string {
  const body = name.replace(/[^A-Za-z0-9_.\-/>]/g, '_').replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
  return /^[A-Za-z0-9.]/.test(body) ? body : `n${body}`;
}

/** "node" for output 0, "node:k" otherwise (TensorFlow's tensor naming in NodeDef inputs). */
export function tensorRef(node: string, output = 0): string {
  return output === 0 ? node : `${node}:${output}`;
}

/** Number of tensors an arg stands for on a node with these attrs. */
export function argCount(arg: OpArgFact, attrs: Record<string, AttrValueMessage>): number {
  if (arg.numberAttr) return Number(attrs[arg.numberAttr]?.i ?? 0);
  if (arg.typeListAttr) return attrs[arg.typeListAttr]?.list?.type?.length ?? 0;
  return 1;
}

/** A graph under construction. */
export class GraphBuilder {
  readonly nodes: NodeDefMessage[] = [];
  /**
   * @param options.keepDefaultAttrs write every attr, defaults included (for consumers without
   *   the op definitions, such as the in-memory conversion to run a built graph).
   */
  constructor(private readonly options: { keepDefaultAttrs?: boolean } = {}) {}

  private readonly taken = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly used = new Set<string>();
  private prefix = '';

  /** Ops used so far (for the MetaGraph's stripped_op_list). */
  get opsUsed(): ReadonlySet<string> {
    return this.used;
  }

  /**
   * A free node name for `base` in the current scope: `scope/base`, else `scope/base_1`, ...
   * (TensorFlow's scheme, so that names read like a Python-built graph).
   */
  uniqueName(base: string, absolute = false): string {
    const full = sanitizeNodeName(absolute ? base : this.prefix + base);
    if (!this.taken.has(full)) return full;
    let n = this.counters.get(full) ?? 1;
    while (this.taken.has(`${full}_${n}`)) n++;
    this.counters.set(full, n + 1);
    return `${full}_${n}`;
  }

  /** Runs `fn` with names prefixed by `name/` (nested scopes add up). */
  scope<T>(name: string, fn: () => T): T {
    const saved = this.prefix;
    this.prefix = `${saved}${sanitizeNodeName(name)}/`;
    try {
      return fn();
    } finally {
      this.prefix = saved;
    }
  }

  /** Same as {@link scope}, for async work. */
  async scopeAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const saved = this.prefix;
    this.prefix = `${saved}${sanitizeNodeName(name)}/`;
    try {
      return await fn();
    } finally {
      this.prefix = saved;
    }
  }

  /**
   * Adds a node and returns its name (= its output 0). Throws INTERNAL when the node does not
   * match the op's definition: unknown attr, wrong value, missing required attr, wrong number
   * of inputs.
   */
  op(opName: string, inputs: readonly string[], attrs: Record<string, AttrInput> = {}, options: NodeOptions = {}): string {
    const def = opDef(opName);
    const name = this.uniqueName(options.name ?? opName, options.absolute);
    const where = `node "${name}" (${opName})`;
    const encoded: Record<string, AttrValueMessage> = {};
    for (const [key, value] of Object.entries(attrs)) {
      const fact = def.attrs.find((a) => a.name === key);
      if (!fact) throw new LensError('INTERNAL', `${where}: ${opName} has no attr "${key}"`);
      const v = attrValueOf(fact.type, value, `${where} attr ${key}`);
      checkAllowed(def, key, v, where);
      encoded[key] = v;
    }
    const full: Record<string, AttrValueMessage> = {};
    for (const fact of def.attrs) {
      const given = encoded[fact.name];
      const fallback = defaultAttrValue(fact, opName);
      if (given === undefined && fallback === undefined) throw new LensError('INTERNAL', `${where}: required attr "${fact.name}" is missing`);
      full[fact.name] = given ?? fallback!;
    }
    const expected = def.inputs.reduce((n, arg) => n + argCount(arg, full), 0);
    if (inputs.length !== expected) throw new LensError('INTERNAL', `${where}: takes ${expected} inputs, got ${inputs.length}`);
    const attr: Record<string, AttrValueMessage> = { ...(options.internal ?? {}) };
    for (const fact of def.attrs) {
      const value = full[fact.name]!;
      const fallback = defaultAttrValue(fact, opName);
      // Left out when equal to the default: consumers add defaults back from their own registry.
      if (this.options.keepDefaultAttrs || !fallback || !sameAttrValue(value, fallback)) attr[fact.name] = value;
    }
    this.taken.add(name);
    this.used.add(opName);
    this.nodes.push({ name, op: opName, input: [...inputs, ...(options.control ?? []).map((c) => `^${c}`)], attr });
    return name;
  }

  /** A Const node holding a host tensor (numeric values as raw tensor_content). */
  constant(name: string, value: HostTensor, options: Omit<NodeOptions, 'name'> = {}): string {
    const tensor = encodeTensorProto(value);
    return this.op('Const', [], { value: tensor, dtype: tensor.dtype as number }, { ...options, name });
  }

  /** An int32 Const (a scalar when `values` is a number). */
  int32(name: string, values: number | readonly number[], options: Omit<NodeOptions, 'name'> = {}): string {
    const list = typeof values === 'number' ? [values] : values;
    return this.constant(name, { dtype: 'int32', shape: typeof values === 'number' ? [] : [list.length], values: Int32Array.from(list) }, options);
  }

  /** A float32 Const (a scalar when `values` is a number). */
  float(name: string, values: number | readonly number[], options: Omit<NodeOptions, 'name'> = {}): string {
    const list = typeof values === 'number' ? [values] : values;
    return this.constant(name, { dtype: 'float32', shape: typeof values === 'number' ? [] : [list.length], values: Float32Array.from(list) }, options);
  }

  /** A string Const (a scalar when `values` is a string). */
  string(name: string, values: string | readonly string[], options: Omit<NodeOptions, 'name'> = {}): string {
    const list = typeof values === 'string' ? [values] : values;
    const enc = new TextEncoder();
    return this.constant(name, { dtype: 'string', shape: typeof values === 'string' ? [] : [list.length], values: list.map((s) => enc.encode(s)) }, options);
  }
}

function checkAllowed(def: OpDefFact, key: string, v: AttrValueMessage, where: string): void {
  const fact = def.attrs.find((a) => a.name === key)!;
  if (fact.allowed) {
    const value = fact.type === 'type' ? dataTypeName(v.type ?? 0) : fact.type === 'string' ? new TextDecoder().decode(v.s) : undefined;
    if (value !== undefined && !fact.allowed.includes(value)) {
      throw new LensError('INTERNAL', `${where}: attr ${key} = ${value} is not one of ${fact.allowed.join(', ')}`);
    }
  }
  if (fact.minimum !== undefined) {
    const size = fact.type.startsWith('list(') ? listItems(v, fact.type).length : Number(v.i ?? 0);
    if (size < fact.minimum) throw new LensError('INTERNAL', `${where}: attr ${key} must be at least ${fact.minimum}, got ${size}`);
  }
}
