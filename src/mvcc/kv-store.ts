/**
 * The MVCC key-value store: an in-memory TreeIndex over the `kv` sublevel of LevelDB.
 *
 * - An empty store is at revision 1; each write transaction that changes something takes the next
 *   main revision, its changes get sub revisions 0, 1, 2, ...
 * - Only the applier writes (through `beginWrite()`); writes are collected into one pending LevelDB
 *   batch that `flush()` writes together with the consistent index. Until flushed, the encoded
 *   values stay in `pending`, so reads always find them.
 * - Reads run concurrently with writes: they answer from the index at a fixed revision and fetch
 *   values from `pending` or LevelDB.
 * - Compaction compacts the index at once and deletes superseded revisions from LevelDB in the
 *   background in bounded chunks (see compactor.ts), after every read that could still need them
 *   has finished.
 */
import { Errors, InvariantError } from '../errors';
import { Backend, BatchOp, MetaKeys, bytesU64, u64Bytes } from '../storage/backend';
import { KeyIndex } from './key-index';
import { KeyRange, keyToBytes, rangeContains } from './key-range';
import { KeyValue, decodeKeyValue, encodeKeyValue } from './kv-codec';
import { decodeRevision, encodeRevision, revKey } from './revision';
import { IndexedKey, TreeIndex } from './tree-index';

/** Options of a read. `rev` ≤ 0 reads at the current revision. `limit` 0 means no limit. */
export interface ReadOptions {
  rev: number;
  limit: number;
  /** Skip fetching values (only the index is consulted). */
  keysOnly?: boolean;
  /** Only count, fetch nothing. */
  countOnly?: boolean;
}

/** The result of a read. `kvs` is in key order. */
export interface ReadResult {
  kvs: KeyValue[];
  /** Number of keys in the range at `rev` (ignores the limit). */
  count: number;
  /** The revision read at. */
  rev: number;
}

/** A change made by a write transaction, for the watch hub. */
export interface Change {
  type: 'put' | 'delete';
  kv: KeyValue;
}

/** One stored record of the history, in revision order. */
export interface HistoryRecord {
  main: number;
  sub: number;
  tombstone: boolean;
  /** The encoded KeyValue as stored. */
  value: Uint8Array;
}

/** Optional logger callback. */
export type StoreLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/**
 * A write transaction. All its changes share main revision `rev`; `end()` publishes them.
 * Reads through the transaction see its own earlier writes.
 */
export class WriteTxn {
  /** The main revision this transaction writes at. */
  readonly rev: number;
  private sub = 0;
  /** The changes made, in order. */
  readonly changes: Change[] = [];

  constructor(private readonly store: KvStore) {
    this.rev = store.currentRev + 1;
  }

  /** True when the transaction changed something. */
  get wrote(): boolean {
    return this.sub > 0;
  }

  /** The revision reads inside the transaction see: `rev` once it wrote, else the current revision. */
  get readRev(): number {
    return this.sub > 0 ? this.rev : this.store.currentRev;
  }

  /** Puts a key. `prior` is the key's index entry (undefined if absent). Returns the written record. */
  put(key: string, keyBytes: Uint8Array, value: Uint8Array, lease: bigint): KeyValue {
    const ki = this.store.index.lookup(key);
    const live = ki !== undefined && ki.isLive() ? ki.get(this.rev) : undefined;
    const kv: KeyValue = {
      key: keyBytes,
      createRevision: live === undefined ? this.rev : live.createdMain,
      modRevision: this.rev,
      version: live === undefined ? 1 : live.version + 1,
      value,
      lease,
    };
    const sub = this.sub++;
    const idx = this.store.index.put(key, this.rev, sub);
    idx.lease = lease;
    this.store.stage(this.rev, sub, false, encodeKeyValue(kv));
    this.changes.push({ type: 'put', kv });
    return kv;
  }

  /** Deletes every live key in the range; returns the deleted keys (binary strings) in key order. */
  deleteRange(r: KeyRange): string[] {
    const keys: string[] = [];
    this.store.index.forEachInRange(r, (k, ki) => {
      if (ki.isLive()) keys.push(k);
    });
    for (const k of keys) this.deleteKey(k);
    return keys;
  }

