import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Compactor } from '../../../src/mvcc/compactor';
import { rebuildIndex } from '../../../src/mvcc/index-restore';
import { INDEX_SNAPSHOT_FILE, decodeIndexSnapshot, encodeIndexSnapshot, writeIndexSnapshot } from '../../../src/mvcc/index-snapshot';
import { KeyIndex } from '../../../src/mvcc/key-index';
import { makeRange } from '../../../src/mvcc/key-range';
import { KvStore } from '../../../src/mvcc/kv-store';
import { TreeIndex } from '../../../src/mvcc/tree-index';
import { Backend } from '../../../src/storage/backend';
import { SeededRng } from '../../../src/raft/rng';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');

/** Small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  const r = new SeededRng(seed);
  return () => r.nextFloat();
}

const ALL = makeRange(Uint8Array.of(0), Uint8Array.of(0));

/** What describeIndex looks at. */
interface IndexView {
  index: TreeIndex;
  currentRev: number;
  compactRev: number;
}

/** Everything the index answers, for every key and every readable revision. */
function describeIndex(store: IndexView): unknown {
  const keys: unknown[] = [];
  // Below the lowest revision held every read is empty: start just before it.
  let lowest = store.currentRev;
  store.index.forEachInRange(ALL, (_k: string, ki: KeyIndex) => {
    const revs = ki.revisionsSince(0);
    if (revs.length > 0 && revs[0]! < lowest) lowest = revs[0]!;
  });
  const from = Math.max(store.compactRev, lowest - 1, 1);
  store.index.forEachInRange(ALL, (key: string, ki: KeyIndex) => {
    const at: unknown[] = [];
    for (let rev = from; rev <= store.currentRev + 1; rev++) {
      const st = ki.get(rev);
      // The sub revision a generation was created at is not stored (etcd restores it as 0).
      at.push(st === undefined ? null : [st.modMain, st.modSub, st.createdMain, st.version]);
    }
    keys.push([key, ki.isLive(), ki.isLive() ? ki.lease.toString() : '0', at]);
  });
  const keep: unknown[] = [];
  for (let rev = from; rev <= store.currentRev + 1; rev += Math.max(1, Math.floor((store.currentRev - from) / 7))) {
    keep.push([...store.index.keep(rev)].sort());
  }
  return { currentRev: store.currentRev, compactRev: store.compactRev, size: store.index.size, keys, keep };
}

let flushes = 0;

/**
 * Applies `count` random write transactions to the store (flushing each), compacting now and then
 * (at or after `minCompact`); physical compactions started are added to `physical`.
 */
async function randomHistory(store: KvStore, rnd: () => number, count: number, physical: Promise<void>[], minCompact = 0): Promise<void> {
  const compactor = new Compactor(store, { pauseMs: 0 });
  const alphabet = ['a', 'b', 'c', '\x00', '\x80', '\xff', 'é', '\xc2\xa0', 'zz'];
  const randomKey = (): string => {
    const n = 1 + Math.floor(rnd() * 3);
    let k = '';
    for (let i = 0; i < n; i++) k += alphabet[Math.floor(rnd() * alphabet.length)];
    return k;
  };
  const leases = [0n, 0n, 0n, 7n, 0x123456789abn];
  for (let t = 0; t < count; t++) {
    const txn = store.beginWrite();
    const kind = rnd();
    if (kind < 0.03) {
      // A big transaction: more than 128 changes.
      for (let i = 0; i < 140; i++) txn.put(`big${i}`, b(`big${i}`), b('v'), 0n);
    } else if (kind < 0.06) {
      txn.deleteRange(makeRange(b('big'), b('bih')));
    } else if (kind < 0.15) {
      txn.deleteRange(makeRange(b(randomKey()), b(randomKey())));
    } else if (kind < 0.3) {
      txn.deleteRange(makeRange(b(randomKey()), undefined));
    } else {
      const n = 1 + Math.floor(rnd() * 4);
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const k = randomKey();
        if (seen.has(k)) continue;
        seen.add(k);
        txn.put(k, b(k), b(`v${t}`), leases[Math.floor(rnd() * leases.length)]!);
      }
    }
    txn.end();
    if (rnd() < 0.05 && store.currentRev > Math.max(store.compactRev, minCompact) + 1) {
      const low = Math.max(store.compactRev, minCompact) + 1;
      const at = low + Math.floor(rnd() * (store.currentRev - low));
      const keep = store.compact(at);
      if (rnd() < 0.5) physical.push(compactor.schedule(at, keep));
    }
    await store.flush(++flushes, 1);
  }
}

