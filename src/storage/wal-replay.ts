/**
 * The in-memory log rebuilt while replaying WAL records, with the overwrite and snapshot rules.
 *
 * - An entry with index i discards every entry read before it with index ≥ i (a follower
 *   truncating a conflicting tail). An entry that would leave a gap (i > last + 1) starts the
 *   log afresh at i; whether the result is usable is judged once replay ends.
 * - A snapshot marker (S, T) whose index S holds an entry of another term, or lies past the last
 *   entry, means the log was replaced by that snapshot: every entry read so far is discarded,
 *   exactly as the Raft core discards its log when it restores such a snapshot. When entry S
 *   has term T, or S is below the first entry still on disk, the entries are kept (a snapshot of
 *   the member's own log).
 */
import type { Entry, SnapshotMeta } from '../raft/types';

/** Replay state: surviving entries in index order (contiguous) plus the last snapshot base. */
export class ReplayLog {
  /** Contiguous entries: entries[k].index === entries[0].index + k. */
  readonly entries: Entry[] = [];
  /** The most recent snapshot marker replayed; its (index, term) answers termAt for its index. */
  private base: { index: number; term: number } | undefined;

  /** The index of the last entry, or undefined when there is none. */
  lastIndex(): number | undefined {
    const last = this.entries[this.entries.length - 1];
    return last?.index;
  }

  /** Applies an entry read from the log, with the overwrite rule. */
  appendEntry(e: Entry): void {
    const es = this.entries;
    const first = es[0];
    if (first === undefined) {
      es.push(e);
      return;
    }
    const next = first.index + es.length;
    if (e.index === next) {
      es.push(e);
    } else if (e.index < next) {
      es.length = Math.max(0, e.index - first.index);
      es.push(e);
    } else {
      es.length = 0;
      es.push(e);
    }
  }

  /** Applies a snapshot marker, with the replacement rule described at the top of this file. */
  applySnapshot(meta: SnapshotMeta): void {
    const t = this.termAt(meta.index);
    if (t !== 'below' && t !== meta.term) this.entries.length = 0;
    this.base = { index: meta.index, term: meta.term };
  }

  /**
   * The term at `index`: from the snapshot base if it is at that index, else from the entries;
   * 'below' when `index` precedes the first entry (or there are none), 'above' past the last.
   */
  private termAt(index: number): number | 'below' | 'above' {
    if (this.base !== undefined && this.base.index === index) return this.base.term;
    const first = this.entries[0];
    if (first === undefined || index < first.index) return 'below';
    const e = this.entries[index - first.index];
    return e === undefined ? 'above' : e.term;
  }
}