  private deleteKey(key: string): void {
    const sub = this.sub++;
    if (!this.store.index.tombstone(key, this.rev, sub)) throw new InvariantError(`delete of a key that is not live`);
    const kv: KeyValue = { key: keyToBytes(key), createRevision: 0, modRevision: this.rev, version: 0, value: EMPTY, lease: 0n };
    this.store.stage(this.rev, sub, true, encodeKeyValue({ ...kv, modRevision: 0 }));
    this.changes.push({ type: 'delete', kv });
  }

  /** Publishes the transaction: bumps the current revision when it wrote something, then tells the listener. */
  end(): void {
    if (this.sub === 0) return;
    this.store.currentRev = this.rev;
    this.store.onCommit?.(this.rev, this.changes);
  }
}

const EMPTY = new Uint8Array(0);

/** The MVCC store. */
export class KvStore {
  /** The last committed main revision (≥ 1). */
  currentRev = 1;
  /** The revision of the last compaction (-1 when never compacted, as etcd: compacting at 0 is allowed once). */
  compactRev = -1;
  /** Called after each write transaction that changed something (the watch hub listens here). */
  onCommit: ((rev: number, changes: readonly Change[]) => void) | undefined;
  /** The in-memory index; only the applier mutates it. */
  readonly index = new TreeIndex();
  /** Encoded values written but not yet flushed to LevelDB, by "main_sub". */
  private readonly pending = new Map<string, Uint8Array>();
  /** The batch being collected. */
  private ops: BatchOp[] = [];
  private opsPendingKeys: string[] = [];
  /** Records not yet written to LevelDB, in revision order; `logHead` is the first live one. */
  private pendingLog: HistoryRecord[] = [];
  private logHead = 0;
  /** Resolves when the last started flush has finished; flushes are written in order. */
  private flushChain: Promise<void> = Promise.resolve();
  private nextFlushWaiters: (() => void)[] = [];
  private readGen = 0;
  private readonly readsInFlight = new Map<number, number>();
  private readWaiters: { gen: number; resolve: () => void }[] = [];

  private constructor(
    readonly backend: Backend,
    private readonly log: StoreLog,
  ) {}

  /** Opens the store over a backend, rebuilding the index from the `kv` sublevel. */
  static async open(backend: Backend, log: StoreLog = () => undefined): Promise<KvStore> {
    const s = new KvStore(backend, log);
    await s.restore();
    return s;
  }

  private async restore(): Promise<void> {
    let last = 1;
    for await (const [k, v] of this.backend.kv.iterator()) {
      const rev = decodeRevision(k);
      const kv = decodeKeyValue(v);
      const key = Buffer.from(kv.key.buffer, kv.key.byteOffset, kv.key.byteLength).toString('latin1');
      if (rev.tombstone) {
        if (!this.index.tombstone(key, rev.main, rev.sub)) {
          const ki = this.index.lookup(key);
          if (ki === undefined || ki.isEmpty()) this.index.restoreTombstone(key, rev.main, rev.sub);
          else this.log('warn', 'tombstone for a key that is not live at restore', { revision: rev.main });
        }
      } else {
        const ki = this.index.put(key, rev.main, rev.sub);
        ki.lease = kv.lease;
      }
      if (rev.main > last) last = rev.main;
    }
    const scheduled = await this.backend.metaNumber(MetaKeys.scheduledCompact, -1);
    const finished = await this.backend.metaNumber(MetaKeys.finishedCompact, -1);
    this.currentRev = Math.max(last, scheduled, finished, 1);
    this.compactRev = Math.max(scheduled, finished);
    if (this.compactRev > 0) this.index.compact(this.compactRev);
  }

  /** The consistent index (last applied Raft entry) recorded with the state. */
  async consistentIndex(): Promise<number> {
    return this.backend.metaNumber(MetaKeys.consistentIndex);
  }

  /** Begins a write transaction. Only one may be open at a time (the applier is the only writer). */
  beginWrite(): WriteTxn {
    return new WriteTxn(this);
  }

  /** Adds a record to the pending batch. Internal to the write path. */
  stage(main: number, sub: number, tombstone: boolean, value: Uint8Array): void {
    const k = revKey(main, sub);
    this.pending.set(k, value);
    this.opsPendingKeys.push(k);
    this.pendingLog.push({ main, sub, tombstone, value });
    this.ops.push({ type: 'put', sublevel: this.backend.kv, key: encodeRevision(main, sub, tombstone), value });
  }

  /** Adds arbitrary ops (other sublevels) to the pending batch. */
  stageOps(ops: BatchOp[]): void {
    for (const op of ops) this.ops.push(op);
  }

