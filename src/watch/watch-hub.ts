/**
 * The watch hub: fed only by the applier, in revision order, it delivers events to watchers.
 *
 * All work (notifications, catch-up chunks, progress checks, switching stores) runs through one
 * serial task queue, so a watcher never sees events out of order and state changes need no locks.
 * Watcher states are described in README.md; in short:
 *   - notify(rev, changes): events go to synced watchers at once; a watcher whose stream is paused
 *     becomes a victim, parked as unsynced at `rev`, and nothing is queued for it;
 *   - catch-up: unsynced watchers whose streams can take more read history from the store in
 *     bounded chunks (never splitting a revision), then become synced;
 *   - a watcher that still needs a revision below the compaction is canceled with the compact
 *     revision.
 *
 * Invariants (checked by the tests in test/unit/watch):
 *   - unsynced or victim: every matching event with revision < minRev has been handed to the sink,
 *     none ≥ minRev has;
 *   - synced: every matching event with revision ≤ notifiedRev has been handed to the sink; the next
 *     revision it needs is max(minRev, notifiedRev + 1);
 *   - nothing is handed to a sink while it reports `paused` (except progress answers, which the
 *     client asked for one at a time).
 */
import { bytesToKey, rangeContains } from '../mvcc/key-range';
import { KeyValue, decodeKeyValue } from '../mvcc/kv-codec';
import type { Change, HistoryRecord, KvStore } from '../mvcc/kv-store';
import { Watcher, WatcherGroup, WatchStreamRef } from './watcher-group';

/** One event as delivered to a watcher. */
export interface WatchEvent {
  /** Events handed to sinks may be shared between watchers: sinks must not modify them. */
  type: 'put' | 'delete';
  /** For a delete: the key and mod_revision only (etcd's tombstone form). */
  kv: KeyValue;
  /** The key's record at kv.modRevision - 1; only when the watcher asked for it, never for creates. */
  prevKv: KeyValue | undefined;
}

/** What the hub needs from a client stream. Calls are made from the hub's queue only. */
export interface WatchSink extends WatchStreamRef {
  /**
   * Sends the events of one or more whole revisions of one watcher (never an empty list). `rev` is
   * the header revision: every matching event ≤ rev has now been handed over for this watcher.
   */
  sendEvents(w: Watcher, events: WatchEvent[], rev: number): void;
  /** Sends the cancel of a watcher that needed history below the compaction; the hub has dropped it. */
  sendCompacted(w: Watcher, compactRev: number): void;
  /** Sends a progress notification (watch id `id`, -1 for a stream-wide request) at revision `rev`. */
  sendProgress(id: number, rev: number): void;
}

/** Tuning of the hub. */
export interface HubOptions {
  /** History records read per catch-up chunk; a chunk may exceed it to finish a revision (default 1000). */
  chunk?: number;
  /** Delay before retrying catch-up when every unsynced watcher's stream is paused, ms (default 100). */
  retryMs?: number;
}

/** Keeps about `limit` records, never splitting a main revision. The input is in revision order. */
function trimToWholeRevisions(records: HistoryRecord[], limit: number): HistoryRecord[] {
  if (records.length <= limit) return records;
  let n = limit;
  while (n < records.length && records[n]!.main === records[n - 1]!.main) n++;
  return records.slice(0, n);
}

function isCreate(type: 'put' | 'delete', kv: KeyValue): boolean {
  return type === 'put' && kv.createRevision === kv.modRevision;
}

/** The hub of one member. */
export class WatchHub {
  /** The last revision whose events were handed to synced watchers. Only queue tasks change it. */
  notifiedRev: number;
  private store: KvStore;
  private readonly synced = new WatcherGroup();
  /** Unsynced watchers and victims. */
  private readonly unsynced = new Set<Watcher>();
  private queue: Promise<void> = Promise.resolve();
  /** Tasks enqueued and not yet finished. */
  private queued = 0;
  private catchUpScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Set while suspend() holds the queue; setStore() or close() calls it. */
  private releaseQueue: (() => void) | undefined;

  constructor(
    store: KvStore,
    private readonly opts: HubOptions = {},
  ) {
    this.store = store;
    this.notifiedRev = store.currentRev;
  }

  /** Number of synced and unsynced (including victim) watchers, for metrics and tests. */
  counts(): { synced: number; unsynced: number } {
    return { synced: this.synced.size, unsynced: this.unsynced.size };
  }

  private enqueue(task: () => Promise<void> | void): void {
    this.queued++;
    this.queue = this.queue.then(task).then(this.taskDone, this.taskFailed);
  }

  private readonly taskDone = (): void => {
    this.queued--;
  };

  private readonly taskFailed = (err: unknown): void => {
    this.queued--;
    // After close() the store may be gone under an in-flight read; that is not an error.
    if (this.closed) return;
    // Otherwise it is a bug or storage corruption: surface it loudly.
    process.nextTick(() => {
      throw err;
    });
  };

