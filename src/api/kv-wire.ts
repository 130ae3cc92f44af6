/**
 * Conversions between the KV service's wire messages and the server's own request and result types.
 *
 * Requests are decoded by protobufjs and converted here. Responses are encoded by hand, in field
 * order with zero values omitted (as etcd's Go encoder does), so the bytes match etcd's and the hot
 * path avoids building intermediate objects.
 */
import { KeyValue, writeKeyValue } from '../mvcc/kv-codec';
import { Writer } from '../storage/binary';
import {
  CompactOp,
  Compare,
  CompareUnion,
  DeleteOp,
  DeleteResult,
  OpResult,
  PutOp,
  PutResult,
  RangeOp,
  RangeResult,
  RequestOp,
  TxnOp,
  TxnResult,
} from '../server/requests';
import { Int64, toBig, toNum } from './proto';

const EMPTY = new Uint8Array(0);

/** Decoded wire message fields (protobufjs objects, snake_case names). */
export type WireMessage = Record<string, unknown>;

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY;
}

function num(v: unknown): number {
  return toNum(v as Int64);
}

function bool(v: unknown): boolean {
  return v === true;
}

/** RangeRequest → RangeOp. */
export function toRangeOp(m: WireMessage): RangeOp {
  return {
    kind: 'range',
    key: bytes(m.key),
    rangeEnd: bytes(m.range_end),
    limit: num(m.limit),
    revision: num(m.revision),
    sortOrder: num(m.sort_order),
    sortTarget: num(m.sort_target),
    serializable: bool(m.serializable),
    keysOnly: bool(m.keys_only),
    countOnly: bool(m.count_only),
    minModRevision: num(m.min_mod_revision),
    maxModRevision: num(m.max_mod_revision),
    minCreateRevision: num(m.min_create_revision),
    maxCreateRevision: num(m.max_create_revision),
  };
}

/** PutRequest → PutOp. */
export function toPutOp(m: WireMessage): PutOp {
  return {
    kind: 'put',
    key: bytes(m.key),
    value: bytes(m.value),
    lease: toBig(m.lease as Int64),
    prevKv: bool(m.prev_kv),
    ignoreValue: bool(m.ignore_value),
    ignoreLease: bool(m.ignore_lease),
  };
}

/** DeleteRangeRequest → DeleteOp. */
export function toDeleteOp(m: WireMessage): DeleteOp {
  return { kind: 'delete', key: bytes(m.key), rangeEnd: bytes(m.range_end), prevKv: bool(m.prev_kv) };
}

function toCompare(m: WireMessage): Compare {
  let union: CompareUnion;
  switch (m.target_union) {
    case 'version':
      union = { field: 'version', num: num(m.version) };
      break;
    case 'create_revision':
      union = { field: 'create', num: num(m.create_revision) };
      break;
    case 'mod_revision':
      union = { field: 'mod', num: num(m.mod_revision) };
      break;
    case 'value':
      union = { field: 'value', bytes: bytes(m.value) };
      break;
    case 'lease':
      union = { field: 'lease', num: toBig(m.lease as Int64) };
      break;
    default:
      union = undefined;
  }
  return { result: num(m.result), target: num(m.target), key: bytes(m.key), rangeEnd: bytes(m.range_end), union };
}

function toRequestOp(m: WireMessage): RequestOp {
  switch (m.request) {
    case 'request_range':
      return toRangeOp(m.request_range as WireMessage);
    case 'request_put':
      return toPutOp(m.request_put as WireMessage);
    case 'request_delete_range':
      return toDeleteOp(m.request_delete_range as WireMessage);
    case 'request_txn':
      return toTxnOp(m.request_txn as WireMessage);
    default:
      return { kind: 'empty' };
  }
}

function list(v: unknown): WireMessage[] {
  return Array.isArray(v) ? (v as WireMessage[]) : [];
}

/** TxnRequest → TxnOp. */
export function toTxnOp(m: WireMessage): TxnOp {
  return {
    kind: 'txn',
    compare: list(m.compare).map(toCompare),
    success: list(m.success).map(toRequestOp),
    failure: list(m.failure).map(toRequestOp),
  };
}

/** CompactionRequest → CompactOp. */
export function toCompactOp(m: WireMessage): CompactOp {
  return { kind: 'compact', revision: num(m.revision), physical: bool(m.physical) };
}

/** The fields of a ResponseHeader. */
export interface Header {
  clusterId: bigint;
  memberId: bigint;
  revision: number;
  raftTerm: number;
}

