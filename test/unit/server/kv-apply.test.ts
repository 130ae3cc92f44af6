import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Backend } from '../../../src/storage/backend';
import { KvStore } from '../../../src/mvcc/kv-store';
import { Compactor } from '../../../src/mvcc/compactor';
import {
  applyDelete,
  applyPut,
  applyTxn,
  checkIntervals,
  checkRangeRequest,
  checkTxnRequest,
  noLeases,
  range,
} from '../../../src/server/kv-apply';
import { Compare, DeleteOp, PutOp, RangeOp, RequestOp, TxnOp } from '../../../src/server/requests';
import { EtcdError } from '../../../src/errors';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

function put(key: string, value: string, extra: Partial<PutOp> = {}): PutOp {
  return { kind: 'put', key: b(key), value: b(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...extra };
}
function rng(key: string, end = '', extra: Partial<RangeOp> = {}): RangeOp {
  return {
    kind: 'range', key: b(key), rangeEnd: b(end), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...extra,
  };
}
function del(key: string, end = '', prevKv = false): DeleteOp {
  return { kind: 'delete', key: b(key), rangeEnd: b(end), prevKv };
}
function txn(compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnOp {
  return { kind: 'txn', compare, success, failure };
}
function cmp(key: string, target: number, result: number, union: Compare['union'], end = ''): Compare {
  return { key: b(key), rangeEnd: b(end), target, result, union };
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    if (typeof p === 'function') await p();
    else await p;
  } catch (e) {
    if (e instanceof EtcdError) return e.message;
    throw e;
  }
  return 'no error';
}

describe('KV semantics over the MVCC store', () => {
  let dir: string;
  let backend: Backend;
  let store: KvStore;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvapply-'));
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
  });
  afterEach(async () => {
    await store.flushed();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an empty store is at revision 1 and the first write gets revision 2', async () => {
    expect(store.currentRev).toBe(1);
    const r = await applyPut(store, put('a', '1'), noLeases);
    expect(r.revision).toBe(2);
    const g = await range(store, rng('a'));
    expect(g.kvs[0]).toMatchObject({ createRevision: 2, modRevision: 2, version: 1 });
    expect(s(g.kvs[0]!.value)).toBe('1');
  });

  test('put keeps create_revision, bumps version; prev_kv; ignore_value; ignore_lease errors', async () => {
    await applyPut(store, put('a', '1'), noLeases);
    const r = await applyPut(store, put('a', '2', { prevKv: true }), noLeases);
    expect(s(r.prevKv!.value)).toBe('1');
    const g = await range(store, rng('a'));
    expect(g.kvs[0]).toMatchObject({ createRevision: 2, modRevision: 3, version: 2 });
    await applyPut(store, put('a', '', { ignoreValue: true }), noLeases);
    expect(s((await range(store, rng('a'))).kvs[0]!.value)).toBe('2');
    expect(await errorOf(() => applyPut(store, put('zz', '', { ignoreValue: true }), noLeases))).toBe('etcdserver: key not found');
    expect(await errorOf(() => applyPut(store, put('zz', '', { ignoreLease: true }), noLeases))).toBe('etcdserver: key not found');
    expect(await errorOf(() => applyPut(store, put('zz', 'v', { lease: 5n }), noLeases))).toBe('etcdserver: requested lease not found');
    expect(store.currentRev).toBe(4);
  });

  test('range: prefix, from-key, limit/more, count ignores limit, keys_only, count_only', async () => {
    for (const k of ['a', 'b', 'b1', 'b2', 'c']) await applyPut(store, put(k, `v-${k}`), noLeases);
    const p = await range(store, rng('b', 'c'));
    expect(p.kvs.map((kv) => s(kv.key))).toEqual(['b', 'b1', 'b2']);
    const from = await range(store, rng('b1', '\x00'));
    expect(from.kvs.map((kv) => s(kv.key))).toEqual(['b1', 'b2', 'c']);
    const all = await range(store, rng('\x00', '\x00', { limit: 2 }));
    expect(all.kvs.map((kv) => s(kv.key))).toEqual(['a', 'b']);
    expect(all.more).toBe(true);
    expect(all.count).toBe(5);
    const exact = await range(store, rng('\x00', '\x00', { limit: 5 }));
    expect(exact.more).toBe(false);
    const ko = await range(store, rng('a', '', { keysOnly: true }));
    expect(ko.kvs[0]!.value.length).toBe(0);
    expect(ko.kvs[0]!.modRevision).toBe(2);
    const co = await range(store, rng('\x00', '\x00', { countOnly: true }));
    expect(co.kvs).toEqual([]);
    expect(co.count).toBe(5);
    expect((await range(store, rng('c', 'a'))).kvs).toEqual([]);
  });

  test('range: sort by every target in both orders, default ascend for non-key targets', async () => {
    await applyPut(store, put('a', 'z'), noLeases); // rev 2
    await applyPut(store, put('b', 'y'), noLeases); // rev 3
    await applyPut(store, put('c', 'x'), noLeases); // rev 4
    await applyPut(store, put('a', 'w'), noLeases); // rev 5: a version 2
    const keys = async (o: Partial<RangeOp>): Promise<string[]> =>
      (await range(store, rng('a', 'd', o))).kvs.map((kv) => s(kv.key));
    expect(await keys({ sortOrder: 2, sortTarget: 0 })).toEqual(['c', 'b', 'a']);
    expect(await keys({ sortOrder: 0, sortTarget: 4 })).toEqual(['a', 'c', 'b']); // values w, x, y
    expect(await keys({ sortOrder: 2, sortTarget: 3 })).toEqual(['a', 'c', 'b']); // mod 5, 4, 3
    expect(await keys({ sortOrder: 1, sortTarget: 2 })).toEqual(['a', 'b', 'c']); // create 2, 3, 4
    expect((await keys({ sortOrder: 2, sortTarget: 1 }))[0]).toBe('a'); // version 2 first
    const lim = await range(store, rng('a', 'd', { sortOrder: 2, sortTarget: 0, limit: 1 }));
    expect(lim.kvs.map((kv) => s(kv.key))).toEqual(['c']);
    expect(lim.more).toBe(true);
    expect(lim.count).toBe(3);
    expect(await errorOf(() => checkRangeRequest(rng('a', '', { sortOrder: 3 })))).toBe('etcdserver: invalid sort option');
    expect(await errorOf(() => checkRangeRequest(rng('a', '', { sortTarget: 9 })))).toBe('etcdserver: invalid sort option');
    expect(await errorOf(() => checkRangeRequest(rng('')))).toBe('etcdserver: key is not provided');
  });

  test('range: min/max mod and create revision filters, count unaffected', async () => {
    for (const k of ['a', 'b', 'c', 'd']) await applyPut(store, put(k, k), noLeases); // revs 2..5
    const r = await range(store, rng('a', 'z', { minModRevision: 3, maxModRevision: 4 }));
    expect(r.kvs.map((kv) => s(kv.key))).toEqual(['b', 'c']);
    expect(r.count).toBe(4);
    const c = await range(store, rng('a', 'z', { maxCreateRevision: 2 }));
    expect(c.kvs.map((kv) => s(kv.key))).toEqual(['a']);
    const l = await range(store, rng('a', 'z', { minCreateRevision: 3, limit: 1 }));
    expect(l.kvs.map((kv) => s(kv.key))).toEqual(['b']);
    expect(l.more).toBe(true);
  });

  test('historic reads, header revision is the current revision, future and compacted errors', async () => {
    await applyPut(store, put('a', '1'), noLeases); // 2
    await applyPut(store, put('a', '2'), noLeases); // 3
    await applyDelete(store, del('a'), noLeases); // 4
    const old = await range(store, rng('a', '', { revision: 2 }));
    expect(s(old.kvs[0]!.value)).toBe('1');
    expect(old.revision).toBe(4);
    expect((await range(store, rng('a', '', { revision: 4 }))).kvs).toEqual([]);
    expect(await errorOf(range(store, rng('a', '', { revision: 5 })))).toBe('etcdserver: mvcc: required revision is a future revision');
    const keep = store.compact(3);
    const done = new Compactor(store).schedule(3, keep);
    await store.flush(1, 1);
    await done;
    expect(await errorOf(range(store, rng('a', '', { revision: 2 })))).toBe('etcdserver: mvcc: required revision has been compacted');
    expect(s((await range(store, rng('a', '', { revision: 3 }))).kvs[0]!.value)).toBe('2');
    expect(() => store.compact(3)).toThrow('etcdserver: mvcc: required revision has been compacted');
    expect(() => store.compact(9)).toThrow('etcdserver: mvcc: required revision is a future revision');
  });

  test('delete: single, range, prefix, from-key, prev_kv, and no revision bump when nothing is deleted', async () => {
    for (const k of ['a', 'b', 'b1', 'c', 'd']) await applyPut(store, put(k, k), noLeases);
    const rev = store.currentRev;
    const none = await applyDelete(store, del('zz'), noLeases);
    expect(none.deleted).toBe(0);
    expect(store.currentRev).toBe(rev);
    expect(none.revision).toBe(rev);
    const one = await applyDelete(store, del('a', '', true), noLeases);
    expect(one.deleted).toBe(1);
    expect(s(one.prevKvs[0]!.value)).toBe('a');
    expect(one.revision).toBe(rev + 1);
    const pre = await applyDelete(store, del('b', 'c'), noLeases);
    expect(pre.deleted).toBe(2);
    const from = await applyDelete(store, del('c', '\x00'), noLeases);
    expect(from.deleted).toBe(2);
    expect((await range(store, rng('\x00', '\x00'))).count).toBe(0);
    await applyPut(store, put('a', 'again'), noLeases);
    const g = await range(store, rng('a'));
    expect(g.kvs[0]).toMatchObject({ version: 1, createRevision: store.currentRev });
  });

  test('txn: compares on every target, range_end compares, missing keys, value compare on missing key', async () => {
    await applyPut(store, put('k1', 'v1'), noLeases); // 2
    await applyPut(store, put('k2', 'v2'), noLeases); // 3
    const ok = async (c: Compare): Promise<boolean> => (await applyTxn(store, txn([c], []), noLeases, false)).succeeded;
    expect(await ok(cmp('k1', 0, 0, { field: 'version', num: 1 }))).toBe(true);
    expect(await ok(cmp('k1', 1, 0, { field: 'create', num: 2 }))).toBe(true);
    expect(await ok(cmp('k2', 2, 1, { field: 'mod', num: 2 }))).toBe(true);
    expect(await ok(cmp('k1', 3, 0, { field: 'value', bytes: b('v1') }))).toBe(true);
    expect(await ok(cmp('k1', 3, 2, { field: 'value', bytes: b('v2') }))).toBe(true);
    expect(await ok(cmp('k1', 4, 0, { field: 'lease', num: 0n }))).toBe(true);
    expect(await ok(cmp('k1', 3, 3, { field: 'value', bytes: b('v1') }))).toBe(false);
    expect(await ok(cmp('missing', 2, 0, { field: 'mod', num: 0 }))).toBe(true);
    expect(await ok(cmp('missing', 1, 0, { field: 'create', num: 0 }))).toBe(true);
    expect(await ok(cmp('missing', 3, 3, { field: 'value', bytes: b('x') }))).toBe(false);
    expect(await ok(cmp('k', 0, 1, { field: 'version', num: 0 }, 'l'))).toBe(true); // all of k1,k2 version > 0
    expect(await ok(cmp('k', 2, 2, { field: 'mod', num: 3 }, 'l'))).toBe(false); // k2 mod 3 is not < 3
    // A union member that does not match the target compares against 0.
    expect(await ok(cmp('k1', 0, 0, { field: 'mod', num: 1 }))).toBe(false);
  });

  test('txn: writes share one revision with increasing sub revisions; reads see earlier writes', async () => {
    await applyPut(store, put('x', '0'), noLeases); // 2
    const r = await applyTxn(
      store,
      txn([cmp('x', 3, 0, { field: 'value', bytes: b('0') })], [put('x', '1'), rng('x'), put('y', '2'), del('zz'), rng('\x00', '\x00', { countOnly: true })]),
      noLeases,
    );
    expect(r.succeeded).toBe(true);
    expect(r.revision).toBe(3);
    const inner = r.responses[1];
    expect(inner?.kind === 'range' && s(inner.kvs[0]!.value)).toBe('1');
    const cnt = r.responses[4];
    expect(cnt?.kind === 'range' && cnt.count).toBe(2);
    const all = await range(store, rng('\x00', '\x00'));
    expect(all.kvs.map((kv) => kv.modRevision)).toEqual([3, 3]);
    // failure branch
    const f = await applyTxn(store, txn([cmp('x', 3, 0, { field: 'value', bytes: b('nope') })], [put('x', 'a')], [rng('x')]), noLeases);
    expect(f.succeeded).toBe(false);
    expect(f.revision).toBe(3);
    expect(store.currentRev).toBe(3);
  });

  test('txn: nested txns take their own branch from the state before the txn', async () => {
    await applyPut(store, put('a', '1'), noLeases);
    const nested = txn([cmp('a', 3, 0, { field: 'value', bytes: b('1') })], [put('b', 'then')], [put('b', 'else')]);
    const r = await applyTxn(store, txn([], [put('a', '2'), nested]), noLeases);
    expect(r.succeeded).toBe(true);
    const n = r.responses[1];
    expect(n?.kind === 'txn' && n.succeeded).toBe(true);
    expect(s((await range(store, rng('b'))).kvs[0]!.value)).toBe('then');
  });

  test('txn: a failing check on the chosen branch fails the whole txn and writes nothing', async () => {
    const rev = store.currentRev;
    expect(await errorOf(applyTxn(store, txn([], [put('a', '1'), put('b', '', { ignoreValue: true })]), noLeases))).toBe('etcdserver: key not found');
    expect(await errorOf(applyTxn(store, txn([], [put('a', '1'), rng('a', '', { revision: 99 })]), noLeases))).toBe(
      'etcdserver: mvcc: required revision is a future revision',
    );
    expect(store.currentRev).toBe(rev);
    expect((await range(store, rng('a'))).kvs).toEqual([]);
  });

  test('txn checks: a negative range revision below the compaction point is compacted; key before lease', async () => {
    await applyPut(store, put('a', '1'), noLeases);
    // Before any compaction the point is -1: -1 reads the current revision, -2 is compacted.
    expect((await applyTxn(store, txn([], [rng('a', '', { revision: -1 })]), noLeases)).kind).toBe('txn');
    expect(await errorOf(applyTxn(store, txn([], [rng('a', '', { revision: -2 })]), noLeases))).toBe(
      'etcdserver: mvcc: required revision has been compacted',
    );
    // A plain range reads a negative revision as the current one.
    expect((await range(store, rng('a', '', { revision: -5 }))).kvs.map((kv) => s(kv.value))).toEqual(['1']);
    await applyPut(store, put('a', '2'), noLeases);
    store.compact(store.currentRev);
    expect(await errorOf(applyTxn(store, txn([], [rng('a', '', { revision: -1 })]), noLeases))).toBe(
      'etcdserver: mvcc: required revision has been compacted',
    );
    // ignore_value on a missing key with an unknown lease: the missing key is reported.
    expect(await errorOf(applyTxn(store, txn([], [put('nokey', '', { ignoreValue: true, lease: 77n })]), noLeases))).toBe(
      'etcdserver: key not found',
    );
  });

  test('txn limits and duplicate-key rules', async () => {
    const many = Array.from({ length: 129 }, (_v, i) => put(`k${i}`, 'v'));
    expect(await errorOf(() => checkTxnRequest(txn([], many), 128))).toBe('etcdserver: too many operations in txn request');
    expect(await errorOf(() => checkTxnRequest(txn([], many.slice(0, 128)), 128))).toBe('no error');
    expect(await errorOf(() => checkTxnRequest(txn([], [{ kind: 'empty' }]), 128))).toBe('etcdserver: key not found');
    expect(await errorOf(() => checkTxnRequest(txn([cmp('', 0, 0, undefined)], []), 128))).toBe('etcdserver: key is not provided');
    expect(await errorOf(() => checkTxnRequest(txn([], [put('', 'v')]), 128))).toBe('etcdserver: key is not provided');
    const dup = 'etcdserver: duplicate key given in txn request';
    expect(await errorOf(() => checkIntervals([put('a', '1'), put('a', '2')]))).toBe(dup);
    expect(await errorOf(() => checkIntervals([del('a', 'c'), put('b', '2')]))).toBe(dup);
    expect(await errorOf(() => checkIntervals([del('a', 'c'), del('b', 'd')]))).toBe('no error');
    expect(await errorOf(() => checkIntervals([txn([], [put('a', '1')], [put('a', '2')])]))).toBe('no error');
    expect(await errorOf(() => checkIntervals([put('a', '0'), txn([], [put('a', '1')])]))).toBe(dup);
    expect(await errorOf(() => checkIntervals([del('a'), txn([], [put('a', '1')])]))).toBe(dup);
    expect(await errorOf(() => checkIntervals([txn([], [put('a', '1')]), txn([], [put('a', '2')])]))).toBe(dup);
    // a nested budget is what is left of the outer one
    const nested = txn([], [txn([], many.slice(0, 128))]); // outer uses 1, leaving 127
    expect(await errorOf(() => checkTxnRequest(nested, 128))).toBe('etcdserver: too many operations in txn request');
  });

  test('state and revision survive reopening; compaction deletes superseded revisions from LevelDB', async () => {
    for (let i = 0; i < 10; i++) await applyPut(store, put('k', `v${i}`), noLeases); // revs 2..11
    await applyPut(store, put('other', 'x'), noLeases); // 12
    await applyDelete(store, del('other'), noLeases); // 13
    const keep = store.compact(12);
    const done = new Compactor(store, { batchLimit: 3 }).schedule(12, keep);
    await store.flush(1, 1);
    await done;
    const remaining = await backend.kv.keys().all();
    // k@11 is kept (latest ≤ 12), other@12 (kept: latest ≤ 12 of a generation ending after 12), tombstone @13.
    expect(remaining.length).toBe(3);
    await store.flush(1, 1);
    await store.flushed();
    await backend.close();
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
    expect(store.currentRev).toBe(13);
    expect(store.compactRev).toBe(12);
    const g = await range(store, rng('k'));
    expect(g.kvs[0]).toMatchObject({ version: 10, createRevision: 2, modRevision: 11 });
    expect((await range(store, rng('other'))).kvs).toEqual([]);
    expect(s((await range(store, rng('other', '', { revision: 12 }))).kvs[0]!.value)).toBe('x');
  });

  test('an interrupted compaction is resumed at open', async () => {
    for (let i = 0; i < 5; i++) await applyPut(store, put('k', `v${i}`), noLeases); // 2..6
    store.compact(5); // schedule mark goes with the next flush; physical deletion never runs
    await store.flush(1, 1);
    await store.flushed();
    await backend.close();
    backend = await Backend.open(path.join(dir, 'db'));
    expect((await backend.kv.keys().all()).length).toBe(5);
    store = await KvStore.open(backend);
    await new Compactor(store).resume();
    expect((await backend.kv.keys().all()).length).toBe(2);
    expect(await store.compactionMarks()).toEqual({ scheduled: 5, finished: 5 });
    expect(store.currentRev).toBe(6);
  });

  test('compacting the latest revision, when it is a tombstone, does not move the revision back', async () => {
    await applyPut(store, put('a', '1'), noLeases); // 2
    await applyDelete(store, del('a'), noLeases); // 3
    const keep = store.compact(3);
    const done = new Compactor(store).schedule(3, keep);
    await store.flush(1, 1);
    await done;
    await store.flushed();
    await backend.close();
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
    // The tombstone at the compaction revision is kept (a watch from 3 still sees the delete).
    expect((await backend.kv.keys().all()).length).toBe(1);
    expect(store.currentRev).toBe(3);
    expect((await range(store, rng('a'))).kvs).toEqual([]);
    const r = await applyPut(store, put('b', '1'), noLeases);
    expect(r.revision).toBe(4);
    const again = await applyPut(store, put('a', '2'), noLeases);
    expect((await range(store, rng('a'))).kvs[0]).toMatchObject({ version: 1, createRevision: again.revision });
  });
});

