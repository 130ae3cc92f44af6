/**
 * The MVCC key-value store: an in-memory TreeIndex over the `kv` sublevel of LevelDB.
 *
 * - An empty store is at revision 1; each write transaction that changes something takes the next
 *   main revision, its changes get sub revisions 0, 1, 2, ...
 * - Only the applier writes (through `beginWrite()`); writes are collected into one pending LevelDB
 *   batch that `flush()` writes together with the consistent index. Until flushed, the encoded
 *   values stay in `pending`, so reads always find them.
 * - Reads run concurrently with writes: they answer from the index at a fixed revision and fetch
 *   values from the record cache (record-cache.ts), `pending` or LevelDB.
 * - Compaction compacts the index at once and deletes superseded revisions from LevelDB in the
 *   background in bounded chunks (see compactor.ts), after every read that could still need them
 *   has finished.
 */
import { Errors, InvariantError } from '../errors';
import { Backend, BatchOp, MetaKeys, bytesU64, u64Bytes } from '../storage/backend';
import { KeyIndex } from './key-index';
import { KeyRange, keyToBytes, rangeContains } from './key-range';
import { KeyValue, decodeKeyValue, encodeKeyValue } from './kv-codec';
import { ENTRY_OVERHEAD, RecordCache } from './record-cache';
import { decodeRevision, encodeRevision, revKey } from './revision';
import { RebuiltIndex, rebuildIndex } from './index-restore';
import { encodeIndexSnapshot, loadIndexSnapshot, removeIndexSnapshot, writeIndexSnapshot } from './index-snapshot';
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

/** The stored record of one revision of a key. */
interface RecordRef {
  key: string;
  modMain: number;
  modSub: number;
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
    const record = encodeKeyValue(kv);
    this.store.stage(this.rev, sub, false, record);
    this.store.cache.written(key, this.rev, sub, record);
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
    this.store.cache.drop(key);
    // A tombstone is stored as the bare key (see kv-codec.ts), which ends the record: the change
    // takes its key bytes from there instead of holding a second copy until it is published.
    const record = encodeKeyValue({ key: keyToBytes(key), createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n });
    const kv: KeyValue = { key: record.subarray(record.length - key.length), createRevision: 0, modRevision: this.rev, version: 0, value: EMPTY, lease: 0n };
    this.store.stage(this.rev, sub, true, record);
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

/** How long flushSoon() lets a batch wait for more applied writes, in milliseconds. */
const FLUSH_DEFER_MS = 5;
/** Staged ops at which flushSoon() writes at once. */
const FLUSH_DEFER_MAX_OPS = 4096;

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
  /** Stored records of recently read keys (bounded; see record-cache.ts). */
  readonly cache = new RecordCache();
  /** Records being read from LevelDB, by key: the load that reads them and their place in it. */
  private readonly loading = new Map<string, { main: number; sub: number; load: Promise<Uint8Array[]>; at: number }>();
  /** The batch being collected. */
  private ops: BatchOp[] = [];
  private opsPendingKeys: string[] = [];
  /** Records not yet written to LevelDB, in revision order; `logHead` is the first live one. */
  private pendingLog: HistoryRecord[] = [];
  private logHead = 0;
  /** Resolves when the last started flush has finished; flushes are written in order. */
  private flushChain: Promise<void> = Promise.resolve();
  private nextFlushWaiters: (() => void)[] = [];
  /** The flush flushSoon() deferred: its consistent index and term, and the timer that writes it. */
  private deferTimer: ReturnType<typeof setTimeout> | undefined;
  private deferIndex = 0;
  private deferTerm = 0;
  /**
   * Told how each flush that flushSoon() deferred ended: its duration in seconds once written, or
   * the error. Without it a failed deferred flush is only logged.
   */
  onDeferredFlush: ((seconds: number, err?: unknown) => void) | undefined;
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

