/**
 * The watch hub: fed only by the applier, in revision order, it delivers events to watchers.
 *
 * All work (notifications, catch-up chunks, progress checks) runs through one serial task queue, so
 * a watcher never sees events out of order and state transitions need no locks:
 *   - notify(rev, changes): events for synced watchers; a watcher whose stream is paused becomes a
 *     victim (unsynced from that revision) and catches up from history once the stream drains;
 *   - catch-up: unsynced watchers read history from the store in bounded chunks (never splitting
 *     a revision), then become synced;
 *   - a watcher whose minRev is below the compaction is canceled with the compact revision.
 */
import { bytesToKey } from '../mvcc/key-range';
import { KeyValue, decodeKeyValue } from '../mvcc/kv-codec';
import type { Change, KvStore } from '../mvcc/kv-store';
import { Watcher, WatcherGroup, WatchStreamRef } from './watcher-group';

/** One event as delivered to a watcher. */
export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv: KeyValue | undefined;
}

/** What the hub needs from a client stream. */
export interface WatchSink extends WatchStreamRef {
  /** Sends events of one or more whole revisions; `rev` is the header revision. */
  sendEvents(w: Watcher, events: WatchEvent[], rev: number): void;
  /** Sends the compaction cancel for a watcher that fell behind the compaction. */
  sendCompacted(w: Watcher, compactRev: number, rev: number): void;
  /** Sends a progress notification (watch id `id`, which is -1 for a stream-wide request). */
  sendProgress(id: number, rev: number): void;
}

/** Tuning of the hub. */
export interface HubOptions {
  /** Records read from history per catch-up chunk (default 1000). */
  chunk?: number;
  /** Delay before retrying catch-up when nothing could progress, ms (default 100). */
  retryMs?: number;
}

