/**
 * The protobuf messages of TensorFlow and TensorFlow Serving, loaded with protobufjs from the
 * `.proto` files in `protos/` (written for this project; field numbers match TensorFlow).
 *
 * Conventions, fixed here for the whole library:
 * - field names stay as in the .proto files (snake_case: `tensor_content`), so that proto3 JSON
 *   for the REST API and decoded messages read alike;
 * - 64-bit integers decode to JS numbers (exact up to 2^53, which covers shapes, offsets and versions).
 *
 * @example
 * const TensorProto = protoType('tensorflow.TensorProto');
 * const msg = TensorProto.decode(bytes);
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { LensError } from '../core/errors.js';

// Plain numbers for int64 fields instead of Long objects.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

/** Folder that holds the .proto files (the same relative place from src/ and dist/). */
export const PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../protos');

let root: protobuf.Root | undefined;

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...protoFiles(path));
    else if (name.endsWith('.proto')) out.push(relative(PROTO_DIR, path));
  }
  return out;
}

/** Every message and service of protos/, loaded once. */
export function protoRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  // Imports are written relative to protos/ ("tensorflow/core/framework/tensor.proto").
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
  r.loadSync(protoFiles(PROTO_DIR), { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

/** A message type by its full name, e.g. `tensorflow.TensorProto`. */
export function protoType(fullName: string): protobuf.Type {
  try {
    return protoRoot().lookupType(fullName);
  } catch {
    throw new LensError('INTERNAL', `protobuf message ${fullName} is not defined in ${PROTO_DIR}`);
  }
}

/** An enum by its full name, e.g. `tensorflow.DataType`. */
export function protoEnum(fullName: string): protobuf.Enum {
  try {
    return protoRoot().lookupEnum(fullName);
  } catch {
    throw new LensError('INTERNAL', `protobuf enum ${fullName} is not defined in ${PROTO_DIR}`);
  }
}

/**
 * Decodes bytes as a message, turning protobufjs's errors into a LensError that names `what`
 * (usually the file), e.g. a truncated saved_model.pb.
 */
export function decodeMessage<T = Record<string, unknown>>(fullName: string, bytes: Uint8Array, what: string): T {
  const type = protoType(fullName);
  try {
    return type.decode(bytes) as unknown as T;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new LensError('PROTO_DECODE', `${what} is not a valid ${fullName}: ${reason}`);
  }
}

/** Encodes a plain object as a message (after verifying it against the schema). */
export function encodeMessage(fullName: string, value: Record<string, unknown>): Uint8Array {
  const type = protoType(fullName);
  const problem = type.verify(value);
  if (problem) throw new LensError('INVALID_ARGUMENT', `cannot encode ${fullName}: ${problem}`);
  return type.encode(type.fromObject(value)).finish();
}
