/**
 * Checks a GraphDef (as decoded from a saved_model.pb) against TensorFlow's op definitions in
 * src/export/op-defs.ts, the way TensorFlow's graph importer would: every op is known, every attr
 * is declared with a value of the declared type (and an allowed value), required attrs are
 * present, each node has as many inputs as its args take, every input names an existing node
 * output whose dtype is the one the arg expects (ref inputs fed by ref outputs), control inputs
 * come last, and signature and Saver tensor names resolve. Attrs starting with "_" are
 * TensorFlow-internal and are not checked.
 *
 * @example
 * const problems = checkMetaGraph(metaGraphDef);
 * if (problems.length) console.error(problems.join('\n'));
 */
import { attrKind, type AttrValueMessage, type MetaGraphDefMessage, type NodeDefMessage } from '../savedmodel/savedmodel.js';
import { baseDataType, dataTypeName } from '../tensor/index.js';
import { parseTensorRef } from '../convert/graph/flatten.js';
import { defaultAttrValue, describeAttr, expectedKind, listItems } from '../graph/attrs.js';
import { argCount } from '../graph/builder.js';
import { opDefs, type OpArgFact, type OpDefFact } from '../graph/op-defs.js';

interface Typed {
  node: NodeDefMessage;
  def: OpDefFact;
  /** Attrs with defaults filled in. */
  attrs: Record<string, AttrValueMessage>;
}

/** The DataType numbers an arg stands for on a node (one per tensor). */
function argTypes(arg: OpArgFact, attrs: Record<string, AttrValueMessage>): (number | undefined)[] {
  const n = argCount(arg, attrs);
  if (arg.typeListAttr) return (attrs[arg.typeListAttr]?.list?.type ?? []).map((t) => baseDataType(t));
  const t = arg.type ? baseDataType(arg.type) : arg.typeAttr && attrs[arg.typeAttr]?.type !== undefined ? baseDataType(attrs[arg.typeAttr]!.type!) : undefined;
  return Array.from({ length: n }, () => t);
}

/** Output k of a node: its dtype and whether it is a ref. */
function outputOf(t: Typed, k: number): { type: number | undefined; ref: boolean } | undefined {
  let offset = 0;
  for (const arg of t.def.outputs) {
    const types = argTypes(arg, t.attrs);
    if (k < offset + types.length) return { type: types[k - offset], ref: Boolean(arg.isRef) };
    offset += types.length;
  }
  return undefined;
}

function typeName(t: number | undefined): string {
  return t === undefined ? '?' : dataTypeName(t);
}

/**
 * Problems of a GraphDef's nodes against the op table (an empty list when it is sound).
 *
 * @example
 * checkGraphDef({ node: [{ name: 'x', op: 'Placeholder', attr: {} }] });
 * // ['node "x" (Placeholder): required attr "dtype" is missing']
 */
export function checkGraphDef(graph: { node?: NodeDefMessage[] }): string[] {
  const problems: string[] = [];
  const typed = new Map<string, Typed>();
  const defs = opDefs();
  for (const node of graph.node ?? []) {
    const where = `node "${node.name}" (${node.op})`;
    if (!/^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$/.test(node.name)) problems.push(`${where}: invalid node name`);
    if (typed.has(node.name)) problems.push(`${where}: a node of this name already exists`);
    const def = defs.get(node.op);
    if (!def) {
      problems.push(`${where}: op ${node.op} is not in the op-definition table`);
      continue;
    }
    const attrs: Record<string, AttrValueMessage> = {};
    for (const [key, value] of Object.entries(node.attr ?? {})) {
      if (key.startsWith('_')) continue;
      const fact = def.attrs.find((a) => a.name === key);
      if (!fact) {
        problems.push(`${where}: ${node.op} has no attr "${key}"`);
        continue;
      }
      const kind = attrKind(value);
      if (kind !== expectedKind(fact.type)) {
        problems.push(`${where}: attr ${key} is declared ${fact.type} but holds a "${kind}" value`);
        continue;
      }
      if (fact.allowed) {
        const v = fact.type === 'type' ? dataTypeName(baseDataType(value.type ?? 0)) : new TextDecoder().decode(value.s ?? new Uint8Array());
        if (!fact.allowed.includes(v)) problems.push(`${where}: attr ${key} = ${describeAttr(value)} is not one of ${fact.allowed.join(', ')}`);
      }
      if (fact.minimum !== undefined) {
        const size = fact.type.startsWith('list(') ? listItems(value, fact.type).length : Number(value.i ?? 0);
        if (size < fact.minimum) problems.push(`${where}: attr ${key} is ${size}, below its minimum ${fact.minimum}`);
      }
      attrs[key] = value;
    }
    for (const fact of def.attrs) {
      if (attrs[fact.name] !== undefined) continue;
      const fallback = defaultAttrValue(fact, node.op);
      if (fallback) attrs[fact.name] = fallback;
      else problems.push(`${where}: required attr "${fact.name}" is missing`);
    }
    typed.set(node.name, { node, def, attrs });
  }

  for (const t of typed.values()) {
    const { node, def, attrs } = t;
    const where = `node "${node.name}" (${node.op})`;
    const inputs = node.input ?? [];
    const firstControl = inputs.findIndex((r) => r.startsWith('^'));
    const data = inputs.filter((r) => !r.startsWith('^'));
    if (firstControl >= 0 && inputs.slice(firstControl).some((r) => !r.startsWith('^'))) problems.push(`${where}: a data input follows a control input`);
    for (const c of inputs.filter((r) => r.startsWith('^'))) {
      if (!typed.has(c.slice(1))) problems.push(`${where}: control input ${c} names no node`);
    }
    const expected: { arg: OpArgFact; type: number | undefined }[] = def.inputs.flatMap((arg) => argTypes(arg, attrs).map((type) => ({ arg, type })));
    if (data.length !== expected.length) {
      problems.push(`${where}: has ${data.length} inputs, its op takes ${expected.length}`);
      continue;
    }
    data.forEach((ref, i) => {
      const [name, k] = parseTensorRef(ref);
      const producer = typed.get(name);
      if (!producer) {
        problems.push(`${where}: input ${i} "${ref}" names no node`);
        return;
      }
      const out = outputOf(producer, k);
      if (!out) {
        problems.push(`${where}: input ${i} "${ref}": ${producer.node.op} has no output ${k}`);
        return;
      }
      const want = expected[i]!;
      if (want.type !== undefined && out.type !== undefined && want.type !== out.type) {
        problems.push(`${where}: input ${i} (${want.arg.name}) must be ${typeName(want.type)}, "${ref}" is ${typeName(out.type)}`);
      }
      if (want.arg.isRef && !out.ref) problems.push(`${where}: input ${i} (${want.arg.name}) must be a ref, "${ref}" is not`);
    });
  }
  return problems;
}