  /**
   * Registers a watcher whose created response the caller has already sent. A `minRev` ≤ 0 means
   * "from the next revision". A watcher at or below the last notified revision catches up from
   * history; a later one (including a future start revision) is synced and waits.
   */
  add(w: Watcher): void {
    if (w.minRev <= 0) w.minRev = this.store.currentRev + 1;
    this.enqueue(() => {
      if (w.canceled) return;
      if (w.minRev > this.notifiedRev) {
        w.state = 'synced';
        this.synced.add(w);
      } else {
        w.state = 'unsynced';
        this.unsynced.add(w);
        this.scheduleCatchUp();
      }
    });
  }

  /** Cancels a watcher: nothing more is sent to it from the moment of the call. */
  remove(w: Watcher): void {
    w.canceled = true;
    this.enqueue(() => {
      this.synced.delete(w);
      this.unsynced.delete(w);
    });
  }

  /** Called by the applier after a write transaction changed something at `rev` (in revision order). */
  notify(rev: number, changes: readonly Change[]): void {
    // Nothing queued and nobody watching: there is nothing to deliver, only the revision to note.
    if (this.queued === 0 && this.synced.size === 0 && this.unsynced.size === 0) {
      this.notifiedRev = rev;
      return;
    }
    this.enqueue(() => this.deliver(rev, changes));
  }

  private async deliver(rev: number, changes: readonly Change[]): Promise<void> {
    let perWatcher: Map<Watcher, WatchEvent[]> | undefined;
    for (const c of changes) {
      const key = bytesToKey(c.kv.key);
      const matched: Watcher[] = [];
      this.synced.forMatching(key, (w) => {
        if (!w.canceled && w.minRev <= rev && w.wants(c.type)) matched.push(w);
      });
      if (matched.length === 0) continue;
      const prev = matched.some((w) => w.prevKv) && !isCreate(c.type, c.kv) ? await this.previous(key, rev) : undefined;
      perWatcher ??= new Map();
      // One event object for every watcher that gets the same content (sinks do not modify events;
      // the wire encoder can then encode each once).
      const plain: WatchEvent = { type: c.type, kv: c.kv, prevKv: undefined };
      const withPrev: WatchEvent = prev === undefined ? plain : { type: c.type, kv: c.kv, prevKv: prev };
      for (const w of matched) {
        let list = perWatcher.get(w);
        if (list === undefined) {
          list = [];
          perWatcher.set(w, list);
        }
        list.push(w.prevKv ? withPrev : plain);
      }
    }
    this.notifiedRev = rev;
    if (perWatcher !== undefined) {
      for (const [w, events] of perWatcher) {
        if (w.canceled) continue;
        const sink = w.stream as WatchSink;
        if (sink.paused) {
          // The stream is full: queue nothing; the watcher reads `rev` onwards from history once
          // the stream drains. Everything before `rev` was delivered while it was synced.
          this.synced.delete(w);
          w.state = 'victim';
          if (w.minRev < rev) w.minRev = rev;
          this.unsynced.add(w);
          continue;
        }
        sink.sendEvents(w, events, rev);
        w.minRev = rev + 1;
      }
    }
    if (this.unsynced.size > 0) this.scheduleCatchUp();
  }

  /** The key's record at rev - 1 (undefined when absent or compacted away). */
  private async previous(key: string, rev: number): Promise<KeyValue | undefined> {
    const store = this.store;
    if (rev - 1 < store.compactRev) return undefined;
    try {
      return await store.get(key, rev - 1);
    } catch {
      return undefined;
    }
  }

  /** Asks the hub to retry catch-up now (a paused stream drained). */
  kick(): void {
    if (this.unsynced.size > 0) this.scheduleCatchUp();
  }

