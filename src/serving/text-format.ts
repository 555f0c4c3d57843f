/**
 * Protocol Buffers text format (the `.pbtxt` / `--model_config_file` syntax) parsed against a
 * message type of protos/. protobufjs reads binary and JSON but not text format, and no maintained
 * npm package does, so this is a small reader driven by protobufjs's reflection: it returns the
 * plain object that `Type.fromObject` accepts, with field names as in the .proto (snake_case).
 *
 * Supports what real config files use: `field: value`, `field { ... }` / `field: { ... }` /
 * `field < ... >`, repeated fields (repeated entries or `[a, b]` lists), maps as repeated
 * `{ key: ... value: ... }` entries, enums by name or number, single- or double-quoted strings with
 * C escapes (adjacent strings concatenate), integers (decimal, hex, octal), floats incl. `inf`/`nan`,
 * booleans (`true`/`false`/`t`/`f`/`1`/`0`), `#` comments, and `,`/`;` separators.
 *
 * @example
 * const config = parseTextFormat('tensorflow.serving.ModelServerConfig',
 *   "model_config_list { config { name: 'm' base_path: '/models/m' } }", 'models.config');
 */
import protobuf from 'protobufjs';
import { LensError } from '../core/errors.js';
import { protoType } from '../proto/index.js';

interface Token {
  kind: 'ident' | 'number' | 'string' | 'symbol';
  text: string;
  /** Decoded bytes of a string token. */
  bytes?: Buffer;
  line: number;
  col: number;
}

class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private peeked: Token | null = null;

  constructor(
    private readonly src: string,
    private readonly what: string,
  ) {}

  fail(message: string, at?: { line: number; col: number }): never {
    const where = at ?? { line: this.line, col: this.pos - this.lineStart + 1 };
    throw new LensError('INVALID_ARGUMENT', `${this.what}:${where.line}:${where.col}: ${message}`);
  }

  peek(): Token | null {
    if (this.peeked === null) this.peeked = this.read();
    return this.peeked;
  }

  next(): Token | null {
    const t = this.peek();
    this.peeked = null;
    return t;
  }

  expect(text: string): Token {
    const t = this.next();
    if (!t || t.text !== text || t.kind === 'string') this.fail(`expected "${text}", found ${t ? `"${t.text}"` : 'end of input'}`, t ?? undefined);
    return t;
  }

  private skipSpaceAndComments(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === '\n') {
        this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') this.pos++;
      else if (c === '#') {
        while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
      } else break;
    }
  }

  private read(): Token | null {
    this.skipSpaceAndComments();
    const s = this.src;
    if (this.pos >= s.length) return null;
    const line = this.line;
    const col = this.pos - this.lineStart + 1;
    const c = s[this.pos]!;
    if (c === '"' || c === "'") return { kind: 'string', ...this.readString(c), line, col };
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.pos, this.pos + 256))!;
      this.pos += m[0].length;
      return { kind: 'ident', text: m[0], line, col };
    }
    if (/[0-9.+-]/.test(c)) {
      const m = /^[-+]?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[fF]?|inf(?:inity)?|nan)/i.exec(s.slice(this.pos, this.pos + 256));
      if (m && m[0] !== '-' && m[0] !== '+') {
        this.pos += m[0].length;
        return { kind: 'number', text: m[0], line, col };
      }
    }
    if ('{}<>[]:,;/'.includes(c)) {
      this.pos++;
      return { kind: 'symbol', text: c, line, col };
    }
    return this.fail(`unexpected character "${c}"`);
  }

  private readString(quote: string): { text: string; bytes: Buffer } {
    const s = this.src;
    this.pos++;
    const out: number[] = [];
    const pushUtf8 = (str: string): void => {
      for (const b of Buffer.from(str, 'utf8')) out.push(b);
    };
    while (true) {
      if (this.pos >= s.length || s[this.pos] === '\n') this.fail('string is not closed before the end of the line');
      const c = s[this.pos++]!;
      if (c === quote) break;
      if (c !== '\\') {
        pushUtf8(c);
        continue;
      }
      const e = s[this.pos++];
      const simple: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };
      if (e !== undefined && e in simple) out.push(simple[e]!);
      else if (e !== undefined && /[0-7]/.test(e)) {
        let oct = e;
        while (oct.length < 3 && /[0-7]/.test(s[this.pos] ?? '')) oct += s[this.pos++];
        out.push(parseInt(oct, 8) & 0xff);
      } else if (e === 'x' || e === 'X') {
        let hex = '';
        while (hex.length < 2 && /[0-9a-fA-F]/.test(s[this.pos] ?? '')) hex += s[this.pos++];
        if (!hex) this.fail('\\x escape without hex digits');
        out.push(parseInt(hex, 16));
      } else if (e === 'u' || e === 'U') {
        const len = e === 'u' ? 4 : 8;
        const hex = s.slice(this.pos, this.pos + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(`\\${e} escape needs ${len} hex digits`);
        this.pos += len;
        pushUtf8(String.fromCodePoint(parseInt(hex, 16)));
      } else this.fail(`invalid escape "\\${e ?? ''}" in string`);
    }
    const bytes = Buffer.from(out);
    return { text: bytes.toString('utf8'), bytes };
  }
}