/** The hub of one member. */
export class WatchHub {
  /** The last revision whose events were handed to synced watchers. */
  notifiedRev: number;
  private readonly synced = new WatcherGroup();
  private readonly unsynced = new Set<Watcher>();
  private queue: Promise<void> = Promise.resolve();
  private catchUpScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private store: KvStore,
    private readonly opts: HubOptions = {},
  ) {
    this.notifiedRev = store.currentRev;
  }

  /**
   * Switches to a new store (a snapshot replaced the state): every watcher catches up again from
   * the new store's history (or is canceled if that history was compacted past it).
   */
  setStore(store: KvStore): void {
    this.enqueue(() => {
      this.store = store;
      this.notifiedRev = store.currentRev;
      for (const w of this.synced.all()) {
        w.state = 'unsynced';
        this.unsynced.add(w);
      }
      for (const w of [...this.unsynced]) this.synced.delete(w);
      this.scheduleCatchUp();
    });
  }

  /** Number of synced and unsynced watchers (for metrics and tests). */
  counts(): { synced: number; unsynced: number } {
    return { synced: this.synced.size, unsynced: this.unsynced.size };
  }

  private enqueue(task: () => Promise<void> | void): void {
    this.queue = this.queue.then(task).catch((err: unknown) => {
      // A failure here is a bug or storage corruption; surface it loudly.
      process.nextTick(() => {
        throw err;
      });
    });
  }

  /**
   * Registers a watcher. `startRev` ≤ 0 means "from the next revision". Returns the watcher; the
   * caller has already sent the created response.
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

  /** Removes a watcher; nothing more is sent to it. */
  remove(w: Watcher): void {
    w.canceled = true;
    this.enqueue(() => {
      this.synced.delete(w);
      this.unsynced.delete(w);
    });
  }

  /** Called by the applier after a write transaction changed something at `rev`. */
  notify(rev: number, changes: readonly Change[]): void {
    this.enqueue(() => this.deliver(rev, changes));
  }

  private async deliver(rev: number, changes: readonly Change[]): Promise<void> {
    let perWatcher: Map<Watcher, WatchEvent[]> | undefined;
    let prevCache: Map<number, KeyValue | undefined> | undefined;
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i]!;
      const key = bytesToKey(c.kv.key);
      const matched: Watcher[] = [];
      this.synced.forMatching(key, (w) => {
        if (!w.canceled && w.minRev <= rev && w.wants(c.type)) matched.push(w);
      });
      if (matched.length === 0) continue;
      let prev: KeyValue | undefined;
      if (matched.some((w) => w.prevKv)) {
        prevCache ??= new Map();
        if (!prevCache.has(i)) prevCache.set(i, await this.previous(key, rev));
        prev = prevCache.get(i);
      }
      perWatcher ??= new Map();
      for (const w of matched) {
        let list = perWatcher.get(w);
        if (list === undefined) {
          list = [];
          perWatcher.set(w, list);
        }
        list.push({ type: c.type, kv: c.kv, prevKv: w.prevKv ? prev : undefined });
      }
    }
    this.notifiedRev = rev;
    if (perWatcher === undefined) return;
    for (const [w, events] of perWatcher) {
      if (w.canceled) continue;
      const sink = w.stream as WatchSink;
      if (sink.paused) {
        // The stream is full: stop pushing; the watcher catches up from history when it drains.
        this.synced.delete(w);
        w.state = 'victim';
        this.unsynced.add(w);
        continue;
      }
      sink.sendEvents(w, events, rev);
      w.minRev = rev + 1;
    }
    if (this.unsynced.size > 0) this.scheduleCatchUp();
  }

  /** The key's record at rev - 1 (undefined when absent or compacted). */
  private async previous(key: string, rev: number): Promise<KeyValue | undefined> {
    if (rev - 1 < this.store.compactRev) return undefined;
    try {
      return await this.store.get(key, rev - 1);
    } catch {
      return undefined;
    }
  }

  /** Asks the hub to retry catch-up (a paused stream drained). */
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
      }
    });
  }

  /** One bounded step of catch-up for the unsynced watchers whose streams can take more. */
  private async catchUpChunk(): Promise<boolean> {
    const ready: Watcher[] = [];
    for (const w of this.unsynced) {
      if (w.canceled) {
        this.unsynced.delete(w);
        continue;
      }
      if (!(w.stream as WatchSink).paused) ready.push(w);
    }
    if (ready.length === 0) return false;
    const compactRev = this.store.compactRev;
    let from = Infinity;
    for (const w of ready) {
      if (w.minRev < compactRev) {
        // Behind the compaction: history is gone; cancel with the compact revision.
        this.unsynced.delete(w);
        w.canceled = true;
        (w.stream as WatchSink).sendCompacted(w, compactRev, this.store.currentRev);
        continue;
      }
      if (w.minRev < from) from = w.minRev;
    }
    const active = ready.filter((w) => !w.canceled);
    if (active.length === 0) return true;
    const to = this.notifiedRev;
    const records = from <= to ? await this.store.history(from, 0, to, this.opts.chunk ?? 1000) : [];
    // The chunk covers [from, upTo]; watchers behind upTo get their events from it.
    const complete = records.length === 0 || records[records.length - 1]!.main >= to;
    const upTo = complete ? to : records[records.length - 1]!.main;
    const perWatcher = new Map<Watcher, WatchEvent[]>();
    for (const r of records) {
      const kv = decodeKeyValue(r.value);
      const type = r.tombstone ? 'delete' : 'put';
      if (r.tombstone) kv.modRevision = r.main;
      const key = bytesToKey(kv.key);
      for (const w of active) {
        if (r.main < w.minRev || !w.wants(type)) continue;
        const end = w.range.end;
        if (end === undefined ? key !== w.range.key : key < w.range.key || (end !== '' && key >= end)) continue;
        let list = perWatcher.get(w);
        if (list === undefined) {
          list = [];
          perWatcher.set(w, list);
        }
        list.push({ type, kv, prevKv: w.prevKv ? await this.previous(key, r.main) : undefined });
      }
    }
    for (const w of active) {
      if (w.canceled || w.minRev > upTo) continue;
      const events = perWatcher.get(w);
      if (events !== undefined && events.length > 0) (w.stream as WatchSink).sendEvents(w, events, this.store.currentRev);
      w.minRev = upTo + 1;
      if (w.minRev > this.notifiedRev) {
        this.unsynced.delete(w);
        w.state = 'synced';
        this.synced.add(w);
      }
    }
    return true;
  }

  /**
   * Sends a progress notification for `watchers` if every one of them is synced (etcd's rule);
   * `responseId` is the watch id to report (-1 for a stream-wide request). Returns whether sent.
   */
  requestProgress(sink: WatchSink, watchers: Watcher[], responseId: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.enqueue(() => {
        if (watchers.length === 0) {
          resolve(true);
          return;
        }
        for (const w of watchers) {
          if (!w.canceled && w.state !== 'synced') {
            resolve(false);
            return;
          }
        }
        sink.sendProgress(responseId, this.notifiedRev);
        resolve(true);
      });
    });
  }

  /** Resolves when every task queued so far (and any task they queue) has run. */
  async idle(): Promise<void> {
    for (;;) {
      const q = this.queue;
      await q;
      if (q === this.queue) return;
    }
  }

  /** Stops timers. */
  close(): void {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
  }
}
