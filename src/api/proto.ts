/**
 * Loads the project's .proto files with protobufjs (field names kept as written: snake_case).
 * Loaded types stop at the api and transport edges: handlers convert to the server's own types.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

/** The folder holding the .proto files (proto/ at the package root). */
export const PROTO_DIR = findProtoDir(__dirname);

function findProtoDir(from: string): string {
  let dir = from;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'proto');
    if (fs.existsSync(path.join(candidate, 'etcdserverpb', 'rpc.proto'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`proto/ folder not found above ${from}`);
}

/** The files every server loads. */
export const PROTO_FILES = [
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
  'grpc/health/v1/health.proto',
];

let cached: protobuf.Root | undefined;

/** The loaded and resolved root (loaded once per process). */
export function protoRoot(): protobuf.Root {
  if (cached !== undefined) return cached;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}

/** A message type by its full name, e.g. "etcdserverpb.RangeRequest". */
export function messageType(name: string): protobuf.Type {
  return protoRoot().lookupType(name);
}

/** A decoded 64-bit integer as protobufjs returns it (number when small, Long-like otherwise). */
export type Int64 = number | { toString(): string; toNumber(): number } | string | null | undefined;

/** Converts a decoded int64 to a number (saturating beyond the safe range, keeping the sign). */
export function toNum(v: Int64): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  const n = v.toNumber();
  if (Number.isSafeInteger(n)) return n;
  return n > 0 ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER;
}

/** Converts a decoded signed int64 to a bigint. */
export function toBig(v: Int64): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return BigInt(v.toString());
}

/** Converts a decoded uint64 (which protobufjs may hand out as a signed Long) to an unsigned bigint. */
export function toUBig(v: Int64): bigint {
  return BigInt.asUintN(64, toBig(v));
}