const INT_TYPES = new Set(['int32', 'sint32', 'sfixed32', 'int64', 'sint64', 'sfixed64']);
const UINT_TYPES = new Set(['uint32', 'fixed32', 'uint64', 'fixed64']);

function parseIntToken(lex: Lexer, t: Token, type: string): number {
  if (t.kind !== 'number') lex.fail(`expected an integer for a ${type} field, found "${t.text}"`, t);
  let text = t.text;
  const neg = text.startsWith('-');
  if (neg || text.startsWith('+')) text = text.slice(1);
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^0[0-7]+$/.test(text)) v = parseInt(text, 8);
  else if (/^[0-9]+$/.test(text)) v = Number(text);
  else return lex.fail(`expected an integer for a ${type} field, found "${t.text}"`, t);
  if (neg) v = -v;
  if (UINT_TYPES.has(type) && v < 0) lex.fail(`negative value ${t.text} for an unsigned ${type} field`, t);
  const bits = type.endsWith('32') ? 32 : 64;
  const lo = UINT_TYPES.has(type) ? 0 : -(2 ** (bits - 1));
  const hi = UINT_TYPES.has(type) ? 2 ** bits - 1 : 2 ** (bits - 1) - 1;
  if (v < lo || v > hi) lex.fail(`integer ${t.text} is out of range for a ${type} field`, t);
  return v;
}

function parseScalar(lex: Lexer, field: protobuf.FieldBase, t: Token): unknown {
  const type = field.type;
  if (field.resolvedType instanceof protobuf.Enum) {
    const e = field.resolvedType;
    if (t.kind === 'ident') {
      if (!(t.text in e.values)) lex.fail(`unknown enumeration value "${t.text}" for field "${field.name}" (${e.fullName.slice(1)})`, t);
      return t.text;
    }
    return parseIntToken(lex, t, 'int32');
  }
  if (type === 'string' || type === 'bytes') {
    if (t.kind !== 'string') lex.fail(`expected a string for field "${field.name}", found "${t.text}"`, t);
    const parts: Buffer[] = [t.bytes!];
    while (lex.peek()?.kind === 'string') parts.push(lex.next()!.bytes!);
    const all = Buffer.concat(parts);
    return type === 'bytes' ? all : all.toString('utf8');
  }
  if (type === 'bool') {
    if (['true', 't', 'True'].includes(t.text) || (t.kind === 'number' && t.text === '1')) return true;
    if (['false', 'f', 'False'].includes(t.text) || (t.kind === 'number' && t.text === '0')) return false;
    return lex.fail(`expected true or false for field "${field.name}", found "${t.text}"`, t);
  }
  if (type === 'float' || type === 'double') {
    const text = t.text.toLowerCase().replace(/f$/, '');
    if (t.kind === 'ident' || t.kind === 'number') {
      const sign = text.startsWith('-') ? -1 : 1;
      const body = text.replace(/^[-+]/, '');
      if (body === 'inf' || body === 'infinity') return sign * Infinity;
      if (body === 'nan') return NaN;
      const v = Number(text);
      if (t.kind === 'number' && !Number.isNaN(v)) return v;
    }
    return lex.fail(`expected a number for field "${field.name}", found "${t.text}"`, t);
  }
  if (INT_TYPES.has(type) || UINT_TYPES.has(type)) return parseIntToken(lex, t, type);
  return lex.fail(`field "${field.name}" has unsupported type ${type}`, t);
}