  private scheduleCatchUp(): void {
    if (this.catchUpScheduled || this.closed) return;
    this.catchUpScheduled = true;
    this.enqueue(async () => {
      this.catchUpScheduled = false;
      const progressed = await this.catchUpChunk();
      if (this.unsynced.size === 0) return;
      if (progressed) this.scheduleCatchUp();
      else if (this.retryTimer === undefined && !this.closed) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.scheduleCatchUp();
        }, this.opts.retryMs ?? 100);
        this.retryTimer.unref();
      }
    });
  }

  /** Moves an unsynced watcher that has everything up to notifiedRev to the synced group. */
  private markSynced(w: Watcher): void {
    this.unsynced.delete(w);
    w.state = 'synced';
    this.synced.add(w);
  }

  /**
   * One bounded step of catch-up for the unsynced watchers whose streams can take more. Returns
   * false when no watcher could progress (all their streams are paused).
   */
  private async catchUpChunk(): Promise<boolean> {
    const store = this.store;
    const to = this.notifiedRev;
    const ready: Watcher[] = [];
    let progressed = false;
    for (const w of [...this.unsynced]) {
      if (w.canceled) {
        this.unsynced.delete(w);
      } else if (w.minRev > to) {
        this.markSynced(w); // nothing in history for it
        progressed = true;
      } else if (!(w.stream as WatchSink).paused) {
        ready.push(w);
      }
    }
    const compactRev = store.compactRev;
    const active: Watcher[] = [];
    let from = Infinity;
    for (const w of ready) {
      if (w.minRev < compactRev) {
        // History it still needs is gone: cancel with the compact revision.
        this.unsynced.delete(w);
        w.canceled = true;
        (w.stream as WatchSink).sendCompacted(w, compactRev);
        progressed = true;
        continue;
      }
      active.push(w);
      if (w.minRev < from) from = w.minRev;
    }
    if (active.length === 0) return progressed;

    const limit = Math.max(1, this.opts.chunk ?? 1000);
    const all = await store.history(from, 0, to, limit);
    // Any check made before the read is made again after it: a new store means start over.
    if (this.store !== store || this.closed) return true;
    const records = trimToWholeRevisions(all, limit);
    // The chunk covers [from, upTo]: every record in that span is in `records`.
    const whole = records.length === all.length && (all.length < limit || all[all.length - 1]!.main >= to);
    const upTo = whole ? to : records[records.length - 1]!.main;

    const perWatcher = new Map<Watcher, WatchEvent[]>();
    for (const r of records) {
      const kv = decodeKeyValue(r.value);
      const type = r.tombstone ? 'delete' : 'put';
      if (r.tombstone) kv.modRevision = r.main;
      const key = bytesToKey(kv.key);
      let prev: KeyValue | undefined;
      let prevRead = false;
      for (const w of active) {
        if (r.main < w.minRev || !w.wants(type) || !rangeContains(w.range, key)) continue;
        if (w.prevKv && !prevRead && !isCreate(type, kv)) {
          prev = await this.previous(key, r.main);
          prevRead = true;
        }
        let list = perWatcher.get(w);
        if (list === undefined) {
          list = [];
          perWatcher.set(w, list);
        }
        list.push({ type, kv, prevKv: w.prevKv ? prev : undefined });
      }
    }
    if (this.store !== store || this.closed) return true;

    for (const w of active) {
      if (w.canceled || w.minRev > upTo) continue;
      const events = perWatcher.get(w);
      if (events !== undefined) {
        const sink = w.stream as WatchSink;
        // The stream may have filled up during the read (or from an earlier watcher of this chunk).
        if (sink.paused) continue;
        sink.sendEvents(w, events, upTo);
      }
      progressed = true;
      w.minRev = upTo + 1;
      if (w.minRev > this.notifiedRev) this.markSynced(w);
    }
    return progressed;
  }

  /**
   * Sends a progress notification for `watchers` (one stream's) if every one of them that is not
   * canceled is synced, etcd's rule; `responseId` is the watch id to report (-1 for a stream-wide
   * request). The notification is ordered after every event already handed over, and its revision
   * is the last notified one, so it never claims events the watchers have not received. Resolves
   * with whether it was sent (true, with nothing sent, for an empty list).
   */
  requestProgress(sink: WatchSink, watchers: readonly Watcher[], responseId: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.enqueue(() => {
        const live = watchers.filter((w) => !w.canceled);
        if (live.some((w) => w.state !== 'synced' || !this.synced.has(w))) {
          resolve(false);
          return;
        }
        if (live.length > 0) sink.sendProgress(responseId, this.notifiedRev);
        resolve(true);
      });
    });
  }

  /**
   * Holds the queue: resolves once every task queued before has run, and runs nothing more until
   * setStore() or close(). Call it before closing the store that is about to be replaced, so no
   * read runs against a closed store. Each suspend() must be followed by setStore() or close().
   */
  suspend(): Promise<void> {
    return new Promise((resolve) => {
      this.enqueue(
        () =>
          new Promise<void>((release) => {
            this.releaseQueue = release;
            resolve();
          }),
      );
    });
  }

  /**
   * Switches to a new store (a snapshot replaced the state) and releases a suspended queue. The new
   * store must hold every revision the old one had. Every watcher becomes unsynced at the revision
   * it has reached and catches up from the new store's history (or is canceled, if the revisions it
   * still needs were compacted away there). Commits of the new store must be fed through notify().
   */
  setStore(store: KvStore): void {
    this.store = store;
    const rev = store.currentRev;
    this.enqueue(() => {
      const next = this.notifiedRev + 1;
      for (const w of [...this.synced.all()]) {
        this.synced.delete(w);
        if (w.minRev < next) w.minRev = next;
        w.state = 'unsynced';
        this.unsynced.add(w);
      }
      this.notifiedRev = rev;
      this.scheduleCatchUp();
    });
    const release = this.releaseQueue;
    this.releaseQueue = undefined;
    release?.();
  }

  /** Resolves when every task queued so far, and every task those queue in turn, has run. */
  async idle(): Promise<void> {
    for (;;) {
      const q = this.queue;
      await q;
      if (q === this.queue) return;
    }
  }

  /** Stops catch-up retries and releases a suspended queue; later failures of in-flight reads are ignored. */
  close(): void {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const release = this.releaseQueue;
    this.releaseQueue = undefined;
    release?.();
  }
}
