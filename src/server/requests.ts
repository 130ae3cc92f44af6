/**
 * The server's own request and result types (independent of the wire types), and the compact
 * binary encoding of requests carried in Raft entries.
 *
 * Entry data layout: [kind byte][request id: uvarint-coded 64-bit][body].
 */
import { Reader, Writer } from '../storage/binary';
import type { KeyValue } from '../mvcc/kv-codec';

/** Sort orders of RangeRequest.sort_order (wire values). */
export enum SortOrder {
  NONE = 0,
  ASCEND = 1,
  DESCEND = 2,
}

/** Sort targets of RangeRequest.sort_target (wire values). */
export enum SortTarget {
  KEY = 0,
  VERSION = 1,
  CREATE = 2,
  MOD = 3,
  VALUE = 4,
}

/** Compare.result values. */
export enum CompareResult {
  EQUAL = 0,
  GREATER = 1,
  LESS = 2,
  NOT_EQUAL = 3,
}

/** Compare.target values. */
export enum CompareTarget {
  VERSION = 0,
  CREATE = 1,
  MOD = 2,
  VALUE = 3,
  LEASE = 4,
}

/** A range read. Numbers are the request's (possibly negative) int64 values as safe integers; `limit` ≤ 0 means unlimited. */
export interface RangeOp {
  kind: 'range';
  key: Uint8Array;
  rangeEnd: Uint8Array;
  limit: number;
  revision: number;
  sortOrder: number;
  sortTarget: number;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
}

