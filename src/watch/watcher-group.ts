/**
 * Watchers and the group that matches keys to them. Pure: no I/O, no timers.
 *
 * A watcher wants every event on its key range with revision ≥ `minRev`. It is in one of these
 * states, owned by the hub:
 *   - synced:   minRev > the last notified revision; new events are sent as they are applied;
 *   - unsynced: behind; it catches up from stored history in bounded chunks;
 *   - victim:   its stream could not take more; it waits (unsynced) until the stream drains.
 * Example: a watcher created at start_revision 5 while the store is at 9 starts unsynced with
 * minRev 5, reads revisions 5..9 from history, then becomes synced with minRev 10.
 */
import { KeyRange, rangeContains } from '../mvcc/key-range';

/** Where a watcher's responses go (one per client stream). */
export interface WatchStreamRef {
  /** True while the stream cannot take more responses. */
  readonly paused: boolean;
}

/** A registered watcher. */
export class Watcher {
  /** Next revision this watcher still needs. */
  minRev: number;
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

  /** Adds a watcher. */
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

  /** Calls fn for every watcher whose range contains the key. */
  forMatching(key: string, fn: (w: Watcher) => void): void {
    const s = this.byKey.get(key);
    if (s !== undefined) for (const w of s) fn(w);
    for (const w of this.ranges) if (rangeContains(w.range, key)) fn(w);
  }

  /** Every watcher. */
  *all(): IterableIterator<Watcher> {
    for (const s of this.byKey.values()) yield* s;
    yield* this.ranges;
  }
}