function parseMessageBody(lex: Lexer, type: protobuf.Type, close: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const setOneofs = new Map<string, string>();
  while (true) {
    const t = lex.peek();
    if (t === null) {
      if (close !== null) lex.fail(`expected "${close}" to close ${type.fullName.slice(1)}, found end of input`);
      return out;
    }
    if (close !== null && t.kind === 'symbol' && t.text === close) {
      lex.next();
      return out;
    }
    if (t.kind === 'symbol' && t.text === '[') {
      lex.fail(`extensions and expanded Any fields ("[...]") are not supported in ${type.fullName.slice(1)}`, t);
    }
    const nameTok = lex.next()!;
    if (nameTok.kind !== 'ident') lex.fail(`expected a field name in ${type.fullName.slice(1)}, found "${nameTok.text}"`, nameTok);
    const field = type.fields[nameTok.text];
    if (!field) lex.fail(`Message type "${type.fullName.slice(1)}" has no field named "${nameTok.text}".`, nameTok);
    field.resolve();
    if (field.partOf) {
      const prev = setOneofs.get(field.partOf.name);
      if (prev !== undefined && prev !== field.name) {
        lex.fail(`field "${field.name}" is specified along with field "${prev}", another member of oneof "${field.partOf.name}"`, nameTok);
      }
      setOneofs.set(field.partOf.name, field.name);
    }
    const isMessage = field.resolvedType instanceof protobuf.Type;
    const isMap = field instanceof protobuf.MapField;
    const readOne = (): unknown => {
      const open = lex.peek();
      if (isMessage || isMap) {
        if (!open || (open.text !== '{' && open.text !== '<') || open.kind === 'string') {
          lex.fail(`expected "{" to open field "${field.name}", found ${open ? `"${open.text}"` : 'end of input'}`, open ?? undefined);
        }
        lex.next();
        const closing = open.text === '{' ? '}' : '>';
        if (isMap) return parseMapEntry(lex, field as protobuf.MapField, closing);
        return parseMessageBody(lex, field.resolvedType as protobuf.Type, closing);
      }
      const v = lex.next();
      if (!v) return lex.fail(`expected a value for field "${field.name}", found end of input`);
      return parseScalar(lex, field, v);
    };
    const colon = lex.peek();
    const hasColon = colon?.kind === 'symbol' && colon.text === ':';
    if (hasColon) lex.next();
    else if (!(isMessage || isMap)) lex.fail(`expected ":" after field "${field.name}"`, colon ?? undefined);
    const values: unknown[] = [];
    const list = lex.peek();
    if (list?.kind === 'symbol' && list.text === '[') {
      if (!field.repeated && !isMap) lex.fail(`field "${field.name}" is not repeated and cannot take a list`, list);
      lex.next();
      if (lex.peek()?.text !== ']') {
        while (true) {
          values.push(readOne());
          const sep = lex.next();
          if (sep?.text === ']') break;
          if (sep?.text !== ',') lex.fail(`expected "," or "]" in the list of field "${field.name}"`, sep ?? undefined);
        }
      } else lex.next();
    } else values.push(readOne());
    if (isMap) {
      const map = (out[field.name] ??= {}) as Record<string, unknown>;
      for (const entry of values as { key: string; value: unknown }[]) map[entry.key] = entry.value;
    } else if (field.repeated) {
      ((out[field.name] ??= []) as unknown[]).push(...values);
    } else {
      if (field.name in out) lex.fail(`non-repeated field "${field.name}" is specified multiple times`, nameTok);
      out[field.name] = values[0];
    }
    const sep = lex.peek();
    if (sep?.kind === 'symbol' && (sep.text === ',' || sep.text === ';')) lex.next();
  }
}

function parseMapEntry(lex: Lexer, field: protobuf.MapField, close: string): { key: unknown; value: unknown } {
  const keyField = new protobuf.Field('key', 1, field.keyType);
  let key: unknown;
  let value: unknown;
  while (true) {
    const t = lex.next();
    if (!t) return lex.fail(`expected "${close}" to close an entry of map "${field.name}"`);
    if (t.kind === 'symbol' && t.text === close) break;
    if (t.text === 'key') {
      lex.expect(':');
      key = parseScalar(lex, keyField, lex.next() ?? lex.fail('expected a map key'));
    } else if (t.text === 'value') {
      const colon = lex.peek();
      if (colon?.text === ':') lex.next();
      if (field.resolvedType instanceof protobuf.Type) {
        const open = lex.next();
        if (open?.text !== '{' && open?.text !== '<') lex.fail(`expected "{" to open the value of map "${field.name}"`, open ?? undefined);
        value = parseMessageBody(lex, field.resolvedType, open.text === '{' ? '}' : '>');
      } else {
        value = parseScalar(lex, field, lex.next() ?? lex.fail('expected a map value'));
      }
    } else lex.fail(`map entry of "${field.name}" has no field named "${t.text}" (expected key or value)`, t);
    const sep = lex.peek();
    if (sep?.kind === 'symbol' && (sep.text === ',' || sep.text === ';')) lex.next();
  }
  if (key === undefined) lex.fail(`an entry of map "${field.name}" has no key`);
  return { key: String(key), value };
}

/**
 * Parses text-format `source` as the message `typeName` and returns it as a plain object
 * (snake_case names, enums as names, int64 as numbers). `what` (usually the file path) prefixes
 * error messages, which also give line and column.
 *
 * @example
 * parseTextFormat('tensorflow.serving.MonitoringConfig', 'prometheus_config { enable: true }', 'monitoring.config');
 * // { prometheus_config: { enable: true } }
 */
export function parseTextFormat<T = Record<string, unknown>>(typeName: string, source: string, what = typeName): T {
  const type = protoType(typeName);
  const lex = new Lexer(source, what);
  const obj = parseMessageBody(lex, type, null);
  const problem = type.verify(type.fromObject(obj));
  if (problem) throw new LensError('INVALID_ARGUMENT', `${what}: not a valid ${typeName}: ${problem}`);
  return obj as T;
}
