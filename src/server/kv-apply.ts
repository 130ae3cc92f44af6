/**
 * etcd's key-value semantics over the MVCC store: Range options, Put, DeleteRange, Txn (compares,
 * nested txns, reads that see the txn's own writes) and Compact. Used by the applier for writes
 * (in log order, one at a time) and by the read path for Range and read-only Txn.
 *
 * Failures are thrown as EtcdError before anything is written, so a failed request changes nothing
 * and every member fails it the same way.
 */
import { Errors } from '../errors';
import { KeyRange, bytesToKey, makeRange } from '../mvcc/key-range';
import { KeyValue } from '../mvcc/kv-codec';
import { KvStore, WriteTxn } from '../mvcc/kv-store';
import { IndexedKey } from '../mvcc/tree-index';
import {
  Compare,
  CompareResult,
  CompareTarget,
  DeleteOp,
  DeleteResult,
  OpResult,
  PutOp,
  PutResult,
  RangeOp,
  RangeResult,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnOp,
  TxnResult,
} from './requests';

/** What the KV layer needs from the lessor. */
export interface LeaseHooks {
  /** True when the lease exists. */
  exists(id: bigint): boolean;
  /** A key now carries `lease` (0n: none) instead of `previous` (0n: none). */
  onAttach(key: string, previous: bigint, lease: bigint): void;
}

/** Lease hooks for a server without leases: no lease exists. */
export const noLeases: LeaseHooks = { exists: () => false, onAttach: () => undefined };

/**
 * A read view: the revision reads see (a write txn sees its own writes) and the header revision
 * reported by reads through it.
 */
interface View {
  store: KvStore;
  /** The revision reads default to. */
  rev(): number;
}

function readView(store: KvStore, rev: number): View {
  return { store, rev: () => rev };
}

function txnView(store: KvStore, txn: WriteTxn): View {
  return { store, rev: () => txn.readRev };
}

const noFilter = (op: RangeOp): boolean =>
  op.minModRevision === 0 && op.maxModRevision === 0 && op.minCreateRevision === 0 && op.maxCreateRevision === 0;

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function sorter(target: number): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.VERSION:
      return (a, b) => a.version - b.version;
    case SortTarget.CREATE:
      return (a, b) => a.createRevision - b.createRevision;
    case SortTarget.MOD:
      return (a, b) => a.modRevision - b.modRevision;
    case SortTarget.VALUE:
      return (a, b) => cmpBytes(a.value, b.value);
    default:
      return (a, b) => cmpBytes(a.key, b.key);
  }
}

/** Resolves a request revision against a view: ≤ 0 → the view's revision; checks future and compacted. */
function resolveRev(view: View, requested: number): number {
  const cur = view.rev();
  if (requested <= 0) return cur;
  if (requested > cur) throw Errors.futureRev();
  if (requested < view.store.compactRev) throw Errors.compacted();
  return requested;
}