/** The dtype of a tensor "node:k" of the graph, or a problem. */
function tensorType(graph: { node?: NodeDefMessage[] }, name: string): number | string {
  const [nodeName, k] = parseTensorRef(name);
  const node = (graph.node ?? []).find((n) => n.name === nodeName);
  if (!node) return `tensor "${name}" names no node`;
  const def = opDefs().get(node.op);
  if (!def) return `tensor "${name}": unknown op ${node.op}`;
  const attrs: Record<string, AttrValueMessage> = {};
  for (const fact of def.attrs) {
    const v = node.attr?.[fact.name] ?? defaultAttrValue(fact, node.op);
    if (v) attrs[fact.name] = v;
  }
  const out = outputOf({ node, def, attrs }, k);
  if (!out || out.type === undefined) return `tensor "${name}": ${node.op} has no output ${k}`;
  return out.type;
}

/**
 * {@link checkGraphDef} plus the MetaGraph's own references: each signature tensor exists with
 * the dtype the signature declares, method names are TensorFlow Serving's, the Saver's tensors
 * and restore op exist, and the stripped_op_list covers every op of the graph.
 *
 * @example
 * checkMetaGraph(decodeMessage('tensorflow.SavedModel', bytes, 'saved_model.pb').meta_graphs[0]);
 */
export function checkMetaGraph(mg: MetaGraphDefMessage): string[] {
  const graph = mg.graph_def ?? {};
  const problems = checkGraphDef(graph);
  const methods = new Set(['tensorflow/serving/predict', 'tensorflow/serving/classify', 'tensorflow/serving/regress']);
  for (const [key, sig] of Object.entries(mg.signature_def ?? {})) {
    if (!methods.has(sig.method_name ?? '')) problems.push(`signature "${key}": method_name "${sig.method_name}" is not a TensorFlow Serving method`);
    for (const [role, map] of [['input', sig.inputs], ['output', sig.outputs]] as const) {
      for (const [alias, info] of Object.entries(map ?? {})) {
        const t = tensorType(graph, info.name ?? '');
        if (typeof t === 'string') problems.push(`signature "${key}" ${role} "${alias}": ${t}`);
        else if (info.dtype !== undefined && baseDataType(info.dtype) !== t) {
          problems.push(`signature "${key}" ${role} "${alias}": declared ${typeName(baseDataType(info.dtype))}, tensor "${info.name}" is ${typeName(t)}`);
        }
      }
    }
  }
  const saver = mg.saver_def;
  if (saver) {
    const f = tensorType(graph, saver.filename_tensor_name ?? '');
    if (typeof f === 'string') problems.push(`saver_def filename tensor: ${f}`);
    else if (f !== 7) problems.push(`saver_def filename tensor "${saver.filename_tensor_name}" is ${typeName(f)}, not DT_STRING`);
    if (!(graph.node ?? []).some((n) => n.name === saver.restore_op_name)) problems.push(`saver_def restore op "${saver.restore_op_name}" names no node`);
  }
  const listed = new Set((mg.meta_info_def?.stripped_op_list?.op ?? []).map((o) => o.name));
  if (listed.size > 0) {
    for (const op of new Set((graph.node ?? []).map((n) => n.op))) if (!listed.has(op)) problems.push(`stripped_op_list lacks op ${op}`);
  }
  return problems;
}