  /**
   * Writes the pending batch together with the consistent index, as one LevelDB batch. Flushes are
   * written in call order; the promise resolves when this one is on LevelDB (not synced).
   */
  flush(consistentIndex: number, term: number): Promise<void> {
    const ops = this.ops;
    const keys = this.opsPendingKeys;
    this.ops = [];
    this.opsPendingKeys = [];
    ops.push({ type: 'put', sublevel: this.backend.meta, key: MetaKeys.consistentIndex, value: u64Bytes(consistentIndex) });
    ops.push({ type: 'put', sublevel: this.backend.meta, key: MetaKeys.consistentTerm, value: u64Bytes(term) });
    const waiters = this.nextFlushWaiters;
    this.nextFlushWaiters = [];
    const p = this.flushChain.then(async () => {
      await this.backend.write(ops);
      for (const k of keys) this.pending.delete(k);
      this.logHead += keys.length;
      if (this.logHead > 4096 && this.logHead * 2 > this.pendingLog.length) {
        this.pendingLog = this.pendingLog.slice(this.logHead);
        this.logHead = 0;
      }
      for (const w of waiters) w();
    });
    this.flushChain = p;
    return p;
  }

  /** Resolves when the next flush (one not started yet) has been written. */
  afterNextFlush(): Promise<void> {
    return new Promise((resolve) => this.nextFlushWaiters.push(resolve));
  }

  /** Resolves when every flush started so far has finished. */
  flushed(): Promise<void> {
    return this.flushChain;
  }

  /** Checks a requested read revision; returns the revision to read at. */
  resolveRev(rev: number): number {
    if (rev <= 0) return this.currentRev;
    if (rev > this.currentRev) throw Errors.futureRev();
    if (rev < this.compactRev) throw Errors.compacted();
    return rev;
  }

  /**
   * Reads the range at a revision. Throws compacted / future revision errors. The read holds off
   * physical compaction until it finishes.
   */
  async range(r: KeyRange, opts: ReadOptions): Promise<ReadResult> {
    const rev = this.resolveRev(opts.rev);
    if (opts.countOnly === true) return { kvs: [], count: this.index.count(r, rev), rev };
    const found: IndexedKey[] = [];
    const total = this.index.range(r, rev, opts.limit, found);
    const kvs = await this.fetch(found, opts.keysOnly === true);
    return { kvs, count: total, rev };
  }