/** Writes a ResponseHeader as field `field` of the enclosing message. */
export function writeHeader(w: Writer, field: number, h: Header): void {
  const inner = headerBytes(h);
  w.tag(field, 2).bytes(inner);
}

const headerWriter = new Writer(64);

/** Encodes a ResponseHeader message. */
export function headerBytes(h: Header): Uint8Array {
  const w = headerWriter.reset();
  if (h.clusterId !== 0n) w.tag(1, 0).varint64(h.clusterId);
  if (h.memberId !== 0n) w.tag(2, 0).varint64(h.memberId);
  if (h.revision !== 0) w.tag(3, 0).uvarint(h.revision);
  if (h.raftTerm !== 0) w.tag(4, 0).uvarint(h.raftTerm);
  return w.finish();
}

const kvWriter = new Writer(1024);

function writeKv(w: Writer, field: number, kv: KeyValue): void {
  const inner = writeKeyValue(kvWriter.reset(), kv).finish();
  w.tag(field, 2).bytes(inner);
}

/** A sub-message encoder: writes the body of a message into a fresh writer and returns its bytes. */
function sub(fn: (w: Writer) => void): Uint8Array {
  const w = new Writer(128);
  fn(w);
  return w.finish();
}

function writeRangeBody(w: Writer, r: RangeResult, h: Header | undefined): void {
  if (h !== undefined) writeHeader(w, 1, h);
  for (const kv of r.kvs) writeKv(w, 2, kv);
  if (r.more) w.tag(3, 0).byte(1);
  if (r.count !== 0) w.tag(4, 0).uvarint(r.count);
}

function writePutBody(w: Writer, r: PutResult, h: Header | undefined): void {
  if (h !== undefined) writeHeader(w, 1, h);
  if (r.prevKv !== undefined) writeKv(w, 2, r.prevKv);
}

function writeDeleteBody(w: Writer, r: DeleteResult, h: Header | undefined): void {
  if (h !== undefined) writeHeader(w, 1, h);
  if (r.deleted !== 0) w.tag(2, 0).uvarint(r.deleted);
  for (const kv of r.prevKvs) writeKv(w, 3, kv);
}

/** Header of a response nested in a txn: only the revision, as etcd reports it. */
function nestedHeader(rev: number): Header {
  return { clusterId: 0n, memberId: 0n, revision: rev, raftTerm: 0 };
}

function writeTxnBody(w: Writer, r: TxnResult, h: Header): void {
  writeHeader(w, 1, h);
  if (r.succeeded) w.tag(2, 0).byte(1);
  for (const op of r.responses) w.tag(3, 2).bytes(sub((ow) => writeResponseOp(ow, op)));
}

function writeResponseOp(w: Writer, op: OpResult): void {
  const h = nestedHeader(op.revision);
  switch (op.kind) {
    case 'range':
      w.tag(1, 2).bytes(sub((x) => writeRangeBody(x, op, h)));
      return;
    case 'put':
      w.tag(2, 2).bytes(sub((x) => writePutBody(x, op, h)));
      return;
    case 'delete':
      w.tag(3, 2).bytes(sub((x) => writeDeleteBody(x, op, h)));
      return;
    case 'txn':
      // etcd leaves the header of a nested txn response empty.
      w.tag(4, 2).bytes(sub((x) => writeTxnBody(x, op, nestedHeader(0))));
      return;
  }
}

const respWriter = new Writer(64 * 1024);

/** Encodes a RangeResponse. */
export function encodeRangeResponse(r: RangeResult, h: Header): Buffer {
  const w = respWriter.reset();
  writeRangeBody(w, r, h);
  return Buffer.from(w.finish().buffer);
}

/** Encodes a PutResponse. */
export function encodePutResponse(r: PutResult, h: Header): Buffer {
  const w = respWriter.reset();
  writePutBody(w, r, h);
  return Buffer.from(w.finish().buffer);
}

/** Encodes a DeleteRangeResponse. */
export function encodeDeleteResponse(r: DeleteResult, h: Header): Buffer {
  const w = respWriter.reset();
  writeDeleteBody(w, r, h);
  return Buffer.from(w.finish().buffer);
}

/** Encodes a TxnResponse. */
export function encodeTxnResponse(r: TxnResult, h: Header): Buffer {
  const w = respWriter.reset();
  writeTxnBody(w, r, h);
  return Buffer.from(w.finish().buffer);
}

/** Encodes a CompactionResponse. */
export function encodeCompactResponse(h: Header): Buffer {
  const w = respWriter.reset();
  writeHeader(w, 1, h);
  return Buffer.from(w.finish().buffer);
}
