import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Backend } from '../../../src/storage/backend';
import { KvStore } from '../../../src/mvcc/kv-store';
import { Compactor } from '../../../src/mvcc/compactor';
import { RecordCache } from '../../../src/mvcc/record-cache';
import { LeaseHooks, applyDelete, applyPut, applyTxn, range } from '../../../src/server/kv-apply';
import { PutOp, RangeOp } from '../../../src/server/requests';
import { encodeRangeRecords, encodeRangeResponse, Header } from '../../../src/api/kv-wire';
import { isPlainRange, plainRange } from '../../../src/api/range-records';
import { EtcdError } from '../../../src/errors';
import { SeededRng } from '../../../src/raft/rng';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const leases: LeaseHooks = { exists: () => true, onAttach: () => undefined };
const header: Header = { clusterId: 0x1234567890abcdefn, memberId: 42n, revision: 0, raftTerm: 7 };

function put(key: string, value: Uint8Array, lease = 0n): PutOp {
  return { kind: 'put', key: b(key), value, lease, prevKv: false, ignoreValue: false, ignoreLease: false };
}
function rng(key: string, end: string, extra: Partial<RangeOp> = {}): RangeOp {
  return {
    kind: 'range', key: b(key), rangeEnd: b(end), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...extra,
  };
}

/** A small deterministic PRNG so failures reproduce. */
function prng(seed: number): () => number {
  const r = new SeededRng(seed);
  return () => r.nextFloat();
}

/** The response bytes (or error message) of the generic path and of the stored-records path. */
async function both(store: KvStore, op: RangeOp): Promise<[string, string]> {
  const generic = range(store, op).then(
    (r) => encodeRangeResponse(r, { ...header, revision: r.revision }).toString('hex'),
    (e: unknown) => (e instanceof EtcdError ? `error ${e.message}` : Promise.reject(e)),
  );
  const fast = plainRange(store, op).then(
    (r) => encodeRangeRecords(r.records, r.more, r.count, op.keysOnly, { ...header, revision: r.revision }).toString('hex'),
    (e: unknown) => (e instanceof EtcdError ? `error ${e.message}` : Promise.reject(e)),
  );
  return Promise.all([generic, fast]);
}

