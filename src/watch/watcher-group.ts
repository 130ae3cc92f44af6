/**
 * Watchers and the group that matches keys to them. Pure: no I/O, no timers.
 *
 * A watcher wants every event on its key range with revision ≥ its start revision. The hub owns
 * its state (see README.md for the transitions and a worked example):
 *   - synced:   it has every matching event up to the hub's last notified revision; new events are
 *               sent as they are applied;
 *   - unsynced: every matching event below `minRev` was sent, none at or above; it catches up from
 *               stored history in bounded chunks;
 *   - victim:   an unsynced watcher that got there because its stream could not take more; it
 *               waits until the stream drains.
 */
import { KeyRange, rangeContains } from '../mvcc/key-range';

/** Where a watcher's responses go (one per client stream). */
export interface WatchStreamRef {
  /** True while the stream cannot take more responses; the hub then hands it no events. */
  readonly paused: boolean;
}

/**
 * A registered watcher: its stream, range, start revision (`startRev` > 0; the caller resolves 0 to
 * "current + 1"), and the options of its create request.
 */
export class Watcher {
  /**
   * Next revision this watcher still needs while unsynced. While synced it may lag behind: the next
   * revision is then max(minRev, the hub's notified revision + 1). Only the hub changes it.
   */
  minRev: number;
  /** Where the hub keeps it (see the file comment). Only the hub changes it. */
  state: 'synced' | 'unsynced' | 'victim' = 'unsynced';
  /** Set once canceled; a canceled watcher receives nothing more. */
  canceled = false;

  constructor(
    readonly id: number,
    readonly stream: WatchStreamRef,
    readonly range: KeyRange,
    startRev: number,
    readonly prevKv: boolean,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly progressNotify: boolean,
    readonly fragment: boolean,
  ) {
    this.minRev = startRev;
  }

  /** True when the event type passes this watcher's filters. */
  wants(type: 'put' | 'delete'): boolean {
    return type === 'put' ? !this.noPut : !this.noDelete;
  }
}

/** A set of watchers indexed for matching: single keys by key, ranges in a list. */
export class WatcherGroup {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private n = 0;

  /** Number of watchers. */
  get size(): number {
    return this.n;
  }

  /** Adds a watcher (no-op when present). */
  add(w: Watcher): void {
    if (w.range.end === undefined) {
      let s = this.byKey.get(w.range.key);
      if (s === undefined) {
        s = new Set();
        this.byKey.set(w.range.key, s);
      }
      if (s.has(w)) return;
      s.add(w);
    } else {
      if (this.ranges.has(w)) return;
      this.ranges.add(w);
    }
    this.n++;
  }

  /** Removes a watcher; returns whether it was present. */
  delete(w: Watcher): boolean {
    let removed = false;
    if (w.range.end === undefined) {
      const s = this.byKey.get(w.range.key);
      if (s !== undefined && s.delete(w)) {
        removed = true;
        if (s.size === 0) this.byKey.delete(w.range.key);
      }
    } else {
      removed = this.ranges.delete(w);
    }
    if (removed) this.n--;
    return removed;
  }

  /** True when the watcher is in the group. */
  has(w: Watcher): boolean {
    return w.range.end === undefined ? (this.byKey.get(w.range.key)?.has(w) ?? false) : this.ranges.has(w);
  }

  /** Calls fn for every watcher whose range contains the key (binary-string form). fn must not change the group. */
  forMatching(key: string, fn: (w: Watcher) => void): void {
    const s = this.byKey.get(key);
    if (s !== undefined) for (const w of s) fn(w);
    for (const w of this.ranges) if (rangeContains(w.range, key)) fn(w);
  }

  /** Every watcher. The group must not change while iterating; copy first to change it. */
  *all(): IterableIterator<Watcher> {
    for (const s of this.byKey.values()) yield* s;
    yield* this.ranges;
  }
}