  /**
   * Rebuilds the index and the compaction marks: from the saved index and the records written after
   * it when the saved index matches the database (see index-snapshot.ts), else from every stored
   * record (see index-restore.ts).
   */
  private async restore(): Promise<void> {
    const t0 = performance.now();
    let saved = await loadIndexSnapshot(this.backend, this.log);
    let rebuilt: RebuiltIndex;
    try {
      rebuilt = await rebuildIndex(this.backend, this.log, {}, saved);
    } catch (err) {
      if (saved === undefined) throw err;
      // The records after the saved index do not fit it: do without it.
      this.log('warn', 'the saved index does not fit the stored records; reading every record', { error: String(err) });
      await removeIndexSnapshot(this.backend.path);
      saved = undefined;
      rebuilt = await rebuildIndex(this.backend, this.log);
    }
    this.index.load(rebuilt.keys, rebuilt.values);
    const scheduled = await this.backend.metaNumber(MetaKeys.scheduledCompact, -1);
    const finished = await this.backend.metaNumber(MetaKeys.finishedCompact, -1);
    this.currentRev = Math.max(rebuilt.lastMain, scheduled, finished, 1);
    this.compactRev = Math.max(scheduled, finished);
    if (this.compactRev > 0) this.index.compact(this.compactRev, false);
    this.log('info', 'restored the key index', {
      keys: this.index.size,
      'records-read': rebuilt.records,
      'from-saved-index': saved !== undefined,
      revision: this.currentRev,
      took: `${Math.round(performance.now() - t0)}ms`,
    });
  }