describe('request encoding for Raft entries', () => {
  test('round trip keeps the unsigned 64-bit request id and every field', async () => {
    const { encodeRequest, decodeRequest } = await import('../../../src/server/requests');
    const id = 0xd993_0000_0000_0001n; // top bit set
    const op = txn(
      [cmp('a', 3, 3, { field: 'value', bytes: b('x') }), cmp('b', 4, 0, { field: 'lease', num: -5n }, 'c'), cmp('c', 2, 1, { field: 'mod', num: -1 })],
      [put('a', 'v', { lease: 7n, prevKv: true }), rng('a', 'b', { limit: -1, revision: 3, sortOrder: 2, sortTarget: 4, keysOnly: true, maxModRevision: -2 })],
      [del('x', '\x00', true), txn([], [{ kind: 'empty' }])],
    );
    const d = decodeRequest(encodeRequest(id, op));
    expect(d.id).toBe(id);
    const norm = (v: unknown): unknown =>
      v instanceof Uint8Array
        ? Buffer.from(v).toString('hex')
        : typeof v === 'bigint'
          ? `${v}n`
          : Array.isArray(v)
            ? v.map(norm)
            : v !== null && typeof v === 'object'
              ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]))
              : v;
    expect(norm(d.op)).toEqual(norm(op));
  });
});
