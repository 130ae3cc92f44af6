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

/**
 * The last header encoded: its fields, the encoded id fields (64-bit ids encode slowly, and they
 * never change) and the whole encoding. Responses sent together (a watch event fanned out to many
 * watchers, a burst of replies) share their header.
 */
let lastHeader: { clusterId: bigint; memberId: bigint; revision: number; raftTerm: number; ids: Uint8Array; bytes: Uint8Array } | undefined;

/** Encodes a ResponseHeader message. The result is shared between calls: read it, never change it. */
export function headerBytes(h: Header): Uint8Array {
  const last = lastHeader;
  const sameIds = last !== undefined && last.clusterId === h.clusterId && last.memberId === h.memberId;
  if (sameIds && last.revision === h.revision && last.raftTerm === h.raftTerm) return last.bytes;
  const w = headerWriter.reset();
  let ids: Uint8Array;
  if (sameIds) {
    ids = last.ids;
  } else {
    if (h.clusterId !== 0n) w.tag(1, 0).varint64(h.clusterId);
    if (h.memberId !== 0n) w.tag(2, 0).varint64(h.memberId);
    ids = w.finish();
    w.reset();
  }
  w.raw(ids);
  if (h.revision !== 0) w.tag(3, 0).uvarint(h.revision);
  if (h.raftTerm !== 0) w.tag(4, 0).uvarint(h.raftTerm);
  const bytes = w.finish();
  lastHeader = { clusterId: h.clusterId, memberId: h.memberId, revision: h.revision, raftTerm: h.raftTerm, ids, bytes };
  return bytes;
}

/** Length of the unsigned varint encoding of a non-negative safe integer. */
export function uvarintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Length of the varint encoding of an int64 (negative values take 10 bytes, as two's complement). */
function varint64Size(v: bigint): number {
  if (v < 0n) return 10;
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Length of writeKeyValue's encoding of `kv`. */
function keyValueSize(kv: KeyValue): number {
  let n = 0;
  if (kv.key.length > 0) n += 1 + uvarintSize(kv.key.length) + kv.key.length;
  if (kv.createRevision !== 0) n += 1 + uvarintSize(kv.createRevision);
  if (kv.modRevision !== 0) n += 1 + uvarintSize(kv.modRevision);
  if (kv.version !== 0) n += 1 + uvarintSize(kv.version);
  if (kv.value.length > 0) n += 1 + uvarintSize(kv.value.length) + kv.value.length;
  if (kv.lease !== 0n) n += 1 + varint64Size(kv.lease);
  return n;
}

function writeKv(w: Writer, field: number, kv: KeyValue): void {
  w.tag(field, 2).uvarint(keyValueSize(kv));
  writeKeyValue(w, kv);
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
  return w.finishBuffer();
}

/** Writes an unsigned varint into `buf` at `pos`; returns the position after it. */
function putUvarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

/**
 * Where the value field (5) of a stored record lies: [start, end) byte offsets, or undefined when
 * the record has no value. Throws RangeError on a malformed record.
 */
function valueField(rec: Uint8Array): [number, number] | undefined {
  let pos = 0;
  const readVarint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= rec.length) throw new RangeError('truncated record');
      const b = rec[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw new RangeError('malformed record varint');
  };
  while (pos < rec.length) {
    const start = pos;
    const tag = readVarint();
    const wt = tag & 7;
    if (wt === 0) {
      readVarint();
    } else if (wt === 2) {
      const n = readVarint();
      pos += n;
      if (pos > rec.length) throw new RangeError('truncated record');
      if (tag >>> 3 === 5) return [start, pos];
    } else {
      throw new RangeError(`unexpected wire type ${wt} in a stored record`);
    }
  }
  return undefined;
}

const EMPTY_RECORDS: Int32Array = new Int32Array(0);

/**
 * Encodes a RangeResponse whose kvs are stored records (see KvStore.fetchRecords), copying each
 * record as the encoded mvccpb.KeyValue it is. With `keysOnly`, each record's value field is left
 * out, as encoding the record with an empty value would. The bytes equal encodeRangeResponse's for
 * the decoded records.
 */
export function encodeRangeRecords(records: readonly Uint8Array[], more: boolean, count: number, keysOnly: boolean, h: Header): Buffer {
  const head = headerBytes(h);
  let total = 1 + uvarintSize(head.length) + head.length;
  let cut = EMPTY_RECORDS;
  if (keysOnly) {
    cut = new Int32Array(records.length * 2);
    for (let i = 0; i < records.length; i++) {
      const span = valueField(records[i]!);
      if (span !== undefined) {
        cut[2 * i] = span[0];
        cut[2 * i + 1] = span[1];
      }
    }
  }
  for (let i = 0; i < records.length; i++) {
    const len = records[i]!.length - (keysOnly ? cut[2 * i + 1]! - cut[2 * i]! : 0);
    total += 1 + uvarintSize(len) + len;
  }
  if (more) total += 2;
  if (count !== 0) total += 1 + uvarintSize(count);
  const buf = Buffer.allocUnsafe(total);
  buf[0] = (1 << 3) | 2;
  let pos = putUvarint(buf, 1, head.length);
  buf.set(head, pos);
  pos += head.length;
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    buf[pos++] = (2 << 3) | 2;
    const a = keysOnly ? cut[2 * i]! : 0;
    const b = keysOnly ? cut[2 * i + 1]! : 0;
    if (a === b) {
      pos = putUvarint(buf, pos, rec.length);
      buf.set(rec, pos);
      pos += rec.length;
    } else {
      pos = putUvarint(buf, pos, rec.length - (b - a));
      buf.set(rec.subarray(0, a), pos);
      pos += a;
      buf.set(rec.subarray(b), pos);
      pos += rec.length - b;
    }
  }
  if (more) {
    buf[pos++] = 3 << 3;
    buf[pos++] = 1;
  }
  if (count !== 0) {
    buf[pos++] = 4 << 3;
    pos = putUvarint(buf, pos, count);
  }
  if (pos !== total) throw new Error(`range response size mismatch: wrote ${pos} of ${total} bytes`);
  return buf;
}

/** Encodes a PutResponse. */
export function encodePutResponse(r: PutResult, h: Header): Buffer {
  const w = respWriter.reset();
  writePutBody(w, r, h);
  return w.finishBuffer();
}

/** Encodes a DeleteRangeResponse. */
export function encodeDeleteResponse(r: DeleteResult, h: Header): Buffer {
  const w = respWriter.reset();
  writeDeleteBody(w, r, h);
  return w.finishBuffer();
}

/** Encodes a TxnResponse. */
export function encodeTxnResponse(r: TxnResult, h: Header): Buffer {
  const w = respWriter.reset();
  writeTxnBody(w, r, h);
  return w.finishBuffer();
}

/** Encodes a CompactionResponse. */
export function encodeCompactResponse(h: Header): Buffer {
  const w = respWriter.reset();
  writeHeader(w, 1, h);
  return w.finishBuffer();
}