describe('Range answered from stored records', () => {
  let dir: string;
  let backend: Backend;
  let store: KvStore;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'range-records-'));
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
  });
  afterEach(async () => {
    await store.flushed();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('which requests count as plain', () => {
    expect(isPlainRange(rng('a', 'b'))).toBe(true);
    expect(isPlainRange(rng('a', 'b', { limit: 3, revision: 5, keysOnly: true, serializable: true }))).toBe(true);
    expect(isPlainRange(rng('a', 'b', { sortOrder: 1, sortTarget: 0 }))).toBe(true);
    expect(isPlainRange(rng('a', 'b', { sortOrder: 2, sortTarget: 0 }))).toBe(false);
    expect(isPlainRange(rng('a', 'b', { sortOrder: 0, sortTarget: 3 }))).toBe(false);
    expect(isPlainRange(rng('a', 'b', { countOnly: true }))).toBe(false);
    expect(isPlainRange(rng('a', 'b', { minModRevision: 1 }))).toBe(false);
    expect(isPlainRange(rng('a', 'b', { maxModRevision: 1 }))).toBe(false);
    expect(isPlainRange(rng('a', 'b', { minCreateRevision: 1 }))).toBe(false);
    expect(isPlainRange(rng('a', 'b', { maxCreateRevision: 1 }))).toBe(false);
  });

  test('byte-identical to the generic path over random histories, flushed or not, cached or not', async () => {
    const rand = prng(12345);
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`).concat(['', '\x00', '\xff', 'k', 'k05\x00']);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
    const value = (): Uint8Array => {
      const r = rand();
      if (r < 0.1) return new Uint8Array(0);
      const n = r < 0.9 ? Math.floor(rand() * 40) : 200 + Math.floor(rand() * 300);
      return Buffer.alloc(n, Math.floor(rand() * 256));
    };
    const lease = (): bigint => (rand() < 0.2 ? BigInt(Math.floor(rand() * 2 ** 62)) * (rand() < 0.5 ? 1n : 3n) : 0n);
    let compacted = false;
    for (let step = 0; step < 400; step++) {
      const r = rand();
      if (r < 0.55) {
        const k = pick(keys);
        if (k !== '') await applyPut(store, put(k, value(), lease()), leases);
      } else if (r < 0.65) {
        const a = pick(keys.slice(0, 40));
        await applyDelete(store, { kind: 'delete', key: b(a), rangeEnd: rand() < 0.5 ? new Uint8Array(0) : b(`${a}5`), prevKv: rand() < 0.5 }, leases);
      } else if (r < 0.72) {
        // Several changes in one revision: sub revisions 0, 1, ...
        const ops = [0, 1, 2].map(() => put(pick(keys.slice(0, 40)), value(), lease()));
        const uniq = new Map(ops.map((o) => [Buffer.from(o.key).toString('latin1'), o]));
        await applyTxn(store, { kind: 'txn', compare: [], success: [...uniq.values()], failure: [] }, leases);
      } else if (r < 0.8) {
        await store.flush(step, 1);
      } else if (r < 0.81 && !compacted && store.currentRev > 50) {
        const at = store.currentRev - 20;
        const keep = store.compact(at);
        const done = new Compactor(store).schedule(at, keep);
        await store.flush(step, 1);
        await done;
        compacted = true;
      }
      // Compare a few random reads after each step.
      for (let q = 0; q < 3; q++) {
        const a = pick(keys);
        const from = a === '' ? '\x00' : a;
        const end = pick(['', '\x00', 'k2', 'k3', 'l', `${from}\xff`, 'a']);
        const revChoice = rand();
        const revision = revChoice < 0.6 ? 0 : revChoice < 0.9 ? 1 + Math.floor(rand() * store.currentRev) : store.currentRev + 1;
        const op = rng(from, end, {
          revision,
          limit: rand() < 0.4 ? Math.floor(rand() * 6) - 1 : 0,
          keysOnly: rand() < 0.25,
          sortOrder: rand() < 0.2 ? 1 : 0,
        });
        const [generic, fast] = await both(store, op);
        expect(fast).toBe(generic);
      }
    }
    // Every key read once more after a final flush, cold and then from the cache.
    await store.flush(1000, 1);
    await store.flushed();
    for (let i = 0; i < 2; i++) {
      const [generic, fast] = await both(store, rng('\x00', '\x00'));
      expect(fast).toBe(generic);
      const [g2, f2] = await both(store, rng('\x00', '\x00', { keysOnly: true, limit: 7 }));
      expect(f2).toBe(g2);
    }
    expect(store.cache.size).toBeGreaterThan(0);
  });

  test('a reopened store (empty cache) answers the same as before', async () => {
    for (let i = 0; i < 30; i++) await applyPut(store, put(`p/${i % 10}`, Buffer.alloc(i * 7, i), BigInt(i)), leases);
    await applyDelete(store, { kind: 'delete', key: b('p/3'), rangeEnd: new Uint8Array(0), prevKv: false }, leases);
    await store.flush(1, 1);
    await store.flushed();
    const before = (await both(store, rng('p/', 'p0')))[1];
    const historic = (await both(store, rng('p/', 'p0', { revision: 12 })))[1];
    await backend.close();
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
    expect(store.cache.size).toBe(0);
    expect((await both(store, rng('p/', 'p0')))[1]).toBe(before);
    expect((await both(store, rng('p/', 'p0', { revision: 12 })))[1]).toBe(historic);
    const [g, f] = await both(store, rng('p/', 'p0', { revision: 12 }));
    expect(f).toBe(g);
  });

  test('concurrent reads of the same cold records share one LevelDB read', async () => {
    for (let i = 0; i < 50; i++) await applyPut(store, put(`q/${String(i).padStart(2, '0')}`, Buffer.alloc(100, i)), leases);
    await store.flush(1, 1);
    await store.flushed();
    await backend.close();
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
    const spy = jest.spyOn(backend.kv, 'getMany');
    const ops = [rng('q/', 'q0'), rng('q/', 'q0'), rng('q/2', 'q/3'), rng('q/', 'q0', { limit: 5 })];
    const reads = await Promise.all(ops.map((op) => plainRange(store, op)));
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
    expect(reads.map((r) => r.records.length)).toEqual([50, 50, 10, 5]);
    for (let i = 0; i < ops.length; i++) {
      const r = reads[i]!;
      const fast = encodeRangeRecords(r.records, r.more, r.count, false, { ...header, revision: r.revision }).toString('hex');
      const g = await range(store, ops[i]!);
      expect(fast).toBe(encodeRangeResponse(g, { ...header, revision: g.revision }).toString('hex'));
    }
  });
});

describe('RecordCache', () => {
  const rec = (n: number): Uint8Array => new Uint8Array(n);

  test('hits only the exact revision; offers keep the newest; writes refresh cached keys only', () => {
    const c = new RecordCache(1 << 20);
    const r1 = rec(10);
    c.offer('a', 5, 0, r1);
    expect(c.get('a', 5, 0)).toBe(r1);
    expect(c.get('a', 5, 1)).toBeUndefined();
    expect(c.get('a', 4, 0)).toBeUndefined();
    c.offer('a', 3, 0, rec(10)); // older: ignored
    expect(c.get('a', 5, 0)).toBe(r1);
    const r2 = rec(12);
    c.offer('a', 6, 0, r2);
    expect(c.get('a', 6, 0)).toBe(r2);
    c.written('b', 7, 0, rec(5)); // not cached: not added
    expect(c.size).toBe(1);
    const r3 = rec(3);
    c.written('a', 7, 1, r3);
    expect(c.get('a', 7, 1)).toBe(r3);
    c.drop('a');
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
  });

  test('stays within its budget, evicting the oldest entries', () => {
    const c = new RecordCache(10_000);
    for (let i = 0; i < 1000; i++) c.offer(`k${i}`, i + 1, 0, rec(100));
    expect(c.bytes).toBeLessThanOrEqual(10_000);
    expect(c.size).toBeGreaterThan(0);
    expect(c.get('k999', 1000, 0)).toBeDefined();
    expect(c.get('k0', 1, 0)).toBeUndefined();
    c.offer('huge', 1, 0, rec(20_000));
    expect(c.get('huge', 1, 0)).toBeUndefined();
    c.written('k999', 1001, 0, rec(20_000));
    expect(c.get('k999', 1000, 0)).toBeUndefined();
    expect(c.get('k999', 1001, 0)).toBeUndefined();
    expect(c.bytes).toBeLessThanOrEqual(10_000);
    c.clear();
    expect(c.size).toBe(0);
  });
});