describe('index rebuilt at open', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'index-restore-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function reopen(backend: Backend, dbPath: string): Promise<{ backend: Backend; store: KvStore }> {
    await backend.close();
    const nb = await Backend.open(dbPath);
    return { backend: nb, store: await KvStore.open(nb) };
  }

  /**
   * Random histories: puts (some with leases), deletes of single keys and of ranges, transactions
   * with more than 128 changes (sub revisions that are not ASCII), revisions whose bytes are not
   * ASCII, and compactions with and without the physical deletion.
   */
  const cases: [number, number][] = [
    [1, 1],
    [2, 120],
    [3, 190],
    [4, 0x7ff0],
    [5, 0xc2a0],
    [6, 0x7fffff0],
    [7, 0xe0a080 - 5],
  ];
  test.each(cases)('seed %i from revision %i: the rebuilt index answers as the live one', async (seed, startRev) => {
    const rnd = prng(seed);
    const dbPath = path.join(dir, 'db');
    let backend = await Backend.open(dbPath);
    let store = await KvStore.open(backend);
    store.currentRev = startRev;
    const physical: Promise<void>[] = [];
    await randomHistory(store, rnd, 300, physical, startRev);
    await Promise.all(physical);
    await store.flushed();
    const before = describeIndex(store);
    ({ backend, store } = await reopen(backend, dbPath));
    expect(describeIndex(store)).toEqual(before);
    // Once more, from the rebuilt state.
    ({ backend, store } = await reopen(backend, dbPath));
    expect(describeIndex(store)).toEqual(before);
    // With tiny chunks: records sorted and merged in many rounds, the chunk arrays grown.
    const rebuilt = await rebuildIndex(backend, () => undefined, { initial: 2, min: 16 });
    const index = new TreeIndex();
    index.load(rebuilt.keys, rebuilt.values);
    if (store.compactRev > 0) index.compact(store.compactRev, false);
    expect(describeIndex({ index, currentRev: store.currentRev, compactRev: store.compactRev })).toEqual(before);
    expect(rebuilt.lastMain).toBeLessThanOrEqual(store.currentRev);
    await backend.close();
  });

  test('a key whose first revisions were compacted away keeps its creation and version', async () => {
    const dbPath = path.join(dir, 'db');
    let backend = await Backend.open(dbPath);
    let store = await KvStore.open(backend);
    for (let i = 0; i < 3; i++) {
      const txn = store.beginWrite();
      txn.put('k', b('k'), b(`v${i}`), 0n);
      txn.end();
      await store.flush(i + 1, 1);
    }
    expect(store.currentRev).toBe(4);
    const keep = store.compact(4);
    const p = new Compactor(store, { pauseMs: 0 }).schedule(4, keep);
    await store.flush(4, 1);
    await p;
    ({ backend, store } = await reopen(backend, dbPath));
    expect(store.index.get('k', 4)).toMatchObject({ modMain: 4, createdMain: 2, version: 3 });
    const txn = store.beginWrite();
    const kv = txn.put('k', b('k'), b('v4'), 0n);
    txn.end();
    expect(kv).toMatchObject({ createRevision: 2, modRevision: 5, version: 4 });
    await store.flush(5, 1);
    await backend.close();
  });

  test('an empty store opens at revision 1', async () => {
    const backend = await Backend.open(path.join(dir, 'db'));
    const store = await KvStore.open(backend);
    expect(store.currentRev).toBe(1);
    expect(store.index.size).toBe(0);
    await backend.close();
  });

  test('other sublevels are not read as records', async () => {
    const dbPath = path.join(dir, 'db');
    let backend = await Backend.open(dbPath);
    await backend.write([
      { type: 'put', sublevel: backend.lease, key: Buffer.alloc(8, 1), value: Buffer.alloc(8, 2) },
      { type: 'put', sublevel: backend.meta, key: Buffer.from('x'), value: Buffer.alloc(3) },
    ]);
    let store = await KvStore.open(backend);
    const txn = store.beginWrite();
    txn.put('a', b('a'), b('1'), 0n);
    txn.end();
    await store.flush(1, 1);
    ({ backend, store } = await reopen(backend, dbPath));
    expect(store.index.size).toBe(1);
    expect(store.currentRev).toBe(2);
    await backend.close();
  });
});