  /**
   * Fetches the records of index entries (values from pending or LevelDB). With keysOnly, values are
   * still read (version, lease, revisions come from the record) but dropped.
   */
  async fetch(entries: IndexedKey[], keysOnly: boolean): Promise<KeyValue[]> {
    const out: KeyValue[] = new Array<KeyValue>(entries.length);
    const missing: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const v = this.pending.get(revKey(e.modMain, e.modSub));
      if (v !== undefined) out[i] = decodeKeyValue(v);
      else missing.push(i);
    }
    if (missing.length > 0) {
      const gen = this.beginRead();
      try {
        const keys = missing.map((i) => encodeRevision(entries[i]!.modMain, entries[i]!.modSub));
        const vals = await this.backend.kv.getMany(keys);
        for (let j = 0; j < missing.length; j++) {
          const i = missing[j]!;
          const v = vals[j];
          if (v === undefined) {
            // Flushed after we looked at pending? Look again before calling it corruption.
            const e = entries[i]!;
            const p = this.pending.get(revKey(e.modMain, e.modSub)) ?? (await this.backend.kv.get(encodeRevision(e.modMain, e.modSub)));
            if (p === undefined) throw new InvariantError(`missing value for revision ${e.modMain}.${e.modSub}`);
            out[i] = decodeKeyValue(p);
          } else {
            out[i] = decodeKeyValue(v);
          }
        }
      } finally {
        this.endRead(gen);
      }
    }
    if (keysOnly) for (const kv of out) kv.value = EMPTY;
    return out;
  }

  /** Reads the record of a key at a revision (undefined when absent). */
  async get(key: string, rev: number): Promise<KeyValue | undefined> {
    const st = this.index.get(key, rev);
    if (st === undefined) return undefined;
    const [kv] = await this.fetch([{ key, ...st }], false);
    return kv;
  }

  /** The KeyIndex entries live at `rev` in the range (index only, no I/O). */
  indexRange(r: KeyRange, rev: number, limit = 0): IndexedKey[] {
    const out: IndexedKey[] = [];
    this.index.range(r, rev, limit, out, false);
    return out;
  }

  /** True when the key is live at the current revision and inside the range. */
  isLiveIn(r: KeyRange, key: string): boolean {
    if (!rangeContains(r, key)) return false;
    const ki: KeyIndex | undefined = this.index.lookup(key);
    return ki !== undefined && ki.isLive();
  }

  /**
   * Reads stored records with revision ≥ (fromMain, fromSub) and main ≤ toMain, in revision order:
   * about `limit` of them, never splitting a main revision. Sees records not yet flushed.
   */
  async history(fromMain: number, fromSub: number, toMain: number, limit: number): Promise<HistoryRecord[]> {
    if (fromMain > toMain) return [];
    // Take the unflushed records first: anything not among them was written before the iterator opens.
    const unflushed: HistoryRecord[] = [];
    for (let i = this.logHead; i < this.pendingLog.length; i++) {
      const r = this.pendingLog[i]!;
      if (r.main > toMain) break;
      if (r.main > fromMain || (r.main === fromMain && r.sub >= fromSub)) unflushed.push(r);
    }
    const gen = this.beginRead();
    const out: HistoryRecord[] = [];
    try {
      const it = this.backend.kv.iterator({ gte: encodeRevision(fromMain, fromSub), lt: encodeRevision(toMain + 1, 0) });
      try {
        for (;;) {
          const entry = await it.next();
          if (entry === undefined) break;
          const rev = decodeRevision(entry[0]);
          if (out.length >= limit && rev.main !== out[out.length - 1]!.main) break;
          out.push({ main: rev.main, sub: rev.sub, tombstone: rev.tombstone, value: entry[1] });
        }
      } finally {
        await it.close();
      }
    } finally {
      this.endRead(gen);
    }
    if (unflushed.length === 0) return out;
    const seen = new Set(out.map((r) => revKey(r.main, r.sub)));
    const lastMain = out.length >= limit ? out[out.length - 1]!.main : Infinity;
    for (const r of unflushed) if (r.main <= lastMain && !seen.has(revKey(r.main, r.sub))) out.push(r);
    out.sort((a, b) => a.main - b.main || a.sub - b.sub);
    return out;
  }

  /** Marks a read as in flight; physical compaction waits for reads begun before it. */
  beginRead(): number {
    const g = this.readGen;
    this.readsInFlight.set(g, (this.readsInFlight.get(g) ?? 0) + 1);
    return g;
  }

  /** Ends a read begun with beginRead. */
  endRead(gen: number): void {
    const n = (this.readsInFlight.get(gen) ?? 1) - 1;
    if (n > 0) {
      this.readsInFlight.set(gen, n);
      return;
    }
    this.readsInFlight.delete(gen);
    const still = this.readWaiters;
    this.readWaiters = [];
    for (const w of still) {
      if (this.oldestRead() >= w.gen) w.resolve();
      else this.readWaiters.push(w);
    }
  }

  private oldestRead(): number {
    let min = Infinity;
    for (const g of this.readsInFlight.keys()) if (g < min) min = g;
    return min;
  }

  /** Resolves when every read begun before this call has finished. */
  readBarrier(): Promise<void> {
    const gen = ++this.readGen;
    if (this.oldestRead() >= gen) return Promise.resolve();
    return new Promise((resolve) => this.readWaiters.push({ gen, resolve }));
  }

  /**
   * Compacts at `rev`: validates, compacts the index, records the schedule in the pending batch and
   * returns the set of revisions ≤ rev to keep. The caller runs the physical deletion after the
   * batch is flushed (see compactor.ts).
   */
  compact(rev: number): Set<string> {
    if (rev <= this.compactRev) throw Errors.compacted();
    if (rev > this.currentRev) throw Errors.futureRev();
    this.compactRev = rev;
    const keep = this.index.compact(rev);
    this.ops.push({ type: 'put', sublevel: this.backend.meta, key: MetaKeys.scheduledCompact, value: u64Bytes(rev) });
    return keep;
  }

  /** Reads the scheduled and finished compaction marks. */
  async compactionMarks(): Promise<{ scheduled: number; finished: number }> {
    return {
      scheduled: await this.backend.metaNumber(MetaKeys.scheduledCompact, -1),
      finished: await this.backend.metaNumber(MetaKeys.finishedCompact, -1),
    };
  }
}

/** Decodes an 8-byte meta value (re-exported for callers that read meta directly). */
export { bytesU64 };