async function rangeIn(view: View, op: RangeOp): Promise<RangeResult> {
  const store = view.store;
  const headerRev = view.rev();
  const rev = resolveRev(view, op.revision);
  const r = makeRange(op.key, op.rangeEnd);
  if (op.countOnly) {
    return { kind: 'range', kvs: [], more: false, count: store.index.count(r, rev), revision: headerRev };
  }
  const plain = op.sortOrder === SortOrder.NONE && noFilter(op);
  // Without sort or filter, fetch one more than the limit to learn whether there is more.
  const fetchLimit = plain && op.limit > 0 ? op.limit + 1 : 0;
  const entries: IndexedKey[] = [];
  const count = store.index.range(r, rev, fetchLimit, entries);
  let kvs = await store.fetch(entries, false);
  if (op.maxModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision <= op.maxModRevision);
  if (op.minModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision >= op.minModRevision);
  if (op.maxCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision <= op.maxCreateRevision);
  if (op.minCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision >= op.minCreateRevision);
  let order = op.sortOrder;
  if (op.sortTarget !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  if (order === SortOrder.ASCEND || order === SortOrder.DESCEND) {
    const f = sorter(op.sortTarget);
    kvs.sort(order === SortOrder.ASCEND ? f : (a, b) => f(b, a));
  }
  let more = false;
  if (op.limit > 0 && kvs.length > op.limit) {
    kvs.length = op.limit;
    more = true;
  }
  if (op.keysOnly) for (const kv of kvs) kv.value = new Uint8Array(0);
  return { kind: 'range', kvs, more, count, revision: headerRev };
}

/** Serves a Range outside a transaction, at the store's current revision. */
export function range(store: KvStore, op: RangeOp): Promise<RangeResult> {
  return rangeIn(readView(store, store.currentRev), op);
}

function compareNumber(a: number | bigint, b: number | bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKv(c: Compare, kv: KeyValue | undefined): boolean {
  const u = c.union;
  let result: number;
  switch (c.target) {
    case CompareTarget.VALUE:
      result = cmpBytes(kv?.value ?? new Uint8Array(0), u?.field === 'value' ? u.bytes : new Uint8Array(0));
      break;
    case CompareTarget.CREATE:
      result = compareNumber(kv?.createRevision ?? 0, u?.field === 'create' ? u.num : 0);
      break;
    case CompareTarget.MOD:
      result = compareNumber(kv?.modRevision ?? 0, u?.field === 'mod' ? u.num : 0);
      break;
    case CompareTarget.VERSION:
      result = compareNumber(kv?.version ?? 0, u?.field === 'version' ? u.num : 0);
      break;
    case CompareTarget.LEASE:
      result = compareNumber(kv?.lease ?? 0n, u?.field === 'lease' ? u.num : 0n);
      break;
    default:
      result = 0;
  }
  switch (c.result) {
    case CompareResult.EQUAL:
      return result === 0;
    case CompareResult.NOT_EQUAL:
      return result !== 0;
    case CompareResult.GREATER:
      return result > 0;
    case CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

async function evalCompare(view: View, c: Compare): Promise<boolean> {
  const store = view.store;
  const rev = view.rev();
  const entries: IndexedKey[] = [];
  store.index.range(makeRange(c.key, c.rangeEnd), rev, 0, entries);
  if (entries.length === 0) {
    if (c.target === CompareTarget.VALUE) return false;
    return compareKv(c, undefined);
  }
  // Only VALUE and LEASE need the stored record; the index answers the rest.
  if (c.target === CompareTarget.VALUE || c.target === CompareTarget.LEASE) {
    const kvs = await store.fetch(entries, false);
    return kvs.every((kv) => compareKv(c, kv));
  }
  return entries.every((e) =>
    compareKv(c, { key: EMPTY, value: EMPTY, lease: 0n, createRevision: e.createdMain, modRevision: e.modMain, version: e.version }),
  );
}

const EMPTY = new Uint8Array(0);

/** The branch taken by a txn and, recursively, by the nested txns on that branch. */
interface TxnPath {
  succeeded: boolean;
  nested: TxnPath[];
}

async function evalPath(view: View, t: TxnOp): Promise<TxnPath> {
  let ok = true;
  for (const c of t.compare) {
    if (!(await evalCompare(view, c))) {
      ok = false;
      break;
    }
  }
  const nested: TxnPath[] = [];
  for (const op of ok ? t.success : t.failure) if (op.kind === 'txn') nested.push(await evalPath(view, op));
  return { succeeded: ok, nested };
}

function isReadOnlyTxn(t: TxnOp): boolean {
  for (const ops of [t.success, t.failure]) {
    for (const op of ops) {
      if (op.kind === 'put' || op.kind === 'delete') return false;
      if (op.kind === 'txn' && !isReadOnlyTxn(op)) return false;
    }
  }
  return true;
}

/** True when the txn (in any branch) writes nothing: it can be served without Raft. */
export function txnIsReadOnly(t: TxnOp): boolean {
  return isReadOnlyTxn(t);
}

/** True when every range in the txn is serializable (a read-only txn may then skip ReadIndex). */
export function txnIsSerializable(t: TxnOp): boolean {
  for (const ops of [t.success, t.failure]) {
    for (const op of ops) {
      if (op.kind === 'range' && !op.serializable) return false;
      if (op.kind === 'txn' && !txnIsSerializable(op)) return false;
    }
  }
  return true;
}

/** Checks the ops on the chosen path before anything is written (leases, ignore_*, range revisions). */
async function checkPath(view: View, t: TxnOp, path: TxnPath, hooks: LeaseHooks): Promise<void> {
  let ni = 0;
  for (const op of path.succeeded ? t.success : t.failure) {
    if (op.kind === 'put') await checkPut(view, op, hooks);
    else if (op.kind === 'range') checkRangeRev(view, op);
    else if (op.kind === 'txn') await checkPath(view, op, path.nested[ni++]!, hooks);
  }
}

/**
 * A txn's range checked before anything is written, as etcd checks it: 0 is the current revision,
 * above the current one is a future revision, and anything below the compaction point is
 * compacted, negative revisions included (the point is -1 before the first compaction). A range
 * outside a txn reads a negative revision as the current one.
 */
function checkRangeRev(view: View, op: RangeOp): void {
  const r = op.revision;
  if (r === 0) return;
  if (r > view.rev()) throw Errors.futureRev();
  if (r < view.store.compactRev) throw Errors.compacted();
}

async function checkPut(view: View, op: PutOp, hooks: LeaseHooks): Promise<void> {
  // The key's existence is checked before the lease, as etcd does.
  if (op.ignoreValue || op.ignoreLease) {
    const st = view.store.index.get(bytesToKey(op.key), view.rev());
    if (st === undefined) throw Errors.keyNotFound();
  }
  if (op.lease !== 0n && !hooks.exists(op.lease)) throw Errors.leaseNotFound();
}

async function putIn(txn: WriteTxn, store: KvStore, op: PutOp, hooks: LeaseHooks): Promise<PutResult> {
  const key = bytesToKey(op.key);
  let value = op.value;
  let lease = op.lease;
  let prev: KeyValue | undefined;
  if (op.prevKv || op.ignoreValue || op.ignoreLease) {
    prev = await store.get(key, txn.readRev);
    if ((op.ignoreValue || op.ignoreLease) && prev === undefined) throw Errors.keyNotFound();
    if (op.ignoreValue) value = prev!.value;
    if (op.ignoreLease) lease = prev!.lease;
  }
  writePut(txn, store, key, op.key, value, lease, hooks);
  return { kind: 'put', prevKv: op.prevKv ? prev : undefined, revision: 0 };
}

/** Writes a put in `txn` and moves the key's lease attachment when its lease changes. */
function writePut(txn: WriteTxn, store: KvStore, key: string, keyBytes: Uint8Array, value: Uint8Array, lease: bigint, hooks: LeaseHooks): void {
  const ki = store.index.lookup(key);
  const previousLease = ki !== undefined && ki.isLive() ? ki.lease : 0n;
  txn.put(key, keyBytes, value, lease);
  if (previousLease !== lease) hooks.onAttach(key, previousLease, lease);
}

async function deleteIn(txn: WriteTxn, store: KvStore, op: DeleteOp, hooks: LeaseHooks): Promise<DeleteResult> {
  const r = makeRange(op.key, op.rangeEnd);
  let prevKvs: KeyValue[] = [];
  if (op.prevKv) {
    const entries: IndexedKey[] = [];
    store.index.range(r, txn.readRev, 0, entries);
    prevKvs = await store.fetch(entries, false);
  }
  const leases: [string, bigint][] = [];
  store.index.forEachInRange(r, (k, ki) => {
    if (ki.isLive() && ki.lease !== 0n) leases.push([k, ki.lease]);
  });
  const deleted = txn.deleteRange(r);
  for (const [k, l] of leases) hooks.onAttach(k, l, 0n);
  return { kind: 'delete', deleted: deleted.length, prevKvs, revision: 0 };
}

async function runOps(txn: WriteTxn, store: KvStore, t: TxnOp, path: TxnPath, hooks: LeaseHooks): Promise<OpResult[]> {
  const out: OpResult[] = [];
  let ni = 0;
  const view = txnView(store, txn);
  for (const op of path.succeeded ? t.success : t.failure) {
    switch (op.kind) {
      case 'range':
        out.push(await rangeIn(view, op));
        break;
      case 'put':
        out.push(await putIn(txn, store, op, hooks));
        break;
      case 'delete':
        out.push(await deleteIn(txn, store, op, hooks));
        break;
      case 'txn': {
        const p = path.nested[ni++]!;
        out.push({ kind: 'txn', succeeded: p.succeeded, responses: await runOps(txn, store, op, p, hooks), revision: 0 });
        break;
      }
      case 'empty':
        break;
    }
  }
  return out;
}

/** Fills the revision of nested results the way etcd reports them (the txn's final revision). */
function stampRevisions(results: OpResult[], rev: number): void {
  for (const r of results) {
    if (r.kind === 'put' || r.kind === 'delete') r.revision = rev;
    else if (r.kind === 'txn') {
      r.revision = rev;
      stampRevisions(r.responses, rev);
    }
  }
}

/**
 * Applies a Put (from the log). A plain put (no prev_kv, ignore_value or ignore_lease) reads
 * nothing from the backend, so it is applied synchronously and its result returned directly; the
 * others return a promise.
 */
export function applyPut(store: KvStore, op: PutOp, hooks: LeaseHooks): PutResult | Promise<PutResult> {
  if (op.prevKv || op.ignoreValue || op.ignoreLease) return applyPutReading(store, op, hooks);
  if (op.lease !== 0n && !hooks.exists(op.lease)) throw Errors.leaseNotFound();
  const txn = store.beginWrite();
  writePut(txn, store, bytesToKey(op.key), op.key, op.value, op.lease, hooks);
  txn.end();
  return { kind: 'put', prevKv: undefined, revision: store.currentRev };
}

async function applyPutReading(store: KvStore, op: PutOp, hooks: LeaseHooks): Promise<PutResult> {
  const view = readView(store, store.currentRev);
  await checkPut(view, op, hooks);
  const txn = store.beginWrite();
  const res = await putIn(txn, store, op, hooks);
  txn.end();
  res.revision = store.currentRev;
  return res;
}

/** Applies a DeleteRange (from the log). */
export async function applyDelete(store: KvStore, op: DeleteOp, hooks: LeaseHooks): Promise<DeleteResult> {
  const txn = store.beginWrite();
  const res = await deleteIn(txn, store, op, hooks);
  txn.end();
  res.revision = store.currentRev;
  return res;
}

/**
 * Runs a Txn. With `write` false (a read-only txn served outside the log) it reads at the current
 * revision and never writes.
 */
export async function applyTxn(store: KvStore, op: TxnOp, hooks: LeaseHooks, write = true): Promise<TxnResult> {
  const view = readView(store, store.currentRev);
  const path = await evalPath(view, op);
  await checkPath(view, op, path, hooks);
  if (!write) {
    const results = await readOnlyOps(view, op, path);
    return { kind: 'txn', succeeded: path.succeeded, responses: results, revision: view.rev() };
  }
  const txn = store.beginWrite();
  const responses = await runOps(txn, store, op, path, hooks);
  txn.end();
  stampRevisions(responses, store.currentRev);
  return { kind: 'txn', succeeded: path.succeeded, responses, revision: store.currentRev };
}

async function readOnlyOps(view: View, t: TxnOp, path: TxnPath): Promise<OpResult[]> {
  const out: OpResult[] = [];
  let ni = 0;
  for (const op of path.succeeded ? t.success : t.failure) {
    if (op.kind === 'range') out.push(await rangeIn(view, op));
    else if (op.kind === 'txn') {
      const p = path.nested[ni++]!;
      out.push({ kind: 'txn', succeeded: p.succeeded, responses: await readOnlyOps(view, op, p), revision: view.rev() });
    }
  }
  return out;
}

/** Validation done before proposing (etcd's API-level checks). Throws EtcdError. */
export function checkTxnRequest(t: TxnOp, maxTxnOps: number): void {
  const opc = Math.max(t.compare.length, t.success.length, t.failure.length);
  if (opc > maxTxnOps) throw Errors.tooManyOps();
  for (const c of t.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const ops of [t.success, t.failure]) for (const op of ops) checkRequestOp(op, maxTxnOps - opc);
}

function checkRequestOp(op: RequestOp, budget: number): void {
  switch (op.kind) {
    case 'range':
      checkRangeRequest(op);
      return;
    case 'put':
      checkPutRequest(op);
      return;
    case 'delete':
      if (op.key.length === 0) throw Errors.emptyKey();
      return;
    case 'txn':
      checkTxnRequest(op, budget);
      return;
    case 'empty':
      throw Errors.keyNotFound();
  }
}

/** API-level checks of a Range. */
export function checkRangeRequest(op: RangeOp): void {
  if (op.key.length === 0) throw Errors.emptyKey();
  if (op.sortOrder < 0 || op.sortOrder > 2) throw Errors.invalidSortOption();
  if (op.sortTarget < 0 || op.sortTarget > 4) throw Errors.invalidSortOption();
}

/** API-level checks of a Put. */
export function checkPutRequest(op: PutOp): void {
  if (op.key.length === 0) throw Errors.emptyKey();
  if (op.ignoreValue && op.value.length !== 0) throw Errors.valueProvided();
  if (op.ignoreLease && op.lease !== 0n) throw Errors.leaseProvided();
}

/** An interval of binary-string keys for the duplicate check: end '' = a point; compared as plain strings. */
interface Interval {
  lo: string;
  hi: string | undefined;
}

function intersectsPoint(dels: Interval[], k: string): boolean {
  for (const d of dels) {
    if (d.hi === undefined ? d.lo === k : d.lo <= k && k < d.hi) return true;
  }
  return false;
}

/**
 * etcd's duplicate-key rule: within one branch (nested txns included) a key may be put once and may
 * not be put inside a deleted range; puts in the then/else branches of one nested txn may repeat.
 * Returns the puts and deletes of this level for the caller.
 */
export function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.kind !== 'delete') continue;
    dels.push({ lo: bytesToKey(op.key), hi: op.rangeEnd.length === 0 ? undefined : bytesToKey(op.rangeEnd) });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.kind !== 'txn') continue;
    const a = checkIntervals(op.success);
    const b = checkIntervals(op.failure);
    for (const k of a.puts) {
      if (puts.has(k) || intersectsPoint(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of b.puts) {
      if (puts.has(k) && !a.puts.has(k)) throw Errors.duplicateKey();
      if (intersectsPoint(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...a.dels, ...b.dels);
  }
  for (const op of ops) {
    if (op.kind !== 'put') continue;
    const k = bytesToKey(op.key);
    if (puts.has(k) || intersectsPoint(dels, k)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}

/** The key range a request names (for callers that need it). */
export function requestRange(key: Uint8Array, rangeEnd: Uint8Array): KeyRange {
  return makeRange(key, rangeEnd);
}