describe('saved index', () => {
  let dir: string;
  let logs: { level: string; msg: string; fields?: Record<string, unknown> }[];
  const log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void => {
    logs.push({ level, msg, fields });
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'index-saved-'));
    logs = [];
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Closes and reopens; tells whether the saved index was used. */
  async function reopen(backend: Backend, dbPath: string): Promise<{ backend: Backend; store: KvStore; fromSaved: boolean }> {
    await backend.close();
    logs = [];
    const nb = await Backend.open(dbPath);
    const store = await KvStore.open(nb, log);
    const line = logs.find((l) => l.msg === 'restored the key index');
    return { backend: nb, store, fromSaved: line?.fields?.['from-saved-index'] === true };
  }

  async function opened(dbPath: string): Promise<{ backend: Backend; store: KvStore }> {
    const backend = await Backend.open(dbPath);
    return { backend, store: await KvStore.open(backend, log) };
  }

  test.each([11, 12, 13, 14, 15])('seed %i: saved, written after without saving, compacted: every open answers as the live index', async (seed) => {
    const rnd = prng(seed);
    const dbPath = path.join(dir, 'db');
    let { backend, store } = await opened(dbPath);
    store.currentRev = [1, 190, 0x7ff0, 0xc2a0, 0xe0a080][seed % 5]!;
    let fromSaved = false;
    const used: boolean[] = [];
    for (let round = 0; round < 6; round++) {
      const physical: Promise<void>[] = [];
      await randomHistory(store, rnd, 40 + Math.floor(rnd() * 60), physical);
      await Promise.all(physical);
      await store.flushed();
      if (rnd() < 0.6) expect(await store.saveIndex()).toBe(true);
      const before = describeIndex(store);
      ({ backend, store, fromSaved } = await reopen(backend, dbPath));
      used.push(fromSaved);
      expect(describeIndex(store)).toEqual(before);
    }
    expect(used).toContain(true);
    await backend.close();
  });

  test('used when it matches; records written after it are applied', async () => {
    const dbPath = path.join(dir, 'db');
    let { backend, store } = await opened(dbPath);
    const write = async (key: string, del = false): Promise<void> => {
      const txn = store.beginWrite();
      if (del) txn.deleteRange(makeRange(b(key), undefined));
      else txn.put(key, b(key), b('v'), 5n);
      txn.end();
      await store.flush(++flushes, 1);
    };
    await write('a');
    await write('b');
    await write('a');
    expect(await store.saveIndex()).toBe(true);
    expect(fs.existsSync(path.join(dbPath, INDEX_SNAPSHOT_FILE))).toBe(true);
    await write('c');
    await write('b', true);
    const before = describeIndex(store);
    let fromSaved: boolean;
    ({ backend, store, fromSaved } = await reopen(backend, dbPath));
    expect(fromSaved).toBe(true);
    expect(logs.find((l) => l.msg === 'restored the key index')?.fields?.['records-read']).toBe(2);
    expect(describeIndex(store)).toEqual(before);
    expect(store.index.lookup('a')?.lease).toBe(5n);
    // The saved index does not count in the database size.
    const size = await backend.approximateSize();
    const files = fs.readdirSync(dbPath).filter((n) => !n.startsWith('side-'));
    expect(size).toBe(files.reduce((t, n) => t + fs.statSync(path.join(dbPath, n)).size, 0));
    await backend.close();
  });

  test('not used after a compaction past it, nor when damaged, nor for another database', async () => {
    const dbPath = path.join(dir, 'db');
    let { backend, store } = await opened(dbPath);
    for (let i = 0; i < 5; i++) {
      const txn = store.beginWrite();
      txn.put('k', b('k'), b(`v${i}`), 0n);
      txn.end();
      await store.flush(++flushes, 1);
    }
    expect(await store.saveIndex()).toBe(true);
    const saved = fs.readFileSync(path.join(dbPath, INDEX_SNAPSHOT_FILE));

    // Damaged: one byte flipped.
    const bad = Buffer.from(saved);
    bad[bad.length - 3]! ^= 0x40;
    fs.writeFileSync(path.join(dbPath, INDEX_SNAPSHOT_FILE), bad);
    let fromSaved: boolean;
    ({ backend, store, fromSaved } = await reopen(backend, dbPath));
    expect(fromSaved).toBe(false);
    expect(logs.some((l) => l.level === 'warn' && l.msg.includes('damaged'))).toBe(true);
    expect(store.index.get('k', 6)).toMatchObject({ modMain: 6, version: 5 });
    fs.writeFileSync(path.join(dbPath, INDEX_SNAPSHOT_FILE), saved);
    ({ backend, store, fromSaved } = await reopen(backend, dbPath));
    expect(fromSaved).toBe(true);

    // Another database with the file copied in.
    const other = path.join(dir, 'other');
    const o = await opened(other);
    const txn = o.store.beginWrite();
    txn.put('x', b('x'), b('1'), 0n);
    txn.end();
    await o.store.flush(1, 1);
    await o.backend.close();
    fs.copyFileSync(path.join(dbPath, INDEX_SNAPSHOT_FILE), path.join(other, INDEX_SNAPSHOT_FILE));
    const r = await reopen(await Backend.open(other), other);
    expect(r.fromSaved).toBe(false);
    expect(r.store.index.size).toBe(1);
    expect(r.store.index.lookup('k')).toBeUndefined();
    await r.backend.close();

    // A compaction past the saved revision (physical deletion done), without saving again.
    const t2 = store.beginWrite();
    t2.put('k', b('k'), b('v5'), 0n);
    t2.end();
    const keep = store.compact(7);
    const p = new Compactor(store, { pauseMs: 0 }).schedule(7, keep);
    await store.flush(++flushes, 1);
    await p;
    const before = describeIndex(store);
    ({ backend, store, fromSaved } = await reopen(backend, dbPath));
    expect(fromSaved).toBe(false);
    expect(describeIndex(store)).toEqual(before);
    expect(store.index.get('k', 7)).toMatchObject({ modMain: 7, version: 6, createdMain: 2 });
    await backend.close();
  });

  test('a saved index the later records do not fit is dropped for reading every record', async () => {
    const dbPath = path.join(dir, 'db');
    let { backend, store } = await opened(dbPath);
    for (let i = 0; i < 4; i++) {
      const txn = store.beginWrite();
      txn.put(`k${i % 2}`, b(`k${i % 2}`), b(`v${i}`), 0n);
      txn.end();
      await store.flush(++flushes, 1);
    }
    const before = describeIndex(store);
    // Claims an earlier revision than its contents: the records after it are already in it.
    const data = encodeIndexSnapshot(store.index, { rev: store.currentRev - 2, compactRev: -1, consistentIndex: 0 });
    await writeIndexSnapshot(backend.path, data);
    let fromSaved: boolean;
    ({ backend, store, fromSaved } = await reopen(backend, dbPath));
    expect(fromSaved).toBe(false);
    expect(logs.some((l) => l.level === 'warn' && l.msg.includes('does not fit'))).toBe(true);
    expect(describeIndex(store)).toEqual(before);
    expect(fs.existsSync(path.join(dbPath, INDEX_SNAPSHOT_FILE))).toBe(false);
    await backend.close();
  });

  test('nothing is saved while a write is staged', async () => {
    const dbPath = path.join(dir, 'db');
    const { backend, store } = await opened(dbPath);
    const txn = store.beginWrite();
    txn.put('a', b('a'), b('1'), 0n);
    txn.end();
    expect(await store.saveIndex()).toBe(false);
    expect(fs.existsSync(path.join(dbPath, INDEX_SNAPSHOT_FILE))).toBe(false);
    await store.flush(++flushes, 1);
    expect(await store.saveIndex()).toBe(true);
    await backend.close();
  });

  test('every form of history and lease survives encoding; damaged input is refused', () => {
    const index = new TreeIndex();
    const keys: string[] = [];
    const values: KeyIndex[] = [];
    const add = (key: string, build: (ki: KeyIndex) => void): void => {
      const ki = new KeyIndex();
      build(ki);
      keys.push(key);
      values.push(ki);
    };
    add('', (ki) => ki.put(2, 0));
    add('\x00', (ki) => {
      ki.put(2, 1);
      ki.put(3, 0);
      ki.lease = -5n;
    });
    add('a', (ki) => {
      ki.put(4, 1);
      ki.tombstone(5, 1);
      ki.put(2 ** 40, 300);
      ki.put(2 ** 40 + 1, 0);
      ki.lease = 0x7fff_ffff_ffff_ffffn;
    });
    add('b', (ki) => ki.restoreTombstone(6, 0));
    add('c', (ki) => ki.restorePut(9, 2, 3, 4));
    add('\x80\xff', (ki) => {
      ki.put(4, 0);
      ki.tombstone(5, 0);
    });
    index.load(keys, values);
    const data = encodeIndexSnapshot(index, { rev: 2 ** 40 + 1, compactRev: -1, consistentIndex: 77 });
    const d = decodeIndexSnapshot(Buffer.from(data));
    expect(d).toMatchObject({ rev: 2 ** 40 + 1, compactRev: -1, consistentIndex: 77, keys });
    expect(d.last).toEqual({ main: 2 ** 40 + 1, sub: 0, tombstone: false });
    for (let i = 0; i < keys.length; i++) {
      const a = values[i]!;
      const b2 = d.values[i]!;
      expect([b2.modMain, b2.modSub, b2.lease, b2.gens]).toEqual([a.modMain, a.modSub, a.lease, a.gens]);
      for (let rev = 0; rev < 12; rev++) expect(b2.get(rev)).toEqual(a.get(rev));
      expect(b2.get(2 ** 40 + 5)).toEqual(a.get(2 ** 40 + 5));
    }
    for (const cut of [0, 5, 12, 20, data.length - 1]) {
      expect(() => decodeIndexSnapshot(Buffer.from(data.subarray(0, cut)))).toThrow(RangeError);
    }
  });
});