  /**
   * Saves the index beside the database so the next open is fast (see index-snapshot.ts). Call
   * once writes have stopped (the member is stopping). Saves nothing, and returns false, while a
   * write is staged or being written, or after a write failed.
   */
  async saveIndex(): Promise<boolean> {
    try {
      let consistentIndex = 0;
      this.writeDeferred();
      for (let attempt = 0; ; attempt++) {
        // Read first: a flush after this only makes the recorded value lower than the database's.
        consistentIndex = await this.backend.metaNumber(MetaKeys.consistentIndex);
        const chain = this.flushChain;
        await chain; // rejects after a failed write
        if (chain === this.flushChain && this.ops.length === 0 && this.logHead === this.pendingLog.length) break;
        if (attempt >= 3) return false;
      }
      // Nothing staged or in flight: the index refers only to records written to LevelDB.
      const data = encodeIndexSnapshot(this.index, { rev: this.currentRev, compactRev: this.compactRev, consistentIndex });
      await this.backend.sync();
      await writeIndexSnapshot(this.backend.path, data);
      this.log('info', 'saved the key index', { keys: this.index.size, revision: this.currentRev, bytes: data.length });
      return true;
    } catch (err) {
      this.log('warn', 'could not save the key index', { error: String(err) });
      return false;
    }
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
   * Writes the pending batch together with the consistent index, as one LevelDB batch (with the
   * batch flushSoon() deferred, if any). Flushes are written in call order; the promise resolves
   * when this one is on LevelDB (not synced).
   */
  flush(consistentIndex: number, term: number): Promise<void> {
    // A deferred flush goes with this one, under the higher consistent index.
    if (this.deferTimer !== undefined) clearTimeout(this.deferTimer);
    this.deferTimer = undefined;
    if (this.deferIndex > consistentIndex) {
      consistentIndex = this.deferIndex;
      term = this.deferTerm;
    }
    this.deferIndex = 0;
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

  /**
   * Like flush(), but the batch may wait up to FLUSH_DEFER_MS for the writes applied after it, so
   * that a stream of small applied batches (one client writing) becomes one LevelDB write every few
   * milliseconds instead of one per write. The records stay readable from `pending` meanwhile, and
   * the WAL holds them in case of a crash. A batch of FLUSH_DEFER_MAX_OPS ops is written without
   * waiting, and flushed() and saveIndex() write the deferred batch before they wait. How it ends
   * goes to onDeferredFlush.
   */
  flushSoon(consistentIndex: number, term: number): void {
    this.deferIndex = consistentIndex;
    this.deferTerm = term;
    if (this.ops.length >= FLUSH_DEFER_MAX_OPS) this.writeDeferred();
    else if (this.deferTimer === undefined) this.deferTimer = setTimeout(this.writeDeferred, FLUSH_DEFER_MS);
  }

  private readonly writeDeferred = (): void => {
    if (this.deferIndex === 0) return;
    const start = performance.now();
    this.flush(this.deferIndex, this.deferTerm).then(
      () => this.onDeferredFlush?.((performance.now() - start) / 1000),
      (err: unknown) => {
        if (this.onDeferredFlush !== undefined) this.onDeferredFlush(0, err);
        else this.log('error', 'writing applied records to the backend failed', { error: String(err) });
      },
    );
  };

  /** Resolves when the next flush (one not started yet) has been written. */
  afterNextFlush(): Promise<void> {
    return new Promise((resolve) => this.nextFlushWaiters.push(resolve));
  }

  /** Resolves when every flush started so far, and the one deferred by flushSoon(), has finished. */
  flushed(): Promise<void> {
    this.writeDeferred();
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
   * A read answered with stored records: the records (see fetchRecords) of the keys live at `rev`
   * (already resolved) in the range, in key order, at most `limit` of them when limit > 0; `count`
   * is the number of live keys in the range and `more` tells whether the limit left some out.
   */
  async rangeRecords(r: KeyRange, rev: number, limit: number): Promise<{ records: Uint8Array[]; count: number; more: boolean }> {
    const records: Uint8Array[] = [];
    const cache = this.cache;
    const pending = this.pending;
    const max = limit > 0 ? limit : Infinity;
    let missing: number[] | undefined;
    let missed: RecordRef[] | undefined;
    let count = 0;
    this.index.forEachInRange(r, (key, ki) => {
      let main: number;
      let sub: number;
      if (ki.modMain <= rev && ki.isLive()) {
        // Live and unchanged since rev: the last modification is the revision visible at rev.
        main = ki.modMain;
        sub = ki.modSub;
      } else {
        const st = ki.get(rev);
        if (st === undefined) return;
        main = st.modMain;
        sub = st.modSub;
      }
      if (++count > max) return;
      let v = cache.get(key, main, sub);
      if (v === undefined && pending.size > 0) v = pending.get(revKey(main, sub));
      if (v === undefined) {
        (missing ??= []).push(records.length);
        (missed ??= []).push({ key, modMain: main, modSub: sub });
        records.push(EMPTY);
      } else {
        records.push(v);
      }
    });
    if (missing !== undefined) await this.load(missed!, missing, records);
    return { records, count, more: count > max };
  }

  /**
   * Fetches and decodes the records of index entries (see fetchRecords). With keysOnly, values are
   * still read (version, lease, revisions come from the record) but dropped.
   */
  async fetch(entries: IndexedKey[], keysOnly: boolean): Promise<KeyValue[]> {
    const records = await this.fetchRecords(entries);
    const out: KeyValue[] = new Array<KeyValue>(records.length);
    for (let i = 0; i < records.length; i++) out[i] = decodeKeyValue(records[i]!);
    if (keysOnly) for (const kv of out) kv.value = EMPTY;
    return out;
  }

  /**
   * The stored records (each an mvccpb.KeyValue in wire encoding, see kv-codec.ts) of index
   * entries, in order: from the record cache, the unflushed writes or LevelDB. The arrays returned
   * are shared with the cache: callers must not modify them.
   */
  async fetchRecords(entries: readonly IndexedKey[]): Promise<Uint8Array[]> {
    const n = entries.length;
    const out = new Array<Uint8Array>(n);
    const cache = this.cache;
    const pending = this.pending;
    let missing: number[] | undefined;
    let missed: RecordRef[] | undefined;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      let v = cache.get(e.key, e.modMain, e.modSub);
      if (v === undefined && pending.size > 0) v = pending.get(revKey(e.modMain, e.modSub));
      if (v !== undefined) {
        out[i] = v;
      } else {
        (missing ??= []).push(i);
        (missed ??= []).push(e);
      }
    }
    if (missing !== undefined) await this.load(missed!, missing, out);
    return out;
  }

  /**
   * Reads the records `refs` into `out` (refs[j] into out[slots[j]]) from LevelDB, caching them.
   * A record another read is loading already is taken from that load, so concurrent reads of the
   * same cold keys cost one LevelDB read.
   */
  private async load(refs: readonly RecordRef[], slots: readonly number[], out: Uint8Array[]): Promise<void> {
    const own: RecordRef[] = [];
    const ownSlots: number[] = [];
    let shared: { load: Promise<Uint8Array[]>; at: number; slot: number; ref: RecordRef }[] | undefined;
    for (let j = 0; j < refs.length; j++) {
      const e = refs[j]!;
      const l = this.loading.get(e.key);
      if (l !== undefined && l.main === e.modMain && l.sub === e.modSub) {
        (shared ??= []).push({ load: l.load, at: l.at, slot: slots[j]!, ref: e });
      } else {
        own.push(e);
        ownSlots.push(slots[j]!);
      }
    }
    let load: Promise<Uint8Array[]> | undefined;
    if (own.length > 0) {
      load = this.readRecords(own);
      // Awaited below, maybe after the shared loads: mark it handled so a failure meanwhile is not reported as unhandled.
      load.catch(() => undefined);
      for (let j = 0; j < own.length; j++) {
        const e = own[j]!;
        this.loading.set(e.key, { main: e.modMain, sub: e.modSub, load, at: j });
      }
    }
    try {
      if (shared !== undefined) {
        const retry: RecordRef[] = [];
        const retrySlots: number[] = [];
        for (const x of shared) {
          try {
            out[x.slot] = (await x.load)[x.at]!;
          } catch {
            // That read failed; try on our own.
            retry.push(x.ref);
            retrySlots.push(x.slot);
          }
        }
        if (retry.length > 0) {
          const vals = await this.readRecords(retry);
          for (let j = 0; j < retry.length; j++) out[retrySlots[j]!] = vals[j]!;
        }
      }
      if (load === undefined) return;
      const vals = await load;
      let loaded = 0;
      for (let j = 0; j < own.length; j++) {
        out[ownSlots[j]!] = vals[j]!;
        loaded += vals[j]!.length + ENTRY_OVERHEAD;
      }
      // A read bigger than half the cache would only push out what other reads use.
      if (loaded * 2 > this.cache.budget) return;
      for (let j = 0; j < own.length; j++) {
        const e = own[j]!;
        this.cache.offer(e.key, e.modMain, e.modSub, vals[j]!);
      }
    } finally {
      if (load !== undefined) for (const e of own) if (this.loading.get(e.key)?.load === load) this.loading.delete(e.key);
    }
  }

  /** Reads stored records from LevelDB, in order. */
  private async readRecords(refs: readonly RecordRef[]): Promise<Uint8Array[]> {
    const gen = this.beginRead();
    try {
      const keys = refs.map((e) => encodeRevision(e.modMain, e.modSub));
      const vals = await this.backend.kv.getMany(keys);
      const out = new Array<Uint8Array>(refs.length);
      for (let j = 0; j < refs.length; j++) {
        let v = vals[j];
        if (v === undefined) {
          // Flushed after we looked at pending? Look again before calling it corruption.
          const e = refs[j]!;
          v = this.pending.get(revKey(e.modMain, e.modSub)) ?? (await this.backend.kv.get(encodeRevision(e.modMain, e.modSub)));
          if (v === undefined) throw new InvariantError(`missing value for revision ${e.modMain}.${e.modSub}`);
        }
        out[j] = v;
      }
      return out;
    } finally {
      this.endRead(gen);
    }
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