/** A put. */
export interface PutOp {
  kind: 'put';
  key: Uint8Array;
  value: Uint8Array;
  lease: bigint;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

/** A delete of a key or range. */
export interface DeleteOp {
  kind: 'delete';
  key: Uint8Array;
  rangeEnd: Uint8Array;
  prevKv: boolean;
}

/** Which member of Compare.target_union was set (undefined: none). */
export type CompareUnion =
  | { field: 'version' | 'create' | 'mod'; num: number }
  | { field: 'lease'; num: bigint }
  | { field: 'value'; bytes: Uint8Array }
  | undefined;

/** One comparison of a Txn. */
export interface Compare {
  result: number;
  target: number;
  key: Uint8Array;
  rangeEnd: Uint8Array;
  union: CompareUnion;
}

/** A transaction. */
export interface TxnOp {
  kind: 'txn';
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

/** An empty RequestOp (no member of the oneof set). */
export interface EmptyOp {
  kind: 'empty';
}

/** An operation inside a Txn. */
export type RequestOp = RangeOp | PutOp | DeleteOp | TxnOp | EmptyOp;

/** A compaction. */
export interface CompactOp {
  kind: 'compact';
  revision: number;
  physical: boolean;
}

/** Sets a member's name and client URLs (published by the member itself after it starts). */
export interface MemberAttrOp {
  kind: 'member-attr';
  memberId: bigint;
  name: string;
  clientURLs: string[];
}

/** Changes a member's peer URLs (MemberUpdate). */
export interface MemberUpdateOp {
  kind: 'member-update';
  memberId: bigint;
  peerURLs: string[];
}

/** Grants a lease (the id is chosen before proposing, so every member uses the same). */
export interface LeaseGrantOp {
  kind: 'lease-grant';
  id: bigint;
  ttl: number;
}

/** Revokes a lease, deleting its keys at one revision. */
export interface LeaseRevokeOp {
  kind: 'lease-revoke';
  id: bigint;
}

/** Raises or clears an alarm (AlarmType: 1 NOSPACE, 2 CORRUPT). */
export interface AlarmOp {
  kind: 'alarm';
  action: 'activate' | 'deactivate';
  memberId: bigint;
  alarm: number;
}

/** Everything that goes through Raft as a normal entry. */
export type WriteOp = PutOp | DeleteOp | TxnOp | CompactOp | MemberAttrOp | MemberUpdateOp | LeaseGrantOp | LeaseRevokeOp | AlarmOp;

/** Result of a range. */
export interface RangeResult {
  kind: 'range';
  kvs: KeyValue[];
  more: boolean;
  count: number;
  /** header.revision */
  revision: number;
}

/** Result of a put. */
export interface PutResult {
  kind: 'put';
  prevKv: KeyValue | undefined;
  revision: number;
}

/** Result of a delete. */
export interface DeleteResult {
  kind: 'delete';
  deleted: number;
  prevKvs: KeyValue[];
  revision: number;
}

/** Result of a txn. */
export interface TxnResult {
  kind: 'txn';
  succeeded: boolean;
  responses: OpResult[];
  revision: number;
}

/** Result of a compaction. */
export interface CompactResult {
  kind: 'compact';
  revision: number;
  /** Resolves when the physical deletion has finished (for physical=true). */
  done: Promise<void>;
}

/** Result of an operation inside a Txn. */
export type OpResult = RangeResult | PutResult | DeleteResult | TxnResult;

/** Result of a membership request (the cluster state after it). */
export interface MemberResult {
  kind: 'member';
  revision: number;
}

/** Result of a lease grant or revoke. */
export interface LeaseResult {
  kind: 'lease';
  id: bigint;
  ttl: number;
  revision: number;
}

/** Result of an alarm change: the alarms it activated or deactivated. */
export interface AlarmResult {
  kind: 'alarm';
  alarms: { memberId: bigint; alarm: number }[];
  revision: number;
}

/** Result of any write. */
export type WriteResult = PutResult | DeleteResult | TxnResult | CompactResult | MemberResult | LeaseResult | AlarmResult;

const KIND_PUT = 1;
const KIND_DELETE = 2;
const KIND_TXN = 3;
const KIND_COMPACT = 4;
const KIND_RANGE = 5;
const KIND_EMPTY = 6;
const KIND_MEMBER_ATTR = 7;
const KIND_MEMBER_UPDATE = 8;
const KIND_LEASE_GRANT = 9;
const KIND_LEASE_REVOKE = 10;
const KIND_ALARM = 11;

function flags(...bits: boolean[]): number {
  let f = 0;
  for (let i = 0; i < bits.length; i++) if (bits[i]) f |= 1 << i;
  return f;
}

function writeStrings(w: Writer, list: string[]): void {
  w.uvarint(list.length);
  for (const x of list) w.bytes(Buffer.from(x, 'utf8'));
}

function readStrings(r: Reader): string[] {
  const out: string[] = [];
  for (let n = r.uvarint(); n > 0; n--) out.push(Buffer.from(r.bytes()).toString('utf8'));
  return out;
}

function writeOp(w: Writer, op: RequestOp | WriteOp): void {
  switch (op.kind) {
    case 'member-attr':
      w.byte(KIND_MEMBER_ATTR).varint64(op.memberId).bytes(Buffer.from(op.name, 'utf8'));
      writeStrings(w, op.clientURLs);
      return;
    case 'member-update':
      w.byte(KIND_MEMBER_UPDATE).varint64(op.memberId);
      writeStrings(w, op.peerURLs);
      return;
    case 'lease-grant':
      w.byte(KIND_LEASE_GRANT).varint64(op.id).varint64(BigInt(op.ttl));
      return;
    case 'lease-revoke':
      w.byte(KIND_LEASE_REVOKE).varint64(op.id);
      return;
    case 'alarm':
      w.byte(KIND_ALARM).byte(op.action === 'activate' ? 1 : 2).varint64(op.memberId).uvarint(op.alarm);
      return;
    case 'put':
      w.byte(KIND_PUT).bytes(op.key).bytes(op.value).varint64(op.lease).byte(flags(op.prevKv, op.ignoreValue, op.ignoreLease));
      return;
    case 'delete':
      w.byte(KIND_DELETE).bytes(op.key).bytes(op.rangeEnd).byte(flags(op.prevKv));
      return;
    case 'range':
      w.byte(KIND_RANGE).bytes(op.key).bytes(op.rangeEnd);
      for (const n of [op.limit, op.revision, op.sortOrder, op.sortTarget]) w.varint64(BigInt(n));
      w.byte(flags(op.serializable, op.keysOnly, op.countOnly));
      for (const n of [op.minModRevision, op.maxModRevision, op.minCreateRevision, op.maxCreateRevision]) w.varint64(BigInt(n));
      return;
    case 'txn':
      w.byte(KIND_TXN).uvarint(op.compare.length);
      for (const c of op.compare) {
        w.varint64(BigInt(c.result)).varint64(BigInt(c.target)).bytes(c.key).bytes(c.rangeEnd);
        const u = c.union;
        if (u === undefined) w.byte(0);
        else if (u.field === 'value') w.byte(4).bytes(u.bytes);
        else if (u.field === 'lease') w.byte(5).varint64(u.num);
        else w.byte(u.field === 'version' ? 1 : u.field === 'create' ? 2 : 3).varint64(BigInt(u.num));
      }
      w.uvarint(op.success.length);
      for (const o of op.success) writeOp(w, o);
      w.uvarint(op.failure.length);
      for (const o of op.failure) writeOp(w, o);
      return;
    case 'compact':
      w.byte(KIND_COMPACT).varint64(BigInt(op.revision)).byte(flags(op.physical));
      return;
    case 'empty':
      w.byte(KIND_EMPTY);
      return;
  }
}

function readOp(r: Reader): RequestOp | WriteOp {
  const kind = r.byte();
  switch (kind) {
    case KIND_MEMBER_ATTR: {
      const memberId = BigInt.asUintN(64, r.varint64());
      const name = Buffer.from(r.bytes()).toString('utf8');
      return { kind: 'member-attr', memberId, name, clientURLs: readStrings(r) };
    }
    case KIND_LEASE_GRANT: {
      const id = r.varint64();
      return { kind: 'lease-grant', id, ttl: Number(r.varint64()) };
    }
    case KIND_LEASE_REVOKE:
      return { kind: 'lease-revoke', id: r.varint64() };
    case KIND_ALARM: {
      const action = r.byte() === 1 ? 'activate' : 'deactivate';
      const memberId = BigInt.asUintN(64, r.varint64());
      return { kind: 'alarm', action, memberId, alarm: r.uvarint() };
    }
    case KIND_MEMBER_UPDATE: {
      const memberId = BigInt.asUintN(64, r.varint64());
      return { kind: 'member-update', memberId, peerURLs: readStrings(r) };
    }
    case KIND_PUT: {
      const key = r.bytes();
      const value = r.bytes();
      const lease = r.varint64();
      const f = r.byte();
      return { kind: 'put', key, value, lease, prevKv: (f & 1) !== 0, ignoreValue: (f & 2) !== 0, ignoreLease: (f & 4) !== 0 };
    }
    case KIND_DELETE: {
      const key = r.bytes();
      const rangeEnd = r.bytes();
      return { kind: 'delete', key, rangeEnd, prevKv: (r.byte() & 1) !== 0 };
    }
    case KIND_RANGE: {
      const key = r.bytes();
      const rangeEnd = r.bytes();
      const n = (): number => Number(r.varint64());
      const limit = n();
      const revision = n();
      const sortOrder = n();
      const sortTarget = n();
      const f = r.byte();
      return {
        kind: 'range', key, rangeEnd, limit, revision, sortOrder, sortTarget,
        serializable: (f & 1) !== 0, keysOnly: (f & 2) !== 0, countOnly: (f & 4) !== 0,
        minModRevision: n(), maxModRevision: n(), minCreateRevision: n(), maxCreateRevision: n(),
      };
    }
    case KIND_TXN: {
      const nc = r.uvarint();
      const compare: Compare[] = [];
      for (let i = 0; i < nc; i++) {
        const result = Number(r.varint64());
        const target = Number(r.varint64());
        const key = r.bytes();
        const rangeEnd = r.bytes();
        const u = r.byte();
        let union: CompareUnion;
        if (u === 0) union = undefined;
        else if (u === 4) union = { field: 'value', bytes: r.bytes() };
        else if (u === 5) union = { field: 'lease', num: r.varint64() };
        else union = { field: u === 1 ? 'version' : u === 2 ? 'create' : 'mod', num: Number(r.varint64()) };
        compare.push({ result, target, key, rangeEnd, union });
      }
      const success: RequestOp[] = [];
      for (let i = r.uvarint(); i > 0; i--) success.push(readOp(r) as RequestOp);
      const failure: RequestOp[] = [];
      for (let i = r.uvarint(); i > 0; i--) failure.push(readOp(r) as RequestOp);
      return { kind: 'txn', compare, success, failure };
    }
    case KIND_COMPACT: {
      const revision = Number(r.varint64());
      return { kind: 'compact', revision, physical: (r.byte() & 1) !== 0 };
    }
    case KIND_EMPTY:
      return { kind: 'empty' };
    default:
      throw new RangeError(`unknown request kind ${kind}`);
  }
}

const entryWriter = new Writer(4096);

/**
 * Encodes a write request with its id for a Raft entry. Returns a new byte array of its own, not a
 * slice of Node's buffer pool: the entry stays in the in-memory Raft log long after the
 * short-lived buffers around it, and would keep their whole slab alive.
 */
export function encodeRequest(id: bigint, op: WriteOp): Uint8Array {
  const w = entryWriter.reset();
  w.varint64(id);
  writeOp(w, op);
  return w.finish();
}

/** Decodes entry data made by encodeRequest. Throws RangeError on malformed data. */
export function decodeRequest(data: Uint8Array): { id: bigint; op: WriteOp } {
  const r = new Reader(data);
  const id = BigInt.asUintN(64, r.varint64());
  const op = readOp(r);
  if (op.kind === 'range' || op.kind === 'empty') throw new RangeError('not a write request');
  return { id, op };
}
